"""A build with the cache embeds only the files it has not seen with these models and settings,
and gives the same gallery, version included, as a build without it; a damaged cache entry is
computed again, never trusted."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.gallery.cache import CacheStats, EmbeddingCache
from monitor.likeness.models import Models
from monitor.media import decode_clip
from monitor.media.transforms import transform_clip

SETTINGS = LikenessSettings(device="cpu")
DECODE = DecodeSettings(max_frames=2, even_frames=2)


@pytest.fixture
def folder(tmp_path: Path, package_file: Callable[[str], Path]) -> Path:
    """An actor, a character with its footage, and a negative: five files in all."""
    root = tmp_path / "gallery"
    entities = [
        {"id": "caller", "name": "Caller", "kind": "actor"},
        {"id": "bunny", "name": "Bunny", "kind": "character"},
    ]
    (root / "refs" / "caller").mkdir(parents=True)
    (root / "refs" / "bunny").mkdir(parents=True)
    (root / "negatives").mkdir()
    (root / "footage" / "bunny").mkdir(parents=True)
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    bunny = decode_clip(package_file("bigbuckbunny.mp4"))
    Image.fromarray(decode_clip(package_file("carphone_pristine.mp4"))[0].image).save(
        root / "refs" / "caller" / "face.png"
    )
    Image.fromarray(bunny[-1].image).save(root / "refs" / "bunny" / "end.png")
    Image.fromarray(bunny[0].image).save(root / "refs" / "bunny" / "start.png")
    Image.fromarray(decode_clip(package_file("bikes.mp4"))[0].image).save(
        root / "negatives" / "bikes.png"
    )
    transform_clip(
        package_file("bigbuckbunny.mp4"), root / "footage" / "bunny" / "film.mp4", max_seconds=1
    )
    return root


def same_gallery(a: Gallery, b: Gallery) -> bool:
    return (
        a.version == b.version
        and all(
            np.array_equal(a.entities[e].embeddings, b.entities[e].embeddings) for e in a.entities
        )
        and np.array_equal(a.negatives["visual"].embeddings, b.negatives["visual"].embeddings)
        and np.array_equal(a.footage.hashes, b.footage.hashes)
        and np.array_equal(a.footage.time, b.footage.time)
    )


def test_a_second_build_takes_every_file_from_the_cache_and_gives_the_same_gallery(
    folder: Path, models: Models, tmp_path: Path
) -> None:
    uncached = build_gallery(folder, models, SETTINGS, DECODE)
    cache = EmbeddingCache(tmp_path / "cache")
    first = build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (0, 5)
    second = build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (5, 5)
    assert same_gallery(uncached, first) and same_gallery(first, second)


def test_only_a_changed_or_added_file_is_embedded_again(
    folder: Path, models: Models, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    start = folder / "refs" / "bunny" / "start.png"
    Image.open(start).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(start)
    shutil.copyfile(folder / "negatives" / "bikes.png", folder / "negatives" / "bikes-2.png")
    cache.stats = CacheStats()
    rebuilt = build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (5, 1), (
        "the copy of bikes.png has the same bytes"
    )
    assert rebuilt.negative_files == ["negatives/bikes-2.png", "negatives/bikes.png"]


def test_other_models_settings_or_decoding_do_not_share_entries(
    folder: Path, models: Models, tmp_path: Path
) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    other = DecodeSettings(max_frames=3, even_frames=3)
    cache.stats = CacheStats()
    build_gallery(folder, models, SETTINGS, other, cache=cache)
    assert cache.stats.hits == 0


def test_a_damaged_cache_entry_is_computed_again(
    folder: Path, models: Models, tmp_path: Path
) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    first = build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    entries = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(entries) == 5
    entries[0].write_bytes(b"not an npz")
    entries[1].write_bytes(entries[1].read_bytes()[:40])
    cache.stats = CacheStats()
    again = build_gallery(folder, models, SETTINGS, DECODE, cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (3, 2)
    assert same_gallery(first, again)

"""Footage in a gallery folder: hashed at build time, saved with the gallery, and a re-upload
of it flags its entity by hash even where no face or likeness would."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from safetensors.numpy import load_file, save_file

from monitor.config import DecodeSettings, LikenessSettings
from monitor.errors import GalleryNotBuiltError, ReferenceMediaError
from monitor.likeness.footage import index as index_module
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import EMBEDDINGS_FILE, Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import EntityScore, Scorer
from monitor.media import decode_clip, load_media
from tests.media.clips import transform_clip

SETTINGS = LikenessSettings(device="cpu")
DECODE = DecodeSettings(max_frames=8, even_frames=8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, package_file: Callable[[str], Path]) -> Path:
    """A studio whose only reference picture is an actor's face, and whose film is the bunny."""
    root = tmp_path_factory.mktemp("footage-gallery")
    entities = [{"id": "studio-film", "name": "Studio Film", "kind": "actor", "franchise": "Film"}]
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    (root / "refs" / "studio-film").mkdir(parents=True)
    face = decode_clip(package_file("carphone_pristine.mp4"))[0].image
    Image.fromarray(face).save(root / "refs" / "studio-film" / "lead.png")
    (root / "footage" / "studio-film").mkdir(parents=True)
    shutil.copyfile(package_file("bigbuckbunny.mp4"), root / "footage" / "studio-film" / "film.mp4")
    return root


@pytest.fixture(scope="module")
def gallery(folder: Path, models: Models) -> Gallery:
    return build_gallery(folder, models, SETTINGS, DECODE)


def film_score(scorer: Scorer, path: Path) -> EntityScore:
    frames = load_media(path, DECODE.limits, even_frames=DECODE.even_frames)
    return scorer.score_frames(frames).entities[0]


def test_a_mirrored_re_upload_of_the_film_is_flagged_by_its_hashes(
    gallery: Gallery, models: Models, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = transform_clip(package_file("bigbuckbunny.mp4"), tmp_path / "m.mp4", mirror=True, crf=32)
    score = film_score(Scorer(gallery, models, SETTINGS), copy)
    assert score.flagged
    best = score.evidence[0]
    assert best.signal == "hash" and best.reference == "footage/studio-film/film.mp4"
    assert best.threshold == SETTINGS.footage_match_share and best.score >= best.threshold
    assert best.text is not None and "reference" in best.text


def test_unrelated_footage_matches_no_hash(
    gallery: Gallery, models: Models, package_file: Callable[[str], Path]
) -> None:
    score = film_score(Scorer(gallery, models, SETTINGS), package_file("bikes.mp4"))
    assert not score.flagged
    assert all(e.signal != "hash" for e in score.evidence)


def test_the_footage_index_is_saved_with_the_gallery_and_rebuilt_identically(
    gallery: Gallery, folder: Path, models: Models, tmp_path: Path
) -> None:
    assert len(gallery.footage.clips) == 1 and len(gallery.footage) >= 10
    gallery.save(tmp_path / "built")
    loaded = Gallery.load(tmp_path / "built")
    assert loaded.footage.clips == gallery.footage.clips
    np.testing.assert_array_equal(loaded.footage.hashes, gallery.footage.hashes)
    again = build_gallery(folder, models, SETTINGS, DECODE)
    assert again.version == gallery.version
    np.testing.assert_array_equal(again.footage.hashes, gallery.footage.hashes)


def test_unreadable_footage_names_the_entity_and_the_file(
    folder: Path, models: Models, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "footage" / "studio-film" / "bad.mp4").write_bytes(b"not a film at all")
    with pytest.raises(ReferenceMediaError, match=r"'studio-film'.*footage.*bad\.mp4"):
        build_gallery(broken, models, SETTINGS, DECODE)


def test_a_large_footage_index_is_saved_with_its_inverted_layout_and_loaded_from_it(
    gallery: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``FLAT_LIMIT`` (lowered here to the test film's few hundred hashes) the inverted
    file's layout is saved with the gallery, loaded with it, and the loaded gallery finds the
    film's frames as the built one does; a damaged layout makes the gallery unusable, by name."""
    monkeypatch.setattr(index_module, "FLAT_LIMIT", 10)
    gallery = replace(gallery, footage=replace(gallery.footage))  # not yet searched: no index
    built = tmp_path / "built"
    gallery.save(built)
    tensors = load_file(str(built / EMBEDDINGS_FILE))
    assert {"footage/ivf_centres", "footage/ivf_lists"} <= set(tensors)
    loaded = Gallery.load(built)
    assert loaded.footage.layout is not None
    np.testing.assert_array_equal(loaded.footage.layout.lists, tensors["footage/ivf_lists"])
    queries = gallery.footage.hashes[::7]
    assert loaded.footage._index.search(queries).rows.tolist() == (
        gallery.footage._index.search(queries).rows.tolist()
    )

    tensors["footage/ivf_lists"] = tensors["footage/ivf_lists"] + len(
        tensors["footage/ivf_centres"]
    )
    save_file(tensors, str(built / EMBEDDINGS_FILE))
    with pytest.raises(GalleryNotBuiltError, match="inverted layout"):
        Gallery.load(built)

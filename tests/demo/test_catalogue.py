"""The demo's media and gallery: built from package media, deterministic, cached, and each
clip is what it claims to be (decodable, or broken in the declared way)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from monitor.demo import DemoCatalogue, build_demo
from monitor.errors import MediaError
from monitor.likeness.gallery.folder import read_folder
from monitor.media import decode_clip


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_second_build_reuses_the_first_and_a_stale_one_is_rebuilt_identically(
    demo_catalogue: DemoCatalogue, tmp_path: Path
) -> None:
    first = build_demo(tmp_path)
    assert digests(tmp_path) == digests(demo_catalogue.root)  # deterministic, byte for byte
    stamps = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.mp4")}

    started = time.perf_counter()
    again = build_demo(tmp_path)
    assert time.perf_counter() - started < 0.5
    assert again.version == first.version
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.mp4")} == stamps

    (tmp_path / "VERSION").write_text("demo-0-older\n")
    (tmp_path / "media" / "bikes.mp4").write_bytes(b"left over")
    build_demo(tmp_path)
    assert digests(tmp_path) == digests(demo_catalogue.root)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".build-")]


def test_every_served_clip_decodes_and_the_corrupt_one_raises_a_media_error(
    demo_catalogue: DemoCatalogue,
) -> None:
    for clip in demo_catalogue.clips:
        path = demo_catalogue.media_path(clip.media)
        if clip.broken == "missing":
            assert path is None
            assert clip.failure_reason == "http_404"
        elif clip.broken == "corrupt":
            assert path is not None
            with pytest.raises(MediaError) as caught:
                decode_clip(path)
            assert caught.value.reason == clip.failure_reason == "unreadable"
        else:
            assert path is not None
            frames = decode_clip(path)
            assert len(frames) >= 3, clip.id
            assert frames[-1].time >= 2.0, clip.id  # 2.5 s clips
            assert path.stat().st_size < 2_000_000, clip.id


def test_the_gallery_folder_protects_every_entity_a_clip_expects(
    demo_catalogue: DemoCatalogue,
) -> None:
    folder = read_folder(demo_catalogue.gallery_dir)
    ids = {entity.id for entity in folder.entities}
    assert ids == {"big-buck-bunny", "jennifer-aniston", "carphone-man"}
    assert {entity for clip in demo_catalogue.clips for entity in clip.expect} == ids
    assert all(folder.references[entity] for entity in ids)
    assert len(folder.negatives) == 2
    bunny = next(entity for entity in folder.entities if entity.id == "big-buck-bunny")
    assert "bbb" in bunny.aliases


def test_the_catalogue_has_positives_negatives_and_one_clip_of_each_failure(
    demo_catalogue: DemoCatalogue,
) -> None:
    clips = demo_catalogue.clips
    assert len({clip.id for clip in clips}) == len(clips)
    assert len({clip.media for clip in clips}) == len(clips)
    working = [clip for clip in clips if clip.broken is None]
    assert sum(1 for clip in working if clip.expect) >= 6
    assert sum(1 for clip in working if not clip.expect) >= 3
    assert sorted(clip.broken for clip in clips if clip.broken) == ["corrupt", "missing"]
    # Most captions do not name what the clip shows, and one names what it does not show:
    # the pictures must decide.
    names = [
        name.lower()
        for entity in read_folder(demo_catalogue.gallery_dir).entities
        for name in entity.names
    ]
    naming = {
        clip.id: bool(clip.expect)
        for clip in clips
        if any(name in f"{clip.title} {clip.caption}".lower() for name in names)
    }
    assert sorted(naming.values()) == [False, True]

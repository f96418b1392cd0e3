"""Two uploads are copies of one clip when enough of one's sampled frames match the other's in
order: a re-encode or a rescale of a real clip is a copy, another clip is not, and a clip with
no usable frame is a copy of nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.footage.copies import (
    copy_share,
    footprint,
    footprint_array,
    footprint_hex,
)
from monitor.media import decode_clip
from monitor.media.frames import Frame
from monitor.media.transforms import transform_clip
from monitor.records import FOOTPRINT_MAX

SHARE = LikenessSettings().footage_match_share
SCORER = DecodeSettings()


def sampled(path: Path) -> list[Frame]:
    return decode_clip(path, SCORER.limits, even_frames=SCORER.even_frames)


def test_a_reencoded_and_rescaled_repost_is_a_copy_and_another_clip_is_not(
    package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    original = package_file("bikes.mp4")
    repost = transform_clip(original, tmp_path / "repost.mp4", scale=0.5, crf=35)
    clip = footprint(sampled(original))
    assert 0 < len(clip) <= FOOTPRINT_MAX
    assert copy_share(footprint(sampled(repost)), clip) >= SHARE
    other = footprint(sampled(package_file("bigbuckbunny.mp4")))
    assert copy_share(other, clip) < SHARE
    assert copy_share(clip, other) < SHARE


def test_frames_must_match_in_order_not_merely_somewhere() -> None:
    rng = np.random.default_rng(7)
    clip = rng.integers(0, 256, (9, 32), dtype=np.uint8)
    assert copy_share(clip, clip) == 1.0
    assert copy_share(clip, clip[::-1].copy()) == pytest.approx(1 / 9)


def test_an_empty_footprint_is_a_copy_of_nothing() -> None:
    empty = np.zeros((0, 32), np.uint8)
    some = np.ones((3, 32), np.uint8)
    assert copy_share(empty, some) == 0.0
    assert copy_share(some, empty) == 0.0


def test_a_footprint_travels_as_hex_and_is_kept_as_bytes() -> None:
    rows = np.arange(64, dtype=np.uint8).reshape(2, 32)
    hexes = footprint_hex(rows)
    assert all(len(h) == 64 for h in hexes)
    assert np.array_equal(footprint_array(hexes), rows)
    assert np.array_equal(footprint_array(b"".join(bytes(r) for r in rows)), rows)
    with pytest.raises(ValueError, match="whole 32-byte hashes"):
        footprint_array(b"\x00" * 33)

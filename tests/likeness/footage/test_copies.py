"""Two uploads are copies of one clip when enough of one's sampled frames match the other's in
order, by the known-footage rule, either way round: a re-encoded, cropped or mirrored re-post of
a real clip is a copy, another clip is not, and a clip with no usable frame copies nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.footage.copies import (
    FOOTPRINT_FRAMES,
    Hashed,
    copy_share,
    footprint,
    found_share,
)
from monitor.media import decode_clip
from monitor.media.transforms import transform_clip
from monitor.records import Footprint, FrameHash

SHARE = LikenessSettings().footage_match_share
SCORER = DecodeSettings()


def hashed(path: Path) -> tuple[Hashed, Hashed]:
    printed = footprint(decode_clip(path, SCORER.limits, even_frames=SCORER.even_frames))
    assert 0 < printed.frames <= FOOTPRINT_FRAMES
    return Hashed.of(printed.query), Hashed.of(printed.reference)


@pytest.mark.parametrize(
    "change",
    [{"scale": 0.5, "crf": 35}, {"crop": 0.1}, {"mirror": True}, {"letterbox_9x16": True}],
    ids=["re-encoded smaller", "cropped", "mirrored", "letterboxed 9:16"],
)
def test_a_repost_is_a_copy_whichever_of_the_two_was_seen_first(
    package_file: Callable[[str], Path], tmp_path: Path, change: dict[str, object]
) -> None:
    original = package_file("bikes.mp4")
    repost = hashed(transform_clip(original, tmp_path / "repost.mp4", **change))  # type: ignore[arg-type]
    first = hashed(original)
    assert copy_share(repost, first) >= SHARE
    assert copy_share(first, repost) >= SHARE


def test_another_clip_is_not_a_copy(package_file: Callable[[str], Path]) -> None:
    bikes, bunny = hashed(package_file("bikes.mp4")), hashed(package_file("bigbuckbunny.mp4"))
    assert copy_share(bikes, bunny) < SHARE
    assert copy_share(bunny, bikes) < SHARE


def side(rows: np.ndarray) -> Hashed:
    return Hashed(np.arange(len(rows), dtype=np.uint16), rows)


def test_frames_must_match_in_order_not_merely_somewhere() -> None:
    rows = np.random.default_rng(7).integers(0, 256, (9, 32), dtype=np.uint8)
    assert found_share(side(rows), side(rows)) == 1.0
    assert found_share(side(rows), side(rows[::-1].copy())) == 0.0, "a chain of one frame"


def test_an_empty_footprint_copies_nothing() -> None:
    empty = side(np.zeros((0, 32), np.uint8))
    some = side(np.random.default_rng(3).integers(0, 256, (3, 32), dtype=np.uint8))
    assert copy_share((empty, empty), (some, some)) == 0.0
    assert copy_share((some, some), (empty, empty)) == 0.0


def test_a_footprint_travels_as_hex_and_is_kept_as_bytes() -> None:
    printed = Footprint(
        frames=2,
        query=[FrameHash(frame=0, pdq="ab" * 32), FrameHash(frame=1, pdq="cd" * 32)],
        reference=[FrameHash(frame=1, pdq="ef" * 32)],
    )
    query = Hashed.of(printed.query)
    assert query.frames.tolist() == [0, 1] and bytes(query.rows[1]).hex() == "cd" * 32
    back = Hashed.from_bytes(query.to_bytes())
    assert np.array_equal(back.frames, query.frames) and np.array_equal(back.rows, query.rows)
    with pytest.raises(ValueError, match="cannot take"):
        Hashed.from_bytes(query.to_bytes()[:-1])

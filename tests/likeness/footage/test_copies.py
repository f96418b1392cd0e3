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
    best_copy,
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


def looped(
    clip: tuple[Hashed, Hashed], candidates: list[tuple[Hashed, Hashed]], share: float
) -> int | None:
    """The rule as decide ran it before ``best_copy``: ``copy_share`` with each in turn."""
    best: tuple[float, int] | None = None
    for index, other in enumerate(candidates):
        found = copy_share(clip, other)
        if found >= share and (best is None or found > best[0]):
            best = (found, index)
    return None if best is None else best[1]


def moved(rng: np.random.Generator, rows: np.ndarray, low: int, high: int) -> np.ndarray:
    """``rows`` with between ``low`` and ``high`` bits flipped in each, now and then all of
    them in one half of the hash (the half ``best_copy`` looks at first, or the other)."""
    out = rows.copy()
    for row in out:
        bits = int(rng.integers(low, high + 1))
        pool = rng.choice([0, 128, 256]) if rng.random() < 0.3 else 256
        span = np.arange(256) if pool == 256 else np.arange(pool, pool + 128)
        for bit in rng.choice(span, bits, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def random_side(rng: np.random.Generator, source: np.ndarray, views: int) -> Hashed:
    """Some of ``source``'s frames (or fresh noise), in order or not, ``views`` hashes each,
    each moved by a re-encode's few bits or by about the rule's own distance."""
    count = int(rng.integers(0, len(source) + 1))
    picked = np.sort(rng.choice(len(source), count, replace=False))
    if rng.random() < 0.3:
        rng.shuffle(picked)
    frames = np.repeat(np.sort(rng.choice(40, count, replace=False)), views).astype(np.uint16)
    rows = np.repeat(source[picked], views, axis=0)
    rows = moved(rng, rows, *(rng.choice([(0, 8), (24, 38), (60, 128)])))
    return Hashed(frames, rows)


def test_best_copy_finds_what_copy_share_finds_on_random_footprints() -> None:
    rng = np.random.default_rng(2026)
    for trial in range(60):
        source = rng.integers(0, 256, (int(rng.integers(1, 17)), 32), dtype=np.uint8)
        noise = rng.integers(0, 256, (16, 32), dtype=np.uint8)
        clip = (random_side(rng, source, 3), random_side(rng, source, 1))
        candidates = [
            (
                random_side(rng, source if rng.random() < 0.5 else noise, int(rng.integers(1, 4))),
                random_side(rng, source if rng.random() < 0.5 else noise, 1),
            )
            for _ in range(int(rng.integers(0, 40)))
        ]
        for share in (0.0, 0.3, 0.5, 1.0):
            assert best_copy(clip, candidates, share) == looped(clip, candidates, share), (
                trial,
                share,
            )


def test_best_copy_agrees_both_ways_one_way_and_neither() -> None:
    rng = np.random.default_rng(5)
    source = rng.integers(0, 256, (12, 32), dtype=np.uint8)
    other = rng.integers(0, 256, (12, 32), dtype=np.uint8)

    def side(rows: np.ndarray) -> Hashed:
        return Hashed(np.arange(len(rows), dtype=np.uint16), moved(rng, rows, 0, 10))

    clip = (side(source), side(source))
    both, neither = (side(source[:8]), side(source[:8])), (side(other), side(other))
    its_query_only = (side(source[2:6]), side(other))  # found in the clip's reference
    its_reference_only = (side(other), side(source[1:10]))  # holds the clip's query
    every = [neither, its_query_only, its_reference_only, both]
    shares = [copy_share(clip, each) for each in every]
    assert shares[0] == 0.0 and all(share >= 0.3 for share in shares[1:])
    for count in range(len(every) + 1):
        for order in (every[:count], every[:count][::-1]):
            assert best_copy(clip, order, 0.3) == looped(clip, order, 0.3)


def test_best_copy_finds_what_copy_share_finds_on_real_footprints(
    package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    bikes = package_file("bikes.mp4")
    real = [
        hashed(bikes),
        hashed(package_file("bigbuckbunny.mp4")),
        hashed(transform_clip(bikes, tmp_path / "mirror.mp4", mirror=True)),
        hashed(transform_clip(bikes, tmp_path / "crop.mp4", crop=0.1)),
    ]
    noise = np.random.default_rng(9).integers(0, 256, (30, 32), dtype=np.uint8)
    filler = [(side(noise[i : i + 10]), side(noise[i + 1 : i + 9])) for i in range(0, 20, 2)]
    for index, clip in enumerate(real):
        others = [*filler[:5], *real[:index], *real[index + 1 :], *filler[5:]]
        for share in (SHARE, 0.6, 0.9):
            assert best_copy(clip, others, share) == looped(clip, others, share)
            assert best_copy(clip, others[::-1], share) == looped(clip, others[::-1], share)

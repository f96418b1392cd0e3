"""Reference footage is hashed at every frame that moved, so a copy of fast-moving footage is
found whatever frames the scorer happens to decode, at any speed from 0.5x to 2x, reframed
for a phone, and a dismissed fast-moving clip stays dismissed when re-uploaded."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.config import DecodeSettings, LikenessSettings
from monitor.errors import UnreadableMediaError
from monitor.likeness.footage import FootageClip, FootageIndex, fingerprint
from monitor.likeness.footage.hashes import KEEP_BITS, hash_reference
from monitor.likeness.footage.match import longest_forward_chain
from monitor.media import DecodeLimits, Frame, decode_clip, decode_every_frame
from monitor.media.transforms import corrupt_copy, transform_clip

SHARE = LikenessSettings().footage_match_share
SCORER = DecodeSettings()
EVERYTHING = DecodeLimits(max_frames=100_000, timeout_s=120.0)


def scorer_frames(path: Path) -> list[Frame]:
    return decode_clip(path, SCORER.limits, even_frames=SCORER.even_frames)


@pytest.fixture(scope="module")
def bikes_index(package_file: Callable[[str], Path]) -> FootageIndex:
    """bikes.mp4 (a handheld camera, 10 s) as reference footage, hashed as a build does."""
    hashed = hash_reference(decode_every_frame(package_file("bikes.mp4"), EVERYTHING))
    assert hashed.frames == 250 and hashed.duration == pytest.approx(10.0)
    clip = FootageClip("bikes", "footage/bikes/bikes.mp4", hashed.duration, hashed.frames)
    index = FootageIndex.empty()
    index.add_hashes(clip, hashed.times, hashed.hashes)
    return index


def test_every_frame_streams_in_order_and_the_limit_ends_the_stream(
    package_file: Callable[[str], Path],
) -> None:
    frames = list(decode_every_frame(package_file("bikes.mp4"), EVERYTHING))
    assert len(frames) == 250
    assert [f.index for f in frames] == list(range(250))
    assert all(a.time < b.time for a, b in itertools.pairwise(frames))
    few = list(decode_every_frame(package_file("bikes.mp4"), DecodeLimits(max_frames=10)))
    assert len(few) == 10


def test_a_corrupt_reference_file_is_refused_when_met(tmp_path: Path) -> None:
    junk = tmp_path / "film.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4096))
    with pytest.raises(UnreadableMediaError):
        list(decode_every_frame(junk, EVERYTHING))


def test_a_still_shot_costs_one_hash_a_view_and_a_moving_camera_nearly_one_a_frame(
    package_file: Callable[[str], Path],
) -> None:
    first = next(decode_every_frame(package_file("bikes.mp4"), EVERYTHING))
    still = hash_reference(Frame(image=first.image, time=i / 25, index=i) for i in range(50))
    assert sorted(still.hashes.views) == ["band9:16", "crop90", "full"] and still.times == [0.0]
    assert still.frames == 50 and still.duration == pytest.approx(2.0)

    moving = hash_reference(
        decode_every_frame(package_file("bikes.mp4"), DecodeLimits(max_frames=100))
    )
    hashes = moving.hashes
    full = np.flatnonzero(np.asarray(hashes.views) == "full")
    assert moving.frames == 100 and len(full) >= 70
    # Every kept hash moved more than KEEP_BITS from the one kept before it.
    steps = np.bitwise_count(hashes.hashes[full[1:]] ^ hashes.hashes[full[:-1]]).sum(axis=1)
    assert steps.min() > KEEP_BITS


@pytest.mark.parametrize(
    "variant",
    [
        {"bitrate": 300_000},
        {"speed": 0.5},
        {"speed": 0.8},
        {"speed": 1.25},
        {"speed": 2.0},
        {"mirror": True, "hue": 40.0},
        {"crop": 0.1, "mirror": True},
        {"fill_9x16": 1.0},
        {"mirror": True, "fill_9x16": 1.0},
        {"letterbox_9x16": True},
        {"reframe_9x16": True},
    ],
    ids=[
        "300kbps",
        "speed-0.5",
        "speed-0.8",
        "speed-1.25",
        "speed-2",
        "mirror-hue",
        "crop-mirror",
        "crop-to-fill",
        "mirror-crop-to-fill",
        "letterbox",
        "blurred-bars",
    ],
)
def test_a_copy_of_fast_moving_footage_is_found_in_order(
    variant: dict[str, Any],
    bikes_index: FootageIndex,
    package_file: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    copy = transform_clip(package_file("bikes.mp4"), tmp_path / "copy.mp4", **variant)
    [matches] = bikes_index.match_many([scorer_frames(copy)], SHARE)
    assert [m.reference for m in matches] == ["footage/bikes/bikes.mp4"]
    [match] = matches
    assert match.query_share >= SHARE
    starts = [r.reference_start for r in match.ranges]
    assert starts == sorted(starts) and starts[0] < 2.0


def test_unrelated_clips_match_no_fast_moving_reference(
    bikes_index: FootageIndex, package_file: Callable[[str], Path]
) -> None:
    clips = [scorer_frames(package_file(n)) for n in ("bigbuckbunny.mp4", "carphone_pristine.mp4")]
    assert bikes_index.match_many(clips, SHARE) == [[], []]


def dismissed_index(frames: list[Frame]) -> FootageIndex:
    """A flagged clip's fingerprint, filed as a dismissal and built like the gallery builds it."""
    kept = fingerprint(frames)
    index = FootageIndex.empty()
    index.add_hashes(kept.footage_clip("bikes", "dismissed.pdq.json"), kept.times, kept.hashes)
    return index


@pytest.mark.parametrize(
    "variant",
    [{"crf": 30}, {"fill_9x16": 1.0}, {"mirror": True, "bitrate": 300_000}],
    ids=["re-encoded", "crop-to-fill", "mirrored"],
)
def test_a_dismissed_fast_moving_clip_stays_dismissed_when_re_uploaded(
    variant: dict[str, Any], package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    upload = transform_clip(package_file("bikes.mp4"), tmp_path / "upload.mp4", crf=26)
    index = dismissed_index(scorer_frames(upload))
    copy = transform_clip(upload, tmp_path / "copy.mp4", **variant)
    unrelated = scorer_frames(package_file("carphone_pristine.mp4"))
    found = index.match_many([scorer_frames(copy), unrelated], SHARE)
    assert [[m.reference for m in matches] for matches in found] == [["dismissed.pdq.json"], []]


def test_a_damaged_reference_yields_the_frames_before_the_damage(
    package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    damaged = corrupt_copy(package_file("bikes.mp4"), tmp_path / "damaged.mp4", start=0.6)
    frames = list(decode_every_frame(damaged, EVERYTHING))
    assert 50 < len(frames) <= 250


def brute_force_chain(pairs: list[tuple[int, int]]) -> int:
    unique = sorted(set(pairs))
    for size in range(len(unique), 0, -1):
        for chosen in itertools.combinations(unique, size):
            if all(a[0] < b[0] and a[1] <= b[1] for a, b in itertools.pairwise(chosen)):
                return size
    return 0


def random_pairs(seed: int) -> Iterator[list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        count = int(rng.integers(0, 10))
        yield [(int(q), int(r)) for q, r in rng.integers(0, 7, (count, 2))]


def test_the_ordered_chain_is_the_longest_with_query_frames_rising_and_reference_not_falling() -> (
    None
):
    for pairs in random_pairs(0):
        chain = longest_forward_chain(pairs)
        assert len(chain) == brute_force_chain(pairs)
        assert all(a[0] < b[0] and a[1] <= b[1] for a, b in itertools.pairwise(chain))
        assert set(chain) <= set(pairs)


def test_repeated_and_dropped_frames_keep_the_chain_whole() -> None:
    slowed = [(q, q // 2) for q in range(10)]  # 0.5x: each reference frame shown twice
    assert len(longest_forward_chain(slowed)) == 10
    sped_up = [(q, 2 * q) for q in range(10)]  # 2x: every other reference frame dropped
    assert len(longest_forward_chain(sped_up)) == 10
    shuffled = [(0, 5), (1, 1), (2, 4), (3, 2), (4, 3)]  # a collage, not a copy
    assert len(longest_forward_chain(shuffled)) == 3

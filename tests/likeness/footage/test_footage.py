"""Re-uploads of a reference clip are found by frame hashes; unrelated footage is not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.likeness.footage import FootageClip, FootageIndex, HashIndex, hash_reference
from monitor.likeness.footage.hashes import MATCH_DISTANCE
from monitor.likeness.footage.insets import find_insets
from monitor.media import DecodeLimits, decode_clip, decode_every_frame
from monitor.media.transforms import transform_clip

MATCH_SHARE = 0.5
QUERY = DecodeLimits()
FOOTAGE = DecodeLimits(max_frames=1000)
CAPTION = "the best scene ever, watch till the end"
PIP_BOX = (304, 76, 320, 180)
"""Where ``transform_clip`` pastes the bunny at half the width of bikes.mp4 (640 x 272): 320 x
180, a fortieth of the width (16 px) in from the bottom-right corner."""


def pasted_into_bikes(
    package_file: Callable[[str], Path], clip: str, dst: Path, max_seconds: float | None = None
) -> Path:
    """``clip`` at half size inside the bikes clip: a picture-in-picture copy."""
    return transform_clip(
        package_file(clip),
        dst,
        pip_into=package_file("bikes.mp4"),
        pip_scale=0.5,
        max_seconds=max_seconds,
    )


@pytest.fixture(scope="module")
def bunny_index(package_file: Callable[[str], Path]) -> FootageIndex:
    hashed = hash_reference(decode_every_frame(package_file("bigbuckbunny.mp4"), FOOTAGE))
    index = FootageIndex.empty()
    clip = FootageClip("bunny", "footage/bunny/bigbuckbunny.mp4", hashed.duration, hashed.frames)
    index.add_hashes(clip, hashed.times, hashed.hashes)
    return index


@pytest.mark.parametrize(
    "variant",
    [
        {"crf": 38},
        {"mirror": True},
        {"crop": 0.1},
        {"reframe_9x16": True},
        {"speed": 0.8},
    ],
    ids=["re-encode", "mirror", "crop-10pc", "reframe-9x16", "speed-0.8"],
)
def test_a_transformed_copy_of_a_reference_clip_is_matched_in_order(
    variant: dict[str, Any],
    bunny_index: FootageIndex,
    package_file: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    copy = transform_clip(package_file("bigbuckbunny.mp4"), tmp_path / "copy.mp4", **variant)
    [matches] = bunny_index.match_many([decode_clip(copy, QUERY, even_frames=8)], MATCH_SHARE)
    assert [m.reference for m in matches] == ["footage/bunny/bigbuckbunny.mp4"]
    [match] = matches
    assert match.query_share >= MATCH_SHARE
    assert match.ranges and match.ranges[0].start < 1.0 and match.ranges[0].reference_start < 1.0
    assert all(r.start <= r.end and r.reference_start <= r.reference_end for r in match.ranges)


def test_unrelated_footage_matches_nothing(
    bunny_index: FootageIndex, package_file: Callable[[str], Path]
) -> None:
    clips = [
        decode_clip(package_file(name), QUERY, even_frames=8)
        for name in ("bikes.mp4", "carphone_pristine.mp4")
    ]
    assert bunny_index.match_many(clips, 0.0) == [[], []]


def test_a_mirrored_copy_is_found_through_its_mirror_view(
    bunny_index: FootageIndex, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = transform_clip(package_file("bigbuckbunny.mp4"), tmp_path / "m.mp4", mirror=True)
    [[match]] = bunny_index.match_many([decode_clip(copy, QUERY, even_frames=8)], MATCH_SHARE)
    assert match.view.endswith(":mirror")


def test_a_copy_pasted_small_into_another_video_is_found_through_its_inset(
    bunny_index: FootageIndex, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = pasted_into_bikes(package_file, "bigbuckbunny.mp4", tmp_path / "pip.mp4")
    [[match]] = bunny_index.match_many([decode_clip(copy, QUERY, even_frames=8)], MATCH_SHARE)
    assert match.reference == "footage/bunny/bigbuckbunny.mp4"
    assert match.view.startswith("inset:")


def test_a_copy_under_a_caption_bar_is_found_with_the_bar_blanked(
    bunny_index: FootageIndex, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = transform_clip(package_file("bigbuckbunny.mp4"), tmp_path / "c.mp4", caption=CAPTION)
    [[match]] = bunny_index.match_many([decode_clip(copy, QUERY, even_frames=8)], MATCH_SHARE)
    assert match.reference == "footage/bunny/bigbuckbunny.mp4"
    assert match.view.startswith("caption:")


def test_other_footage_pasted_into_a_video_or_captioned_matches_nothing(
    bunny_index: FootageIndex, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    pip = pasted_into_bikes(package_file, "carphone_pristine.mp4", tmp_path / "pip.mp4")
    captioned = transform_clip(package_file("bikes.mp4"), tmp_path / "c.mp4", caption=CAPTION)
    clips = [decode_clip(path, QUERY, even_frames=8) for path in (pip, captioned)]
    assert bunny_index.match_many(clips, 0.0) == [[], []]


def test_an_inset_is_found_to_the_pixel_in_one_frame_and_in_a_whole_clip(
    package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = pasted_into_bikes(package_file, "bigbuckbunny.mp4", tmp_path / "pip.mp4", 2.0)
    frames = [frame.image for frame in decode_clip(copy, QUERY, even_frames=4)]
    first = find_insets(frames[:1])
    assert first and np.abs(np.subtract(first[0].as_list(), PIP_BOX)).max() <= 2
    [box, *_] = find_insets(frames)
    assert box.as_list() == list(PIP_BOX)


def test_the_index_answers_a_whole_batch_of_hashes_in_one_search() -> None:
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    queries = stored[[10, 20, 30]].copy()
    queries[0, :4] ^= 0xFF  # 32 bits away: just past the match distance
    queries[1, :3] ^= 0xFF  # 24 bits away
    queries[1, 3] ^= 0x7F  # 31 bits away: the last distance that still matches
    found = HashIndex(stored).search(queries)
    pairs = sorted(
        zip(found.queries.tolist(), found.rows.tolist(), found.distances.tolist(), strict=True)
    )
    assert pairs == [(1, 20, MATCH_DISTANCE), (2, 30, 0)]

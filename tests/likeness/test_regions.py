from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.likeness.embedders.base import Box
from monitor.likeness.embedders.visual import EfficientNetLite0Embedder
from monitor.likeness.regions import View, views
from monitor.media.decode import decode_clip


def _frame(height: int = 720, width: int = 1280) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _area(view: View) -> int:
    return view.box.width * view.box.height


def test_the_whole_frame_comes_first() -> None:
    frame = _frame()
    first = views(frame)[0]
    assert first.label == "full"
    assert first.box.as_list() == [0, 0, 1280, 720]
    assert first.image is frame


def test_default_views_are_the_whole_frame_a_2x2_and_3x3_grid_and_the_centre() -> None:
    labels = [v.label for v in views(_frame())]
    assert len(labels) == 15
    assert labels[1:5] == ["grid2:r0c0", "grid2:r0c1", "grid2:r1c0", "grid2:r1c1"]
    assert labels[5] == "grid3:r0c0" and labels[13] == "grid3:r2c2"
    assert labels[-1] == "centre"
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_a_grid_without_overlap_tiles_the_frame_exactly(n: int) -> None:
    frame = _frame(721, 1279)  # sides that do not divide evenly
    cells = [v for v in views(frame, grids=(n,), centre=False) if v.label != "full"]
    assert len(cells) == n * n
    covered = np.zeros(frame.shape[:2], dtype=np.int32)
    for cell in cells:
        b = cell.box
        covered[b.y : b.y + b.height, b.x : b.x + b.width] += 1
    assert (covered == 1).all()


def test_each_view_is_a_slice_of_the_frame_at_its_box() -> None:
    frame = _frame()
    for view in views(frame):
        b = view.box
        assert np.shares_memory(view.image, frame)
        assert np.array_equal(view.image, frame[b.y : b.y + b.height, b.x : b.x + b.width])


def test_the_centre_view_is_the_middle_half_of_each_side() -> None:
    centre = views(_frame(), grids=())[-1]
    assert centre.label == "centre"
    assert centre.box.as_list() == [320, 180, 640, 360]


def test_overlapping_windows_share_the_given_fraction_and_reach_the_far_edges() -> None:
    cells = [v for v in views(_frame(400, 800), grids=(3,), centre=False, overlap=0.5)][1:]
    top_row = sorted((v for v in cells if v.label.startswith("grid3:r0")), key=lambda v: v.box.x)
    widths = {v.box.width for v in top_row}
    assert widths == {400}  # 800 / (1 + 2 * 0.5)
    assert [v.box.x for v in top_row] == [0, 200, 400]
    assert top_row[-1].box.x + top_row[-1].box.width == 800
    bottom = max(v.box.y + v.box.height for v in cells)
    assert bottom == 400


def test_windows_smaller_than_min_side_are_left_out() -> None:
    labels = [v.label for v in views(_frame(120, 120), min_side=48)]
    assert "grid2:r0c0" in labels  # 60 px
    assert not any(label.startswith("grid3") for label in labels)  # 40 px
    assert "centre" in labels  # 60 px


def test_a_tiny_picture_still_has_its_whole_view() -> None:
    assert [v.label for v in views(_frame(20, 30))] == ["full"]


@pytest.mark.parametrize(
    ("kwargs", "image"),
    [
        ({"grids": (1,)}, _frame(100, 100)),
        ({"overlap": 1.0}, _frame(100, 100)),
        ({}, np.zeros((100, 100), dtype=np.uint8)),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        views(image, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_small_character_in_a_large_scene_matches_through_a_region(
    package_file: Callable[[str], Path], weight_file: Callable[[str], Path]
) -> None:
    # The reason for regions: the bunny pasted at a quarter of its size into a street scene
    # barely moves the whole-frame embedding, but one region is mostly bunny.
    embedder = EfficientNetLite0Embedder(weight_file("efficientnet-lite0"), device="cpu")
    bunny_frames = decode_clip(package_file("bigbuckbunny.mp4"), even_frames=4)
    reference = bunny_frames[2].image[40:640, 240:640]
    bunny = cv2.resize(
        bunny_frames[-1].image[40:640, 240:640], (100, 150), interpolation=cv2.INTER_AREA
    )
    street = decode_clip(package_file("bikes.mp4"), even_frames=4)[1].image
    scene = np.asarray(cv2.resize(street, (1280, 544), interpolation=cv2.INTER_AREA), np.uint8)
    scene[300:450, 700:800] = bunny

    cuts = views(scene)
    cosines = embedder.embed([v.image for v in cuts]) @ embedder.embed([reference])[0]
    best = cuts[int(cosines.argmax())]

    # Plain cosines of the mid-level features run low (0.2-0.4 here); the region still
    # clearly beats the whole frame.
    assert cosines.max() > cosines[0] + 0.05
    b = best.box
    overlap_w = max(0, min(800, b.x + b.width) - max(700, b.x))
    overlap_h = max(0, min(450, b.y + b.height) - max(300, b.y))
    assert overlap_w * overlap_h > 0.25 * 100 * 150  # the winning region shows the bunny
    assert _area(best) <= _area(cuts[0]) / 4  # a 2x2 cell or smaller


def test_a_portrait_frame_gets_its_middle_landscape_band_as_a_view() -> None:
    portrait = np.zeros((1280, 720, 3), np.uint8)
    band = next(view for view in views(portrait) if view.label == "band16:9")
    assert band.box == Box(0, (1280 - 405) // 2, 720, 405)
    assert band.image.shape == (405, 720, 3)
    landscape = np.zeros((720, 1280, 3), np.uint8)
    assert all(view.label != "band16:9" for view in views(landscape))

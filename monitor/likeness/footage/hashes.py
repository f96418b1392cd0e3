"""PDQ hashes of frames and of the parts of frames that re-uploads keep.

A global perceptual hash survives re-encoding but not a mirror, a crop to 9:16 or a picture
pasted small into another video (MODELS.md: PDQ misses a 10 % crop at distance 66). Each
side therefore hashes a few views instead of one:

- a reference frame: whole, and its centre 90 % (a cropped re-upload is the centre of the
  original, so the crop is met on the reference side, once, at build time);
- a query frame: whole and mirrored (one ``compute_dihedral`` call gives both for the price
  of one), plus, for a portrait frame, its middle 16:9 band (how apps reframe landscape clips),
  and any picture-in-picture inset found by looking for a large axis-aligned rectangle, each
  also mirrored.

Cost: frames are downscaled to at most 512 px a side first (2.5 ms per PDQ hash instead of
26 ms at 720p, and the same on both sides, so distances do not change), so a query frame costs
2 to 6 hashes, about 5 to 15 ms on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import pdqhash

from monitor.likeness.embedders.base import Box
from monitor.likeness.regions import views
from monitor.media.frames import Frame, RGBImage

__all__ = [
    "HASH_BYTES",
    "MATCH_DISTANCE",
    "MIN_QUALITY",
    "FrameHashes",
    "find_insets",
    "hash_frames",
]

HASH_BYTES = 32
MATCH_DISTANCE = 31
"""PDQ's own match rule: at most 31 of 256 bits differ (MODELS.md)."""
MIN_QUALITY = 50
"""Below this PDQ quality a frame is too flat (a fade, a title card) for its hash to mean much."""
HASH_SIDE = 512
REFERENCE_CROP = 0.9
MAX_INSETS = 2
_EDGE = 40.0  # Sobel magnitude of a hard edge between two pictures
_MIRROR = 5  # the left-right flip among compute_dihedral's eight hashes

Side = Literal["reference", "query"]


@dataclass(frozen=True)
class FrameHashes:
    """Row ``i`` of ``hashes`` is view ``views[i]`` of ``frames[i]``, with PDQ ``quality[i]``."""

    hashes: npt.NDArray[np.uint8]
    quality: npt.NDArray[np.uint8]
    frames: npt.NDArray[np.int32]
    views: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.views)

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        return self.quality >= MIN_QUALITY


def hash_frames(frames: Sequence[Frame], side: Side) -> FrameHashes:
    """Every view of every frame hashed, in frame order."""
    rows: list[npt.NDArray[np.uint8]] = []
    quality: list[int] = []
    owners: list[int] = []
    labels: list[str] = []
    for position, frame in enumerate(frames):
        for label, image, mirrored in _views(_downscaled(frame.image), side):
            if mirrored:
                hashes, qualities = pdqhash.compute_dihedral(image)
                pairs = [
                    (label, hashes[0], qualities),
                    (f"{label}:mirror", hashes[_MIRROR], qualities),
                ]
            else:
                bits, q = pdqhash.compute(image)
                pairs = [(label, bits, q)]
            for name, bits, q in pairs:
                rows.append(np.packbits(np.asarray(bits, np.uint8)))
                quality.append(int(q))
                owners.append(position)
                labels.append(name)
    return FrameHashes(
        hashes=np.stack(rows) if rows else np.zeros((0, HASH_BYTES), np.uint8),
        quality=np.asarray(quality, np.uint8),
        frames=np.asarray(owners, np.int32),
        views=tuple(labels),
    )


def _downscaled(image: RGBImage) -> RGBImage:
    height, width = image.shape[:2]
    scale = HASH_SIDE / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(image)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def _views(image: RGBImage, side: Side) -> list[tuple[str, RGBImage, bool]]:
    """(label, pixels, whether to hash its mirror image too)."""
    if side == "reference":
        h, w = image.shape[:2]
        dy, dx = round(h * (1 - REFERENCE_CROP) / 2), round(w * (1 - REFERENCE_CROP) / 2)
        return [
            ("full", image, False),
            ("crop90", _contiguous(image[dy : h - dy, dx : w - dx]), False),
        ]
    out: list[tuple[str, RGBImage, bool]] = [("full", image, True)]
    band = [v for v in views(image, grids=(), centre=True) if v.label == "band16:9"]
    out += [(v.label, _contiguous(v.image), True) for v in band]
    for box in find_insets(image):
        inset = image[box.y : box.y + box.height, box.x : box.x + box.width]
        out.append((f"inset:{box.x},{box.y},{box.width},{box.height}", _contiguous(inset), True))
    return out


def _contiguous(image: RGBImage) -> RGBImage:
    return np.ascontiguousarray(image)


def find_insets(image: RGBImage, *, most: int = MAX_INSETS) -> list[Box]:
    """Large axis-aligned rectangles inside ``image``: where a picture-in-picture would be.

    An inset is pasted with hard, straight edges. Edge pixels that stay straight over a sixth
    of the frame are kept (an opening with a long thin kernel), their columns and rows are the
    candidate sides, and a pair of columns with a pair of rows is an inset when it covers 4 %
    to 60 % of the frame and three of its sides are 70 % drawn (a side on the frame's border
    counts as drawn); the best-drawn ones win. Scoring every
    pair at once with prefix sums keeps this to about a millisecond.
    """
    height, width = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    strong_x = (np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) > _EDGE).astype(np.uint8)
    strong_y = (np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) > _EDGE).astype(np.uint8)
    # A compressed edge wanders by a pixel: widen it across before asking it to be straight.
    gx = cv2.dilate(strong_x, np.ones((1, 3), np.uint8))
    gy = cv2.dilate(strong_y, np.ones((3, 1), np.uint8))
    vertical = cv2.morphologyEx(gx, cv2.MORPH_OPEN, np.ones((max(3, height // 6), 1), np.uint8))
    horizontal = cv2.morphologyEx(gy, cv2.MORPH_OPEN, np.ones((1, max(3, width // 6)), np.uint8))
    xs = _sides(vertical.sum(axis=0))
    ys = _sides(horizontal.sum(axis=1))
    if len(xs) < 2 or len(ys) < 2:
        return []
    # cover_v[y, i]: how many of rows 0..y-1 of column xs[i] are drawn (and the same across).
    cover_v = np.vstack([np.zeros((1, len(xs))), np.cumsum(vertical[:, xs] > 0, axis=0)])
    cover_h = np.hstack([np.zeros((len(ys), 1)), np.cumsum(horizontal[ys, :] > 0, axis=1)])
    found: list[tuple[float, Box]] = []
    for a, x1 in enumerate(xs):
        for b in range(a + 1, len(xs)):
            x2 = xs[b]
            for c, y1 in enumerate(ys):
                for d in range(c + 1, len(ys)):
                    y2 = ys[d]
                    w, h = x2 - x1, y2 - y1
                    area = w * h
                    if not 0.04 <= area / (height * width) <= 0.6 or not 0.3 <= w / h <= 3.0:
                        continue
                    cover = (
                        1.0 if x1 < 3 else (cover_v[y2, a] - cover_v[y1, a]) / h,
                        1.0 if x2 > width - 4 else (cover_v[y2, b] - cover_v[y1, b]) / h,
                        1.0 if y1 < 3 else (cover_h[c, x2] - cover_h[c, x1]) / w,
                        1.0 if y2 > height - 4 else (cover_h[d, x2] - cover_h[d, x1]) / w,
                    )
                    if sum(side >= 0.7 for side in cover) >= 3:
                        found.append((sum(cover), Box(x1 + 2, y1 + 2, w - 3, h - 3)))
    found.sort(key=lambda item: -item[0])
    kept: list[Box] = []
    for _, box in found:
        if len(kept) == most:
            break
        if all(_overlap(box, other) < 0.5 for other in kept):
            kept.append(box)
    return kept


def _sides(strength: npt.NDArray[np.int64], most: int = 12) -> list[int]:
    """The strongest ``most`` lines, one per run of neighbouring lines."""
    lines = np.flatnonzero(strength)
    groups = np.split(lines, np.flatnonzero(np.diff(lines) > 1) + 1) if len(lines) else []
    best = [int(g[np.argmax(strength[g])]) for g in groups if len(g)]
    best.sort(key=lambda i: -int(strength[i]))
    return sorted(best[:most])


def _overlap(a: Box, b: Box) -> float:
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / min(a.width * a.height, b.width * b.height)

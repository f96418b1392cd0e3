"""PDQ hashes of frames and of the parts of frames that re-uploads keep.

A global perceptual hash survives re-encoding but not a mirror, a crop to 9:16 or a picture
pasted small into another video (MODELS.md: PDQ misses a 10 % crop at distance 66). Each
side therefore hashes a few views instead of one:

- a reference frame: whole, and its centre 90 % (a cropped re-upload is the centre of the
  original, so the crop is met on the reference side, once, at build time);
- a query frame: whole and mirrored (one ``compute_dihedral`` call gives both for the price
  of one), plus, for a portrait frame, its middle 16:9 band (how apps reframe landscape
  clips); any picture-in-picture inset, found once per clip as the rectangle that comes back
  frame after frame; and, where a bar of text lies across the top or bottom, the frame with
  the text blanked and the frame without the bar (``insets``), each also mirrored. Every
  extra view is one more chance of a chance match, so they are made only where found, never
  on the reference side.

Cost: frames are downscaled to at most 512 px a side first (2.5 ms per PDQ hash instead of
26 ms at 720p, and the same on both sides, so distances do not change). A query frame costs
2 hashes, 2 more for a portrait band, for each inset (at most 2) and 4 more under a caption
bar; looking for insets and bars adds about 1.5 ms a frame. Measured by
``python -m bench.footage`` over its 135 query frames (the seven copies and the unrelated
clips) on the 2-core dev machine: 5.9 ms and 2.8 hashes per query frame.
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
from monitor.likeness.footage.insets import find_caption_bands, find_insets
from monitor.likeness.regions import views
from monitor.media.frames import Frame, RGBImage

__all__ = [
    "HASH_BYTES",
    "MATCH_DISTANCE",
    "MIN_QUALITY",
    "FrameHashes",
    "hash_frames",
]

HASH_BYTES = 32
MATCH_DISTANCE = 31
"""PDQ's own match rule: at most 31 of 256 bits differ (MODELS.md)."""
MIN_QUALITY = 50
"""Below this PDQ quality a frame is too flat (a fade, a title card) for its hash to mean much."""
HASH_SIDE = 512
REFERENCE_CROP = 0.9
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
    images = [_downscaled(frame.image) for frame in frames]
    # An inset stays put for the whole clip: looked for once, across all its frames.
    insets = find_insets(images) if side == "query" else []
    for position, image in enumerate(images):
        boxes = insets if image.shape == images[0].shape else []
        for label, view, mirrored in _views(image, side, boxes):
            if mirrored:
                hashes, qualities = pdqhash.compute_dihedral(view)
                pairs = [
                    (label, hashes[0], qualities),
                    (f"{label}:mirror", hashes[_MIRROR], qualities),
                ]
            else:
                bits, q = pdqhash.compute(view)
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


def _views(image: RGBImage, side: Side, insets: Sequence[Box]) -> list[tuple[str, RGBImage, bool]]:
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
    for box in insets:
        inset = image[box.y : box.y + box.height, box.x : box.x + box.width]
        out.append((f"inset:{box.x},{box.y},{box.width},{box.height}", _contiguous(inset), True))
    bars = find_caption_bands(image)
    if bars:
        # Laid over the picture: the text blanked out (a full-width band of one colour adds
        # nothing to a PDQ hash). Shrunk to make room for the bar: the rest of the frame.
        blank = image.copy()
        blank[: bars.top] = bars.colour
        blank[bars.bottom :] = bars.colour
        out.append(("caption:blank", blank, True))
        out.append(("caption:rest", _contiguous(image[bars.top : bars.bottom]), True))
    return out


def _contiguous(image: RGBImage) -> RGBImage:
    return np.ascontiguousarray(image)

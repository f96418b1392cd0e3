"""PDQ hashes of frames and of the parts of frames that re-uploads keep.

A global perceptual hash survives re-encoding but not a mirror, a crop to 9:16 or a picture
pasted small into another video (MODELS.md: PDQ misses a 10 % crop at distance 66), nor a
moving camera between two sampled frames (bikes.mp4 changes by 30 bits from one frame to the
next, median, and by 106 at the 90th percentile). So the two sides differ:

- reference footage is hashed at *every* frame (``hash_reference``), each view's hash kept
  only where it moved more than ``KEEP_BITS`` from the last one kept of that view: a still
  shot costs one hash, a moving one what it must. The views are the whole frame, its centre
  90 % (a cropped re-upload is the centre of the original), and for a landscape frame its
  middle 9:16 band (the portrait re-upload that crops to fill the screen). Hashed once, at
  build time; a mirrored copy is met on the query side, which mirrors for free.
- a query frame (a handful per clip) is hashed whole and mirrored (one ``compute_dihedral``
  call gives both for the price of one), plus, for a portrait frame, its middle 16:9 band and
  the landscape picture found centred in it (letterbox bars or a blurred copy around it); any
  picture-in-picture inset, found once per clip as the rectangle that comes back frame after
  frame; and, where a bar of text lies across the top or bottom, the frame with the text
  blanked and the frame without the bar (``insets``), each also mirrored. Every extra view is
  one more chance of a chance match, so they are made only where found.

Cost: frames are downscaled to at most 512 px a side first (2.5 ms per PDQ hash instead of
26 ms at 720p, and the same on both sides, so distances do not change). ``bench.footage``
prints the query side's cost per frame and the reference side's per hour of footage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import pdqhash

from monitor.likeness.embedders.base import Box
from monitor.likeness.footage.insets import find_caption_bands, find_insets, find_picture_band
from monitor.likeness.regions import views
from monitor.media.frames import Frame, RGBImage

__all__ = [
    "HASH_BYTES",
    "KEEP_BITS",
    "MATCH_DISTANCE",
    "MIN_QUALITY",
    "REFERENCE_HASHING",
    "FrameHashes",
    "HashedFootage",
    "hash_frame",
    "hash_query",
    "hash_reference",
]

HASH_BYTES = 32
MATCH_DISTANCE = 31
"""PDQ's own match rule: at most 31 of 256 bits differ (MODELS.md)."""
MIN_QUALITY = 50
"""Below this PDQ quality a frame is too flat (a fade, a title card) for its hash to mean much."""
KEEP_BITS = 8
"""A reference view's hash is kept only when more than this many bits from the last one kept
of that view: what re-encoding alone moves a frame (90th percentile of a 300 kb/s re-encode,
``bench.footage``), so a change no upload could preserve costs nothing."""
HASH_SIDE = 512
REFERENCE_CROP = 0.9
PORTRAIT_BAND = 9 / 16
"""Width over height of the band kept of a landscape reference frame: a phone screen."""
REFERENCE_HASHING = f"pdq/every-frame/keep{KEEP_BITS}/full,crop90,band9:16"
"""Names how reference footage is hashed: a gallery built another way is rebuilt."""
_MIRROR = 5  # the left-right flip among compute_dihedral's eight hashes


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


def hash_query(frames: Sequence[Frame]) -> FrameHashes:
    """Every query view of every frame of a clip hashed, in frame order."""
    rows: list[npt.NDArray[np.uint8]] = []
    quality: list[int] = []
    owners: list[int] = []
    labels: list[str] = []
    images = [_downscaled(frame.image) for frame in frames]
    # An inset stays put for the whole clip: looked for once, across all its frames.
    insets = find_insets(images)
    picture = find_picture_band(images)
    for position, image in enumerate(images):
        same = image.shape == images[0].shape
        boxes = insets if same else []
        for label, view, mirrored in _views(image, boxes, picture if same else None):
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


@dataclass(frozen=True)
class HashedFootage:
    """Kept hashes of a piece of footage: row ``i`` of ``hashes`` is of the frame at
    ``times[hashes.frames[i]]`` (only frames with a kept hash have a time); ``duration`` and
    ``frames`` are the footage's own, kept hashes or not."""

    hashes: FrameHashes
    times: list[float]
    duration: float
    frames: int


class _ReferenceHasher:
    """Reference footage hashed frame by frame as it streams, each view's hash kept only
    where it moved more than ``KEEP_BITS`` since the last one kept of that view."""

    def __init__(self, keep_bits: int = KEEP_BITS) -> None:
        self._keep_bits = keep_bits
        self._last: dict[str, npt.NDArray[np.uint8]] = {}
        self._rows: list[npt.NDArray[np.uint8]] = []
        self._quality: list[int] = []
        self._frames: list[int] = []
        self._views: list[str] = []
        self._times: list[float] = []
        self._seen = 0
        self._end = 0.0

    def add(self, frame: Frame) -> None:
        self._seen += 1
        self._end = frame.time
        kept = False
        for label, view in _reference_views(_downscaled(frame.image)):
            bits, quality = pdqhash.compute(view)
            if quality < MIN_QUALITY:
                continue  # a fade or a title card: nothing to match, nothing to move from
            row = np.packbits(np.asarray(bits, np.uint8))
            last = self._last.get(label)
            if last is not None and _bits_apart(row, last) <= self._keep_bits:
                continue
            self._last[label] = row
            self._rows.append(row)
            self._quality.append(int(quality))
            self._frames.append(len(self._times))
            self._views.append(label)
            kept = True
        if kept:
            self._times.append(frame.time)

    def result(self) -> HashedFootage:
        """What was kept; the duration is the last frame's time plus one frame period."""
        return HashedFootage(
            hashes=FrameHashes(
                hashes=np.stack(self._rows) if self._rows else np.zeros((0, HASH_BYTES), np.uint8),
                quality=np.asarray(self._quality, np.uint8),
                frames=np.asarray(self._frames, np.int32),
                views=tuple(self._views),
            ),
            times=list(self._times),
            duration=self._end + self._end / max(self._seen - 1, 1),
            frames=self._seen,
        )


def hash_reference(frames: Iterable[Frame], keep_bits: int = KEEP_BITS) -> HashedFootage:
    """``frames`` hashed as they stream, each view's hash kept only where it moved more than
    ``keep_bits`` since the last one kept of that view."""
    hasher = _ReferenceHasher(keep_bits)
    for frame in frames:
        hasher.add(frame)
    return hasher.result()


def hash_frame(image: RGBImage) -> tuple[npt.NDArray[np.uint8], int]:
    """The PDQ hash (32 bytes) and quality of a whole frame, downscaled as every view is."""
    bits, quality = pdqhash.compute(_downscaled(image))
    return np.packbits(np.asarray(bits, np.uint8)), int(quality)


def _bits_apart(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> int:
    return int(np.bitwise_count(np.bitwise_xor(a, b)).sum())


def _downscaled(image: RGBImage) -> RGBImage:
    height, width = image.shape[:2]
    scale = HASH_SIDE / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(image)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def _reference_views(image: RGBImage) -> list[tuple[str, RGBImage]]:
    h, w = image.shape[:2]
    dy, dx = round(h * (1 - REFERENCE_CROP) / 2), round(w * (1 - REFERENCE_CROP) / 2)
    out = [("full", image), ("crop90", _contiguous(image[dy : h - dy, dx : w - dx]))]
    band = round(h * PORTRAIT_BAND)
    if w >= 1.25 * band:  # narrower frames are nearly the band already
        left = (w - band) // 2
        out.append(("band9:16", _contiguous(image[:, left : left + band])))
    return out


def _views(
    image: RGBImage, insets: Sequence[Box], picture: tuple[int, int] | None
) -> list[tuple[str, RGBImage, bool]]:
    """A query frame's (label, pixels, whether to hash its mirror image too)."""
    out: list[tuple[str, RGBImage, bool]] = [("full", image, True)]
    band = [v for v in views(image, grids=(), centre=True) if v.label == "band16:9"]
    out += [(v.label, _contiguous(v.image), True) for v in band]
    if picture is not None:
        top, bottom = picture
        out.append((f"picture:{top},{bottom}", _contiguous(image[top:bottom]), True))
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

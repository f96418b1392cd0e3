"""Where a re-upload keeps the original inside a frame of its own: an inset, a caption band.

A picture pasted small into another video, or a frame with a bar of text laid over it, hashes
nothing like the original; the part of the frame that still is the original does, once found.

Picture-in-picture: an inset is pasted with hard, straight edges that stay put while the
pictures on both sides of them change. In one frame its edges are often broken (where inset
and background happen to be alike) and other boxes pass for it (a horizon across the inset
cuts off a smaller one), but the same box comes back frame after frame while the others
come and go; so each frame is searched on its own and the boxes found again and again win.
Their sides are then put on the exact pixel where the picture changes, because PDQ is
sensitive to a misplaced crop: two pixels off on a 256-pixel inset cost about 8 bits of
the 31 that may differ.

Caption band: a full-width bar of one colour at the top or bottom of the frame, with text on
it. Laid over the picture, it hides that part of the original for good; but PDQ leaves out
the DCT's zero frequencies, so a full-width band of one colour adds nothing to the hash,
whatever the colour: blanking the text leaves the hash of the original with only the hidden
strip missing. Where the picture was instead shrunk to make room for the bar, the rest of
the frame is the original whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from monitor.likeness.embedders.base import Box
from monitor.media.frames import RGBImage

__all__ = ["MAX_INSETS", "CaptionBands", "find_caption_bands", "find_insets", "find_picture_band"]

MAX_INSETS = 2
_EDGE = 40.0  # Sobel magnitude of a hard edge between two pictures
_DRAWN = 0.75  # share of a side that must be drawn
_FOURTH = 0.3  # share of the fourth side that must be drawn, if not on the border
_INSET_AREA = (0.04, 0.6)  # of the frame
_INSET_ASPECT = (0.3, 3.0)  # width over height
_BORDER = 3  # a side this close to the frame's border is the border
_RUN = 6  # an edge must run straight for this fraction of the frame's side
_SEARCH_SIDE = 512  # frames are searched at this size, sides placed at full size
_SLACK = 2  # boxes in two frames whose corners are this close are one box
_REFINE = 3  # pixels either way that a side's exact position is looked for

_BAND_TOLERANCE = 24  # per channel, from the band's colour, after compression
_BAND_ROW = 0.55  # share of a row in the band's colour for the row to be part of the band
_BAND_HEIGHT = (0.04, 0.35)  # of the frame
_BAND_TEXT = 0.97  # a band whose every row is more solid than this carries no text
_PORTRAIT = 1.2  # height over width from which a frame is a portrait canvas
_STEP = 10  # grey levels between neighbouring rows that make a step in the picture
_PICTURE_EDGE = 0.5  # share of a row's columns stepping, both sides, averaged over frames


def find_insets(images: Sequence[RGBImage], *, most: int = MAX_INSETS) -> list[Box]:
    """Large axis-aligned rectangles in ``images`` (frames of one clip, in order; those not
    of the first frame's size are left out): where a picture-in-picture is.

    Each frame is searched for boxes on its own (at most 512 pixels a side); a box found
    again, to within a few pixels, in more frames wins, the larger of two found as often
    wins, and a clip of several frames keeps only boxes found at least twice. Boxes are in
    the pixels of ``images``. About 1.5 ms a frame at 512 x 288.
    """
    if not images:
        return []
    height, width = images[0].shape[:2]
    frames = [image for image in images if image.shape[:2] == (height, width)]
    scale = min(1.0, _SEARCH_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    greys = [np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), np.uint8) for frame in frames]
    if scale < 1.0:
        greys = [
            np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), np.uint8)
            for grey in greys
        ]
    seen: list[Box] = []
    found_in: list[set[int]] = []  # the frames that each box of seen was found in
    corners = np.zeros((0, 4), np.int64)
    for number, picture in enumerate(greys):
        for box in _boxes(*_straight_edges(picture)):
            corner = np.asarray([box.x, box.y, box.x + box.width, box.y + box.height])
            near = np.flatnonzero(np.abs(corners - corner).max(axis=1) <= _SLACK)
            if len(near):
                found_in[int(near[0])].add(number)
            else:
                seen.append(box)
                found_in.append({number})
                corners = np.vstack([corners, corner])
    least = 2 if len(frames) > 1 else 1
    ranked = sorted(
        (item for item in zip(seen, found_in, strict=True) if len(item[1]) >= least),
        key=lambda item: (-len(item[1]), -item[0].width * item[0].height),
    )
    kept: list[Box] = []
    for box, _ in ranked:
        if len(kept) == most:
            break
        if all(_overlap(box, other) < 0.5 for other in kept):
            kept.append(box)
    return [_refined(box, frames, 1 / scale) for box in kept]


def _straight_edges(
    grey: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Pixels of vertical and of horizontal edges that run straight for a sixth of the frame."""
    height, width = grey.shape
    strong = [
        (np.abs(cv2.Sobel(grey, cv2.CV_16S, dx, dy, ksize=3)) > _EDGE).astype(np.uint8)
        for dx, dy in ((1, 0), (0, 1))
    ]
    # A compressed edge wanders by a pixel: widen it across before asking it to be straight.
    gx = cv2.dilate(strong[0], np.ones((1, 3), np.uint8))
    gy = cv2.dilate(strong[1], np.ones((3, 1), np.uint8))
    vertical = cv2.morphologyEx(gx, cv2.MORPH_OPEN, np.ones((max(3, height // _RUN), 1), np.uint8))
    horizontal = cv2.morphologyEx(gy, cv2.MORPH_OPEN, np.ones((1, max(3, width // _RUN)), np.uint8))
    return np.asarray(vertical, np.uint8), np.asarray(horizontal, np.uint8)


def _boxes(
    vertical: npt.NDArray[np.uint8], horizontal: npt.NDArray[np.uint8], most: int = 24
) -> list[Box]:
    """The ``most`` best boxes of candidate sides (from side to side, exclusive).

    A pair of columns with a pair of rows is a box when it covers 4 % to 60 % of the frame,
    three of its sides are 75 % drawn and the fourth is a third drawn or lies on the frame's
    border; the more drawn, the better. Every pair is scored at once with prefix sums.
    """
    height, width = vertical.shape
    xs = np.asarray(_sides(vertical.sum(axis=0)), np.int64)
    ys = np.asarray(_sides(horizontal.sum(axis=1)), np.int64)
    if len(xs) < 2 or len(ys) < 2:
        return []
    # cover_v[y, i]: how many of rows 0..y-1 of column xs[i] are drawn (and the same across).
    column = np.stack([vertical[:, max(0, x - 1) : x + 2].any(axis=1) for x in xs], axis=1)
    row = np.stack([horizontal[max(0, y - 1) : y + 2, :].any(axis=0) for y in ys], axis=0)
    cover_v = np.vstack([np.zeros((1, len(xs))), np.cumsum(column, axis=0)])
    cover_h = np.hstack([np.zeros((len(ys), 1)), np.cumsum(row, axis=1)])
    a, b = (i[:, None] for i in np.triu_indices(len(xs), 1))  # column pairs down
    c, d = (i[None, :] for i in np.triu_indices(len(ys), 1))  # row pairs across
    x1, x2, y1, y2 = xs[a], xs[b], ys[c], ys[d]
    shape = (a.shape[0], c.shape[1])
    w, h = np.broadcast_to(x2 - x1, shape), np.broadcast_to(y2 - y1, shape)
    sides = np.stack(
        [
            np.where(x1 < _BORDER, 1.0, (cover_v[y2, a] - cover_v[y1, a]) / h),
            np.where(x2 >= width - _BORDER, 1.0, (cover_v[y2, b] - cover_v[y1, b]) / h),
            np.where(y1 < _BORDER, 1.0, (cover_h[c, x2] - cover_h[c, x1]) / w),
            np.where(y2 >= height - _BORDER, 1.0, (cover_h[d, x2] - cover_h[d, x1]) / w),
        ]
    )
    border = (x1 < _BORDER).astype(int) + (x2 >= width - _BORDER) + (y1 < _BORDER)
    border = border + (y2 >= height - _BORDER)
    area = w * h / (height * width)
    good = (
        (area >= _INSET_AREA[0])
        & (area <= _INSET_AREA[1])
        & (w >= _INSET_ASPECT[0] * h)
        & (w <= _INSET_ASPECT[1] * h)
        & (border <= 1)
        & ((sides >= _DRAWN).sum(axis=0) >= 3)
        & (sides.min(axis=0) >= _FOURTH)
    )
    score = np.where(good, sides.sum(axis=0), -1.0)
    order = np.argsort(-score, axis=None)[:most]
    rows, cols = np.unravel_index(order, score.shape)
    return [
        Box(int(x1[i, 0]), int(y1[0, j]), int(w[i, j]), int(h[i, j]))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
        if good[i, j]
    ]


def _sides(strength: npt.NDArray[np.int64], most: int = 12) -> list[int]:
    """The strongest ``most`` lines, one per run of neighbouring lines."""
    lines = np.flatnonzero(strength)
    groups = np.split(lines, np.flatnonzero(np.diff(lines) > 1) + 1) if len(lines) else []
    best = [int(g[np.argmax(strength[g])]) for g in groups if len(g)]
    best.sort(key=lambda i: -int(strength[i]))
    return sorted(best[:most])


def _refined(box: Box, frames: Sequence[RGBImage], scale: float) -> Box:
    """``box``, found at ``1 / scale`` of the frames' size, on the frames themselves, each
    side moved onto the strongest step in brightness along it (summed over the frames): the
    first pixel of the inset, or the first one past it."""
    height, width = frames[0].shape[:2]
    x1, y1 = round(box.x * scale), round(box.y * scale)
    x2 = min(width, round((box.x + box.width) * scale))
    y2 = min(height, round((box.y + box.height) * scale))
    reach = _REFINE + math.ceil(scale)
    across = np.zeros(width + 1, np.float32)  # across[x]: how much brightness changes at x
    down = np.zeros(height + 1, np.float32)
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        across[1:width] += np.abs(np.diff(grey[y1:y2], axis=1)).sum(axis=0)
        down[1:height] += np.abs(np.diff(grey[:, x1:x2], axis=0)).sum(axis=1)

    def best(profile: npt.NDArray[np.float32], at: int, limit: int) -> int:
        if at < _BORDER * scale or at > limit - _BORDER * scale:
            return at  # on the frame's border
        start, stop = max(1, at - reach), min(limit, at + reach + 1)
        return start + int(np.argmax(profile[start:stop]))

    nx1, nx2 = best(across, x1, width), best(across, x2, width)
    ny1, ny2 = best(down, y1, height), best(down, y2, height)
    if nx2 - nx1 < 8 or ny2 - ny1 < 8:
        return Box(x1, y1, x2 - x1, y2 - y1)
    return Box(nx1, ny1, nx2 - nx1, ny2 - ny1)


def _overlap(a: Box, b: Box) -> float:
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / min(a.width * a.height, b.width * b.height)


@dataclass(frozen=True)
class CaptionBands:
    """Rows ``0..top`` and ``bottom..height`` are bars of text; either may be empty."""

    top: int
    bottom: int
    height: int
    colour: tuple[int, int, int]

    def __bool__(self) -> bool:
        return self.top > 0 or self.bottom < self.height


def find_caption_bands(image: RGBImage) -> CaptionBands:
    """Full-width bars of one colour with text on them, at the top and bottom of ``image``.

    A bar starts at the frame's edge with a row of one colour and goes on while rows are
    mostly that colour (rows through the text are less so), over 4 % to 35 % of the frame's
    height; one whose rows are all plain is a letterbox, not a caption, and is left alone.
    """
    height = image.shape[0]
    top, top_colour = _band(image)
    size, bottom_colour = _band(image[::-1])
    colour = top_colour if top else bottom_colour
    return CaptionBands(top=top, bottom=height - size, height=height, colour=colour)


def _band(image: RGBImage) -> tuple[int, tuple[int, int, int]]:
    """How many rows from the top of ``image`` are a bar of text, and the bar's colour."""
    height = image.shape[0]
    reach = int(height * _BAND_HEIGHT[1]) + 1
    plain = (0, 0, 0)
    colour = np.median(image[0], axis=0)
    low = np.clip(colour - _BAND_TOLERANCE, 0, 255)
    high = np.clip(colour + _BAND_TOLERANCE, 0, 255)
    if cv2.inRange(np.ascontiguousarray(image[:1]), low, high).mean() < 0.9 * 255:
        return 0, plain  # no bar starts at this edge
    near = cv2.inRange(np.ascontiguousarray(image[:reach]), low, high)
    solid = near.mean(axis=1) / 255
    gap = max(3, round(height * 0.04))
    last, misses = 0, 0
    for r in range(reach):
        if solid[r] >= _BAND_ROW:
            last, misses = r, 0
        else:
            misses += 1
            if misses > gap:
                break
    else:
        return 0, plain  # one colour further than any bar: a dark or flat frame
    size = last + 1
    if size < _BAND_HEIGHT[0] * height or solid[:size].min() > _BAND_TEXT:
        return 0, plain
    r, g, b = (int(c) for c in colour)
    return size, (r, g, b)


def find_picture_band(frames: Sequence[RGBImage]) -> tuple[int, int] | None:
    """Rows ``top..bottom`` of a landscape picture centred in portrait frames, or None.

    Apps reframe a wide clip for a phone screen by centring it on a 9:16 canvas, over black
    bars or a blurred copy of itself; the picture's aspect (16:9, 2.39:1, ...) is the
    clip's, so it is found rather than assumed: the pair of rows, equally far above and below
    the middle, where most columns step in brightness in most frames.
    """
    height, width = frames[0].shape[:2]
    if height < _PORTRAIT * width:
        return None
    steps = np.zeros(height, np.float64)  # steps[y]: share of columns stepping between y-1, y
    count = 0
    for frame in frames:
        if frame.shape != frames[0].shape:
            continue
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.int16)
        steps[1:] += (np.abs(np.diff(grey, axis=0)) > _STEP).mean(axis=1)
        count += 1
    steps /= max(count, 1)
    near = np.maximum(steps, np.maximum(np.roll(steps, 1), np.roll(steps, -1)))
    middle = height // 2
    reach = np.arange(round(0.1 * height), round(0.45 * height))
    both = np.minimum(near[middle - reach], near[middle + reach])
    best = int(np.argmax(both))
    if both[best] < _PICTURE_EDGE:
        return None
    return int(middle - reach[best]), int(middle + reach[best])

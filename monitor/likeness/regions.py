"""Views of a frame: the whole picture plus crops of it at several scales.

A global embedding of a frame is dominated by whatever fills most of it, so a protected character
standing small in a large scene scores like the scene, not like the character. Embedding crops as
well (a 2x2 and a 3x3 grid, the centre) gives the character a view in which it fills a good part of
the picture; the score of a frame is then the best of its views. Crops are numpy slices of the
frame, so making them costs nothing until they are resized for a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.likeness.embedders.base import Box
from monitor.media.frames import RGBImage

__all__ = ["DEFAULT_GRIDS", "View", "views"]

DEFAULT_GRIDS: tuple[int, ...] = (2, 3)
"""The grids used unless configured otherwise: 1 + 4 + 9 (+ centre) = 15 views per frame."""


@dataclass(frozen=True, slots=True)
class View:
    """A part of a frame: its pixels (a slice, not a copy), where it lies, and a stable label.

    Labels are ``full``, ``centre`` and ``grid{n}:r{row}c{col}``, so that evidence can say which
    part of which frame matched.
    """

    image: RGBImage
    box: Box
    label: str


def views(
    image: RGBImage,
    *,
    grids: Sequence[int] = DEFAULT_GRIDS,
    centre: bool = True,
    overlap: float = 0.0,
    min_side: int = 48,
) -> list[View]:
    """The whole ``image`` first, then each ``n x n`` grid of ``grids``, then the centre half
    (and, for a portrait frame, its middle 16:9 band).

    ``overlap`` (0 <= overlap < 1) is the fraction of a window that its neighbour shares: with
    0.5, a grid of 3 is three windows of half the side, at steps of a quarter. Windows whose
    shorter side would be under ``min_side`` pixels are left out: too small for a model to see
    anything a larger view does not.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (height, width, 3) image, got shape {image.shape}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    height, width = int(image.shape[0]), int(image.shape[1])
    out = [View(image, Box(0, 0, width, height), "full")]
    for n in grids:
        if n < 2:
            raise ValueError(f"a grid needs at least 2 cells a side, got {n}")
        xs = _windows(width, n, overlap)
        ys = _windows(height, n, overlap)
        for row, (y, h) in enumerate(ys):
            for col, (x, w) in enumerate(xs):
                if min(w, h) < min_side:
                    continue
                out.append(
                    View(image[y : y + h, x : x + w], Box(x, y, w, h), f"grid{n}:r{row}c{col}")
                )
    if centre:
        w, h = width // 2, height // 2
        if min(w, h) >= min_side:
            x, y = (width - w) // 2, (height - h) // 2
            out.append(View(image[y : y + h, x : x + w], Box(x, y, w, h), "centre"))
        band = _landscape_band(image)
        if band is not None:
            out.append(band)
    return out


def _landscape_band(image: RGBImage) -> View | None:
    """For a portrait frame, its centred full-width 16:9 band.

    Reframing a landscape clip for a vertical feed puts the original picture in a band across
    the middle, between bars of blur or colour; no grid cell holds that band whole.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    band = round(width * 9 / 16)
    if height < width * 1.25:
        return None
    y = (height - band) // 2
    return View(image[y : y + band], Box(0, y, width, band), "band16:9")


def _windows(length: int, n: int, overlap: float) -> list[tuple[int, int]]:
    """``n`` (start, size) windows covering ``0..length``, neighbours sharing ``overlap``."""
    size = length / (1.0 + (n - 1) * (1.0 - overlap))
    step = size * (1.0 - overlap)
    out = []
    for i in range(n):
        start = round(i * step)
        end = length if i == n - 1 else round(i * step + size)
        out.append((start, end - start))
    return out

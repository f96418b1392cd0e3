"""Bounds on what one piece of media may cost to turn into frames.

A monitor decodes files that strangers uploaded. Without bounds a single hostile or merely
huge file (a ten-hour stream, a 30,000-pixel-wide PNG, a file that decodes very slowly) could
stall a scorer or exhaust its memory, so every decode runs under one ``DecodeLimits``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from monitor.errors import (
    DecodeTimeoutError,
    EmptyMediaError,
    MediaTooLargeError,
    UnreadableMediaError,
)

__all__ = ["DEFAULT_LIMITS", "Deadline", "DecodeLimits", "check_file", "fit_within"]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Limits applied by ``decode_clip``, ``load_image`` and ``load_media``.

    - ``max_bytes``: a larger file is refused with ``MediaTooLargeError`` before it is opened.
    - ``max_duration_s``: a longer clip is *not* an error; it is sampled over its first
      ``max_duration_s`` seconds only (uploads that matter show their subject early, and the
      rest would cost decode time without bounding it).
    - ``max_pixels``: larger frames and images are downscaled, keeping their aspect ratio, to
      fit. A stream or image that declares more than ``BOMB_FACTOR`` times this many pixels
      is refused with ``MediaTooLargeError``: decoding it would allocate far more memory than
      any real upload needs (a decompression bomb). An image is decoded at a reduced size
      where its format allows (a JPEG at 1/2 to 1/8); one that would still decode to more
      than ``DECODE_FACTOR`` times ``max_pixels`` is refused too, whatever it will be
      resized to: a 16 KB one-bit PNG of 11,500 x 11,500 pixels would otherwise cost 0.8 GB.
    - ``max_frames``: at most this many frames come back from one clip.
    - ``timeout_s``: decoding that takes longer raises ``DecodeTimeoutError``. It is checked
      between packets and frames, so a single pathological packet can overrun it.
    """

    BOMB_FACTOR: ClassVar[int] = 64
    DECODE_FACTOR: ClassVar[int] = 16

    max_bytes: int = 512 * 1024 * 1024
    max_duration_s: float = 600.0
    max_pixels: int = 1920 * 1080
    max_frames: int = 16
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_duration_s", "max_pixels", "max_frames"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DecodeLimits.{name} must be positive")
        if self.timeout_s < 0:
            raise ValueError("DecodeLimits.timeout_s must not be negative")

    @property
    def max_declared_pixels(self) -> int:
        """Above this many pixels a frame is refused rather than downscaled."""
        return self.max_pixels * self.BOMB_FACTOR

    @property
    def max_decoded_pixels(self) -> int:
        """The most pixels an image may be decoded at before it is downscaled (an 8K
        picture, for the default ``max_pixels``)."""
        return self.max_pixels * self.DECODE_FACTOR


DEFAULT_LIMITS = DecodeLimits()


def check_file(path: Path, limits: DecodeLimits) -> int:
    """Refuse a file that is missing, empty or over ``max_bytes``; return its size."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableMediaError(f"cannot read the file ({exc.strerror})", source=path) from exc
    if not path.is_file():
        raise UnreadableMediaError("is not a regular file", source=path)
    if size == 0:
        raise EmptyMediaError("the file is empty (0 bytes)", source=path)
    if size > limits.max_bytes:
        raise MediaTooLargeError(
            f"the file has {size:,} bytes, over the limit of {limits.max_bytes:,}", source=path
        )
    return size


def fit_within(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio as ``width`` x ``height`` and at most
    ``max_pixels`` pixels (the size itself when it already fits)."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


class Deadline:
    """The moment a decode must give up, checked between units of work."""

    __slots__ = ("_end", "_source", "_timeout_s")

    def __init__(self, timeout_s: float, source: Path) -> None:
        self._timeout_s = timeout_s
        self._source = source
        self._end = time.monotonic() + timeout_s

    def check(self) -> None:
        """Raise ``DecodeTimeoutError`` once the time is up."""
        if time.monotonic() >= self._end:
            raise DecodeTimeoutError(
                f"decoding took longer than the limit of {self._timeout_s:g} s", source=self._source
            )

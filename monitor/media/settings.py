"""What one clip may cost to decode, as settings (``monitor.config`` composes them).

Kept beside the decoder rather than in ``monitor.config`` so that ``media`` and ``likeness``
are libraries that know nothing of how the monitor is configured. Like every settings group,
its validation errors never quote what they were given (settings carry secrets elsewhere and
pydantic quotes the whole input of a model).
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from monitor.media.limits import DecodeLimits

__all__ = ["DecodeSettings"]


class DecodeSettings(BaseModel):
    """Bounds on what one clip may cost to decode."""

    model_config = ConfigDict(hide_input_in_errors=True)

    max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_duration_s: float = Field(default=600.0, gt=0)
    max_pixels: int = Field(default=1920 * 1080, gt=0)
    max_frames: int = Field(default=16, gt=0)
    even_frames: int = Field(default=8, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)
    fingerprint_max_frames: int = Field(
        default=3000,
        gt=0,
        description="frames of a flagged clip hashed for its fingerprint (every frame, from the "
        "start: 3000 is 100 s at 30 fps, about 25 s of one core)",
    )

    @property
    def fingerprint_limits(self) -> DecodeLimits:
        """An upload's bounds, but every frame up to ``fingerprint_max_frames``."""
        return replace(self.limits, max_frames=self.fingerprint_max_frames)

    @property
    def limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_bytes=self.max_bytes,
            max_duration_s=self.max_duration_s,
            max_pixels=self.max_pixels,
            max_frames=self.max_frames,
            timeout_s=self.timeout_s,
        )

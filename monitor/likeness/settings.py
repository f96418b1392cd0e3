"""Which models score, on which device, and the scoring rules' knobs, as settings.

The likeness library takes these, not the monitor's whole configuration: ``monitor.config``
composes them under ``likeness``, and the library imports nothing above itself. Like every
settings group, its validation errors never quote what they were given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LikenessSettings"]


class LikenessSettings(BaseModel):
    """Which models score, on which device, and how frames are cut into regions."""

    model_config = ConfigDict(hide_input_in_errors=True)

    device: str | None = None
    visual_embedder: str = "efficientnet-lite0"
    visual_weights: Path | None = None
    visual_runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        default="auto",
        description="what runs the bundled visual model: auto is ONNX Runtime on a CPU (the "
        "same features, about 3x as fast) and torch on a GPU",
    )
    visual_precision: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32",
        description="the bundled visual model's arithmetic on torch: a 16-bit autocast (for a "
        "GPU's tensor cores) is recorded in the model's name, so the gallery is built with it",
    )
    face_score_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    min_face_px: int = Field(default=24, ge=8)
    region_grids: tuple[int, ...] = (2, 3)
    region_centre: bool = True
    batch_size: int = Field(default=32, gt=0)
    target_fpr: float = Field(default=0.01, gt=0.0, lt=1.0)
    footage_match_share: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="share of a clip's frames that must match one "
        "reference clip, in temporal order, for a known-footage match",
    )
    footage_max_seconds: float = Field(
        default=4 * 3600.0, gt=0.0, description="reference footage hashed up to this long"
    )
    footage_max_frames: int = Field(
        default=500_000, gt=0, description="reference footage frames hashed, at most"
    )
    footage_timeout_s: float = Field(
        default=4 * 3600.0, gt=0, description="time one reference file may take to hash"
    )
    caption_margin: float = Field(
        default=0.05,
        ge=0.0,
        description="how far below its threshold a score may be and still flag when the "
        "caption names the entity; the caption never flags alone",
    )

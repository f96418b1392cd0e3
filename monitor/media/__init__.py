"""Media in, frames out: bounded decoding of clips and images from untrusted uploads.

``load_media`` takes any upload; ``decode_clip`` and ``load_image`` are for callers that
already know which they hold. All of them raise only ``monitor.errors.MediaError`` types.
"""

from __future__ import annotations

from monitor.media.decode import decode_clip, decode_every_frame
from monitor.media.frames import Frame, RGBImage
from monitor.media.images import IMAGE_FORMATS, load_every_frame, load_image, load_media
from monitor.media.limits import DEFAULT_LIMITS, DecodeLimits

__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_FORMATS",
    "DecodeLimits",
    "Frame",
    "RGBImage",
    "decode_clip",
    "decode_every_frame",
    "load_every_frame",
    "load_image",
    "load_media",
]

"""The unit that flows from decoding into the likeness engine: one RGB picture and its time.

Images and clips both become frames, so the engine never asks where a picture came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Frame", "RGBImage"]

RGBImage = npt.NDArray[np.uint8]
"""An ``(height, width, 3)`` uint8 array in RGB order."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture.

    ``time`` is seconds from the start of the clip (0.0 for a still image); ``keyframe`` says
    whether the codec stored it as a keyframe, which is where scene content tends to change.
    """

    image: RGBImage
    time: float = 0.0
    index: int = 0
    keyframe: bool = False

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

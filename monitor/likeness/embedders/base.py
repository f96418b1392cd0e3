"""The seams where models plug in.

Scoring only ever talks to these abstract classes, so a rights team with a stronger backbone
(open_clip, DINOv2, a TorchScript file of their own) swaps it in through configuration and the
gallery, scoring and evaluation code does not change. Every implementation takes a batch, runs
on the device it was built for (``cuda`` when present, else the CPU) under
``torch.inference_mode()``, and returns L2-normalised float32 rows so that a dot product is a
cosine similarity.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.media.frames import RGBImage

__all__ = [
    "Box",
    "DetectedFace",
    "Embeddings",
    "FaceDetector",
    "FaceEmbedder",
    "ImageEmbedder",
    "default_device",
]

Embeddings = npt.NDArray[np.float32]
"""``(n, dim)`` float32, each row L2-normalised."""


def default_device() -> str:
    """``cuda`` when a GPU is visible to torch, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in pixel coordinates of the frame it was found in."""

    x: int
    y: int
    width: int
    height: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """A face found in a frame: its box, detector confidence and five landmarks.

    ``landmarks`` is ``(5, 2)`` float32 in frame pixels: right eye, left eye, nose tip, right and
    left mouth corners (YuNet's order), used to align the crop before embedding.
    """

    box: Box
    score: float
    landmarks: npt.NDArray[np.float32]


class ImageEmbedder(ABC):
    """Maps whole pictures (frames, or regions cut from them) to visual embeddings."""

    #: Short stable name, recorded in the gallery so a mismatched scorer is detected.
    name: str
    dim: int

    @abstractmethod
    def embed(self, images: Sequence[RGBImage]) -> Embeddings:
        """Embed a batch of RGB images of any sizes; returns ``(len(images), dim)``."""


class FaceDetector(ABC):
    """Finds faces in a picture."""

    name: str

    @abstractmethod
    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """All faces above the detector's confidence cut, largest first."""


class FaceEmbedder(ABC):
    """Maps detected faces to identity embeddings (same person -> high cosine)."""

    name: str
    dim: int

    @abstractmethod
    def embed_many(self, items: Sequence[tuple[RGBImage, DetectedFace]]) -> Embeddings:
        """Align and embed faces from any number of pictures in one batched pass.

        Returns ``(len(items), dim)``; the scorer gathers faces from every frame of every clip
        in a batch and calls this once.
        """

    def embed_faces(self, image: RGBImage, faces: Sequence[DetectedFace]) -> Embeddings:
        """Align and embed each face of one picture; returns ``(len(faces), dim)``."""
        return self.embed_many([(image, face) for face in faces])

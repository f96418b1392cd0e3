"""Frames in, embeddings out: the one path that references, negatives and queries all take.

Enrolling a reference, calibrating on a negative and scoring a clip must see pictures the
same way, or thresholds learnt on one do not hold for the other; so all three call these
functions. Work is gathered across every frame first and embedded in one batched call per
model, which is what keeps a GPU busy and a CPU's per-call overhead low.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.likeness.embedders.base import Box, DetectedFace, Embeddings
from monitor.likeness.models import Models
from monitor.likeness.regions import views
from monitor.likeness.settings import LikenessSettings
from monitor.media.frames import Frame, RGBImage

__all__ = ["FaceFeatures", "VisualFeatures", "extract_faces", "extract_visual"]


@dataclass(frozen=True)
class FaceFeatures:
    """Every face found: row ``i`` of ``embeddings`` came from ``frames[i]`` at ``boxes[i]``."""

    embeddings: Embeddings
    frames: npt.NDArray[np.int32]
    boxes: tuple[Box, ...]
    detector_scores: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class VisualFeatures:
    """Every view embedded: row ``i`` is view ``labels[i]`` (``boxes[i]``) of ``frames[i]``."""

    embeddings: Embeddings
    frames: npt.NDArray[np.int32]
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.boxes)


def extract_faces(models: Models, frames: Sequence[Frame]) -> FaceFeatures:
    items: list[tuple[RGBImage, DetectedFace]] = []
    owners: list[int] = []
    for position, frame in enumerate(frames):
        for face in models.face_detector.detect(frame.image):
            items.append((frame.image, face))
            owners.append(position)
    dim = models.face_embedder.dim
    embeddings = models.face_embedder.embed_many(items) if items else np.zeros((0, dim), np.float32)
    return FaceFeatures(
        embeddings=embeddings,
        frames=np.asarray(owners, dtype=np.int32),
        boxes=tuple(face.box for _, face in items),
        detector_scores=tuple(face.score for _, face in items),
    )


def extract_visual(
    models: Models,
    frames: Sequence[Frame],
    settings: LikenessSettings,
    *,
    regions: bool = True,
) -> VisualFeatures:
    """Whole frames, and with ``regions`` the grid and centre crops of each as well."""
    images: list[RGBImage] = []
    owners: list[int] = []
    boxes: list[Box] = []
    labels: list[str] = []
    for position, frame in enumerate(frames):
        cuts = (
            views(frame.image, grids=settings.region_grids, centre=settings.region_centre)
            if regions
            else views(frame.image, grids=(), centre=False)
        )
        for view in cuts:
            images.append(view.image)
            owners.append(position)
            boxes.append(view.box)
            labels.append(view.label)
    dim = models.image_embedder.dim
    embeddings = models.image_embedder.embed(images) if images else np.zeros((0, dim), np.float32)
    return VisualFeatures(
        embeddings=embeddings,
        frames=np.asarray(owners, dtype=np.int32),
        boxes=tuple(boxes),
        labels=tuple(labels),
    )

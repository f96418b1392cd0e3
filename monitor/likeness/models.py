"""The set of models one scorer uses, loaded from the verified cache and never downloaded.

A gallery records the names of the models that embedded it; a scorer whose models differ
would compare vectors from different spaces, so ``versions`` is checked before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.assets import cache_dir, ensure
from monitor.likeness.embedders.base import (
    FaceDetector,
    FaceEmbedder,
    ImageEmbedder,
    default_device,
)
from monitor.likeness.settings import LikenessSettings

if TYPE_CHECKING:
    from monitor.likeness.embedders.text import SentenceEmbedder
from monitor.likeness.weights import BUNDLED_WEIGHTS, cached_path

__all__ = ["Models", "prepare_weights"]


def _facenet_safetensors(root: Path | None = None) -> Path:
    from monitor.likeness.embedders.facenet_convert import ensure_converted

    return ensure_converted(
        cached_path("facenet-keras", root=root), (root or cache_dir()) / "converted"
    )


def prepare_weights(root: Path | None = None, extra_dirs: tuple[Path, ...] = ()) -> list[Path]:
    """Fetch and verify every bundled weight and the cohort's pictures, then convert FaceNet
    once: ``models fetch``."""
    from monitor.assets import LocalFile
    from monitor.likeness.cohort.bundled import COHORT_WEIGHTS

    extra = [LocalFile(folder) for folder in extra_dirs]
    paths = [
        ensure(weight, root=root, extra_sources=extra)
        for weight in (*BUNDLED_WEIGHTS.values(), *COHORT_WEIGHTS)
    ]
    paths.append(_facenet_safetensors(root))
    return paths


@dataclass
class Models:
    """Detector and embedders of one scorer, all on one device."""

    face_detector: FaceDetector
    face_embedder: FaceEmbedder
    image_embedder: ImageEmbedder
    device: str
    text_embedder: SentenceEmbedder | None = None
    """Captions by meaning; without it (or with a gallery embedded by another text model)
    captions are matched by name only. Not in ``versions``: a gallery's pictures do not
    depend on it, and ``Gallery.captions`` records the text model it was embedded with."""

    @classmethod
    def load(cls, settings: LikenessSettings | None = None, *, root: Path | None = None) -> Models:
        from monitor.likeness.embedders import build_image_embedder
        from monitor.likeness.embedders.faces import FaceNetEmbedder, YuNetDetector
        from monitor.likeness.embedders.text import SentenceEmbedder

        settings = settings or LikenessSettings()
        device = settings.device or default_device()
        spec = settings.visual_embedder
        weights = settings.visual_weights
        if weights is None and spec in BUNDLED_WEIGHTS:
            weights = cached_path(spec, root=root)
        return cls(
            face_detector=YuNetDetector(
                cached_path("yunet", root=root),
                score_threshold=settings.face_score_threshold,
                min_face=settings.min_face_px,
            ),
            face_embedder=FaceNetEmbedder(
                _facenet_safetensors(root), device=device, batch_size=settings.batch_size
            ),
            image_embedder=build_image_embedder(
                spec,
                device=device,
                weights=weights,
                runtime=settings.visual_runtime,
                graph_cache=(root or cache_dir()) / "converted",
                precision=settings.visual_precision,
            ),
            device=device,
            text_embedder=SentenceEmbedder(cached_path("minilm-l6", root=root), device=device),
        )

    @property
    def versions(self) -> dict[str, str]:
        return {
            "face_detector": self.face_detector.name,
            "face": self.face_embedder.name,
            "visual": self.image_embedder.name,
        }

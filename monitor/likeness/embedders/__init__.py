"""Embedders, and the one place a configured spec string becomes a visual embedder.

The visual backbone is configuration (``LikenessSettings.visual_embedder``), so a team with a
stronger model changes a string, not the code. Specs:

- ``efficientnet-lite0`` (the default) or ``mobilenet-v2``: bundled, weights from the verified
  cache unless a file is given;
- ``open_clip:MODEL:WEIGHTS`` e.g. ``open_clip:ViT-B-32:/models/vit-b-32.bin``;
- ``hub:REPO_DIR:ENTRY[:WEIGHTS]`` e.g. ``hub:/models/dinov2:dinov2_vits14:/models/vits14.pth``;
- ``torchscript:MODEL.pt[:SIZE]`` and ``export:MODEL.pt2[:SIZE]`` (a ``torch.export`` program).

Where the spec leaves out the weights or model file, the ``weights`` argument supplies it. Paths
in specs cannot contain ``:``.
"""

from __future__ import annotations

from pathlib import Path

from monitor.errors import EmbedderConfigError
from monitor.likeness.embedders.base import (
    Box,
    DetectedFace,
    Embeddings,
    FaceDetector,
    FaceEmbedder,
    ImageEmbedder,
    default_device,
)
from monitor.likeness.embedders.plugins import (
    ExportedProgramEmbedder,
    OpenClipEmbedder,
    TorchHubEmbedder,
    TorchScriptEmbedder,
)
from monitor.likeness.embedders.visual import (
    EfficientNetLite0Embedder,
    MobileNetV2Embedder,
    TorchImageEmbedder,
)

__all__ = [
    "BUNDLED_IMAGE_EMBEDDERS",
    "Box",
    "DetectedFace",
    "EfficientNetLite0Embedder",
    "Embeddings",
    "ExportedProgramEmbedder",
    "FaceDetector",
    "FaceEmbedder",
    "ImageEmbedder",
    "MobileNetV2Embedder",
    "OpenClipEmbedder",
    "TorchHubEmbedder",
    "TorchImageEmbedder",
    "TorchScriptEmbedder",
    "build_image_embedder",
    "default_device",
]

BUNDLED_IMAGE_EMBEDDERS = {
    "efficientnet-lite0": EfficientNetLite0Embedder,
    "mobilenet-v2": MobileNetV2Embedder,
}
"""Spec name -> class; each name is also the name of its weight in ``weights.BUNDLED_WEIGHTS``."""

_FORMS = (
    "efficientnet-lite0 | mobilenet-v2 | open_clip:MODEL:WEIGHTS | "
    "hub:REPO_DIR:ENTRY[:WEIGHTS] | torchscript:FILE[:SIZE] | export:FILE[:SIZE]"
)


def build_image_embedder(
    spec: str, *, device: str | None = None, weights: Path | None = None
) -> ImageEmbedder:
    """The visual embedder a configuration names; raises ``EmbedderConfigError`` on a bad spec."""
    kind, _, rest = spec.strip().partition(":")
    if kind in BUNDLED_IMAGE_EMBEDDERS and not rest:
        if weights is None:
            from monitor.likeness.weights import cached_path

            weights = cached_path(kind)
        return BUNDLED_IMAGE_EMBEDDERS[kind](weights, device=device)
    if kind == "open_clip":
        model, _, path = rest.partition(":")
        return OpenClipEmbedder(_required(model, spec), _path(path, weights, spec), device=device)
    if kind == "hub":
        parts = rest.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise _bad(spec)
        entry_weights = Path(parts[2]) if len(parts) == 3 else weights
        return TorchHubEmbedder(Path(parts[0]), parts[1], weights=entry_weights, device=device)
    if kind in ("torchscript", "export"):
        path, size = _file_and_size(rest, spec)
        cls = TorchScriptEmbedder if kind == "torchscript" else ExportedProgramEmbedder
        return cls(_path(path, weights, spec), input_size=size, device=device)
    raise _bad(spec)


def _file_and_size(rest: str, spec: str) -> tuple[str, int]:
    path, _, size = rest.rpartition(":")
    if not path:  # no ":" at all: the whole rest is the file
        return rest, 224
    if not size.isdigit() or int(size) < 16:
        raise EmbedderConfigError(f"visual embedder {spec!r}: SIZE must be an integer >= 16")
    return path, int(size)


def _path(text: str, weights: Path | None, spec: str) -> Path:
    if text:
        return Path(text)
    if weights is not None:
        return weights
    raise EmbedderConfigError(f"visual embedder {spec!r} names no file, and no weights were given")


def _required(text: str, spec: str) -> str:
    if not text:
        raise _bad(spec)
    return text


def _bad(spec: str) -> EmbedderConfigError:
    return EmbedderConfigError(f"unknown visual embedder spec {spec!r}; expected {_FORMS}")

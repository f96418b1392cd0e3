"""Embedders, and the one place a configured spec string becomes a visual embedder.

The visual backbone is configuration (``LikenessSettings.visual_embedder``), so a team with a
stronger model changes a string, not the code. Specs:

- ``efficientnet-lite0`` (the default) or ``mobilenet-v2``: bundled, weights from the verified
  cache unless a file is given;
- ``open_clip:MODEL:WEIGHTS`` e.g. ``open_clip:ViT-B-32:/models/vit-b-32.bin``;
- ``hub:REPO_DIR:ENTRY[:WEIGHTS]`` e.g. ``hub:/models/dinov2:dinov2_vits14:/models/vits14.pth``;
- ``torchscript:MODEL.pt[:SIZE]`` and ``export:MODEL.pt2[:SIZE]`` (a ``torch.export`` program).

Where the spec leaves out the weights or model file, the ``weights`` argument supplies it. Paths
in specs cannot contain ``:``. The bundled ones run on ONNX Runtime on a CPU where it is
installed (``runtime``: ``auto``), on torch otherwise; plugins always run on torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

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
from monitor.likeness.embedders.onnx import onnxruntime_available
from monitor.likeness.embedders.plugins import (
    ExportedProgramEmbedder,
    OpenClipEmbedder,
    TorchHubEmbedder,
    TorchScriptEmbedder,
)
from monitor.likeness.embedders.visual import (
    EfficientNetLite0Embedder,
    MobileNetV2Embedder,
    Precision,
    Runtime,
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
    "Precision",
    "Runtime",
    "RuntimeChoice",
    "TorchHubEmbedder",
    "TorchImageEmbedder",
    "TorchScriptEmbedder",
    "build_image_embedder",
    "default_device",
    "resolve_runtime",
]

log = logging.getLogger(__name__)

RuntimeChoice = Literal["auto", "torch", "onnxruntime"]
"""A configured runtime: ``auto`` is ONNX Runtime on a CPU where it is installed, else torch."""

BUNDLED_IMAGE_EMBEDDERS = {
    "efficientnet-lite0": EfficientNetLite0Embedder,
    "mobilenet-v2": MobileNetV2Embedder,
}
"""Spec name -> class; each name is also the name of its weight in ``weights.BUNDLED_WEIGHTS``."""

_FORMS = (
    "efficientnet-lite0 | mobilenet-v2 | open_clip:MODEL:WEIGHTS | "
    "hub:REPO_DIR:ENTRY[:WEIGHTS] | torchscript:FILE[:SIZE] | export:FILE[:SIZE]"
)


def resolve_runtime(
    choice: RuntimeChoice, device: str, precision: Precision = "float32"
) -> Runtime:
    """The runtime a bundled embedder gets on ``device`` for a configured ``choice``: ``auto``
    is ONNX Runtime for float32 on a CPU where it is installed, torch otherwise."""
    if choice == "auto":
        usable = device == "cpu" and precision == "float32" and onnxruntime_available()
        return "onnxruntime" if usable else "torch"
    return choice


def build_image_embedder(
    spec: str,
    *,
    device: str | None = None,
    weights: Path | None = None,
    runtime: RuntimeChoice = "torch",
    graph_cache: Path | None = None,
    precision: Precision = "float32",
) -> ImageEmbedder:
    """The visual embedder a configuration names; raises ``EmbedderConfigError`` on a bad spec,
    or on ``onnxruntime`` or a 16-bit ``precision`` asked of a plugin. ``graph_cache`` keeps
    ONNX Runtime's exported graph between starts."""
    kind, _, rest = spec.strip().partition(":")
    if kind in BUNDLED_IMAGE_EMBEDDERS and not rest:
        if weights is None:
            from monitor.likeness.weights import cached_path

            weights = cached_path(kind)
        bundled = BUNDLED_IMAGE_EMBEDDERS[kind]
        resolved = resolve_runtime(runtime, device or default_device(), precision)
        try:
            return bundled(
                weights,
                device=device,
                runtime=resolved,
                graph_cache=graph_cache,
                precision=precision,
            )
        except EmbedderConfigError as exc:
            if runtime != "auto" or resolved == "torch":
                raise
            log.warning("%s on torch: ONNX Runtime cannot run it here: %s", spec, exc)
            return bundled(weights, device=device, runtime="torch", precision=precision)
    if runtime == "onnxruntime" or precision != "float32":
        raise EmbedderConfigError(
            f"visual embedder {spec!r}: ONNX Runtime and 16-bit precision are for the "
            "bundled embedders only"
        )
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

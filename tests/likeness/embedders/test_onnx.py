"""The bundled visual embedders on ONNX Runtime: the same features as on torch, the graph
exported once and kept, and torch whenever ONNX Runtime cannot run them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from monitor.errors import EmbedderConfigError
from monitor.likeness.embedders import build_image_embedder, onnx, resolve_runtime
from monitor.likeness.embedders.visual import (
    EfficientNetLite0Embedder,
    MobileNetV2Embedder,
    TorchImageEmbedder,
)
from monitor.media.decode import decode_clip
from monitor.media.frames import RGBImage

EMBEDDERS: dict[str, type[EfficientNetLite0Embedder] | type[MobileNetV2Embedder]] = {
    "efficientnet-lite0": EfficientNetLite0Embedder,
    "mobilenet-v2": MobileNetV2Embedder,
}


def on_onnx(weights: Path, cache: Path) -> MobileNetV2Embedder:
    """The smaller bundled model on ONNX Runtime, its graph kept in ``cache``."""
    return MobileNetV2Embedder(weights, device="cpu", runtime="onnxruntime", graph_cache=cache)


@pytest.fixture(scope="module")
def pictures(package_file: Callable[[str], Path]) -> list[RGBImage]:
    """Real frames of two films, of two shapes, and a crop of one (as the region views are)."""
    bunny = [f.image for f in decode_clip(package_file("bigbuckbunny.mp4"), even_frames=3)]
    bikes = [f.image for f in decode_clip(package_file("bikes.mp4"), even_frames=3)]
    return [*bunny, *bikes, bunny[0][40:200, 100:400]]


@pytest.mark.parametrize("spec", sorted(EMBEDDERS))
def test_onnx_runtime_gives_the_features_torch_gives(
    spec: str, pictures: list[RGBImage], weight_file: Callable[[str], Path], tmp_path: Path
) -> None:
    """Within float rounding, so a gallery built on one runtime scores on the other, and the
    recorded model name is the same."""
    cls = EMBEDDERS[spec]
    on_torch = cls(weight_file(spec), device="cpu", runtime="torch")
    on_onnx = cls(weight_file(spec), device="cpu", runtime="onnxruntime", graph_cache=tmp_path)
    assert on_onnx.name == on_torch.name and on_onnx.dim == on_torch.dim
    ours, theirs = on_onnx.embed(pictures), on_torch.embed(pictures)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float(np.abs(ours - theirs).max()) < 1e-5


def test_the_graph_is_exported_once_and_read_at_the_next_start(
    weight_file: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = weight_file("mobilenet-v2")
    on_onnx(path, tmp_path)
    (kept,) = tmp_path.glob("mobilenet-v2-*.onnx")

    def no_export(*_: object) -> bytes:
        raise AssertionError("exported again although the graph was kept")

    monkeypatch.setattr(onnx, "_export", no_export)
    again = on_onnx(path, tmp_path)
    assert again.embed([np.zeros((64, 64, 3), np.uint8)]).shape == (1, 1280)
    assert list(tmp_path.glob("*.onnx")) == [kept]


def test_a_damaged_kept_graph_is_exported_again_and_replaced(
    weight_file: Callable[[str], Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = weight_file("mobilenet-v2")
    on_onnx(path, tmp_path)
    (kept,) = tmp_path.glob("*.onnx")
    whole = kept.read_bytes()
    kept.write_bytes(whole[: len(whole) // 3])  # a start killed while an old version wrote it
    with caplog.at_level(logging.WARNING):
        again = on_onnx(path, tmp_path)
    assert "unreadable" in caplog.text
    assert kept.read_bytes() == whole
    assert again.embed([np.zeros((64, 64, 3), np.uint8)]).shape == (1, 1280)


def test_a_cache_folder_that_cannot_be_written_costs_only_the_next_export(
    weight_file: Callable[[str], Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        built = on_onnx(weight_file("mobilenet-v2"), blocked)
    assert "could not be kept" in caplog.text
    assert built.runtime == "onnxruntime"


def test_auto_is_onnx_runtime_on_a_cpu_and_torch_on_a_gpu() -> None:
    assert resolve_runtime("auto", "cpu") == "onnxruntime"
    assert resolve_runtime("auto", "cuda") == "torch"
    assert resolve_runtime("torch", "cpu") == "torch"
    assert resolve_runtime("onnxruntime", "cpu") == "onnxruntime"


def test_auto_falls_back_to_torch_when_the_graph_cannot_be_exported(
    weight_file: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: object) -> bytes:
        raise RuntimeError("the exporter meets an operator it does not know")

    monkeypatch.setattr(onnx, "_export", broken)
    weights = weight_file("mobilenet-v2")
    with caplog.at_level(logging.WARNING):
        built = build_image_embedder("mobilenet-v2", device="cpu", weights=weights, runtime="auto")
    assert isinstance(built, TorchImageEmbedder) and built.runtime == "torch"
    assert "ONNX Runtime cannot run it here" in caplog.text
    with pytest.raises(EmbedderConfigError, match="cannot export to ONNX"):
        build_image_embedder("mobilenet-v2", device="cpu", weights=weights, runtime="onnxruntime")


def test_onnx_runtime_is_refused_for_a_plugin_model(tmp_path: Path) -> None:
    with pytest.raises(EmbedderConfigError, match="for the bundled embedders only"):
        build_image_embedder(f"torchscript:{tmp_path / 'model.pt'}", runtime="onnxruntime")

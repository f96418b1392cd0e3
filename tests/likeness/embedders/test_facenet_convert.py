"""The Keras FaceNet file becomes a torch model that computes what Keras computed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from monitor.assets import sha256_of
from monitor.errors import WeightsError
from monitor.likeness.embedders.facenet_convert import (
    FORMAT,
    convert_keras_facenet,
    ensure_converted,
    load_facenet,
)
from monitor.likeness.embedders.inception_resnet_v1 import InceptionResnetV1

pytestmark = pytest.mark.slow

# Keras 3.15.1 / TensorFlow 2.21.0 running the original .h5 on
# np.random.RandomState(0).randn(2, 160, 160, 3): the first 8 of the 128 outputs of each row.
KERAS_OUTPUT_HEAD = np.array(
    [
        [-0.182854, -0.399301, -0.301118, -0.626197, 0.232214, -0.114113, -0.554976, 0.244905],
        [-0.240783, -0.558990, -0.193788, -0.744757, 0.100726, 0.040466, -0.422178, -0.088024],
    ],
    dtype=np.float32,
)
KERAS_OUTPUT_NORMS = np.array([5.245865, 5.271074], dtype=np.float32)


@pytest.fixture(scope="module")
def h5(weight_file: Callable[[str], Path]) -> Path:
    return weight_file("facenet-keras")


@pytest.fixture(scope="module")
def converted(h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_converted(h5, tmp_path_factory.mktemp("facenet"))


def _copy_h5(source: Path, target: Path, *, drop: str = "", add: str = "") -> None:
    """A copy of the Keras file, one layer left out or one unknown layer added."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        weights = dst.create_group("model_weights")
        for layer in src["model_weights"]:
            if layer != drop:
                src.copy(src["model_weights"][layer], weights, name=layer)
        if add:
            weights.create_dataset(f"{add}/{add}/kernel:0", data=np.zeros((4, 4), np.float32))


def test_every_torch_tensor_is_filled_and_the_source_hash_recorded(
    converted: Path, h5: Path
) -> None:
    with safe_open(str(converted), framework="pt") as f:
        names = set(f.keys())
        metadata = f.metadata()
    assert names == set(InceptionResnetV1().state_dict())
    assert metadata["source_sha256"] == sha256_of(h5)
    assert metadata["format"] == FORMAT


def test_converted_model_computes_what_keras_computed(converted: Path) -> None:
    model = load_facenet(converted, "cpu")
    x = np.random.RandomState(0).randn(2, 160, 160, 3).astype(np.float32)
    with torch.inference_mode():
        raw = model.features(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        unit = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(raw[:, :8], KERAS_OUTPUT_HEAD, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), KERAS_OUTPUT_NORMS, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_a_missing_layer_is_named_and_nothing_is_written(h5: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.h5"
    _copy_h5(h5, broken, drop="Block17_3_Branch_1_Conv2d_0b_1x7_BatchNorm")
    out = tmp_path / "out" / "facenet.safetensors"
    with pytest.raises(WeightsError, match="Block17_3_Branch_1_Conv2d_0b_1x7_BatchNorm"):
        convert_keras_facenet(broken, out)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_a_layer_with_no_place_in_the_model_is_reported(h5: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.h5"
    _copy_h5(h5, extra, add="Logits")
    with pytest.raises(WeightsError, match="Logits"):
        convert_keras_facenet(extra, tmp_path / "facenet.safetensors")


def test_a_file_that_is_not_hdf5_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "facenet.h5"
    fake.write_bytes(b"not an hdf5 file")
    with pytest.raises(WeightsError, match=r"facenet\.h5"):
        convert_keras_facenet(fake, tmp_path / "facenet.safetensors")


def test_ensure_converted_names_the_file_by_source_hash_and_converts_once(
    converted: Path, h5: Path
) -> None:
    assert converted.name == f"facenet-{sha256_of(h5)[:16]}.safetensors"
    before = converted.stat().st_mtime_ns
    assert ensure_converted(h5, converted.parent) == converted
    assert converted.stat().st_mtime_ns == before


def test_loading_a_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(WeightsError, match="convert it again"):
        load_facenet(foreign, "cpu")

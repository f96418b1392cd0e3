"""The bundled visual embedders, and the batching every torch backbone shares.

Only ImageNet CNNs install without a model hub (see MODELS.md), so they are the default: pooled
features before the classifier, compared by cosine. They are weak at telling a character from the
scene around it, which is why frames are also embedded as regions (``monitor.likeness.regions``)
and why a stronger backbone can be configured instead (``plugins``).

Resizing happens on the CPU with OpenCV on uint8 pixels (fast, and four times less to copy to a
GPU than floats); normalising and the forward pass happen on the device, in batches. The whole
picture is squeezed to the model's square input rather than centre-cropped, so a character at the
edge of a wide frame is not cut away.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from monitor.errors import EmbedderConfigError, WeightsError
from monitor.likeness.embedders.base import Embeddings, ImageEmbedder, default_device
from monitor.likeness.embedders.onnx import OnnxFeatures
from monitor.media.frames import RGBImage

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MID_BLOCKS",
    "EfficientNetLite0Embedder",
    "MobileNetV2Embedder",
    "Precision",
    "ResizePolicy",
    "Runtime",
    "TorchImageEmbedder",
    "fold_batch_norms",
    "pool_features",
    "prepare_batch",
]

ResizePolicy = Literal["stretch", "letterbox", "centre-crop"]
"""How a picture of any shape becomes the model's square input.

``stretch`` resizes to the square, changing the aspect ratio; ``letterbox`` fits the picture inside
the square and pads the rest; ``centre-crop`` fills the square and cuts the longer side.
"""

Precision = Literal["float32", "bfloat16", "float16"]
"""The forward pass's arithmetic on torch: ``float32``, or autocast to a 16-bit type (a GPU's
tensor cores; a CPU with AVX-512 BF16 also runs ``bfloat16``). Features move by about 4e-3,
so a 16-bit precision is part of the model's recorded name and a gallery is built with it."""

Runtime = Literal["torch", "onnxruntime"]
"""What runs the forward pass: torch on any device, or ONNX Runtime on the CPU (the same
features, about three times as fast there: ``embedders.onnx``)."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_LETTERBOX_FILL = (255, 255, 255)


def prepare_batch(
    images: Sequence[RGBImage], size: int, resize: ResizePolicy
) -> npt.NDArray[np.uint8]:
    """``(n, size, size, 3)`` uint8: each image brought to the model's square by ``resize``."""
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image {i}: expected (height, width, 3) uint8, got {image.shape} {image.dtype}"
            )
        out[i] = _square(image, size, resize)
    return out


def _square(image: RGBImage, size: int, resize: ResizePolicy) -> RGBImage:
    height, width = int(image.shape[0]), int(image.shape[1])
    if resize == "stretch":
        return _resize(image, size, size)
    if resize == "centre-crop":
        side = min(height, width)
        y, x = (height - side) // 2, (width - side) // 2
        return _resize(image[y : y + side, x : x + side], size, size)
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = _LETTERBOX_FILL
    y, x = (size - new_h) // 2, (size - new_w) // 2
    canvas[y : y + new_h, x : x + new_w] = _resize(image, new_w, new_h)
    return canvas


def _resize(image: RGBImage, width: int, height: int) -> RGBImage:
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, (width, height), interpolation=interpolation), np.uint8)


def pool_features(output: object) -> torch.Tensor:
    """``(n, dim)`` rows from what a backbone returns: rows as they are, feature maps averaged."""
    if isinstance(output, torch.Tensor) and output.ndim == 2:
        return output
    if isinstance(output, torch.Tensor) and output.ndim == 4:
        return output.mean(dim=(2, 3))
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    raise ValueError(f"a backbone must return (n, dim) features or (n, c, h, w) maps, got {shape}")


class TorchImageEmbedder(ImageEmbedder):
    """A torch backbone behind ``ImageEmbedder``: resize, batch, normalise, forward, L2-normalise.

    Subclasses build the module and say how to get features from it (``_features``). ``dim`` is
    probed with one forward pass when the subclass does not know it. With ``runtime``
    ``onnxruntime`` (CPU only) the module is exported once and ONNX Runtime runs it, the graph
    kept in ``graph_cache`` when given.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        name: str,
        dim: int | None = None,
        input_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize: ResizePolicy = "stretch",
        device: str | None = None,
        batch_size: int | None = None,
        runtime: Runtime = "torch",
        graph_cache: Path | None = None,
        precision: Precision = "float32",
    ) -> None:
        if resize not in get_args(ResizePolicy):
            raise ValueError(f"resize must be one of {get_args(ResizePolicy)}, got {resize!r}")
        if precision != "float32" and runtime != "torch":
            raise EmbedderConfigError(f"{name}: {precision} runs on torch only, not {runtime}")
        if (batch_size is not None and batch_size < 1) or input_size < 1:
            raise ValueError("batch_size and input_size must be positive")
        self.name = name if precision == "float32" else f"{name}:{precision}"
        self.precision: Precision = precision
        self.input_size = input_size
        self.resize: ResizePolicy = resize
        self.device = torch.device(device or default_device())
        self.batch_size = batch_size or _default_batch(self.device)
        self._module = self._prepare(module)
        mean_t = torch.tensor([255.0 * m for m in mean], device=self.device).view(1, 3, 1, 1)
        std_t = torch.tensor([255.0 * s for s in std], device=self.device).view(1, 3, 1, 1)
        self._shift = mean_t
        self._scale = 1.0 / std_t
        self.dim = dim if dim is not None else self._probe_dim()
        self.runtime: Runtime = runtime
        self._onnx = self._onnx_features(graph_cache) if runtime == "onnxruntime" else None

    def _onnx_features(self, cache: Path | None) -> OnnxFeatures:
        if self.device.type != "cpu":
            raise EmbedderConfigError(
                f"{self.name}: ONNX Runtime runs the visual model on the CPU only, "
                f"not on {self.device.type}; use the torch runtime there"
            )
        return OnnxFeatures(
            self.name, self._module, self._unit_rows, input_size=self.input_size, cache=cache
        )

    def _prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module in inference mode on ``self.device``."""
        # channels_last matches the NHWC pixels as they come from numpy and is what CPU and
        # cuDNN convolution kernels are fastest on.
        return module.eval().to(self.device).to(memory_format=torch.channels_last)

    @abstractmethod
    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        """``(n, dim)`` features of a normalised ``(n, 3, size, size)`` batch."""

    def embed(self, images: Sequence[RGBImage]) -> Embeddings:
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            chunks.append(self._embed_chunk(prepare_batch(chunk, self.input_size, self.resize)))
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def _embed_chunk(self, pixels: npt.NDArray[np.uint8]) -> Embeddings:
        if self._onnx is not None:
            return self._onnx(pixels)
        half = getattr(torch, self.precision)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=half, enabled=self.precision != "float32"),
        ):
            features = self._unit_rows(torch.from_numpy(pixels).to(self.device))
            rows: Embeddings = features.cpu().numpy()
        return rows

    def _unit_rows(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(n, size, size, 3)`` uint8 pixels to unit-length ``(n, dim)`` features: what both
        runtimes compute (ONNX Runtime runs this, exported)."""
        # NHWC uint8 permuted to NCHW is already channels_last in memory: no copy.
        batch = (pixels.permute(0, 3, 1, 2).float() - self._shift) * self._scale
        return F.normalize(self._features(batch).float(), dim=1)

    def _probe_dim(self) -> int:
        size = self.input_size
        try:
            with torch.inference_mode():
                probe = torch.zeros((2, 3, size, size), device=self.device)
                features = self._features(probe.contiguous(memory_format=torch.channels_last))
        except Exception as exc:  # whatever a user's model raises on a wrong input
            raise EmbedderConfigError(
                f"{self.name}: the model fails on a batch of two {size}x{size} images: {exc}"
            ) from exc
        if features.ndim != 2 or features.shape[0] != 2:
            raise EmbedderConfigError(
                f"{self.name}: expected (2, dim) features, got {tuple(features.shape)}"
            )
        return int(features.shape[1])


_CONV_BN_PAIRS = (
    ("_conv_stem", "_bn0"),
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
    ("_conv_head", "_bn1"),
)
"""The (convolution, the batch norm right after it) attribute pairs of EfficientNet's modules."""


def fold_batch_norms(module: torch.nn.Module) -> int:
    """Fold each batch norm of an EfficientNet in inference mode into the convolution before it
    (the norm's scale and shift become the convolution's weights and bias; the norm becomes an
    identity); returns how many were folded. The features are the same within float rounding
    (4e-7 on 135 views of a real clip) and the visual stage 1.18x as fast on a 2-core CPU: a
    batch norm in inference is an affine map, run as its own pass over every activation."""
    folded = 0
    for part in module.modules():
        for conv_name, norm_name in _CONV_BN_PAIRS:
            conv, norm = getattr(part, conv_name, None), getattr(part, norm_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                setattr(part, conv_name, fuse_conv_bn_eval(conv, norm))
                setattr(part, norm_name, torch.nn.Identity())
                folded += 1
    return folded


def _default_batch(device: torch.device) -> int:
    # Measured on a 2-core CPU, 720p frames through embed(): batches of 4 gave 119 images/s
    # (EfficientNet-Lite0) and 161 (MobileNetV2), batches of 32 only 44 and 75, a large batch's
    # activations no longer fitting the caches. A GPU wants large batches.
    return 4 if device.type == "cpu" else 32


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain tensor dict from a ``.pth``: ``weights_only`` so a handed-in file runs no code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weight file") from None
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike here
        raise WeightsError(f"{path}: not a readable weight file: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def _load_into(module: torch.nn.Module, path: Path) -> None:
    try:
        module.load_state_dict(_load_state_dict(path), strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: does not fit {type(module).__name__}: {exc}") from exc


def _bundled_name(base: str, input_size: int, resize: ResizePolicy) -> str:
    # The gallery records the name; preprocessing that changes the vectors must change it too.
    if (input_size, resize) == (224, "stretch"):
        return base
    return f"{base}:{resize}:{input_size}"


MID_BLOCKS: tuple[int, ...] = (11, 14)
"""EfficientNet-Lite0's blocks whose pooled outputs make the embedding: the first and last of
its 192-channel stage (7x7 at 224 px), where features say "which shape and parts", not yet
"which ImageNet class". Measured in ``bench/cohort_research.py``: whitened on the cohort,
these separate a drawn character from other cartoons better than the 1280-d head (gopher AP
0.97 against 0.94 with the head; raw 0.88)."""


class EfficientNetLite0Embedder(TorchImageEmbedder):
    """EfficientNet-Lite0 (ImageNet): the default visual embedder.

    Of the embedders that install offline it separates a drawn character from other drawings
    best (see MODELS.md), from its mid-level blocks (``MID_BLOCKS``): each block's feature map
    is averaged, made unit length, and the two are concatenated (384-d), so each counts as
    much. The head (block 16 and the 1280-channel convolution) is not run at all. Its
    convolutions pad statically for ``input_size``, so the module is built for that size.
    """

    def __init__(
        self,
        weights_path: Path,
        device: str | None = None,
        batch_size: int | None = None,
        input_size: int = 224,
        resize: ResizePolicy = "stretch",
        runtime: Runtime = "torch",
        graph_cache: Path | None = None,
        precision: Precision = "float32",
    ) -> None:
        from efficientnet_lite_pytorch import EfficientNet

        module = EfficientNet.from_name("efficientnet-lite0", image_size=input_size)
        _load_into(module, Path(weights_path))
        fold_batch_norms(module.eval())
        blocks = "+".join(str(b) for b in MID_BLOCKS)
        super().__init__(
            module,
            name=_bundled_name(f"efficientnet-lite0/blocks{blocks}", input_size, resize),
            dim=None,
            input_size=input_size,
            resize=resize,
            device=device,
            batch_size=batch_size,
            runtime=runtime,
            graph_cache=graph_cache,
            precision=precision,
        )

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        net: Any = self._module  # the package is untyped
        x = net._swish(net._bn0(net._conv_stem(batch)))
        pooled = []
        for index, block in enumerate(net._blocks[: max(MID_BLOCKS) + 1]):
            x = block(x)
            if index in MID_BLOCKS:
                pooled.append(F.normalize(x.mean(dim=(2, 3)), dim=1))
        joined: torch.Tensor = torch.cat(pooled, dim=1)  # made unit length by ``embed``
        return joined


class MobileNetV2Embedder(TorchImageEmbedder):
    """MobileNetV2 (torchvision's ImageNet checkpoint), 1280-d: about twice as fast, less precise."""

    def __init__(
        self,
        weights_path: Path,
        device: str | None = None,
        batch_size: int | None = None,
        input_size: int = 224,
        resize: ResizePolicy = "stretch",
        runtime: Runtime = "torch",
        graph_cache: Path | None = None,
        precision: Precision = "float32",
    ) -> None:
        from torchvision.models import mobilenet_v2

        module = mobilenet_v2(weights=None)
        _load_into(module, Path(weights_path))
        super().__init__(
            module.features,
            name=_bundled_name("mobilenet-v2", input_size, resize),
            dim=1280,
            input_size=input_size,
            resize=resize,
            device=device,
            batch_size=batch_size,
            runtime=runtime,
            graph_cache=graph_cache,
            precision=precision,
        )

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        maps: torch.Tensor = self._module(batch)
        return maps.mean(dim=(2, 3))

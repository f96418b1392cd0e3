"""Stronger visual backbones a user already has, plugged in by configuration.

No CLIP, SigLIP or DINOv2 weights can be installed from a package registry (MODELS.md), yet they
tell characters apart far better than the bundled ImageNet CNNs. A team that has such a model
points the configuration at it: an open_clip model and its weights file, a local checkout of a
torch.hub repository (DINOv2's, say) with an optional state-dict file, a TorchScript file, or a
``torch.export`` program. Nothing here downloads: every path is local, and a missing file or
library is a configuration error that says what to install or where to point.

Each embedder's ``name`` carries the start of its weights' sha256, so a gallery built with one
file is never scored with vectors from another.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from monitor.assets import sha256_of
from monitor.errors import EmbedderConfigError
from monitor.likeness.embedders.base import default_device
from monitor.likeness.embedders.visual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ResizePolicy,
    TorchImageEmbedder,
    pool_features,
)

__all__ = [
    "ExportedProgramEmbedder",
    "OpenClipEmbedder",
    "TorchHubEmbedder",
    "TorchScriptEmbedder",
]


def _existing_file(path: Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise EmbedderConfigError(f"{what} {path} does not exist or is not a file")
    return path


def _fingerprint(path: Path) -> str:
    return sha256_of(path)[:12]


class TorchScriptEmbedder(TorchImageEmbedder):
    """A TorchScript file that maps normalised ``(n, 3, size, size)`` images to features.

    The module may return ``(n, dim)`` rows or ``(n, c, h, w)`` maps (averaged). ``mean`` and
    ``std`` are the normalisation it was trained with, on a 0-1 scale.
    """

    def __init__(
        self,
        path: Path,
        *,
        input_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize: ResizePolicy = "stretch",
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        path = _existing_file(path, "TorchScript file")
        try:
            with warnings.catch_warnings():
                # Deprecated in favour of torch.export, but it is the format teams have on disk.
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as exc:  # torch reports a bad archive as RuntimeError or a zip error
            raise EmbedderConfigError(f"{path} is not a loadable TorchScript file: {exc}") from exc
        super().__init__(
            module,
            name=f"torchscript:{path.name}:{_fingerprint(path)}",
            input_size=input_size,
            mean=mean,
            std=std,
            resize=resize,
            device=device,
            batch_size=batch_size,
        )

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return pool_features(self._module(batch))


class ExportedProgramEmbedder(TorchImageEmbedder):
    """A ``torch.export`` program (``.pt2``), the successor of TorchScript.

    It must have been exported with a dynamic batch dimension; construction runs a batch of two to
    find the feature size and fails early otherwise.
    """

    def __init__(
        self,
        path: Path,
        *,
        input_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize: ResizePolicy = "stretch",
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        path = _existing_file(path, "exported program")
        target = torch.device(device or default_device())
        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # a wrong file fails in the archive reader or the deserializer
            raise EmbedderConfigError(f"{path} is not a torch.export program: {exc}") from exc
        if target.type != "cpu":
            # Devices can be baked into the graph's operations, not only its tensors.
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, target)
        try:
            super().__init__(
                program.module(),
                name=f"export:{path.name}:{_fingerprint(path)}",
                input_size=input_size,
                mean=mean,
                std=std,
                resize=resize,
                device=str(target),
                batch_size=batch_size,
            )
        except EmbedderConfigError as exc:  # the probe batch breaks the program's constraints
            raise EmbedderConfigError(
                f"{path}: the program does not take a batch of (n, 3, {input_size}, {input_size}) "
                f"images (export it with a dynamic batch dimension): {exc}"
            ) from exc

    def _prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        # An exported graph is already in inference form and cannot be switched with eval().
        return module

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return pool_features(self._module(batch))


class TorchHubEmbedder(TorchImageEmbedder):
    """An entry point of a torch.hub repository checked out on disk (``source="local"``).

    With ``weights`` (a state-dict file) the entry point is called with ``pretrained=False`` and the
    file is loaded into it strictly; without, the entry point is called as it is, and must find its
    own weights locally (in the repository, or the torch hub cache). For DINOv2:
    ``TorchHubEmbedder(Path("dinov2"), "dinov2_vits14", weights=Path("dinov2_vits14_pretrain.pth"))``.
    """

    def __init__(
        self,
        repo_dir: Path,
        model: str,
        *,
        weights: Path | None = None,
        input_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize: ResizePolicy = "stretch",
        device: str | None = None,
        batch_size: int | None = None,
        **entry_kwargs: Any,
    ) -> None:
        repo_dir = Path(repo_dir).expanduser()
        if not (repo_dir / "hubconf.py").is_file():
            raise EmbedderConfigError(f"{repo_dir} is not a torch.hub repository (no hubconf.py)")
        if weights is not None:
            weights = _existing_file(weights, "weights file")
            entry_kwargs.setdefault("pretrained", False)
        try:
            module = torch.hub.load(  # type: ignore[no-untyped-call]
                str(repo_dir), model, source="local", **entry_kwargs
            )
        except Exception as exc:  # whatever the repository's own code raises
            raise EmbedderConfigError(f"{repo_dir}: entry point {model!r} failed: {exc}") from exc
        if not isinstance(module, torch.nn.Module):
            raise EmbedderConfigError(f"{repo_dir}: {model!r} returned {type(module).__name__}")
        fingerprint = "entry"
        if weights is not None:
            _load_strict(module, weights)
            fingerprint = _fingerprint(weights)
        super().__init__(
            module,
            name=f"hub:{repo_dir.name}:{model}:{fingerprint}",
            input_size=input_size,
            mean=mean,
            std=std,
            resize=resize,
            device=device,
            batch_size=batch_size,
        )

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return pool_features(self._module(batch))


def _load_strict(module: torch.nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        module.load_state_dict(state, strict=True)
    except Exception as exc:  # unreadable file, or keys and shapes that do not fit
        raise EmbedderConfigError(f"{path} does not load into the hub model: {exc}") from exc


class OpenClipEmbedder(TorchImageEmbedder):
    """The image tower of an open_clip model, with its weights from a local file.

    ``open_clip`` (``pip install open_clip_torch``) is optional: it is imported only here. The
    input size and normalisation come from the model's own preprocessing configuration.
    """

    def __init__(
        self,
        model_name: str,
        pretrained: Path,
        *,
        resize: ResizePolicy = "stretch",
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        if importlib.util.find_spec("open_clip") is None:
            raise EmbedderConfigError(
                "the open_clip embedder needs the open_clip package: pip install open_clip_torch"
            )
        import open_clip

        pretrained = _existing_file(pretrained, "open_clip weights file")
        try:
            model = open_clip.create_model(model_name, pretrained=str(pretrained), device="cpu")
        except Exception as exc:  # unknown model name, or weights that do not fit it
            raise EmbedderConfigError(
                f"open_clip could not build {model_name!r} from {pretrained}: {exc}"
            ) from exc
        visual = model.visual
        size = getattr(visual, "image_size", 224)
        config = getattr(visual, "preprocess_cfg", None) or {}
        super().__init__(
            visual,
            name=f"open_clip:{model_name}:{_fingerprint(pretrained)}",
            input_size=int(size[0] if isinstance(size, tuple | list) else size),
            mean=tuple(config.get("mean", open_clip.OPENAI_DATASET_MEAN)),
            std=tuple(config.get("std", open_clip.OPENAI_DATASET_STD)),
            resize=resize,
            device=device,
            batch_size=batch_size,
        )

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return pool_features(self._module(batch))

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from monitor.errors import EmbedderConfigError
from monitor.likeness.embedders import (
    ExportedProgramEmbedder,
    ImageEmbedder,
    TorchHubEmbedder,
    TorchScriptEmbedder,
    build_image_embedder,
)
from monitor.likeness.embedders.visual import IMAGENET_MEAN, IMAGENET_STD, prepare_batch
from monitor.media.frames import RGBImage


class TinyNet(torch.nn.Module):
    """A stand-in for a user's backbone: returns feature maps, as a CNN trunk does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)) + 0.01


def _net(seed: int) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet().eval()


def _pictures() -> list[RGBImage]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(90, 160, 3), (64, 64, 3)]]


def _expected(net: torch.nn.Module, images: list[RGBImage], size: int) -> np.ndarray:
    """What any backbone slot must compute: stretch, ImageNet-normalise, pool, L2-normalise."""
    pixels = torch.from_numpy(prepare_batch(images, size, "stretch")).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        out = net((pixels.float() / 255 - mean) / std)
        out = out.mean(dim=(2, 3)) if out.ndim == 4 else out
        return torch.nn.functional.normalize(out, dim=1).numpy()


def _assert_embeds_like(embedder: ImageEmbedder, net: torch.nn.Module, size: int) -> None:
    rows = embedder.embed(_pictures())
    assert rows.shape == (2, embedder.dim) and rows.dtype == np.float32
    assert np.allclose(rows, _expected(net, _pictures(), size), atol=1e-5)


@pytest.fixture
def scripted(tmp_path: Path) -> Path:
    path = tmp_path / "backbone.pt"
    with pytest.warns(FutureWarning):  # torch deprecates TorchScript, users still have files
        torch.jit.script(_net(0)).save(str(path))  # type: ignore[no-untyped-call]
    return path


# --- TorchScript and torch.export files -------------------------------------------------------


def test_a_torchscript_file_named_in_the_config_embeds_end_to_end(scripted: Path) -> None:
    embedder = build_image_embedder(f"torchscript:{scripted}:64", device="cpu")
    assert isinstance(embedder, TorchScriptEmbedder)
    assert embedder.dim == 16 and embedder.input_size == 64
    _assert_embeds_like(embedder, _net(0), 64)


def test_the_name_tells_two_torchscript_files_apart(scripted: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "backbone.pt"
    other.parent.mkdir()
    with pytest.warns(FutureWarning):
        torch.jit.script(_net(1)).save(str(other))  # type: ignore[no-untyped-call]
    first = build_image_embedder(f"torchscript:{scripted}", device="cpu")
    second = build_image_embedder(f"torchscript:{other}", device="cpu")
    assert first.name.startswith("torchscript:backbone.pt:")
    assert first.name != second.name


def test_the_weights_argument_supplies_a_file_the_spec_leaves_out(scripted: Path) -> None:
    embedder = build_image_embedder("torchscript", device="cpu", weights=scripted)
    assert embedder.dim == 16


def test_a_file_that_is_not_torchscript_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(EmbedderConfigError, match="not a loadable TorchScript file"):
        TorchScriptEmbedder(path, device="cpu")


def test_a_model_that_does_not_take_the_configured_size_is_refused_at_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fixed.pt"
    net = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(3 * 32 * 32, 4))
    with pytest.warns(FutureWarning):
        torch.jit.script(net).save(str(path))  # type: ignore[no-untyped-call]
    assert build_image_embedder(f"torchscript:{path}:32", device="cpu").dim == 4
    with pytest.raises(EmbedderConfigError, match="fails on a batch of two 224x224 images"):
        build_image_embedder(f"torchscript:{path}", device="cpu")


def test_an_exported_program_with_a_dynamic_batch_embeds_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "backbone.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        _net(2), (torch.zeros(2, 3, 48, 48),), dynamic_shapes={"x": {0: batch}}
    )
    torch.export.save(program, str(path))
    embedder = build_image_embedder(f"export:{path}:48", device="cpu")
    assert isinstance(embedder, ExportedProgramEmbedder)
    _assert_embeds_like(embedder, _net(2), 48)


def test_an_exported_program_with_a_fixed_batch_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "backbone.pt2"
    torch.export.save(torch.export.export(_net(2), (torch.zeros(1, 3, 48, 48),)), str(path))
    with pytest.raises(EmbedderConfigError, match="dynamic batch"):
        build_image_embedder(f"export:{path}:48", device="cpu")


# --- torch.hub repositories on disk -----------------------------------------------------------

HUBCONF = textwrap.dedent(
    """
    import torch

    dependencies = ["torch"]


    def tiny(pretrained=True):
        if pretrained:
            raise RuntimeError("would download weights from the internet")
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.Flatten(1))


    def tiny_pooled():
        torch.manual_seed(5)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(1)
        )
    """
)


@pytest.fixture
def hub_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "tiny_repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text(HUBCONF)
    return repo


def _tiny(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.Flatten(1)).eval()


def test_a_local_hub_entry_gets_its_weights_from_a_file_not_a_download(
    hub_repo: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "tiny.pth"
    torch.save(_tiny(3).state_dict(), weights)
    embedder = build_image_embedder(f"hub:{hub_repo}:tiny:{weights}", device="cpu")
    assert isinstance(embedder, TorchHubEmbedder)
    assert embedder.name.startswith("hub:tiny_repo:tiny:")
    assert embedder.dim == 8 * 111 * 111
    _assert_embeds_like(embedder, _tiny(3), 224)


def test_a_hub_entry_without_a_weights_file_is_called_as_it_is(hub_repo: Path) -> None:
    embedder = build_image_embedder(f"hub:{hub_repo}:tiny_pooled", device="cpu")
    assert embedder.dim == 8
    with pytest.raises(EmbedderConfigError, match="would download"):
        build_image_embedder(f"hub:{hub_repo}:tiny", device="cpu")


def test_a_weights_file_that_does_not_fit_the_hub_model_is_refused(
    hub_repo: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "wrong.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), weights)
    with pytest.raises(EmbedderConfigError, match="does not load"):
        build_image_embedder(f"hub:{hub_repo}:tiny:{weights}", device="cpu")


def test_a_folder_without_hubconf_is_not_a_hub_repository(tmp_path: Path) -> None:
    with pytest.raises(EmbedderConfigError, match=r"no hubconf\.py"):
        build_image_embedder(f"hub:{tmp_path}:dinov2_vits14", device="cpu")


# --- open_clip ---------------------------------------------------------------------------------


# A real open_clip architecture (its VisionTransformer), small enough to build in milliseconds;
# registered under a name of this test's own and built with random weights (pretrained=None), so
# nothing is downloaded. Its image tower takes 64x64 pictures and gives 16 values.
TINY_CLIP = "likeness-test-tiny-vit"
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture
def tiny_clip(tmp_path: Path) -> Callable[[int], tuple[torch.nn.Module, Path]]:
    """``tiny_clip(seed)``: the image tower of a tiny open_clip model and the file of its weights.

    open_clip is in the dev extra: without it these tests fail rather than skip."""
    import open_clip

    config = tmp_path / f"{TINY_CLIP}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)

    def build(seed: int) -> tuple[torch.nn.Module, Path]:
        torch.manual_seed(seed)
        model = open_clip.create_model(TINY_CLIP, pretrained=None)
        weights = tmp_path / f"tiny-{seed}.bin"
        torch.save(model.state_dict(), weights)
        return model.visual.eval(), weights

    return build


def _clip_expected(visual: torch.nn.Module, images: list[RGBImage]) -> np.ndarray:
    """The tower on stretched 64x64 pictures normalised with CLIP's (OpenAI's) mean and std,
    written out here rather than read from the model, then L2-normalised."""
    pixels = torch.from_numpy(prepare_batch(images, 64, "stretch")).permute(0, 3, 1, 2)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.inference_mode():
        out = visual((pixels.float() / 255 - mean) / std)
        return torch.nn.functional.normalize(out, dim=1).numpy()


def test_open_clip_without_the_library_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if not installed: find_spec is None
    weights = tmp_path / "vit.bin"
    weights.write_bytes(b"")
    with pytest.raises(EmbedderConfigError, match="pip install open_clip_torch"):
        build_image_embedder(f"open_clip:ViT-B-32:{weights}", device="cpu")


def test_an_open_clip_model_embeds_with_the_weights_of_its_local_file(
    tiny_clip: Callable[[int], tuple[torch.nn.Module, Path]],
) -> None:
    visual, weights = tiny_clip(0)
    embedder = build_image_embedder(f"open_clip:{TINY_CLIP}:{weights}", device="cpu")
    rows = embedder.embed(_pictures())
    assert embedder.dim == 16 and rows.shape == (2, 16) and rows.dtype == np.float32
    assert np.allclose(rows, _clip_expected(visual, _pictures()), atol=1e-5)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_another_open_clip_weights_file_is_another_embedder(
    tiny_clip: Callable[[int], tuple[torch.nn.Module, Path]],
) -> None:
    (_, first), (other_visual, other) = tiny_clip(0), tiny_clip(1)
    one = build_image_embedder(f"open_clip:{TINY_CLIP}:{first}", device="cpu")
    two = build_image_embedder(f"open_clip:{TINY_CLIP}:{other}", device="cpu")
    assert one.name != two.name, "a gallery built with one file is never scored with the other"
    assert one.name.startswith(f"open_clip:{TINY_CLIP}:")
    assert not np.allclose(one.embed(_pictures()), two.embed(_pictures()), atol=1e-3)
    assert np.allclose(two.embed(_pictures()), _clip_expected(other_visual, _pictures()), atol=1e-5)


def test_open_clip_weights_that_do_not_fit_the_model_are_refused(
    tiny_clip: Callable[[int], tuple[torch.nn.Module, Path]], tmp_path: Path
) -> None:
    tiny_clip(0)  # registers the model name
    wrong = tmp_path / "wrong.bin"
    torch.save(torch.nn.Linear(2, 2).state_dict(), wrong)
    with pytest.raises(EmbedderConfigError, match="could not build"):
        build_image_embedder(f"open_clip:{TINY_CLIP}:{wrong}", device="cpu")
    with pytest.raises(EmbedderConfigError, match="could not build"):
        build_image_embedder(f"open_clip:no-such-model:{wrong}", device="cpu")


# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "resnet50",
        "efficientnet-lite0:extra",
        "open_clip:",
        "hub:/models/dinov2",
        "hub:/models/dinov2::",
        "torchscript:/models/model.pt:big",
        "torchscript:/models/model.pt:8",
    ],
)
def test_a_malformed_spec_is_a_configuration_error(spec: str) -> None:
    with pytest.raises(EmbedderConfigError):
        build_image_embedder(spec, device="cpu")


def test_a_missing_model_file_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(EmbedderConfigError, match=r"nowhere\.pt does not exist"):
        build_image_embedder(f"torchscript:{missing}", device="cpu")

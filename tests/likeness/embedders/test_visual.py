from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.errors import EmbedderConfigError, WeightsError
from monitor.likeness.embedders import build_image_embedder
from monitor.likeness.embedders.visual import (
    EfficientNetLite0Embedder,
    MobileNetV2Embedder,
    TorchImageEmbedder,
    prepare_batch,
)
from monitor.media.decode import decode_clip
from monitor.media.frames import RGBImage

EMBEDDERS = {"efficientnet-lite0": EfficientNetLite0Embedder, "mobilenet-v2": MobileNetV2Embedder}
DIMS = {EfficientNetLite0Embedder: 384, MobileNetV2Embedder: 1280}
"""EfficientNet-Lite0 gives its mid-level blocks 11 and 14 (192 + 192); MobileNetV2 its head."""


@pytest.fixture(scope="module", params=sorted(EMBEDDERS))
def embedder(
    request: pytest.FixtureRequest, weight_file: Callable[[str], Path]
) -> TorchImageEmbedder:
    return EMBEDDERS[request.param](weight_file(request.param), device="cpu")


@pytest.fixture(scope="module")
def bunny(package_file: Callable[[str], Path]) -> list[RGBImage]:
    return [f.image for f in decode_clip(package_file("bigbuckbunny.mp4"), even_frames=4)]


@pytest.fixture(scope="module")
def bikes(package_file: Callable[[str], Path]) -> list[RGBImage]:
    return [f.image for f in decode_clip(package_file("bikes.mp4"), even_frames=4)][:4]


# --- preprocessing (no model) -----------------------------------------------------------------


def _two_halves() -> RGBImage:
    """A 100x200 picture: the left half black, the right half red."""
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, 100:] = (255, 0, 0)
    return image


def test_stretch_squeezes_the_whole_picture_into_the_square() -> None:
    (square,) = prepare_batch([_two_halves()], 64, "stretch")
    assert square.shape == (64, 64, 3)
    assert (square[:, :30] == 0).all() and (square[:, 34:] == (255, 0, 0)).all()


def test_letterbox_keeps_the_aspect_ratio_on_a_white_ground() -> None:
    (square,) = prepare_batch([_two_halves()], 64, "letterbox")
    assert (square[:16] == 255).all() and (square[48:] == 255).all()
    assert (square[16:48, :30] == 0).all() and (square[16:48, 34:] == (255, 0, 0)).all()


def test_centre_crop_cuts_the_longer_side() -> None:
    (square,) = prepare_batch([_two_halves()], 64, "centre-crop")
    left, right = square[:, :30], square[:, 34:]
    assert (left == 0).all() and (right == (255, 0, 0)).all()
    assert square.shape == (64, 64, 3)
    # the crop is the middle 100x100, so each colour fills half of it as well, at full height
    assert (square[0] == square[-1]).all()


def test_a_picture_that_is_not_rgb_uint8_is_refused() -> None:
    with pytest.raises(ValueError, match="image 1"):
        prepare_batch([_two_halves(), np.zeros((10, 10, 3), np.float32)], 32, "stretch")  # type: ignore[list-item]


# --- the bundled models -----------------------------------------------------------------------


@pytest.mark.slow
def test_rows_are_unit_length_float32_of_the_model_dim(
    embedder: TorchImageEmbedder, bunny: list[RGBImage]
) -> None:
    rows = embedder.embed(bunny[:2])
    dim = DIMS[type(embedder)]
    assert embedder.dim == dim
    assert rows.shape == (2, dim) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_an_empty_batch_gives_no_rows(embedder: TorchImageEmbedder) -> None:
    assert embedder.embed([]).shape == (0, DIMS[type(embedder)])


@pytest.mark.slow
def test_how_a_batch_is_split_does_not_change_the_rows(
    embedder: TorchImageEmbedder, bunny: list[RGBImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    together = embedder.embed(bunny[:3])
    monkeypatch.setattr(embedder, "batch_size", 2)
    assert np.allclose(embedder.embed(bunny[:3]), together, atol=1e-4)


@pytest.mark.slow
def test_pictures_of_any_shape_embed_in_one_batch(embedder: TorchImageEmbedder) -> None:
    rng = np.random.default_rng(3)
    shapes = [(8, 300), (300, 8), (1, 1), (1080, 1920), (224, 224)]
    images = [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in shapes]
    rows = embedder.embed(images)
    assert rows.shape == (5, DIMS[type(embedder)]) and np.isfinite(rows).all()


@pytest.mark.slow
def test_a_film_is_closer_to_itself_mirrored_and_cropped_than_to_another_film(
    embedder: TorchImageEmbedder, bunny: list[RGBImage], bikes: list[RGBImage]
) -> None:
    query = bunny[-1]
    variants = [query[:, ::-1], query[60:660, 100:1180]]
    rows = embedder.embed([query, *variants, *bunny[:-1], *bikes])
    cos = rows[1:] @ rows[0]
    same_film, other_film = cos[: 2 + len(bunny) - 1], cos[2 + len(bunny) - 1 :]
    assert same_film.min() > other_film.max() + 0.1


@pytest.mark.slow
def test_preprocessing_other_than_the_default_changes_the_recorded_name(
    weight_file: Callable[[str], Path],
) -> None:
    path = weight_file("mobilenet-v2")
    assert MobileNetV2Embedder(path, device="cpu").name == "mobilenet-v2"
    letterboxed = MobileNetV2Embedder(path, device="cpu", resize="letterbox", input_size=192)
    assert letterboxed.name == "mobilenet-v2:letterbox:192"


@pytest.mark.slow
def test_the_factory_builds_a_bundled_embedder_from_its_name(
    weight_file: Callable[[str], Path],
) -> None:
    built = build_image_embedder(
        "efficientnet-lite0", device="cpu", weights=weight_file("efficientnet-lite0")
    )
    assert isinstance(built, EfficientNetLite0Embedder)
    assert built.name == "efficientnet-lite0/blocks11+14" and built.dim == 384


def test_a_garbage_weight_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable weight file"):
        EfficientNetLite0Embedder(path, device="cpu")


@pytest.mark.slow
def test_the_weights_of_another_model_are_refused(weight_file: Callable[[str], Path]) -> None:
    with pytest.raises(WeightsError, match="does not fit"):
        EfficientNetLite0Embedder(weight_file("mobilenet-v2"), device="cpu")


def test_a_bundled_embedder_whose_weights_are_not_fetched_says_how_to_fetch_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIKENESS_MONITOR_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match="models fetch"):
        build_image_embedder("mobilenet-v2", device="cpu")


def test_folding_the_batch_norms_keeps_the_features_and_leaves_no_norm(
    weight_file: Callable[[str], Path],
) -> None:
    """The bundled EfficientNet runs with each batch norm folded into its convolution: the same
    mid-level features as the network as published, within float rounding."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from monitor.likeness.embedders.visual import _load_into, fold_batch_norms

    published = EfficientNet.from_name("efficientnet-lite0", image_size=224)
    _load_into(published, weight_file("efficientnet-lite0"))
    published.eval()
    embedder = EfficientNetLite0Embedder(weight_file("efficientnet-lite0"), device="cpu")
    folded: Any = embedder._module
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert fold_batch_norms(folded) == 0, "nothing left to fold"
    batch = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        ours = embedder._features(batch.contiguous(memory_format=torch.channels_last))
        embedder._module = published
        theirs = embedder._features(batch)
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()


def test_a_16_bit_precision_is_in_the_name_and_moves_the_features_little(
    weight_file: Callable[[str], Path], bunny: list[RGBImage]
) -> None:
    """Autocast (a GPU's tensor cores; bfloat16 also runs on this CPU) changes the vectors a
    little, so a gallery must be built with it: the recorded name says so."""
    path = weight_file("efficientnet-lite0")
    full = EfficientNetLite0Embedder(path, device="cpu")
    half = EfficientNetLite0Embedder(path, device="cpu", precision="bfloat16")
    assert half.name == f"{full.name}:bfloat16"
    ours, theirs = half.embed(bunny), full.embed(bunny)
    assert ours.dtype == np.float32
    assert 0.0 < float(np.abs(ours - theirs).max()) < 0.05
    assert float(np.min(np.sum(ours * theirs, axis=1))) > 0.99  # cosine to the float32 rows


def test_16_bit_precision_runs_on_torch_only(weight_file: Callable[[str], Path]) -> None:
    path = weight_file("mobilenet-v2")
    with pytest.raises(EmbedderConfigError, match="runs on torch only"):
        MobileNetV2Embedder(path, device="cpu", precision="float16", runtime="onnxruntime")
    built = build_image_embedder(
        "mobilenet-v2", device="cpu", weights=path, runtime="auto", precision="bfloat16"
    )
    assert isinstance(built, TorchImageEmbedder) and built.runtime == "torch"

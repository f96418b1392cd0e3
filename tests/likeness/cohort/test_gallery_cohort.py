"""A character is told from look-alikes by scoring it against a cohort of other characters.

The gallery enrols the Go gopher from the dev set's six reference drawings and files three
cartoon look-alikes in its ``cohort/`` folder, as a team does with characters it sees often
and does not protect. Plain cosine puts those look-alikes as near the gopher's references as
the gopher's own drawings; the cohort margin does not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from monitor.config import DecodeSettings, LikenessSettings
from monitor.errors import CohortError
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import EntityScore, Scorer
from monitor.media import load_media

SETTINGS = LikenessSettings(device="cpu")
DECODE = DecodeSettings(max_frames=2, even_frames=2)
LOOK_ALIKES = ("noto-pig-face.png", "noto-unicorn.png", "noto-ghost.png")
DRAWINGS = (
    "vector-adventure-hiking.jpg",
    "vector-computer-music.jpg",
    "vector-friends-liberty.jpg",
    "vector-science-jet-pack.jpg",
    "sketch-science-welding.jpg",
)


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory, eval_media: Path) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    entity = {"id": "go-gopher", "name": "Go gopher", "kind": "character", "franchise": "Go"}
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": [entity]}))
    shutil.copytree(eval_media / "refs" / "go-gopher", root / "refs" / "go-gopher")
    (root / "cohort").mkdir()
    for name in LOOK_ALIKES:
        shutil.copyfile(eval_media / "cases" / "lookalikes" / name, root / "cohort" / name)
    return root


@pytest.fixture(scope="module")
def gallery(gallery_dir: Path, models: Models) -> Gallery:
    return build_gallery(gallery_dir, models, SETTINGS, DECODE)


@pytest.fixture(scope="module")
def scorer(gallery: Gallery, models: Models) -> Scorer:
    return Scorer(gallery, models, SETTINGS)


def gopher(scorer: Scorer, path: Path, tmp_path: Path, *, mirror: bool = False) -> EntityScore:
    if mirror:  # a re-post, flipped: not the file the cohort holds
        flipped = tmp_path / f"flipped-{path.name}"
        Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)
        path = flipped
    result = scorer.score_frames(load_media(path, DECODE.limits, even_frames=2))
    return next(s for s in result.entities if s.entity_id == "go-gopher")


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_look_alike_in_the_cohort_scores_below_the_threshold(
    name: str, scorer: Scorer, eval_media: Path, tmp_path: Path
) -> None:
    found = gopher(scorer, eval_media / "cases" / "lookalikes" / name, tmp_path, mirror=True)
    assert not found.flagged and found.score < found.threshold
    best = found.evidence[0]
    # A re-post of the filed look-alike: nearer to itself in the cohort than to the gopher.
    assert best.cohort_nearest == f"cohort/{name}"
    assert best.raw_score is not None and best.cohort_score is not None
    assert best.cohort_score > best.raw_score


@pytest.mark.parametrize("name", DRAWINGS)
def test_the_characters_other_drawings_score_above_it(
    name: str, scorer: Scorer, eval_media: Path, tmp_path: Path
) -> None:
    found = gopher(scorer, eval_media / "cases" / "go-gopher" / name, tmp_path)
    assert found.flagged and found.score >= found.threshold
    best = found.evidence[0]
    assert best.signal == "visual" and best.score == found.score
    assert best.raw_score is not None and best.cohort_nearest is not None
    assert best.reference is not None and best.reference.startswith("refs/go-gopher/")


def test_the_built_gallery_carries_its_cohort(gallery: Gallery, tmp_path: Path) -> None:
    assert gallery.cohort is not None
    assert len(gallery.cohort.names) > 1000
    team = [n for n in gallery.cohort.names if n.startswith("cohort/")]
    assert sorted(set(team)) == sorted(f"cohort/{name}" for name in LOOK_ALIKES)
    assert len(team) > len(LOOK_ALIKES)  # each look-alike whole and in its regions
    gallery.save(tmp_path / "built")
    loaded = Gallery.load(tmp_path / "built")
    assert loaded.version == gallery.version and loaded.cohort is not None
    np.testing.assert_array_equal(loaded.cohort.embeddings, gallery.cohort.embeddings)


def test_a_cohort_file_that_does_not_decode_is_refused_by_name(
    gallery_dir: Path, tmp_path: Path, models: Models
) -> None:
    broken = tmp_path / "g"
    shutil.copytree(gallery_dir, broken)
    (broken / "cohort" / "other-studio.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    with pytest.raises(CohortError, match=r"cohort file .*other-studio\.png"):
        build_gallery(broken, models, SETTINGS, DECODE)

"""Captions matched by meaning: a caption that describes an entity without naming it may tip a
near-threshold picture match, never flags alone; thresholds come from ordinary captions and the
other entities' descriptions; any caption, in any script and of any length, is read safely."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitor.errors import GalleryNotBuiltError
from monitor.likeness.captions import MAX_PIECES, caption_pieces, everyday_captions
from monitor.likeness.embedders.text import SentenceEmbedder
from monitor.likeness.gallery.build import describe_entities
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.gallery.calibrate import DEFAULT_THRESHOLDS, calibrate
from monitor.likeness.scoring import EntityScore, Scorer
from monitor.likeness.settings import LikenessSettings
from tests.likeness.test_scoring_rules import MODELS, RED, entry, frames, near_miss, picture

ROBOT = "a small red cartoon robot with a round head, one antenna and big round eyes"
KNIGHT = "a tall knight in silver armour riding a black horse through a burning village"
DESCRIBING = "omg the tiny crimson toon robot with an antenna on its round little head is back"
EVERYDAY = "making pancakes with my kids on a lazy sunday morning"


@pytest.fixture(scope="module")
def text(weight_file: Callable[[str], Path]) -> SentenceEmbedder:
    return SentenceEmbedder(weight_file("minilm-l6"))


def described_gallery(text: SentenceEmbedder) -> Gallery:
    toon = entry("red-toon", "character", RED, 0.95)
    toon = replace(toon, entity=toon.entity.model_copy(update={"descriptions": (ROBOT,)}))
    knight = entry("green-actor", "actor", [0, 255, 0], 0.9)
    knight = replace(knight, entity=knight.entity.model_copy(update={"descriptions": (KNIGHT,)}))
    entities = {"red-toon": toon, "green-actor": knight}
    models = replace(MODELS, text_embedder=text)
    gallery = Gallery(
        "content",
        models.versions,
        {},
        entities,
        [],
        captions=describe_entities([e.entity for e in entities.values()], models),
    )
    # the captions' thresholds calibrated; the pictures' kept as set above
    return replace(calibrate(gallery, 0.01), entities=entities)


@pytest.fixture(scope="module")
def scorer(text: SentenceEmbedder) -> Scorer:
    gallery = described_gallery(text)
    settings = LikenessSettings(region_grids=(2,), caption_margin=0.05)
    return Scorer(gallery, replace(MODELS, text_embedder=text), settings)


def toon(scorer: Scorer, image: np.ndarray, caption: str | None) -> EntityScore:
    result = scorer.score_frames(frames(image), caption=caption)
    return next(s for s in result.entities if s.entity_id == "red-toon")


def test_a_caption_that_describes_the_character_tips_a_near_threshold_match_over(
    scorer: Scorer,
) -> None:
    plain = toon(scorer, near_miss(), None)
    described = toon(scorer, near_miss(), f"new upload!! {DESCRIBING}. #toons #fyp")
    assert not plain.flagged and described.flagged and described.caption_alias is None
    [evidence] = [e for e in described.evidence if e.signal == "caption"]
    assert evidence.region == "described" and evidence.reference == ROBOT
    assert evidence.text == DESCRIBING + "."
    assert evidence.threshold is not None and evidence.score >= evidence.threshold


def test_a_describing_caption_alone_never_flags(scorer: Scorer) -> None:
    blue = toon(scorer, picture([0, 0, 255]), DESCRIBING)
    assert not blue.flagged
    assert any(e.region == "described" for e in blue.evidence), "the reviewer still sees why"


def test_an_ordinary_caption_or_another_entitys_description_does_not_tip_it(
    scorer: Scorer,
) -> None:
    for caption in (
        EVERYDAY,
        "a knight in shining silver armour on a black horse, village on fire",
    ):
        score = toon(scorer, near_miss(), caption)
        assert not score.flagged and not any(e.signal == "caption" for e in score.evidence)


@pytest.mark.parametrize(
    "caption",
    [
        "x" * 50_000,
        "\u65e5\u672c\u8a9e\u306e\u30ad\u30e3\u30d7\u30b7\u30e7\u30f3\u3002" * 2000,
        "\U0001f525\U0001f525\U0001f525",
        "#" * 100,
        ". ! ? | \n" * 500,
        "",
    ],
    ids=["50k letters", "Japanese, long", "emoji only", "hashes only", "separators", "empty"],
)
def test_any_caption_is_read_without_error(scorer: Scorer, caption: str) -> None:
    score = toon(scorer, near_miss(), caption)
    assert not score.flagged


def test_a_caption_is_read_as_sentences_then_its_hashtags_as_words() -> None:
    assert caption_pieces(
        "Look!!! A tall pale creature. 80s vibes \U0001f525 #PaleCreature #80s"
    ) == [
        "Look!!!",
        "A tall pale creature.",
        "80s vibes \U0001f525",
        "Pale Creature 80s",
    ]
    assert len(caption_pieces(". ".join(f"sentence number {i}" for i in range(100)))) == MAX_PIECES
    assert caption_pieces(None) == [] and caption_pieces("\U0001f525 42 !") == []


def test_thresholds_are_calibrated_from_ordinary_captions_and_other_entities_sentences(
    text: SentenceEmbedder,
) -> None:
    gallery = described_gallery(text)
    assert gallery.captions is not None
    robot = gallery.captions.entities["red-toon"]
    assert robot.sentences == (ROBOT, "red toon", "redguy")
    assert robot.threshold.source == "calibrated"
    assert robot.threshold.negatives == len(everyday_captions()) + 3
    assert robot.threshold.value >= DEFAULT_THRESHOLDS["caption"]
    twin = replace(
        gallery.entities["green-actor"],
        entity=gallery.entities["green-actor"].entity.model_copy(
            update={"descriptions": (ROBOT.replace("small", "little"),)}
        ),
    )
    models = replace(MODELS, text_embedder=text)
    entities = {**gallery.entities, "green-actor": twin}
    crowded = calibrate(
        replace(
            gallery,
            entities=entities,
            captions=describe_entities([e.entity for e in entities.values()], models),
        ),
        0.01,
    )
    assert crowded.captions is not None
    assert crowded.captions.entities["red-toon"].threshold.value > robot.threshold.value, (
        "another entity described alike raises the bar: its description must not lift this one"
    )


def test_captions_are_saved_with_the_gallery_and_change_its_version(
    text: SentenceEmbedder, tmp_path: Path
) -> None:
    gallery = described_gallery(text)
    gallery.save(tmp_path / "built")
    loaded = Gallery.load(tmp_path / "built")
    assert loaded.captions is not None and gallery.captions is not None
    assert loaded.version == gallery.version
    assert loaded.captions.entities["red-toon"].sentences == (ROBOT, "red toon", "redguy")
    np.testing.assert_array_equal(loaded.captions.everyday, gallery.captions.everyday)
    assert replace(gallery, captions=None).version != gallery.version

    index = tmp_path / "built" / "gallery.json"
    document = json.loads(index.read_text())
    document["captions"]["entities"]["red-toon"]["sentences"].append("one too many")
    index.write_text(json.dumps(document))
    with pytest.raises(GalleryNotBuiltError, match="3 vectors"):
        Gallery.load(tmp_path / "built")


def test_a_gallery_embedded_by_another_text_model_is_matched_by_name_only(
    text: SentenceEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    gallery = described_gallery(text)
    assert gallery.captions is not None
    other = replace(gallery, captions=replace(gallery.captions, model="another-model"))
    with caplog.at_level(logging.WARNING):
        scorer = Scorer(
            other, replace(MODELS, text_embedder=text), LikenessSettings(region_grids=(2,))
        )
    assert "matched by name only" in caplog.text
    assert not toon(scorer, near_miss(), DESCRIBING).flagged
    assert toon(scorer, near_miss(), "redguy is back").flagged


def test_the_calibration_captions_share_no_line_with_the_caption_evaluation() -> None:
    """Evaluation cases stay out of what the engine calibrates on."""
    folded = {" ".join(line.casefold().split()) for line in everyday_captions()}
    cases = json.loads((Path(__file__).parents[2] / "bench/captions/eval.json").read_text())
    evaluated = {" ".join(case["text"].casefold().split()) for case in cases["cases"]}
    assert len(folded) >= 200 and not folded & evaluated

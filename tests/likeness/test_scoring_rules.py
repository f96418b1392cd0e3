"""The scorer's rules, with tiny deterministic embedders plugged into the model seams.

A picture's "visual embedding" here is its mean colour and a "face" is a bright square: the
rules under test (thresholds, the caption's limited say, evidence, batching) do not depend on
what the vectors mean, and these embedders make each case exact and instant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from monitor.config import LikenessSettings
from monitor.likeness.embedders.base import (
    Box,
    DetectedFace,
    Embeddings,
    FaceDetector,
    FaceEmbedder,
    ImageEmbedder,
)
from monitor.likeness.gallery.built import EntityGallery, Gallery, Threshold
from monitor.likeness.gallery.entities import Entity
from monitor.likeness.models import Models
from monitor.likeness.scoring import Scorer
from monitor.media.frames import Frame, RGBImage


def _unit(rows: np.ndarray) -> Embeddings:
    rows = rows.astype(np.float32) + 1e-6
    normalised: Embeddings = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


class MeanColour(ImageEmbedder):
    name, dim = "mean-colour", 3

    def embed(self, images: Sequence[RGBImage]) -> Embeddings:
        return _unit(np.stack([image.reshape(-1, 3).mean(axis=0) for image in images]))


class WhiteSquares(FaceDetector):
    """A 'face' is the bounding box of pure-white pixels."""

    name = "white-squares"

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        ys, xs = np.nonzero((image == 255).all(axis=2))
        if not len(xs):
            return []
        box = Box(int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
        return [DetectedFace(box, 1.0, np.zeros((5, 2), np.float32))]


class BorderColour(FaceEmbedder):
    """A face's 'identity' is the colour just left of it."""

    name, dim = "border-colour", 3

    def embed_many(self, items: Sequence[tuple[RGBImage, DetectedFace]]) -> Embeddings:
        return _unit(np.stack([image[face.box.y, max(face.box.x - 1, 0)] for image, face in items]))


MODELS = Models(WhiteSquares(), BorderColour(), MeanColour(), "cpu")
RED, GREEN, BLUE = [255, 0, 0], [0, 255, 0], [0, 0, 255]


def entry(entity_id: str, kind: str, colour: list[int], threshold: float) -> EntityGallery:
    entity = Entity(id=entity_id, name=entity_id.replace("-", " "), kind=kind, aliases=("redguy",))  # type: ignore[arg-type]
    return EntityGallery(
        entity,
        _unit(np.asarray([colour])),
        [f"refs/{entity_id}/1.png"],
        Threshold(threshold, "calibrated"),
    )


@pytest.fixture
def scorer() -> Scorer:
    gallery = Gallery(
        "content",
        MODELS.versions,
        {},
        {
            "red-toon": entry("red-toon", "character", RED, 0.95),
            "green-actor": entry("green-actor", "actor", GREEN, 0.9),
        },
        [],
    )
    return Scorer(gallery, MODELS, LikenessSettings(region_grids=(2,), caption_margin=0.05))


def picture(colour: list[int], size: int = 64) -> RGBImage:
    return np.full((size, size, 3), colour, np.uint8)


def frames(*images: RGBImage) -> list[Frame]:
    return [Frame(image, time=i * 0.5, index=i) for i, image in enumerate(images)]


def test_a_frame_matching_a_character_is_flagged_with_its_time_and_region(scorer: Scorer) -> None:
    scene = picture(BLUE, 128)
    scene[64:, 64:] = RED  # the character fills the bottom-right quarter only
    result = scorer.score_frames(frames(picture(BLUE), scene))
    toon = next(s for s in result.entities if s.entity_id == "red-toon")
    assert toon.flagged and toon.score >= 0.99
    best = toon.evidence[0]
    assert (best.signal, best.region, best.frame_time, best.frame_index) == (
        "visual",
        "grid2:r1c1",
        0.5,
        1,
    )
    assert best.box == Box(64, 64, 64, 64)
    assert best.reference == "refs/red-toon/1.png"


def test_an_actor_is_matched_by_face_with_its_box(scorer: Scorer) -> None:
    image = picture(GREEN)
    image[10:20, 30:40] = 255
    actor = next(
        s for s in scorer.score_frames(frames(image)).entities if s.entity_id == "green-actor"
    )
    assert actor.flagged and actor.evidence[0].signal == "face"
    assert actor.evidence[0].box == Box(30, 10, 10, 10)


def test_a_frame_without_faces_gives_actors_a_zero_score(scorer: Scorer) -> None:
    actor = next(
        s for s in scorer.score_frames(frames(picture(GREEN))).entities if s.kind == "actor"
    )
    assert actor.score == 0.0 and not actor.flagged and actor.evidence == ()


def near_miss() -> RGBImage:
    """Mostly red with some green: cosine to pure red about 0.93, under the 0.95 threshold."""
    return picture([255, 100, 0])


def test_a_caption_tips_a_near_threshold_match_over(scorer: Scorer) -> None:
    plain = next(
        s for s in scorer.score_frames(frames(near_miss())).entities if s.entity_id == "red-toon"
    )
    named = next(
        s
        for s in scorer.score_frames(frames(near_miss()), caption="RedGuy is back").entities
        if s.entity_id == "red-toon"
    )
    assert 0.90 <= plain.score < 0.95 and not plain.flagged
    assert named.flagged and named.caption_alias == "redguy"
    assert [e.signal for e in named.evidence][-1] == "caption"


def test_a_caption_alone_never_flags(scorer: Scorer) -> None:
    result = scorer.score_frames(frames(picture(BLUE)), caption="red toon redguy red toon")
    toon = next(s for s in result.entities if s.entity_id == "red-toon")
    assert toon.caption_alias is not None and not toon.flagged


def test_results_are_ordered_by_margin_over_threshold(scorer: Scorer) -> None:
    result = scorer.score_frames(frames(picture(RED)))
    margins = [s.margin for s in result.entities]
    assert margins == sorted(margins, reverse=True)
    assert result.entities[0].entity_id == "red-toon"
    assert [s.entity_id for s in result.flagged] == ["red-toon"]


def test_clips_in_one_batch_do_not_leak_into_each_other(scorer: Scorer) -> None:
    red_clip, blue_clip = frames(picture(RED)), frames(picture(BLUE), picture(BLUE))
    red, blue = scorer.score_many([(red_clip, None), (blue_clip, None)])
    assert [s.entity_id for s in red.flagged] == ["red-toon"]
    assert blue.flagged == [] and blue.frames == 2


def test_an_empty_clip_scores_zero_everywhere(scorer: Scorer) -> None:
    result = scorer.score_frames([])
    assert result.frames == 0 and all(s.score == 0.0 and not s.flagged for s in result.entities)

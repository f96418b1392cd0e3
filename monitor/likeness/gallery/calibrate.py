"""Per-entity thresholds set from negatives for a target false-positive rate, not guessed.

The negatives of an entity are the gallery's ``negatives/`` media and the references of every
other entity with the same signal (another actor's photo is exactly the kind of face that must
not match); a negative filed under ``negatives/dismissed/<entity_id>/`` by the review loop is
a negative of that entity only (a frame wrongly flagged as one entity may well show another).
Each negative file counts once, by its best-matching face or view, because the
rate that matters is of files wrongly flagged, not of regions. With fewer negatives than
``1 / target_fpr`` that means a threshold just above the highest negative, plus a margin: a
small calibration set sees only part of the world.

Visual scores are calibrated as they are scored: as margins over the gallery's cohort
(``cohort.normalise``), so a threshold and a score are always on one scale.

One reviewer's dismissal must not move a threshold far: a true clip dismissed by mistake
would otherwise lift its entity above every later true copy (seen: 0.55 to 0.86 from one
click). The dismissed clip and its copies are already suppressed by fingerprint, so the
threshold only has to absorb near misses: dismissals may raise an entity's threshold by at
most ``DISMISSAL_MAX_RAISE`` above what the other negatives give.

Captions by meaning are calibrated the same way, on text: an entity's negatives are the
bundled everyday captions (``data/everyday_captions.txt``) and every sentence that describes
or names another entity of the gallery (a caption describing another character must not lift
this one), each scored by its best similarity to the entity's own sentences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from monitor.likeness.embedders.base import Embeddings
from monitor.likeness.gallery.built import CaptionGallery, EntityGallery, Gallery, Threshold
from monitor.likeness.gallery.folder import negative_owner

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DISMISSAL_MAX_RAISE",
    "MARGIN",
    "calibrate",
    "caption_negative_scores",
    "negative_scores",
]

DEFAULT_THRESHOLDS = {"face": 0.50, "visual": 0.10, "caption": 0.30}
"""Used when an entity has no negatives at all; also the lowest a calibration may go.

The visual floor is on the cohort margin: 0.10 is the median best margin that another
character of the cohort reaches against a one-picture entity (``bench/cohort_research.py``
splits the cohort in two, one half normalising, the other playing entities and queries):
below it, "nearer than the usual cartoons" is what a different character gets by chance.

The caption floor is where all-MiniLM-L6-v2's similarities between unrelated English sentences
end: ordinary captions score 0.06-0.11 against a written character description, a near miss
(a generic monster costume against a described creature) 0.40 (``../shared/MODELS.md``);
below 0.30 two sentences barely share a topic."""

MARGIN = 0.02

DISMISSAL_MAX_RAISE = 0.05

_Score = Callable[[Embeddings], npt.NDArray[np.float32]]
"""Rows in, each row's best score against one entity out."""


def _scorer(gallery: Gallery, target: EntityGallery) -> _Score:
    """How a row scores against ``target``: plain cosine, or the cohort margin for visuals."""
    if target.signal == "visual" and gallery.cohort is not None:
        normaliser = gallery.cohort.normaliser
        references = normaliser.transform(target.embeddings)
        return lambda rows: normaliser.margins(normaliser.transform(rows), references).max(axis=1)
    return lambda rows: (rows @ target.embeddings.T).max(axis=1)


def _best_per_item(
    queries: Embeddings, items: npt.NDArray[np.int32], score: _Score
) -> npt.NDArray[np.float32]:
    if len(queries) == 0:
        return np.zeros(0, np.float32)
    best_row = score(queries)
    out = np.full(int(items.max()) + 1, -np.inf, np.float32)
    np.maximum.at(out, items, best_row)
    return out[np.isfinite(out)]


def negative_scores(
    gallery: Gallery, target: EntityGallery, *, dismissed: bool = True
) -> npt.NDArray[np.float32]:
    """The best score against ``target`` of every negative file and every other reference
    (with ``dismissed``, also the frames dismissed for ``target``)."""
    score = _scorer(gallery, target)
    scores = []
    negatives = gallery.negatives.get(target.signal)
    if negatives is not None:
        owners = [negative_owner(name) for name in gallery.negative_files]
        wanted = (None, target.entity.id) if dismissed else (None,)
        mine = np.asarray([owner in wanted for owner in owners], bool)
        rows = mine[negatives.items]
        scores.append(_best_per_item(negatives.embeddings[rows], negatives.items[rows], score))
    for other in gallery.entities.values():
        if other.entity.id == target.entity.id or other.signal != target.signal:
            continue
        _, items = np.unique(np.asarray(other.references), return_inverse=True)
        scores.append(_best_per_item(other.embeddings, items.astype(np.int32), score))
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def _cut(negatives: npt.NDArray[np.float32], floor: float, target_fpr: float) -> float:
    if not len(negatives):
        return floor
    allowed = math.floor(target_fpr * len(negatives))
    cut = float(np.sort(negatives)[::-1][min(allowed, len(negatives) - 1)])
    return max(floor, cut + MARGIN)


def _threshold_for(gallery: Gallery, entry: EntityGallery, target_fpr: float) -> Threshold:
    negatives = negative_scores(gallery, entry)
    floor = DEFAULT_THRESHOLDS[entry.signal]
    highest = float(negatives.max()) if len(negatives) else None
    if entry.entity.threshold is not None:
        return Threshold(entry.entity.threshold, "entities.yaml", len(negatives), highest)
    if not len(negatives):
        return Threshold(floor, "default", 0, None)
    value = _cut(negatives, floor, target_fpr)
    if any(negative_owner(name) == entry.entity.id for name in gallery.negative_files):
        without = _cut(negative_scores(gallery, entry, dismissed=False), floor, target_fpr)
        value = min(value, without + DISMISSAL_MAX_RAISE)
    return Threshold(round(min(value, 0.999), 4), "calibrated", len(negatives), highest)


def caption_negative_scores(captions: CaptionGallery, entity_id: str) -> npt.NDArray[np.float32]:
    """Each negative sentence's best similarity to ``entity_id``'s own sentences."""
    own = captions.entities[entity_id].embeddings
    others = [d.embeddings for other, d in captions.entities.items() if other != entity_id]
    negatives = np.concatenate([captions.everyday, *others]) if len(own) else own
    if not len(own) or not len(negatives):
        return np.zeros(0, np.float32)
    return np.asarray((negatives @ own.T).max(axis=1), np.float32)


def _caption_threshold(captions: CaptionGallery, entity_id: str, target_fpr: float) -> Threshold:
    negatives = caption_negative_scores(captions, entity_id)
    floor = DEFAULT_THRESHOLDS["caption"]
    if not len(negatives):
        return Threshold(floor, "default", 0, None)
    value = _cut(negatives, floor, target_fpr)
    return Threshold(
        round(min(value, 0.999), 4), "calibrated", len(negatives), float(negatives.max())
    )


def calibrate(gallery: Gallery, target_fpr: float) -> Gallery:
    """A copy of ``gallery`` with every entity's thresholds set for ``target_fpr``."""
    entities = {
        entity_id: replace(entry, threshold=_threshold_for(gallery, entry, target_fpr))
        for entity_id, entry in gallery.entities.items()
    }
    captions = gallery.captions
    if captions is not None:
        described = {
            entity_id: replace(d, threshold=_caption_threshold(captions, entity_id, target_fpr))
            for entity_id, d in captions.entities.items()
        }
        captions = replace(captions, entities=described)
    return replace(gallery, entities=entities, target_fpr=target_fpr, captions=captions)

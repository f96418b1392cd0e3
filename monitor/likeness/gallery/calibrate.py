"""Per-entity thresholds set from negatives for a target false-positive rate, not guessed.

The negatives of an entity are the gallery's ``negatives/`` media and the references of every
other entity with the same signal (another actor's photo is exactly the kind of face that must
not match); a negative filed under ``negatives/dismissed/<entity_id>/`` by the review loop is
a negative of that entity only (a frame wrongly flagged as one entity may well show another).
Each negative file counts once, by its best-matching face or view, because the
rate that matters is of files wrongly flagged, not of regions. With fewer negatives than
``1 / target_fpr`` that means a threshold just above the highest negative, plus a margin: a
small calibration set sees only part of the world.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from monitor.likeness.embedders.base import Embeddings
from monitor.likeness.gallery.folder import negative_owner
from monitor.likeness.gallery.store import EntityGallery, Gallery, Threshold

__all__ = ["DEFAULT_THRESHOLDS", "MARGIN", "calibrate", "negative_scores"]

DEFAULT_THRESHOLDS = {"face": 0.50, "visual": 0.55}
"""Used when an entity has no negatives at all; also the lowest a calibration may go."""

MARGIN = 0.02


def _best_per_item(
    queries: Embeddings, items: npt.NDArray[np.int32], refs: Embeddings
) -> npt.NDArray[np.float32]:
    if len(queries) == 0 or len(refs) == 0:
        return np.zeros(0, np.float32)
    best_row = (queries @ refs.T).max(axis=1)
    out = np.full(int(items.max()) + 1, -1.0, np.float32)
    np.maximum.at(out, items, best_row)
    return out[out > -1.0]


def negative_scores(gallery: Gallery, target: EntityGallery) -> npt.NDArray[np.float32]:
    """The best score against ``target`` of every negative file and every other reference."""
    scores = []
    negatives = gallery.negatives.get(target.signal)
    if negatives is not None:
        mine = np.asarray(
            [negative_owner(name) in (None, target.entity.id) for name in gallery.negative_files],
            bool,
        )
        rows = mine[negatives.items]
        scores.append(
            _best_per_item(negatives.embeddings[rows], negatives.items[rows], target.embeddings)
        )
    for other in gallery.entities.values():
        if other.entity.id == target.entity.id or other.signal != target.signal:
            continue
        _, items = np.unique(np.asarray(other.references), return_inverse=True)
        scores.append(_best_per_item(other.embeddings, items.astype(np.int32), target.embeddings))
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def _threshold_for(gallery: Gallery, entry: EntityGallery, target_fpr: float) -> Threshold:
    negatives = negative_scores(gallery, entry)
    floor = DEFAULT_THRESHOLDS[entry.signal]
    highest = float(negatives.max()) if len(negatives) else None
    if entry.entity.threshold is not None:
        return Threshold(entry.entity.threshold, "entities.yaml", len(negatives), highest)
    if not len(negatives):
        return Threshold(floor, "default", 0, None)
    allowed = math.floor(target_fpr * len(negatives))
    cut = float(np.sort(negatives)[::-1][min(allowed, len(negatives) - 1)])
    value = round(min(max(floor, cut + MARGIN), 0.999), 4)
    return Threshold(value, "calibrated", len(negatives), highest)


def calibrate(gallery: Gallery, target_fpr: float) -> Gallery:
    """A copy of ``gallery`` with every entity's threshold set for ``target_fpr``."""
    entities = {
        entity_id: replace(entry, threshold=_threshold_for(gallery, entry, target_fpr))
        for entity_id, entry in gallery.entities.items()
    }
    return replace(gallery, entities=entities, target_fpr=target_fpr)

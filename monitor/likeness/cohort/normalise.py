"""Visual scores relative to a cohort of other characters, not absolute.

A raw cosine between ImageNet features says "drawn, round, cute" as loudly as "this
character": every flat cartoon animal lands near a drawn mascot's references. Two things
measured in ``bench/cohort_research.py`` turn the question into "more like this entity than
like characters in general?":

- **Whitening on the cohort.** Embeddings are centred on the cohort's mean and each principal
  direction is scaled by the cohort's spread along it (ridge-regularised by the mean variance,
  so that nearly empty directions are not blown up into noise). What every cartoon shares
  (outlines, flat colour, white ground) varies little across the cohort and is scaled down;
  what tells one character from another is scaled up.
- **A margin over the cohort.** A query view's score for an entity is its best whitened
  cosine to the entity's references minus the mean of its ``k`` best to the cohort: how much
  nearer the entity is than the characters the view is most like anyway. The same margin
  computed for every view, negative file and reference is what calibration sets thresholds
  on, so scores and thresholds stay on one scale.

Both are a matrix product per query view against statistics fitted once at gallery build,
with two knobs (``shrink``, ``k``), set as the README says and never per dev file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.errors import CohortError
from monitor.likeness.embedders.base import Embeddings

__all__ = ["COHORT_TOP_K", "WHITEN_SHRINK", "CohortNormaliser", "CohortScores"]

WHITEN_SHRINK = 1.0
"""Ridge added to every direction's variance, as a multiple of the mean variance."""

COHORT_TOP_K = 10
"""How many of its nearest cohort members a view is compared with."""

_MIN_COHORT = 2 * COHORT_TOP_K


@dataclass(frozen=True)
class CohortScores:
    """Per query row: the cohort baseline subtracted from its scores, and its nearest member
    (nearest in the whitened space the scores live in)."""

    baseline: npt.NDArray[np.float32]
    nearest: npt.NDArray[np.int64]


class CohortNormaliser:
    """Whitening and the cohort baseline, fitted on the cohort's embeddings."""

    def __init__(
        self,
        cohort: Embeddings,
        names: Sequence[str],
        *,
        shrink: float = WHITEN_SHRINK,
        top_k: int = COHORT_TOP_K,
    ) -> None:
        if len(cohort) != len(names):
            raise CohortError(f"cohort has {len(cohort)} embeddings but {len(names)} names")
        if len(cohort) < max(_MIN_COHORT, top_k + 1):
            raise CohortError(
                f"a cohort needs at least {max(_MIN_COHORT, top_k + 1)} members, got {len(cohort)}"
            )
        data = np.asarray(cohort, np.float64)
        mean = data.mean(axis=0)
        _, singular, directions = np.linalg.svd(data - mean, full_matrices=False)
        variance = singular**2 / len(data)
        ridge = shrink * float(variance.mean())
        self.projection = (directions.T / np.sqrt(variance + ridge)).astype(np.float32)
        self.mean = mean.astype(np.float32)
        self.names = tuple(names)
        self.top_k = top_k
        self.plain = np.asarray(cohort, np.float32)
        self.cohort = self.transform(cohort)

    def transform(self, rows: Embeddings) -> Embeddings:
        """Whitened, unit-length rows (the space every normalised score lives in)."""
        if len(rows) == 0:
            return np.zeros((0, self.projection.shape[1]), np.float32)
        out = (np.asarray(rows, np.float32) - self.mean) @ self.projection
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: Embeddings = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def against_cohort(self, whitened: Embeddings) -> CohortScores:
        """Each whitened row's baseline (mean of its ``top_k`` best cohort cosines)."""
        if len(whitened) == 0:
            return CohortScores(np.zeros(0, np.float32), np.zeros(0, np.int64))
        similarity = whitened @ self.cohort.T
        best = np.partition(similarity, -self.top_k, axis=1)[:, -self.top_k :]
        return CohortScores(
            baseline=best.mean(axis=1).astype(np.float32), nearest=similarity.argmax(axis=1)
        )

    def margins(
        self, whitened: Embeddings, references: Embeddings, against: CohortScores | None = None
    ) -> npt.NDArray[np.float32]:
        """``(rows, references)``: whitened cosines minus each row's cohort baseline
        (``against``, when the caller has it already)."""
        if against is None:
            against = self.against_cohort(whitened)
        return (whitened @ references.T - against.baseline[:, None]).astype(np.float32)

    def nearest_cosine(self, plain: Embeddings, against: CohortScores) -> npt.NDArray[np.float32]:
        """Each row's plain cosine to its nearest member: beside a plain cosine to a
        reference, what a reviewer can weigh."""
        rows = np.asarray(plain, np.float32)
        cosine: npt.NDArray[np.float32] = np.einsum("ij,ij->i", rows, self.plain[against.nearest])
        return cosine

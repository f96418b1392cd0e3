"""How well a gallery and its models do on labelled cases.

A case is a file and the entities it shows (none, for a negative). For every (case, entity)
pair the scorer's decision is compared with the label: per entity the true- and false-positive
rates at the gallery's thresholds, precision, and average precision over the ranking of every
case by that entity's score (threshold-free: it says whether better thresholds could exist).
The manifest format is that of ``shared/eval-media/MANIFEST.json``: ``cases`` with ``path`` and
``expect``, paths relative to the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import GalleryFormatError, MediaError
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.scoring import ClipScore, Scorer
from monitor.media import load_media
from monitor.media.frames import Frame
from monitor.media.settings import DecodeSettings

__all__ = [
    "CaptionCase",
    "CaptionReport",
    "Case",
    "EntityMetrics",
    "EvalReport",
    "evaluate",
    "evaluate_captions",
    "load_caption_cases",
    "load_cases",
    "summarise",
]


@dataclass(frozen=True)
class Case:
    path: Path
    expect: frozenset[str]
    caption: str | None = None


def load_cases(manifest: Path) -> list[Case]:
    try:
        document = json.loads(manifest.read_text())
        raw_cases = document["cases"] if isinstance(document, dict) else document
        return [
            Case(
                path=(manifest.parent / raw["path"]).resolve(),
                expect=frozenset(raw.get("expect", ())),
                caption=raw.get("caption"),
            )
            for raw in raw_cases
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GalleryFormatError(f"{manifest}: not a cases manifest: {exc}") from None


@dataclass(frozen=True)
class EntityMetrics:
    entity_id: str
    kind: str
    threshold: float
    positives: int
    negatives: int
    true_positives: int
    false_positives: int
    tpr: float
    fpr: float
    precision: float
    average_precision: float


@dataclass
class EvalReport:
    entities: list[EntityMetrics]
    by_kind: dict[str, dict[str, float]]
    overall: dict[str, float]
    errors: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    if not labels.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(float)
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at * hits).sum() / hits.sum())


def _rates(tp: int, fp: int, positives: int, negatives: int) -> dict[str, float]:
    return {
        "positives": positives,
        "negatives": negatives,
        "tpr": tp / positives if positives else float("nan"),
        "fpr": fp / negatives if negatives else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
    }


def summarise(
    cases: Sequence[Case], results: Sequence[ClipScore | None], gallery: Gallery
) -> EvalReport:
    """Compare each result with its case's labels (a None result: the media failed)."""
    report = EvalReport(entities=[], by_kind={}, overall={})
    totals: dict[str, list[int]] = {}
    aps: dict[str, list[float]] = {}
    for entity_id, entry in gallery.entities.items():
        scores = np.zeros(len(cases))
        flagged = np.zeros(len(cases), bool)
        for i, result in enumerate(results):
            match = (
                next((s for s in result.entities if s.entity_id == entity_id), None)
                if result
                else None
            )
            if match is not None:
                scores[i], flagged[i] = match.score, match.flagged
        labels = np.array([entity_id in case.expect for case in cases])
        tp, fp = int((flagged & labels).sum()), int((flagged & ~labels).sum())
        pos, neg = int(labels.sum()), int((~labels).sum())
        rates = _rates(tp, fp, pos, neg)
        ap = _average_precision(scores, labels)
        report.entities.append(
            EntityMetrics(
                entity_id,
                entry.entity.kind,
                entry.threshold.value,
                pos,
                neg,
                tp,
                fp,
                rates["tpr"],
                rates["fpr"],
                rates["precision"],
                ap,
            )
        )
        for key in (entry.entity.kind, "overall"):
            acc = totals.setdefault(key, [0, 0, 0, 0])
            for slot, value in enumerate((tp, fp, pos, neg)):
                acc[slot] += value
            if not np.isnan(ap):
                aps.setdefault(key, []).append(ap)
        for i, case in enumerate(cases):
            if flagged[i] and not labels[i]:
                report.false_positives.append(
                    f"{case.path.name} flagged as {entity_id} ({scores[i]:.3f})"
                )
            elif labels[i] and not flagged[i]:
                report.misses.append(f"{case.path.name} missed {entity_id} ({scores[i]:.3f})")
    for key, (tp, fp, pos, neg) in totals.items():
        figures = _rates(tp, fp, pos, neg) | {"mean_ap": float(np.mean(aps.get(key, [np.nan])))}
        if key == "overall":
            report.overall = figures
        else:
            report.by_kind[key] = figures
    return report


def evaluate(
    scorer: Scorer,
    cases: Sequence[Case],
    decode: DecodeSettings,
    *,
    batch: int = 8,
    progress: Callable[[Case], None] | None = None,
) -> EvalReport:
    results: list[ClipScore | None] = []
    errors: list[str] = []
    for start in range(0, len(cases), batch):
        chunk = cases[start : start + batch]
        loaded: list[tuple[int, list[Frame], str | None]] = []
        for offset, case in enumerate(chunk):
            try:
                frames = load_media(case.path, decode.limits, even_frames=decode.even_frames)
                loaded.append((offset, frames, case.caption))
            except MediaError as exc:
                errors.append(str(exc))
        scored = scorer.score_many([(frames, caption) for _, frames, caption in loaded])
        by_offset = {offset: result for (offset, _, _), result in zip(loaded, scored, strict=True)}
        for offset, case in enumerate(chunk):
            results.append(by_offset.get(offset))
            if progress:
                progress(case)
    report = summarise(cases, results, scorer.gallery)
    report.errors = errors
    return report


@dataclass(frozen=True)
class CaptionCase:
    """A caption and the entity it describes without naming it (None: it describes none)."""

    text: str
    entity: str | None


def load_caption_cases(path: Path) -> list[CaptionCase]:
    """``{"cases": [{"text": ..., "entity": id or null}, ...]}`` (``bench/captions/eval.json``)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [
            CaptionCase(str(case["text"]), None if case["entity"] is None else str(case["entity"]))
            for case in document["cases"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GalleryFormatError(f"{path}: not a caption case file: {exc}") from None


@dataclass
class CaptionReport:
    """Captions by meaning alone (no picture): per entity, the share of its describing
    captions matched (TPR) and of the other cases matched to it (FPR); overall, describing
    captions matched to their entity, to another one, and other captions matched to any."""

    entities: list[dict[str, Any]]
    overall: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_captions(scorer: Scorer, cases: Sequence[CaptionCase]) -> CaptionReport:
    """Each case's caption read as the scorer reads one (its pieces, by meaning)."""
    meanings = scorer.caption_meanings([case.text for case in cases])
    matched = [{e for e, m in found.items() if m.matched} for found in meanings]
    entities = []
    for entity_id in scorer.gallery.entities:
        labels = np.array([case.entity == entity_id for case in cases])
        hits = np.array([entity_id in found for found in matched])
        threshold = next((m[entity_id].threshold for m in meanings if entity_id in m), float("nan"))
        entities.append(
            {
                "entity_id": entity_id,
                "threshold": threshold,
                **_rates(
                    int((hits & labels).sum()),
                    int((hits & ~labels).sum()),
                    int(labels.sum()),
                    int((~labels).sum()),
                ),
            }
        )
    positives = [(case, found) for case, found in zip(cases, matched, strict=True) if case.entity]
    negatives = [found for case, found in zip(cases, matched, strict=True) if not case.entity]
    overall = {
        "positives": len(positives),
        "negatives": len(negatives),
        "tpr": _share(sum(case.entity in found for case, found in positives), len(positives)),
        "wrong_entity": _share(
            sum(bool(found - {case.entity}) for case, found in positives), len(positives)
        ),
        "fpr": _share(sum(bool(found) for found in negatives), len(negatives)),
    }
    return CaptionReport(entities, overall)


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")

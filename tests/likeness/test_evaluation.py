"""Evaluation arithmetic: rates at the thresholds, precision, and average precision of rankings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from monitor.errors import GalleryFormatError
from monitor.likeness.evaluation import Case, load_cases, summarise
from monitor.likeness.gallery.built import EntityGallery, Gallery, Threshold
from monitor.likeness.gallery.entities import Entity
from monitor.likeness.scoring import ClipScore, EntityScore


def gallery() -> Gallery:
    def entry(entity_id: str, kind: str) -> EntityGallery:
        entity = Entity(id=entity_id, name=entity_id, kind=kind)  # type: ignore[arg-type]
        return EntityGallery(entity, np.zeros((1, 4), np.float32), ["r"], Threshold(0.5, "default"))

    return Gallery(
        "c", {}, {}, {"ann": entry("ann", "actor"), "toon": entry("toon", "character")}, []
    )


def result(**scores: float) -> ClipScore:
    return ClipScore(
        entities=[
            EntityScore(
                name,
                name,
                "actor" if name == "ann" else "character",
                None,
                None,
                value,
                0.5,
                value >= 0.5,
                (),
            )
            for name, value in scores.items()
        ],
        gallery_version="v",
        models={},
        frames=1,
    )


def test_rates_precision_and_average_precision_per_entity_and_kind() -> None:
    cases = [
        Case(Path(f"{i}.jpg"), frozenset(expect))
        for i, expect in enumerate([{"ann"}, {"ann"}, set(), set(), {"toon"}])
    ]
    results = [
        result(ann=0.9, toon=0.1),  # hit
        result(ann=0.4, toon=0.1),  # miss, but ranked above case 3
        result(ann=0.6, toon=0.2),  # false positive
        result(ann=0.3, toon=0.1),
        None,  # media failed: counts as not flagged
    ]
    report = summarise(cases, results, gallery())
    ann = next(m for m in report.entities if m.entity_id == "ann")
    assert (ann.positives, ann.negatives, ann.true_positives, ann.false_positives) == (2, 3, 1, 1)
    assert ann.tpr == 0.5 and ann.fpr == pytest.approx(1 / 3) and ann.precision == 0.5
    # ranking: 0.9 (pos), 0.6 (neg), 0.4 (pos), 0.3, 0 -> AP = (1/1 + 2/3) / 2
    assert ann.average_precision == pytest.approx((1 + 2 / 3) / 2)
    toon = next(m for m in report.entities if m.entity_id == "toon")
    assert toon.tpr == 0.0 and toon.fpr == 0.0 and math.isnan(toon.precision)
    assert report.by_kind["actor"]["tpr"] == 0.5
    assert report.overall["positives"] == 3 and report.overall["tpr"] == pytest.approx(1 / 3)
    assert "2.jpg flagged as ann (0.600)" in report.false_positives
    assert "1.jpg missed ann (0.400)" in report.misses


def test_cases_load_from_an_eval_media_style_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {
                "cases": [
                    {"path": "a/b.jpg", "expect": ["x"]},
                    {"path": "c.mp4", "expect": [], "caption": "hi"},
                ]
            }
        )
    )
    first, second = load_cases(manifest)
    assert first.path == tmp_path / "a" / "b.jpg" and first.expect == {"x"}
    assert second.caption == "hi" and not second.expect


def test_a_broken_manifest_is_a_clear_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text("{")
    with pytest.raises(GalleryFormatError, match="not a cases manifest"):
        load_cases(manifest)

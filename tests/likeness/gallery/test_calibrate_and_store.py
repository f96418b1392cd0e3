"""Thresholds come from negatives; a built gallery round-trips through disk atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from monitor.errors import GalleryNotBuiltError
from monitor.likeness.gallery.built import EntityGallery, Gallery, NegativeSet, Threshold
from monitor.likeness.gallery.calibrate import (
    DEFAULT_THRESHOLDS,
    DISMISSAL_MAX_RAISE,
    MARGIN,
    calibrate,
)
from monitor.likeness.gallery.entities import Entity


def unit(*rows: list[float]) -> npt.NDArray[np.float32]:
    array = np.asarray(rows, np.float32)
    normalised: npt.NDArray[np.float32] = array / np.linalg.norm(array, axis=1, keepdims=True)
    return normalised


def entry(
    entity_id: str, kind: str, embeddings: np.ndarray, threshold: float | None = None
) -> EntityGallery:
    entity = Entity(id=entity_id, name=entity_id.title(), kind=kind, threshold=threshold)  # type: ignore[arg-type]
    refs = [f"refs/{entity_id}/{i}.jpg" for i in range(len(embeddings))]
    return EntityGallery(entity, embeddings, refs, Threshold(0.0, "default"))


def gallery(
    negatives: np.ndarray | None = None, items: list[int] | None = None, **extra: EntityGallery
) -> Gallery:
    entities = {
        "ann": entry("ann", "actor", unit([1, 0, 0, 0], [0.9, 0.1, 0, 0])),
        "bob": entry("bob", "actor", unit([0.6, 0.8, 0, 0])),
        "toon": entry("toon", "character", unit([0, 0, 1, 0])),
        **extra,
    }
    sets = {}
    if negatives is not None:
        sets["face"] = NegativeSet(negatives, np.asarray(items, np.int32))
    files = [f"negatives/n{i}.jpg" for i in range(max(items or [0]) + 1)]
    return Gallery("content", {"face": "f"}, {}, entities, files, sets)


def test_threshold_sits_just_above_the_best_negative_file() -> None:
    negatives = unit([0.7, 0.0, 0.0, 0.71], [0.0, 0.0, 0.0, 1.0], [0.8, 0.0, 0.6, 0.0])
    calibrated = calibrate(gallery(negatives, [0, 0, 1]), target_fpr=0.01)
    ann = calibrated.entities["ann"].threshold
    # Negatives of ann, one score per file: file 0 (its best row, 0.70), file 1 (0.80) and
    # bob's reference (0.685); the toon is a character and does not count.
    assert ann.source == "calibrated" and ann.negatives == 3
    assert ann.max_negative == pytest.approx(0.80, abs=1e-3)
    assert ann.value == pytest.approx(0.80 + MARGIN, abs=1e-3)


def test_a_looser_target_tolerates_the_top_negatives() -> None:
    negatives = unit(*([[1.0, 0.0, 0.0, 0.1 * i] for i in range(1, 11)]))
    strict = calibrate(gallery(negatives, list(range(10))), 0.01).entities["ann"].threshold
    loose = calibrate(gallery(negatives, list(range(10))), 0.2).entities["ann"].threshold
    assert loose.value < strict.value


def test_without_negatives_the_kind_default_applies_and_yaml_wins() -> None:
    calibrated = calibrate(gallery(toon2=entry("pinned", "actor", unit([0, 0, 0, 1]), 0.9)), 0.01)
    assert calibrated.entities["toon"].threshold == Threshold(
        DEFAULT_THRESHOLDS["visual"], "default"
    )
    assert calibrated.entities["toon2"].threshold.value == 0.9
    assert calibrated.entities["toon2"].threshold.source == "entities.yaml"


def test_a_negative_filed_by_a_dismissal_calibrates_only_its_own_entity() -> None:
    dismissed_for_bob = unit([0.95, 0.31, 0, 0])  # close to ann (0.95) and to bob (0.82)
    base = gallery(dismissed_for_bob, [0])
    files = ["negatives/dismissed/bob/0123456789abcdef0123.jpg"]
    scoped = Gallery(base.content, base.models, {}, base.entities, files, base.negatives)
    plain = calibrate(base, 0.01).entities  # filed as negatives/n0: a negative of everyone
    owned = calibrate(scoped, 0.01).entities
    assert owned["bob"].threshold.negatives == plain["bob"].threshold.negatives
    assert owned["bob"].threshold.value > calibrate(gallery(), 0.01).entities["bob"].threshold.value
    assert owned["ann"].threshold.negatives == plain["ann"].threshold.negatives - 1
    assert owned["ann"].threshold.value < plain["ann"].threshold.value


def test_one_dismissal_moves_a_threshold_at_most_a_little() -> None:
    # A true clip of bob dismissed by mistake: as near to bob as his own reference.
    dismissed_for_bob = unit([0.6, 0.8, 0, 0])
    base = gallery(dismissed_for_bob, [0])
    files = ["negatives/dismissed/bob/0123456789abcdef0123.jpg"]
    scoped = Gallery(base.content, base.models, {}, base.entities, files, base.negatives)
    before = calibrate(gallery(), 0.01).entities["bob"].threshold.value
    after = calibrate(scoped, 0.01).entities["bob"].threshold.value
    as_any_negative = calibrate(base, 0.01).entities["bob"].threshold.value
    assert as_any_negative == pytest.approx(0.999)  # a plain negative would lift it to the top
    assert after == pytest.approx(before + DISMISSAL_MAX_RAISE, abs=1e-4)


def test_the_version_changes_with_thresholds_and_only_then(tmp_path: Path) -> None:
    base = gallery(unit([0, 1, 0, 0]), [0])
    assert calibrate(base, 0.01).version == calibrate(base, 0.01).version
    with_more_negatives = gallery(unit([0, 1, 0, 0], [0.99, 0.1, 0, 0]), [0, 1])
    assert calibrate(with_more_negatives, 0.01).version != calibrate(base, 0.01).version


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    original = calibrate(gallery(unit([0, 1, 0, 0]), [0]), 0.01)
    original.save(tmp_path / "built")
    loaded = Gallery.load(tmp_path / "built")
    assert loaded.version == original.version
    assert loaded.entities.keys() == original.entities.keys()
    np.testing.assert_array_equal(
        loaded.entities["ann"].embeddings, original.entities["ann"].embeddings
    )
    assert loaded.entities["ann"].threshold == original.entities["ann"].threshold
    np.testing.assert_array_equal(loaded.negatives["face"].items, [0])


def test_a_failed_save_leaves_the_previous_build_intact(tmp_path: Path) -> None:
    good = calibrate(gallery(), 0.01)
    good.save(tmp_path / "built")
    broken = calibrate(gallery(), 0.01)
    broken.entities["ann"].embeddings = "not an array"  # type: ignore[assignment]
    with pytest.raises(Exception):  # noqa: B017 - whatever breaks, nothing half-written stays
        broken.save(tmp_path / "built")
    assert Gallery.load(tmp_path / "built").version == good.version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]


def test_loading_a_folder_that_was_never_built_says_so(tmp_path: Path) -> None:
    with pytest.raises(GalleryNotBuiltError, match="gallery build"):
        Gallery.load(tmp_path)


def test_a_damaged_index_is_refused_as_not_built_and_names_what_is_wrong(tmp_path: Path) -> None:
    calibrate(gallery(unit([0, 1, 0, 0]), [0]), 0.01).save(tmp_path / "built")
    index_path = tmp_path / "built" / "gallery.json"
    index = json.loads(index_path.read_text())
    del index["content"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(GalleryNotBuiltError, match=r"malformed gallery\.json.*content.*rebuild"):
        Gallery.load(tmp_path / "built")

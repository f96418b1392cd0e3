"""The review store and the review metrics: decisions are a log, an alert's state its latest."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from monitor.pipeline.review_role import apply_review
from monitor.records import Alert, Review
from monitor.review.decisions import AlertFilter, ReviewedAlert, ReviewStore
from tests.review.conftest import NOW, make_alert, store_as_before


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_alert_is_new_until_reviewed_and_its_state_is_the_latest_decision(
    tmp_path: Path,
) -> None:
    store = ReviewStore(tmp_path / "r.sqlite3")
    alert = make_alert("s1", "ghostface")
    assert store.add_alert(alert) and not store.add_alert(alert)
    assert store.get(alert.alert_id).state == "new"  # type: ignore[union-attr]
    at = NOW + timedelta(minutes=5)
    store.apply(Review(alert_id=alert.alert_id, decision="confirm", reviewer="a", at=at))
    store.apply(
        Review(
            alert_id=alert.alert_id,
            decision="dismiss",
            reason="a cosplayer",
            reviewer="b",
            at=at + timedelta(seconds=1),
        )
    )
    row = store.get(alert.alert_id)
    assert row is not None and (row.state, row.reason, row.reviewer) == (
        "dismissed",
        "a cosplayer",
        "b",
    )
    assert store.dismissed("youtube:s1", "ghostface") and not store.dismissed("youtube:s1", "x")
    store.apply(
        Review(alert_id=alert.alert_id, decision="undo", reviewer="b", at=at + timedelta(seconds=2))
    )
    assert store.get(alert.alert_id).state == "new"  # type: ignore[union-attr]
    assert not store.dismissed("youtube:s1", "ghostface")


def test_a_review_that_arrives_before_its_alert_still_applies_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    store = ReviewStore(tmp_path / "r.sqlite3")
    alert = make_alert("s2", "ghostface")
    review = Review(alert_id=alert.alert_id, decision="confirm", reviewer="a", at=NOW)
    assert store.apply(review).alert is None
    assert not store.apply(review).new  # at-least-once: the repeat changes nothing
    store.add_alert(alert)
    store.close()
    reopened = ReviewStore(tmp_path / "r.sqlite3")
    assert [r.state for r in reopened.alerts(AlertFilter(state="confirmed"))] == ["confirmed"]
    assert reopened.alerts(AlertFilter(state="new")) == []


def test_listing_is_newest_first_or_fastest_spreading_first_and_filters_by_facet(
    tmp_path: Path,
) -> None:
    store = ReviewStore(tmp_path / "r.sqlite3")
    old_fast = make_alert("a", "ghostface", views=100_000, hours_old=1, alerted_minutes_ago=60)
    new_slow = make_alert("b", "ghostface", views=100, hours_old=100, alerted_minutes_ago=1)
    other = make_alert("c", "sidney", platform="tiktok", franchise=None, alerted_minutes_ago=30)
    for alert in (old_fast, new_slow, other):
        store.add_alert(alert)

    def ids(rows: list[ReviewedAlert]) -> list[str]:
        return [row.alert.clip.clip_id for row in rows]

    assert ids(store.alerts()) == ["b", "c", "a"]
    assert ids(store.alerts(AlertFilter(sort="spreading"))) == ["a", "c", "b"]
    assert ids(store.alerts(AlertFilter(entity="ghostface"))) == ["b", "a"]
    assert ids(store.alerts(AlertFilter(platform="tiktok"))) == ["c"]
    assert ids(store.alerts(AlertFilter(franchise="Scream"))) == ["b", "a"]
    assert store.facets() == {
        "entity": ["ghostface", "sidney"],
        "franchise": ["Scream"],
        "platform": ["tiktok", "youtube"],
    }


def test_review_metrics_count_each_decision_once_with_share_dismissed_and_time_to_review(
    tmp_path: Path,
) -> None:
    store = ReviewStore(tmp_path / "r.sqlite3")
    entity = "metrics-entity"
    alerts = [make_alert(f"m{i}", entity) for i in range(4)]
    for alert in alerts:
        store.add_alert(alert)
    labels = {"entity": entity, "franchise": "Scream"}
    latency_before = _sample("likeness_review_latency_seconds_count", decision="dismiss")
    decisions = ["dismiss", "confirm", "confirm", "confirm"]
    for alert, decision in zip(alerts, decisions, strict=True):
        review = Review(
            alert_id=alert.alert_id,
            decision=decision,  # type: ignore[arg-type]
            reviewer="a",
            at=alert.alerted_at + timedelta(minutes=10),
        )
        apply_review(store, review)
        apply_review(store, review)  # redelivered: not counted again
    assert _sample("likeness_reviews_total", **labels, decision="confirm") == 3
    assert _sample("likeness_reviews_total", **labels, decision="dismiss") == 1
    assert _sample("likeness_review_dismissed_share", **labels) == 0.25
    assert (
        _sample("likeness_review_latency_seconds_count", decision="dismiss") == latency_before + 1
    )
    # 600 s: in the 900 s bucket, not the 300 s one
    assert _sample("likeness_review_latency_seconds_bucket", decision="dismiss", le="300.0") == 0
    apply_review(
        store,
        Review(
            alert_id=alerts[1].alert_id,
            decision="dismiss",
            reviewer="a",
            at=NOW + timedelta(hours=1),
        ),
    )
    assert _sample("likeness_review_dismissed_share", **labels) == 0.5
    # a change of mind is not a first decision: time to review is observed once per alert
    assert (
        _sample("likeness_review_latency_seconds_count", decision="dismiss") == latency_before + 1
    )


def _records(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [record for (record,) in db.execute("SELECT record FROM alerts")]


def test_an_alert_stored_with_times_without_a_zone_reads_them_as_utc(tmp_path: Path) -> None:
    alert = make_alert("old", "ghostface", hours_old=3.0)
    store_as_before(tmp_path / "r.sqlite3", alert)
    store = ReviewStore(tmp_path / "r.sqlite3")
    # Rewritten in the file when the store opened, so that every read is a plain parse.
    assert [Alert.model_validate_json(record) for record in _records(tmp_path / "r.sqlite3")] == [
        alert
    ]

    [row] = store.alerts()
    assert row.alert == alert, "the same times, in UTC"
    assert row.alert.observed_at.tzinfo is not None and row.alert.posted_at is not None
    assert store.get(alert.alert_id) == row
    applied = store.apply(
        Review(
            alert_id=alert.alert_id, decision="confirm", reviewer="a", at=NOW + timedelta(minutes=2)
        )
    )
    assert applied.alert == alert and applied.first_decision_after_s == 120.0
    assert store.get(alert.alert_id).state == "confirmed"  # type: ignore[union-attr]


def test_a_stored_alert_broken_otherwise_is_left_as_it_was_and_the_store_opens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite3"
    store_as_before(path, make_alert("old", "ghostface"))
    [record] = _records(path)
    broken = json.dumps({**json.loads(record), "score": "high"})
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE alerts SET record=?", (broken,))

    store = ReviewStore(path)  # opens: one bad row must not keep the worker from starting
    assert _records(path) == [broken]
    with pytest.raises(ValidationError):
        store.alerts()  # refused on reading, as it always was
    store.close()

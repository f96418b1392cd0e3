"""The review store and the review metrics: decisions are a log, an alert's state its latest."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from monitor.pipeline.review_role import apply_review
from monitor.records import Alert, Review
from monitor.review.decisions import (
    COPIES_SHOWN,
    AlertFilter,
    ReviewedAlert,
    ReviewedStory,
    ReviewStore,
    StoryPage,
)
from monitor.storage import Database
from tests.review.conftest import NOW, make_alert, make_story, store_as_before

StoreAt = Callable[[str], Path | Database]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_alert_is_new_until_reviewed_and_its_state_is_the_latest_decision(
    state_at: StoreAt,
) -> None:
    store = ReviewStore(state_at("review"))
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
    state_at: StoreAt,
) -> None:
    store = ReviewStore(state_at("review"))
    alert = make_alert("s2", "ghostface")
    review = Review(alert_id=alert.alert_id, decision="confirm", reviewer="a", at=NOW)
    assert store.apply(review).alert is None
    assert not store.apply(review).new  # at-least-once: the repeat changes nothing
    store.add_alert(alert)
    store.close()
    reopened = ReviewStore(state_at("review"))
    assert [r.state for r in reopened.alerts(AlertFilter(state="confirmed"))] == ["confirmed"]
    assert reopened.alerts(AlertFilter(state="new")) == []


def test_listing_is_newest_first_or_fastest_spreading_first_and_filters_by_facet(
    state_at: StoreAt,
) -> None:
    store = ReviewStore(state_at("review"))
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
    state_at: StoreAt,
) -> None:
    store = ReviewStore(state_at("review"))
    entity = f"metrics-{uuid.uuid4().hex[:8]}"  # the registry is the process's: a new series
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


# --- stories: one viral clip and its copies ------------------------------------------------


def _viral(store: ReviewStore) -> list[Alert]:
    """A story of three copies on two platforms (v1 started it), whose alerts each told the
    story's views so far, and one alert that belongs to no story: all kept in ``store``."""
    history = [(180, 1_000), (120, 5_000), (60, 20_000), (10, 45_000)]
    copies = [
        # clip, platform, copies when alerted, the history its alert told, alerted minutes ago
        ("v1", "youtube", 1, history[:2], 150),
        ("v2", "tiktok", 2, history[:3], 50),
        ("v3", "youtube", 3, history[1:], 5),
    ]
    alerts = [
        make_alert(
            clip,
            "ghostface",
            platform=platform,
            alerted_minutes_ago=minutes,
            story=make_story("youtube:v1", "ghostface", copies=count, history=told),
        )
        for clip, platform, count, told, minutes in copies
    ]
    lone = make_alert("lone", "sidney", platform="tiktok", views=777, alerted_minutes_ago=30)
    for alert in (*alerts, lone):
        store.add_alert(alert)
    return [*alerts, lone]


def _titles(story: ReviewedStory) -> list[str]:
    return [row.alert.clip.clip_id for row in story.shown]


def test_copies_of_one_story_are_listed_together_with_the_whole_storys_figures(
    state_at: StoreAt,
) -> None:
    store = ReviewStore(state_at("review"))
    *copies, lone = _viral(store)
    store.apply(Review(alert_id=copies[1].alert_id, decision="dismiss", reviewer="a", at=NOW))

    viral, single = store.stories().stories
    assert viral.story_id == copies[0].story.story_id  # type: ignore[union-attr]
    assert _titles(viral) == ["v3", "v2", "v1"], "newest copy first"
    assert (viral.copies, viral.matching, viral.not_shown) == (3, 3, 0)
    assert viral.platforms == {"tiktok": 1, "youtube": 2}
    assert viral.states == {"new": 2, "confirmed": 0, "dismissed": 1}
    assert viral.views == 45_000, "the highest total any copy's alert told"
    assert viral.first_seen == NOW - timedelta(hours=24)
    assert viral.entity.id == "ghostface"
    assert [(NOW - p.at, p.views) for p in viral.history] == [
        (timedelta(minutes=ago), views)
        for ago, views in [(180, 1_000), (120, 5_000), (60, 20_000), (10, 45_000)]
    ], "every point any alert told, once each, oldest first"

    # An alert without a story is a story of one, with its own views over time.
    assert single.story_id is None and single.key == lone.alert_id
    assert (_titles(single), single.copies, single.views) == (["lone"], 1, 777)
    assert [(p.at, p.views) for p in single.history] == [(lone.observed_at, 777)]


def test_stories_are_ordered_by_their_newest_copy_and_paged_by_story(state_at: StoreAt) -> None:
    store = ReviewStore(state_at("review"))
    _viral(store)  # newest copy 5 minutes ago; the lone alert 30
    store.add_alert(make_alert("older", "sidney", alerted_minutes_ago=300))

    def keys(page: StoryPage) -> list[list[str]]:
        return [_titles(story) for story in page.stories]

    first = store.stories(limit=2)
    assert keys(first) == [["v3", "v2", "v1"], ["lone"]] and first.more
    rest = store.stories(limit=2, offset=2)
    assert keys(rest) == [["older"]] and not rest.more


def test_filters_pick_stories_by_any_copy_and_list_the_copies_that_match(state_at: StoreAt) -> None:
    store = ReviewStore(state_at("review"))
    copies = _viral(store)[:3]
    store.apply(Review(alert_id=copies[0].alert_id, decision="confirm", reviewer="a", at=NOW))

    # Ordered by their newest matching copy: the lone alert (30 minutes ago), then v2 (50).
    [lone, on_tiktok] = store.stories(AlertFilter(platform="tiktok")).stories
    assert _titles(on_tiktok) == ["v2"] and lone.story_id is None
    assert on_tiktok.copies == 3, "the header is the whole story's"
    [confirmed] = store.stories(AlertFilter(state="confirmed")).stories
    assert _titles(confirmed) == ["v1"] and confirmed.states["confirmed"] == 1
    assert [_titles(s) for s in store.stories(AlertFilter(entity="sidney")).stories] == [["lone"]]


def test_a_story_of_many_copies_lists_a_bounded_few_and_counts_the_rest(state_at: StoreAt) -> None:
    store = ReviewStore(state_at("review"))
    story = make_story("youtube:c0", "ghostface", history=[(5, 100)])
    for n in range(COPIES_SHOWN + 7):
        store.add_alert(make_alert(f"c{n}", "ghostface", alerted_minutes_ago=n, story=story))
    [listed] = store.stories().stories
    assert len(listed.shown) == COPIES_SHOWN and _titles(listed)[0] == "c0"
    assert (listed.copies, listed.not_shown) == (COPIES_SHOWN + 7, 7)
    assert len(store.story_states(story.story_id)) == COPIES_SHOWN + 7


def test_a_story_whose_alerts_told_no_history_charts_each_copys_views_when_seen(
    state_at: StoreAt,
) -> None:
    store = ReviewStore(state_at("review"))
    story = make_story("youtube:q1", "ghostface")
    for clip, views, minutes in (("q1", 10, 60), ("q2", 300, 20)):
        store.add_alert(
            make_alert(clip, "ghostface", views=views, alerted_minutes_ago=minutes, story=story)
        )
    [listed] = store.stories().stories
    assert listed.views is None, "no copy's alert told the story's total"
    assert [(NOW - p.at, p.views) for p in listed.history] == [
        (timedelta(minutes=60), 10),
        (timedelta(minutes=20), 300),
    ]


def test_story_states_name_every_copy_of_a_story_and_nothing_else(state_at: StoreAt) -> None:
    store = ReviewStore(state_at("review"))
    *copies, lone = _viral(store)
    store.apply(Review(alert_id=copies[2].alert_id, decision="dismiss", reviewer="a", at=NOW))
    story_id = copies[0].story.story_id  # type: ignore[union-attr]
    assert store.story_states(story_id) == {
        copies[0].alert_id: "new",
        copies[1].alert_id: "new",
        copies[2].alert_id: "dismissed",
    }
    assert store.story_states("0" * 20) == {}
    assert store.get(copies[0].alert_id).story_copies == 3  # type: ignore[union-attr]
    assert store.get(lone.alert_id).story_copies == 1  # type: ignore[union-attr]


def test_a_file_from_before_stories_gets_each_alerts_story_id_from_its_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite3"
    store = ReviewStore(path)
    *copies, lone = _viral(store)
    store.close()
    with closing(sqlite3.connect(path)) as db, db:  # as migration 2 left the file
        db.execute("DROP INDEX alerts_by_story")
        db.execute("ALTER TABLE alerts DROP COLUMN story_id")
        db.execute("PRAGMA user_version = 2")

    reopened = ReviewStore(path)
    assert reopened.version == 3
    with closing(sqlite3.connect(path)) as db:
        kept = dict(db.execute("SELECT alert_id, story_id FROM alerts"))
    story_id = copies[0].story.story_id  # type: ignore[union-attr]
    assert kept == {**{a.alert_id: story_id for a in copies}, lone.alert_id: None}
    assert [len(story.shown) for story in reopened.stories().stories] == [3, 1]
    reopened.close()

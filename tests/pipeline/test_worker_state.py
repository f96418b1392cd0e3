"""The decide role's spread state: each flagged clip's latest counts, by entity, platform and
whether the clip is AI-generated, the same in a SQLite file and in PostgreSQL; a file from
before that verdict is migrated in place."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import metrics
from monitor.pipeline.roles import _publish_spread
from monitor.pipeline.worker_state import EntitySpread, StateStore
from monitor.storage import Database

StoreAt = Callable[[str], Path | Database]

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_spread_follows_each_clips_newest_verdict_of_whether_it_is_ai_generated(
    state_at: StoreAt,
) -> None:
    state = StateStore(state_at("state"))
    state.observe("yt:1", "youtube", T0, 100, 1)
    state.observe("yt:2", "youtube", T0, 50, 0, "ai_generated")
    for clip in ("yt:1", "yt:2"):
        state.flag(clip, "gopher", "Go", "character")
    assert sorted(state.spread(), key=lambda s: s.synthetic) == [
        EntitySpread("gopher", "Go", "youtube", "character", "ai_generated", 1, 50, 0),
        EntitySpread("gopher", "Go", "youtube", "character", "unknown", 1, 100, 1),
    ]
    # A platform label appears at the next observation: the clip's views move with it.
    state.observe("yt:1", "youtube", T0 + timedelta(hours=1), 300, 2, "ai_generated")
    state.observe("yt:2", "youtube", T0 - timedelta(hours=1), 10, 0, "unknown")  # older: kept
    assert state.spread() == [
        EntitySpread("gopher", "Go", "youtube", "character", "ai_generated", 2, 350, 2)
    ]
    state.close()


def test_a_state_file_from_before_the_verdict_is_migrated_and_its_clips_are_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    state = StateStore(path)
    state.observe("yt:1", "youtube", T0, 100, 1)
    state.flag("yt:1", "gopher", "Go", "character")
    state.close()
    with sqlite3.connect(path) as db:  # as version 1 left it
        db.execute("ALTER TABLE clips DROP COLUMN synthetic")
        db.execute("PRAGMA user_version = 1")
    db.close()
    state = StateStore(path)
    assert state.version == 2
    [spread] = state.spread()
    assert (spread.synthetic, spread.views) == ("unknown", 100)
    state.close()


def test_views_that_move_to_another_verdict_leave_their_old_series_at_zero(
    state_at: StoreAt,
) -> None:
    state = StateStore(state_at("state"))
    state.observe("yt:9", "youtube", T0, 700, 0)
    entity = f"moved-{uuid.uuid4().hex[:8]}"  # the registry is the process's: a new series
    state.flag("yt:9", entity, "Go", "character")
    _publish_spread(state)
    labels = {"entity": entity, "franchise": "Go", "platform": "youtube"}
    labels["kind"] = "character"

    def views(synthetic: str) -> float | None:
        sample = {**labels, "synthetic": synthetic}
        return metrics.registry.get_sample_value("likeness_flagged_views", sample)

    assert views("unknown") == 700 and views("ai_generated") is None
    state.observe("yt:9", "youtube", T0 + timedelta(hours=1), 900, 0, "ai_generated")
    _publish_spread(state)
    assert views("unknown") == 0 and views("ai_generated") == 900
    state.close()


def test_a_clip_is_first_seen_at_its_earliest_observation_whatever_the_order(
    state_at: StoreAt,
) -> None:
    state = StateStore(state_at("state"))
    assert state.observe("yt:1", "youtube", T0, 10, 0) == T0
    assert state.observe("yt:1", "youtube", T0 - timedelta(hours=2), 5, 0) == T0, "older: kept"
    assert state.observe("yt:1", "youtube", T0 + timedelta(hours=1), 20, 0) == T0
    state.close()


def test_scores_alerts_and_sent_records_survive_a_restart_and_the_window_bounds_them(
    state_at: StoreAt,
) -> None:
    state = StateStore(state_at("state"), resend_window_s=3600)
    models = {"faces": "facenet", "visual": "effnet"}
    state.save_score("yt:1", "g1", models, '{"v": 1}')
    state.save_score("yt:1", "g1", models, '{"v": 2}')  # scored again: the newest is kept
    state.mark_alert("a", "alert-a", T0, b'{"a": 1}')
    state.mark_alert("a", "alert-a", T0, b'{"a": 1}')  # a repeat changes nothing
    state.mark_alert("b", "alert-b", T0 + timedelta(hours=2), b'{"b": 1}')  # "a" leaves
    state.close()

    state = StateStore(state_at("state"), resend_window_s=3600)
    assert state.cached_score("yt:1", "g1", models) == '{"v": 2}'
    assert state.cached_score("yt:1", "g2", models) is None, "another gallery: scored again"
    assert state.alert_sent("a") and state.alert_sent("b") and not state.alert_sent("c")
    assert state.sent_since(T0 - timedelta(days=1), T0 + timedelta(days=1)) == [b'{"b": 1}']
    state.close()

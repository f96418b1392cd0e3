"""The decide role's spread state: each flagged clip's latest counts, by entity, platform and
whether the clip is AI-generated; a file from before that verdict is migrated in place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import metrics
from monitor.pipeline.roles import _publish_spread
from monitor.pipeline.worker_state import EntitySpread, StateStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_spread_follows_each_clips_newest_verdict_of_whether_it_is_ai_generated(
    tmp_path: Path,
) -> None:
    state = StateStore(tmp_path / "state.sqlite3")
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
    tmp_path: Path,
) -> None:
    state = StateStore(tmp_path / "state.sqlite3")
    state.observe("yt:9", "youtube", T0, 700, 0)
    state.flag("yt:9", "moved-entity", "Go", "character")
    _publish_spread(state)
    labels = {"entity": "moved-entity", "franchise": "Go", "platform": "youtube"}
    labels["kind"] = "character"

    def views(synthetic: str) -> float | None:
        sample = {**labels, "synthetic": synthetic}
        return metrics.registry.get_sample_value("likeness_flagged_views", sample)

    assert views("unknown") == 700 and views("ai_generated") is None
    state.observe("yt:9", "youtube", T0 + timedelta(hours=1), 900, 0, "ai_generated")
    _publish_spread(state)
    assert views("unknown") == 0 and views("ai_generated") == 900
    state.close()

"""Decide keeps what it sent for a window and sends it again to a new broker only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from monitor.pipeline.roles import resend_alerts
from monitor.pipeline.worker_state import StateStore
from monitor.records import Alert, decode, encode, utcnow
from tests.review.conftest import make_alert


class Acknowledged:
    """A topic whose sends the broker acknowledges at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, *, key: bytes, value: bytes) -> Any:
        self.sent.append((key, value))

        async def acknowledged() -> None:
            return None

        return acknowledged()


def mark(state: StateStore, alert: Alert, hours_ago: float) -> None:
    at = utcnow() - timedelta(hours=hours_ago)
    state.mark_alert(alert.key, alert.alert_id, at, encode(alert))


async def test_a_new_broker_gets_the_last_window_of_sent_alerts_and_the_same_one_nothing(
    tmp_path: Path,
) -> None:
    state = StateStore(tmp_path / "state.sqlite3", resend_window_s=3600)
    old, recent = make_alert("old", "ghostface"), make_alert("recent", "ghostface")
    mark(state, old, hours_ago=2)
    mark(state, recent, hours_ago=0.5)
    topic = Acknowledged()

    started = utcnow()
    assert await resend_alerts(state, topic, "broker-1", sent_before=started) == 1
    assert [(k, decode(Alert, v).alert_id) for k, v in topic.sent] == [
        (recent.key.encode(), recent.alert_id)
    ]
    assert await resend_alerts(state, topic, "broker-1", sent_before=started) == 0  # same broker
    assert await resend_alerts(state, topic, "broker-2", sent_before=started) == 1
    assert state.alert_sent(old.key), "the key stays marked; only its record is dropped"
    state.close()


def test_records_older_than_the_window_are_dropped_as_new_ones_are_marked(
    tmp_path: Path,
) -> None:
    state = StateStore(tmp_path / "state.sqlite3", resend_window_s=3600)
    for i in range(5):
        mark(state, make_alert(f"c{i}", "ghostface"), hours_ago=10 - i)
    mark(state, make_alert("now", "ghostface"), hours_ago=0)
    with state.database.reading() as db:
        (kept,) = db.execute("SELECT count(*) FROM sent").fetchone()
    assert kept == 1
    state.close()


async def test_alerts_sent_since_the_worker_started_went_to_this_broker_and_are_not_resent(
    tmp_path: Path,
) -> None:
    """Decide runs before the broker check does: a fresh worker (no broker followed yet) must
    not send again what it has just sent."""
    state = StateStore(tmp_path / "state.sqlite3", resend_window_s=3600)
    before_start = make_alert("earlier", "ghostface")
    mark(state, before_start, hours_ago=0.5)
    started = utcnow()
    mark(state, make_alert("since", "ghostface"), hours_ago=0)
    topic = Acknowledged()

    assert await resend_alerts(state, topic, "broker-1", sent_before=started) == 1
    assert [decode(Alert, v).alert_id for _, v in topic.sent] == [before_start.alert_id]
    state.close()

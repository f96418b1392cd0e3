"""Alerts on the embedded broker's ``alerts`` topic that notify had not taken yet outlive
restarts of it: decide sends them, the broker acknowledges them and decide marks them sent,
while notify is held by a slow receiver or does not run at all; the worker, and its broker in
memory with it, is killed (SIGKILL) or stopped (SIGTERM). After the restart every alert reaches
each receiver exactly once, the ones delivered before the restarts included; the same with
the workers' state in SQLite files and in PostgreSQL (where decide's kept alerts and notify's
outbox wait across the broker's restarts in the database, not on the worker's disk).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from monitor.pipeline.harness import Topics, produce
from monitor.records import (
    Alert,
    ClipRef,
    ClipScored,
    ClipSeen,
    ScoredEntity,
    decode,
    encode,
    utcnow,
)
from tests.conftest import in_ci
from tests.postgres import postgres_namespace, require_postgres
from tests.resilience.restarts import Monitor, Receiver, wait_for

SLACK_PATH = "/services/T0/B0/resilience"
HOOK_PATH = "/hook"
SINKS = (SLACK_PATH, HOOK_PATH)


def flagged(clip_id: str) -> ClipScored:
    """A verdict that flags one entity in the clip, as the score role would send it."""
    seen = ClipSeen(
        platform="demo",
        clip_id=clip_id,
        url=f"http://127.0.0.1/watch/{clip_id}",
        media_url=f"http://127.0.0.1/media/{clip_id}.mp4",
        title=f"clip {clip_id}",
        views=1000,
        observed_at=utcnow(),
    )
    entity = ScoredEntity(
        entity_id="ghostface",
        name="Ghostface",
        kind="character",
        franchise="Scream",
        score=0.9,
        threshold=0.6,
        flagged=True,
    )
    return ClipScored(clip=ClipRef.of(seen), observation=seen, entities=[entity])


def decide(bootstrap: str, verdicts: list[ClipScored]) -> None:
    """Put ``verdicts`` on ``clips.scored``, for the worker's decide role."""
    records = ((v.clip.key.encode(), encode(v)) for v in verdicts)
    asyncio.run(produce(bootstrap, "clips.scored", *records))


def alert_ids(verdicts: list[ClipScored]) -> list[str]:
    return [Alert.id_for(v.clip.key, "ghostface") for v in verdicts]


def marked_sent(monitor: Monitor) -> set[str]:
    """The alert ids decide has marked sent in its state store."""
    url = monitor.worker.env.get("LIKENESS_MONITOR_PIPELINE__STATE_URL")
    if url:
        namespace = monitor.worker.env["LIKENESS_MONITOR_PIPELINE__STATE_NAMESPACE"]
        with psycopg.connect(url) as conn:
            table = conn.execute("SELECT to_regclass(%s)", (f"{namespace}_state.alerts",))
            if table.fetchone() == (None,):
                return set()  # not created yet
            query = f'SELECT alert_id FROM "{namespace}_state".alerts'.encode()
            return {str(row[0]) for row in conn.execute(query)}
    path = monitor.state / "state.sqlite3"
    if not path.exists():
        return set()
    db = sqlite3.connect(path)
    try:
        return {str(row[0]) for row in db.execute("SELECT alert_id FROM alerts")}
    except sqlite3.OperationalError:  # not created yet
        return set()
    finally:
        db.close()


def sent_and_on_topic(monitor: Monitor, bootstrap: str, verdicts: list[ClipScored]) -> None:
    """Decide the verdicts and wait until each alert is on the broker's ``alerts`` topic and
    marked sent: from then on, before the fix, the broker's memory is all that holds it."""
    wanted = set(alert_ids(verdicts))
    topic = Topics(bootstrap, ("alerts",))
    try:
        decide(bootstrap, verdicts)
        wait_for(
            lambda: (
                wanted <= {decode(Alert, v).alert_id for v in topic.of("alerts")}
                and wanted <= marked_sent(monitor)
            ),
            90,
            f"{len(wanted)} alerts sent and marked",
            monitor,
        )
    finally:
        topic.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.down = False
    yield running
    running.slow = False
    running.close()


def worker(roles: str, receiver: Receiver, state: Path, **more: str) -> Monitor:
    return Monitor(
        roles,
        state,
        **more,
        LIKENESS_MONITOR_NOTIFY__SLACK_WEBHOOK_URL=receiver.url + SLACK_PATH,
        LIKENESS_MONITOR_NOTIFY__WEBHOOK_URL=receiver.url + HOOK_PATH,
        LIKENESS_MONITOR_NOTIFY__WEBHOOK_SECRET="resilience-secret",
        LIKENESS_MONITOR_NOTIFY__EVIDENCE_IMAGES="false",
        LIKENESS_MONITOR_NOTIFY__TIMEOUT_S="300",  # a slow receiver holds notify, not parks
        LIKENESS_MONITOR_NOTIFY__RETRY_INLINE_ATTEMPTS="1",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Where the workers keep their state: the state folder's SQLite files, or PostgreSQL."""
    if request.param == "sqlite":
        yield {}
        return
    url = require_postgres(in_ci())
    with postgres_namespace(url) as namespace:
        yield {
            "LIKENESS_MONITOR_PIPELINE__STATE_URL": url,
            "LIKENESS_MONITOR_PIPELINE__STATE_NAMESPACE": namespace,
        }


@pytest.fixture
def workers(
    receiver: Receiver, tmp_path: Path, state: dict[str, str]
) -> Iterator[tuple[Monitor, Monitor]]:
    """The whole chain from decide on, and decide alone; one state (folder or database)."""
    both = worker("decide,notify", receiver, tmp_path, **state)
    alone = worker("decide", receiver, tmp_path, **state)
    yield both, alone
    both.close()
    alone.close()


def test_alerts_not_yet_taken_by_notify_outlive_restarts_and_are_delivered_once(
    workers: tuple[Monitor, Monitor], receiver: Receiver
) -> None:
    both, alone = workers
    delivered = [flagged(f"delivered-{i}") for i in range(2)]
    held = [flagged(f"held-{i}") for i in range(4)]  # behind a slow receiver
    unread = [flagged(f"unread-{i}") for i in range(3)]  # while notify does not run
    everything = alert_ids([*delivered, *held, *unread])

    def deliveries() -> Counter[tuple[str, str]]:
        return receiver.count(everything, 200)

    bootstrap = both.start()
    sent_and_on_topic(both, bootstrap, delivered)
    before = Counter({(sink, i): 1 for sink in SINKS for i in alert_ids(delivered)})
    wait_for(lambda: deliveries() == before, 60, "the first 2 alerts delivered", both)

    receiver.slow = True
    sent_and_on_topic(both, bootstrap, held)
    wait_for(lambda: receiver.held > 0, 60, "notify held by the slow receiver", both)
    both.kill()  # the broker goes with it, and the alerts notify had not taken

    sent_and_on_topic(alone, alone.start(), unread)  # a new embedded broker
    alone.stop()

    receiver.slow = False
    both.start()  # another new broker
    wanted = Counter({(sink, i): 1 for sink in SINKS for i in everything})
    wait_for(
        lambda: deliveries() == wanted,
        90,
        "each of the 9 alerts delivered to both receivers",
        both,
        counts=lambda: f"{sum(deliveries().values())} of 18 deliveries",
    )
    both.stop()
    assert deliveries() == wanted, "and never twice"

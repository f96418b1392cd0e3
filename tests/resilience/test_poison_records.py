"""Records no role can handle, sent to a real worker (``python -m monitor up``) on the embedded
broker: junk of 3 MB, a 700 KB title, a decision whose time has no zone. Each is dead-lettered
(a bounded prefix, with its length and sha256) or handled with its text cut; the worker stays
up; every valid record around them is handled; nothing is missing from the counts. The
decisions test, the lightest, runs again with the worker on a broker started apart from it by
``likeness-monitor broker`` (``tests/resilience/brokers.py``), as an operator runs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from monitor.pipeline.broker import EmbeddedBroker, free_port
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.records import (
    DEADLETTER_RAW_MAX,
    TITLE_MAX,
    Alert,
    AlertEntity,
    ClipRef,
    ClipScored,
    ClipSeen,
    DeadLetter,
    ParkedAlert,
    Review,
    ScoredEntity,
    decode,
    encode,
    utcnow,
)
from tests.resilience.brokers import BrokerProcess
from tests.resilience.media import MediaServer, clip, scorer_env

TOKEN = "resilience-token"
JUNK = os.urandom(3 * 1024 * 1024)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def topics(broker: EmbeddedBroker) -> Iterator[Topics]:
    observed = Topics(broker.bootstrap)
    yield observed
    observed.close()


class Broker(Protocol):
    """The embedded broker of this module, or a ``likeness-monitor broker`` process."""

    @property
    def url(self) -> str: ...

    @property
    def bootstrap(self) -> str: ...


@pytest.fixture(params=["embedded", "likeness-monitor broker"])
def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "embedded":
        yield request.getfixturevalue("broker")
        return
    with BrokerProcess(tmp_path / "broker.log") as external:
        yield external


def worker_env(broker: Broker, state: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LIKENESS_MONITOR_PIPELINE__BROKER_URL": broker.url,
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(state),
        "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(free_port()),
        "LIKENESS_MONITOR_PIPELINE__PARTITIONS": "2",
        "LIKENESS_MONITOR_PIPELINE__BROKER_SESSION_TIMEOUT_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BROKER_HEARTBEAT_INTERVAL_S": "0.3",
        "LIKENESS_MONITOR_REVIEW__TOKEN": TOKEN,
        **extra,
    }


def letters_of(topics: Topics, topic: str) -> list[DeadLetter]:
    found = (decode(DeadLetter, value) for value in topics.of("deadletter"))
    return [letter for letter in found if letter.source_topic == topic]


def assert_junk_letter(letter: DeadLetter) -> None:
    """The 3 MB record, as a dead letter small enough to send: a prefix, length and digest."""
    assert letter.truncated and letter.raw == JUNK[:DEADLETTER_RAW_MAX]
    assert letter.raw_length == len(JUNK)
    assert letter.raw_sha256 == hashlib.sha256(JUNK).hexdigest()


def log_tail(worker: Worker) -> str:
    return worker.log.read_text(errors="replace")[-4000:]


# --- reviews ------------------------------------------------------------------------------


def an_alert(n: int) -> Alert:
    key = f"demo:resilient-{n}"
    now = utcnow()
    return Alert(
        alert_id=Alert.id_for(key, "big-buck-bunny"),
        entity=AlertEntity(id="big-buck-bunny", name="Big Buck Bunny", kind="character"),
        clip=ClipRef(platform="demo", clip_id=f"resilient-{n}", url=f"https://x.test/{n}"),
        score=0.9,
        threshold=0.5,
        first_seen=now,
        observed_at=now,
    )


def test_junk_and_a_zoneless_decision_on_reviews_are_dead_lettered_and_the_worker_stays_up(
    any_broker: Broker, tmp_path: Path
) -> None:
    broker = any_broker
    env = worker_env(broker, tmp_path)
    topics = Topics(broker.bootstrap)
    worker = Worker(env, tmp_path / "worker.log", roles="review")
    worker.start()
    try:
        alerts = [an_alert(n) for n in range(3)]
        zoneless = json.dumps(
            {
                "schema": 1,
                "alert_id": alerts[0].alert_id,
                "decision": "confirm",
                "reviewer": "rita",
                "at": "2026-12-01T10:00:00",
            }
        ).encode()
        confirm = [
            Review(alert_id=alert.alert_id, decision="confirm", reviewer="rita") for alert in alerts
        ]
        asyncio.run(
            produce(broker.bootstrap, "alerts", *((a.key.encode(), encode(a)) for a in alerts))
        )
        asyncio.run(
            produce(
                broker.bootstrap,
                "reviews",
                (b"junk", JUNK),
                (alerts[0].alert_id.encode(), zoneless),
                *((r.alert_id.encode(), encode(r)) for r in confirm),
            )
        )
        topics.wait_for(
            lambda: len(letters_of(topics, "reviews")) >= 2 or not worker.alive(),
            120,
            "both bad decisions on deadletter",
        )
        assert worker.alive(), log_tail(worker)
        # Two partitions: the two letters may come in either order.
        [junk] = [letter for letter in letters_of(topics, "reviews") if letter.truncated]
        [bad] = [letter for letter in letters_of(topics, "reviews") if not letter.truncated]
        assert_junk_letter(junk)
        assert bad.raw == zoneless and "at: Input should have timezone info" in bad.reason

        web = f"http://127.0.0.1:{env['LIKENESS_MONITOR_PIPELINE__WEB_PORT']}"
        bearer = {"Authorization": f"Bearer {TOKEN}"}

        def confirmed() -> set[str]:
            page = httpx.get(f"{web}/review/export.json", headers=bearer, timeout=10)
            return {row["alert_id"] for row in page.json()} if page.status_code == 200 else set()

        wanted = {alert.alert_id for alert in alerts}
        topics.wait_for(lambda: confirmed() == wanted, 60, "the valid decisions applied")
        assert worker.alive(), log_tail(worker)
        # Sent 5 decisions: 3 applied, 2 dead-lettered, none missing.
        assert len(confirmed()) + len(letters_of(topics, "reviews")) == 2 + len(confirm)
    finally:
        if worker.alive():
            worker.stop()
        topics.close()


# --- scoring ------------------------------------------------------------------------------


def test_a_batch_with_3_mb_of_junk_and_a_700_kb_title_scores_every_valid_clip(
    broker: EmbeddedBroker,
    topics: Topics,
    media_server: MediaServer,
    bunny_gallery: Path,
    tmp_path: Path,
) -> None:
    env = scorer_env(
        broker.url,
        tmp_path,
        bunny_gallery,
        LIKENESS_MONITOR_REVIEW__TOKEN=TOKEN,
        LIKENESS_MONITOR_PIPELINE__BATCH_SIZE="8",
        LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S="3",
        LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS="1",
    )
    worker = Worker(env, tmp_path / "worker.log", roles="score")
    worker.start()
    try:
        valid = [clip(media_server, "fast", f"valid-{n}") for n in range(4)]
        long_title = clip(media_server, "fast", "long-title").model_dump(by_alias=True, mode="json")
        long_raw = json.dumps({**long_title, "title": "t" * 700_000}).encode()
        batch = [
            *((seen.key.encode(), encode(seen)) for seen in valid[:2]),
            (b"demo:junk", JUNK),
            (b"demo:long-title", long_raw),
            *((seen.key.encode(), encode(seen)) for seen in valid[2:]),
        ]
        asyncio.run(produce(broker.bootstrap, "clips.discovered", *batch))
        wanted = {seen.key for seen in valid} | {"demo:long-title"}

        def scored() -> list[ClipScored]:
            return [decode(ClipScored, value) for value in topics.of("clips.scored")]

        def keys() -> set[str]:
            return {record.clip.key for record in scored()}

        topics.wait_for(
            lambda: wanted <= keys() or not worker.alive(), 480, "every valid clip scored"
        )
        assert worker.alive(), log_tail(worker)
        [long] = [record for record in scored() if record.clip.key == "demo:long-title"]
        assert long.failure is None and long.frames > 0
        assert long.clip.title is not None and len(long.clip.title) == TITLE_MAX
        assert long.clip.title.endswith("…[truncated from 700000 chars]")
        [junk] = letters_of(topics, "clips.discovered")
        assert_junk_letter(junk)
        # Sent 6: 5 scored, 1 dead-lettered, none missing.
        assert len(keys() & wanted) + len(letters_of(topics, "clips.discovered")) == len(batch)
        # Observed again, the long title's cached verdict goes out too.
        asyncio.run(produce(broker.bootstrap, "clips.discovered", (b"demo:long-title", long_raw)))
        topics.wait_for(
            lambda: sum(r.clip.key == "demo:long-title" for r in scored()) >= 2,
            120,
            "the long title re-observed and its cached verdict sent",
        )
        assert worker.alive() and len(letters_of(topics, "clips.discovered")) == 1
    finally:
        if worker.alive():
            worker.stop()


# --- decide and notify --------------------------------------------------------------------


def zoneless(record: bytes, field: str) -> bytes:
    """``record`` with the zone taken off its ``field`` time: valid but for that."""
    fields = json.loads(record)
    fields[field] = fields[field][:19]  # 2026-12-01T10:00:00, no offset
    return json.dumps(fields).encode()


def a_verdict(n: int) -> ClipScored:
    seen = ClipSeen(platform="demo", clip_id=f"verdict-{n}", url=f"https://x.test/v{n}", views=n)
    flagged = ScoredEntity(
        entity_id="big-buck-bunny",
        name="Big Buck Bunny",
        kind="character",
        score=0.9,
        threshold=0.5,
        flagged=True,
    )
    return ClipScored(clip=ClipRef.of(seen), observation=seen, entities=[flagged])


def test_junk_and_zoneless_records_on_the_decide_and_notify_topics_are_dead_lettered(
    broker: EmbeddedBroker, topics: Topics, tmp_path: Path
) -> None:
    worker = Worker(worker_env(broker, tmp_path), tmp_path / "worker.log", roles="decide,notify")
    worker.start()
    try:
        parked = ParkedAlert(
            alert=an_alert(90),
            sink="webhook",
            attempts=1,
            first_failed_at=utcnow(),
            next_attempt_at=utcnow(),
        )
        bad = {
            "clips.scored": zoneless(encode(a_verdict(0)), "scored_at"),
            "alerts": zoneless(encode(an_alert(91)), "first_seen"),
            "alerts.retry": zoneless(encode(parked), "next_attempt_at"),
        }
        for topic, record in bad.items():
            asyncio.run(produce(broker.bootstrap, topic, (b"junk", JUNK), (b"bad", record)))
        verdicts = [a_verdict(n) for n in range(1, 4)]  # after the bad ones, on every partition
        asyncio.run(
            produce(
                broker.bootstrap,
                "clips.scored",
                *((v.clip.key.encode(), encode(v)) for v in verdicts),
            )
        )

        def printed() -> list[int]:
            """How often notify printed each verdict's alert (the module's broker also holds
            alerts an earlier test sent, printed too: they are not counted)."""
            log = worker.log.read_text(errors="replace")
            return [log.count(f"{v.clip.url}\n") for v in verdicts]

        topics.wait_for(
            lambda: min(printed()) >= 1 or not worker.alive(),
            120,
            "an alert decided and notified for every valid verdict",
        )
        topics.wait_for(
            lambda: all(len(letters_of(topics, t)) >= 2 for t in bad) or not worker.alive(),
            60,
            "both bad records of each topic on deadletter",
        )
        assert worker.alive(), log_tail(worker)
        for topic, record in bad.items():
            letters = letters_of(topics, topic)
            assert len(letters) == 2, (topic, letters)
            [junk] = [letter for letter in letters if letter.truncated]
            [zoneless_letter] = [letter for letter in letters if not letter.truncated]
            assert_junk_letter(junk)
            assert zoneless_letter.raw == record
            assert "timezone" in zoneless_letter.reason
        # Sent 3 valid verdicts: 3 alerts out and printed by notify; 6 bad records, 6 letters.
        alerted = {
            decode(Alert, value).key
            for value in topics.of("alerts")
            if value not in (JUNK, bad["alerts"])
        }
        assert {k for k in alerted if ":verdict-" in k} == {
            f"demo:verdict-{n}:big-buck-bunny" for n in range(1, 4)
        }
        assert printed() == [1, 1, 1], log_tail(worker)
    finally:
        if worker.alive():
            worker.stop()

"""The delivery engine against a receiver on 127.0.0.1: retries, parking, restarts, floods.

Each "restart" builds a new Notifier on a new DeliveryStore over the same file, as a worker
does; what the broker would hold (the retry topic, the dead letters) is kept in lists.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from monitor import metrics
from monitor.alerts.deliveries import DeliveryStore
from monitor.alerts.notifier import Notifier, build_sinks
from monitor.config import NotifySettings
from monitor.errors import RecordError
from monitor.records import ID_MAX, NOTE_MAX, Alert, ParkedAlert, Story, decode, encode
from monitor.storage import Database
from tests.alerts.receiver import Receiver, make_alert

SLACK_PATH = "/services/T0001/B0001/slack-test-token"

StoreAt = Callable[[str], Path | Database]


@dataclass
class Harness:
    """Notifiers over one store file, with the topics they write to."""

    receiver: Receiver
    store_at: StoreAt
    client: httpx.AsyncClient
    parked: list[ParkedAlert] = field(default_factory=list)
    rejected: list[tuple[Alert, str]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [1_000_000.0])
    notifiers: list[Notifier] = field(default_factory=list)

    def settings(self, **overrides: object) -> NotifySettings:
        values: dict[str, object] = {
            "console": False,  # the console sink has its own tests (test_console.py)
            "slack_webhook_url": SecretStr(self.receiver.url + SLACK_PATH),
            "retry_backoff_s": 0.01,
            "retry_backoff_max_s": 0.05,
            "retry_inline_max_wait_s": 1.0,
            "flood_max_per_window": 100,
            **overrides,
        }
        return NotifySettings.model_validate(values)

    def start(self, clock: Callable[[], float] | None = None, **overrides: object) -> Notifier:
        """A (re)started notifier; the previous one is closed as a stopped worker's would be."""
        if self.notifiers:
            self.notifiers[-1].close()
            self.notifiers[-1].store.close()
        settings = self.settings(**overrides)

        async def park(parked: ParkedAlert) -> None:
            self.parked.append(decode(ParkedAlert, encode(parked)))  # as it would travel

        async def reject(alert: Alert, reason: str) -> None:
            self.rejected.append((alert, reason))

        async def sleep(seconds: float) -> None:
            self.sleeps.append(round(seconds, 3))

        notifier = Notifier(
            build_sinks(settings, self.client),
            DeliveryStore(self.store_at("notify")),
            settings,
            park=park,
            reject=reject,
            clock=clock or (lambda: self.now[0]),
            sleep=sleep,
        )
        self.notifiers.append(notifier)
        return notifier

    def take_parked(self) -> list[ParkedAlert]:
        taken, self.parked[:] = list(self.parked), []
        return taken

    def slack_messages(self) -> list[dict[str, object]]:
        return [json.loads(r.body) for r in self.receiver.delivered(SLACK_PATH)]


@pytest.fixture
async def harness(receiver: Receiver, state_at: StoreAt) -> AsyncIterator[Harness]:
    async with httpx.AsyncClient(timeout=5) as client:
        running = Harness(receiver, state_at, client)
        yield running
        for notifier in running.notifiers:
            notifier.close()
        running.notifiers[-1].store.close()


def alerts_in(messages: list[dict[str, object]]) -> Counter[str]:
    """Clip ids of the alert messages received (the clip link is in the first section)."""
    found: Counter[str] = Counter()
    for message in messages:
        blocks = message["blocks"]
        assert isinstance(blocks, list)
        text = blocks[1]["text"]["text"]
        if "/watch/" in text:
            found[text.split("/watch/")[1].split("|")[0]] += 1
    return found


async def test_an_alert_is_delivered_once_even_when_it_is_handled_again(harness: Harness) -> None:
    notifier = harness.start()
    alert = make_alert("c1")
    await notifier.handle(alert)
    await notifier.handle(alert)
    await harness.start().handle(alert)  # a replay after a restart
    assert alerts_in(harness.slack_messages()) == {"c1": 1}
    assert harness.parked == [] and harness.rejected == []


async def test_429_is_retried_after_the_receivers_retry_after(harness: Harness) -> None:
    harness.receiver.answer(429, "rate_limited", Retry_After="0.5")
    await harness.start().handle(make_alert("c1"))
    assert harness.sleeps == [0.5]
    assert len(harness.receiver.requests) == 2
    assert alerts_in(harness.slack_messages()) == {"c1": 2}  # the refused try, then the one


async def test_5xx_is_retried_with_exponential_backoff(harness: Harness) -> None:
    harness.receiver.answer(503, times=2)
    await harness.start().handle(make_alert("c1"))
    assert harness.sleeps == [0.01, 0.02]
    assert len(harness.receiver.requests) == 3 and harness.parked == []


async def test_a_long_retry_after_parks_the_alert_with_its_attempts_and_due_time(
    harness: Harness,
) -> None:
    harness.receiver.answer(429, "rate_limited", Retry_After="120")
    alert = make_alert("c1")
    await harness.start().handle(alert)
    assert harness.sleeps == [] and len(harness.receiver.requests) == 1
    (parked,) = harness.parked
    assert parked.alert == alert and parked.sink == "slack" and parked.attempts == 1
    assert parked.next_attempt_at.timestamp() == pytest.approx(harness.now[0] + 120)
    assert "HTTP 429" in parked.last_error


async def test_another_4xx_is_not_retried_and_the_alert_goes_to_deadletter(
    harness: Harness,
) -> None:
    harness.receiver.answer(404, "no_service")
    notifier = harness.start()
    alert = make_alert("c1")
    await notifier.handle(alert)
    await notifier.handle(alert)
    assert len(harness.receiver.requests) == 1 and harness.sleeps == []
    ((rejected, reason),) = harness.rejected
    assert rejected == alert and reason == "slack: HTTP 404: no_service"


async def test_a_receiver_down_for_a_while_loses_nothing_and_gets_nothing_twice(
    harness: Harness,
) -> None:
    alerts = [make_alert(f"c{i}") for i in range(5)]
    await harness.receiver.stop()  # down: the port refuses connections

    notifier = harness.start()
    for alert in alerts:
        await notifier.handle(alert)
    assert len(harness.parked) == 5
    assert harness.sleeps == [0.01, 0.02]  # only the first alert waited; then it is known down

    # A restart before the offsets were committed: the same alerts are read again.
    notifier = harness.start()
    for alert in [*alerts, alerts[2]]:
        await notifier.handle(alert)
    parked = harness.take_parked()
    assert Counter(p.alert.alert_id for p in parked) == Counter(
        {a.alert_id: 2 for a in alerts} | {alerts[2].alert_id: 3}
    )

    # Still down when the first parked alerts come due: they are parked again, not dropped.
    notifier = harness.start()
    harness.now[0] += 1
    for item in parked[:3]:
        await notifier.redeliver(item)
    reparked = harness.take_parked()
    assert len(reparked) == 3 and reparked[0].attempts == parked[0].attempts + 1

    await harness.receiver.start()  # back, on the same port
    notifier = harness.start()
    harness.now[0] += 1
    for item in [*reparked, *parked[3:]]:
        await notifier.redeliver(item)
    assert harness.parked == [] and harness.rejected == []
    assert alerts_in(harness.slack_messages()) == {f"c{i}": 1 for i in range(5)}


async def test_a_parked_alert_past_the_give_up_age_goes_to_deadletter(harness: Harness) -> None:
    await harness.receiver.stop()
    alert = make_alert("c1")
    await harness.start(retry_give_up_after_s=60).handle(alert)
    (parked,) = harness.take_parked()
    harness.now[0] += 61
    await harness.start(retry_give_up_after_s=60).redeliver(parked)
    ((rejected, reason),) = harness.rejected
    assert rejected == alert and reason.startswith("gave up after 3 attempts: slack: unreachable")


async def test_past_n_alerts_of_an_entity_in_a_window_one_summary_replaces_the_rest(
    harness: Harness,
) -> None:
    window = 600.0
    harness.now[0] = 6000 * window  # the start of a window
    notifier = harness.start(flood_max_per_window=3, flood_window_s=window)
    flood = [make_alert(f"g{i}", views=1000 + i) for i in range(3 + 4)]
    for alert in flood:
        await notifier.handle(alert)
    await notifier.handle(make_alert("other", entity="pennywise"))
    await notifier.handle(flood[5])  # a replay changes nothing
    assert alerts_in(harness.slack_messages()) == {"g0": 1, "g1": 1, "g2": 1, "other": 1}

    harness.now[0] += window - 1
    assert await notifier.flush() == 0  # the window is still open

    harness.now[0] += 2
    notifier = harness.start(flood_max_per_window=3, flood_window_s=window)  # and a restart
    assert await notifier.flush() == 1
    assert await notifier.flush() == 0  # once per window
    summaries = [m for m in harness.slack_messages() if "more clips" in str(m["text"])]
    (summary,) = summaries
    assert "Ghostface: 4 more clips (7 in all)" in str(summary["text"])
    top = summary["blocks"][2]["text"]["text"]  # type: ignore[index]
    assert [line.split("/watch/")[1][:2] for line in top.splitlines()[1:]] == [
        "g6",
        "g5",
        "g4",
        "g3",
    ]


async def test_a_summary_that_cannot_be_sent_is_sent_at_a_later_flush(harness: Harness) -> None:
    harness.now[0] = 0.0
    notifier = harness.start(flood_max_per_window=1, flood_window_s=10)
    for i in range(3):
        await notifier.handle(make_alert(f"g{i}"))
    harness.now[0] = 11
    harness.receiver.answer(503)
    assert await notifier.flush() == 0
    harness.now[0] = 12
    assert await notifier.flush() == 1
    # one alert message, then the summary refused once and taken once
    assert ["more clips" in str(m["text"]) for m in harness.slack_messages()] == [False, True, True]


def test_a_webhook_without_a_signing_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        NotifySettings(webhook_url=SecretStr("https://hooks.example/x"))


def test_parked_alerts_travel_as_versioned_json() -> None:
    alert = make_alert("c1")
    raw = encode(
        ParkedAlert(
            alert=alert,
            sink="slack",
            attempts=2,
            first_failed_at=alert.observed_at,
            next_attempt_at=alert.observed_at,
        )
    )
    assert json.loads(raw)["schema"] == 1
    assert decode(ParkedAlert, raw).alert == decode(Alert, alert.model_dump_json(by_alias=True))


def test_a_parked_alert_refuses_times_without_a_zone_and_bounds_its_text() -> None:
    alert = make_alert("c1")
    fields = {
        "alert": alert,
        "sink": "slack",
        "attempts": 1,
        "first_failed_at": alert.observed_at,
        "next_attempt_at": alert.observed_at,
    }
    for when in ("first_failed_at", "next_attempt_at"):
        with pytest.raises(ValueError, match="timezone"):
            ParkedAlert.model_validate({**fields, when: datetime(2024, 5, 1, 10, 0)})
        raw = json.loads(encode(ParkedAlert.model_validate(fields)))
        raw[when] = "2024-05-01T10:00:00"
        with pytest.raises(RecordError, match=when):
            decode(ParkedAlert, json.dumps(raw).encode())

    with pytest.raises(ValueError, match="sink"):
        ParkedAlert.model_validate({**fields, "sink": "s" * (ID_MAX + 1)})
    with pytest.raises(ValueError, match="park_id"):
        ParkedAlert.model_validate({**fields, "park_id": "p" * (ID_MAX + 1)})
    raw = json.loads(encode(ParkedAlert.model_validate(fields)))
    raw["last_error"] = "HTTP 500: " + "x" * 100_000
    parked = decode(ParkedAlert, json.dumps(raw).encode())
    assert len(parked.last_error) <= NOTE_MAX
    assert parked.last_error.startswith("HTTP 500: ")
    assert parked.last_error.endswith(f"[truncated from {100_010} chars]")


async def test_a_new_broker_gets_the_parked_alerts_back_from_the_outbox(harness: Harness) -> None:
    alerts = [make_alert(f"c{i}") for i in range(3)]
    await harness.receiver.stop()
    notifier = harness.start()
    assert await notifier.resume("cluster-a") == 0  # nothing parked yet
    for alert in alerts:
        await notifier.handle(alert)
    lost = harness.take_parked()  # the broker that had them is gone

    notifier = harness.start()
    assert await notifier.resume("cluster-a") == 0, "the same broker still has them"
    assert await notifier.resume("cluster-b") == 3
    assert {p.park_id for p in harness.parked} == {p.park_id for p in lost}
    assert await notifier.resume("cluster-b") == 0

    await harness.receiver.start()
    harness.now[0] += 1
    for parked in [*harness.take_parked(), *lost]:  # the lost copies too, were they replayed
        await notifier.redeliver(parked)
    assert alerts_in(harness.slack_messages()) == {f"c{i}": 1 for i in range(3)}
    assert await notifier.resume("cluster-c") == 0, "delivered alerts leave the outbox"


async def test_only_the_latest_parking_of_an_alert_is_tried(harness: Harness) -> None:
    await harness.receiver.stop()
    notifier = harness.start()
    await notifier.handle(make_alert("c1"))
    (first,) = harness.take_parked()
    harness.now[0] += 1
    await notifier.redeliver(first)
    (second,) = harness.take_parked()
    assert second.attempts == first.attempts + 1 and second.park_id != first.park_id

    await harness.receiver.start()
    harness.now[0] += 1
    await notifier.redeliver(first)  # an older copy, replayed: not tried
    assert harness.receiver.requests == [] and harness.parked == []
    await notifier.handle(make_alert("c1"))  # the alert replayed: its parking is put back
    assert [p.park_id for p in harness.take_parked()] == [second.park_id]
    await notifier.redeliver(second)
    assert alerts_in(harness.slack_messages()) == {"c1": 1}


async def test_alerts_sent_again_after_their_window_closed_count_in_no_later_flood(
    harness: Harness,
) -> None:
    """Decide sends a day of alerts again to a new broker; settled ones are not counted
    again, so they neither hold back the next window's alerts nor make a false summary."""
    window = 600.0
    harness.now[0] = 6000 * window
    notifier = harness.start(flood_max_per_window=3, flood_window_s=window)
    earlier = [make_alert(f"e{i}") for i in range(3)]
    for alert in earlier:
        await notifier.handle(alert)
    harness.now[0] += window
    assert await notifier.flush() == 0  # under the limit: the window is forgotten

    for alert in earlier:  # sent again, a window later
        await notifier.handle(alert)
    await notifier.handle(make_alert("new"))
    harness.now[0] += window
    assert await notifier.flush() == 0
    assert alerts_in(harness.slack_messages()) == {"e0": 1, "e1": 1, "e2": 1, "new": 1}


def story_copy(first: str, copy: int) -> Alert:
    """Copy ``copy`` of the story that clip ``first`` started (1: ``first`` itself)."""
    alert = make_alert(first if copy == 1 else f"{first}c{copy}")
    story = Story(
        story_id=Story.id_for(f"demo:{first}", "ghostface"),
        first_clip=f"demo:{first}",
        first_seen=alert.first_seen,
        copies=copy,
        copy_number=copy,
        platforms={"demo": copy},
    )
    return alert.model_copy(update={"story": story})


async def test_flood_control_counts_and_holds_back_only_alerts_that_start_a_story(
    harness: Harness,
) -> None:
    """A viral clip's copies are one story, updated or grouped by the sinks: they neither
    flood a window nor are held back by one."""
    window = 600.0
    harness.now[0] = 6000 * window
    notifier = harness.start(
        flood_max_per_window=2, flood_window_s=window, slack_story_messages=100
    )
    alerts = [
        story_copy("s1", 1),
        *(story_copy("s1", n) for n in range(2, 7)),
        story_copy("s2", 1),
        story_copy("s3", 1),  # the third story in the window: held back
        make_alert("plain"),  # an alert from before stories counts as one
    ]
    for alert in alerts:
        await notifier.handle(alert)
    assert alerts_in(harness.slack_messages()) == {
        "s1": 1,
        **{f"s1c{n}": 1 for n in range(2, 7)},
        "s2": 1,
    }
    harness.now[0] += window
    assert await notifier.flush() == 1
    (summary,) = [m for m in harness.slack_messages() if "more clips" in str(m["text"])]
    assert "Ghostface: 2 more clips (4 in all)" in str(summary["text"])


def _grouped_count() -> float:
    labels = {"sink": "slack", "entity": "ghostface", "franchise": "Scream", "platform": "demo"}
    value = metrics.registry.get_sample_value(
        "likeness_notifications_total", {**labels, "kind": "character", "outcome": "grouped"}
    )
    return value or 0.0


async def test_copies_past_slack_story_messages_are_grouped_but_webhooks_get_every_copy(
    harness: Harness,
) -> None:
    notifier = harness.start(
        slack_story_messages=2,
        webhook_url=harness.receiver.url + "/hook",
        webhook_secret="signing-key",
    )
    grouped_before = _grouped_count()
    copies = [story_copy("s1", n) for n in range(1, 6)]
    for alert in copies:
        await notifier.handle(alert)
    assert alerts_in(harness.slack_messages()) == {"s1": 1, "s1c2": 1}
    second = harness.slack_messages()[1]
    assert "2 copies of one clip" in str(second["text"])
    assert [notifier.store.outcome(a.key, "slack") for a in copies] == ["sent"] * 2 + [
        "grouped"
    ] * 3
    assert _grouped_count() - grouped_before == 3
    hooked = [json.loads(r.body) for r in harness.receiver.delivered("/hook")]
    assert [h["story"]["copies"] for h in hooked] == [1, 2, 3, 4, 5]

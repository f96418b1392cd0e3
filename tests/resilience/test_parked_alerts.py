"""Alerts parked while the receivers are down outlive restarts of the embedded default: a
worker with the notify role on the broker it starts itself is killed (SIGKILL) and stopped
(SIGTERM), its broker, in memory, going with it each time; when the receivers are back every
parked alert reaches each of them exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.pipeline.harness import Topics
from monitor.records import Alert, ParkedAlert, decode
from tests.resilience.restarts import Monitor, Receiver, send, wait_for
from tests.review.conftest import make_alert

SLACK_PATH = "/services/T0/B0/resilience"
HOOK_PATH = "/hook"
SINKS = (SLACK_PATH, HOOK_PATH)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def monitor(receiver: Receiver, tmp_path: Path) -> Iterator[Monitor]:
    running = Monitor(
        "notify",
        tmp_path,
        LIKENESS_MONITOR_NOTIFY__SLACK_WEBHOOK_URL=receiver.url + SLACK_PATH,
        LIKENESS_MONITOR_NOTIFY__WEBHOOK_URL=receiver.url + HOOK_PATH,
        LIKENESS_MONITOR_NOTIFY__WEBHOOK_SECRET="resilience-secret",
        LIKENESS_MONITOR_NOTIFY__EVIDENCE_IMAGES="false",
        LIKENESS_MONITOR_NOTIFY__RETRY_INLINE_ATTEMPTS="1",
        LIKENESS_MONITOR_NOTIFY__RETRY_INLINE_MAX_WAIT_S="0",
        LIKENESS_MONITOR_NOTIFY__RETRY_BACKOFF_S="0.5",
        LIKENESS_MONITOR_NOTIFY__RETRY_BACKOFF_MAX_S="1",
    )
    yield running
    running.close()


def park_all(monitor: Monitor, alerts: list[Alert]) -> None:
    """Start the worker, send ``alerts`` to its broker and wait until each is parked for both
    sinks on the broker's ``alerts.retry`` topic, which is all that holds them before the fix."""
    bootstrap = monitor.start()
    retry = Topics(bootstrap, ("alerts.retry",))
    try:
        send(bootstrap, alerts)
        wanted = {f"{a.key}:{sink}" for a in alerts for sink in ("slack", "webhook")}
        wait_for(
            lambda: wanted <= {decode(ParkedAlert, v).key for v in retry.of("alerts.retry")},
            90,
            f"{len(alerts)} alerts parked for both sinks",
            monitor,
        )
    finally:
        retry.close()


def test_parked_alerts_survive_kill_and_clean_stop_and_are_delivered_once(
    monitor: Monitor, receiver: Receiver
) -> None:
    first = [make_alert(f"parked-{i}", "ghostface") for i in range(3)]
    second = [make_alert(f"parked-{i}", "ghostface") for i in range(3, 5)]
    everything = [a.alert_id for a in [*first, *second]]

    park_all(monitor, first)
    monitor.kill()
    park_all(monitor, second)  # on a new embedded broker: its topics start empty
    monitor.stop()

    monitor.start()
    receiver.down = False
    wanted = Counter({(sink, alert_id): 1 for sink in SINKS for alert_id in everything})
    wait_for(
        lambda: receiver.count(everything, 200) == wanted,
        90,
        "each of the 5 parked alerts delivered to both receivers",
        counts=lambda: f"{len(receiver.count(everything, 200))} of 10 deliveries",
    )
    monitor.stop()
    assert receiver.count(everything, 200) == wanted, "and never twice"

"""Roles whose state is in PostgreSQL: a worker that moves to another host (a new, empty
state directory) finds there what the previous one wrote, so it neither alerts nor posts to
Slack twice, and its verdict cache is the one the previous worker filled.

The whole monitor runs as in ``test_end_to_end.py`` (a real broker process, the demo platform,
real models), with ``LIKENESS_MONITOR_PIPELINE__STATE_URL`` pointing at the machine's
PostgreSQL; each run has a namespace of its own, dropped at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import ROLES
from monitor.demo.catalogue import DemoCatalogue
from monitor.pipeline.broker import EmbeddedBroker, free_port
from monitor.pipeline.harness import Topics, Worker, produce
from tests.conftest import in_ci
from tests.pipeline.monitor_run import (
    FIRST_ALERTS_S,
    expected_alerts,
    sighting,
    slack_alert_ids,
    worker_env,
)
from tests.postgres import postgres_namespace, require_postgres


@pytest.fixture(scope="module")
def namespace() -> Iterator[tuple[str, str]]:
    url = require_postgres(in_ci())
    with postgres_namespace(url) as name:
        yield url, name


def start_worker(
    host: Path,
    broker: EmbeddedBroker,
    demo: DemoCatalogue,
    platform_url: str,
    slack: str,
    namespace: tuple[str, str],
) -> Worker:
    """A worker with every role, on a "host" of its own: ``host`` is its state directory."""
    url, name = namespace
    env = worker_env(
        host,
        free_port(),
        broker,
        demo,
        platform_url,
        slack,
        LIKENESS_MONITOR_PIPELINE__STATE_URL=url,
        LIKENESS_MONITOR_PIPELINE__STATE_NAMESPACE=name,
    )
    worker = Worker(env, host / "worker.log", roles=",".join(ROLES))
    worker.start()
    return worker


def test_a_worker_moved_to_another_host_alerts_nothing_twice_and_rescores_no_clip_it_had(
    tmp_path_factory: pytest.TempPathFactory,
    broker: EmbeddedBroker,
    demo: DemoCatalogue,
    platform_url: str,
    slack: str,
    topics: Topics,
    namespace: tuple[str, str],
) -> None:
    wanted = expected_alerts(demo)
    first_host = tmp_path_factory.mktemp("host-a")
    first = start_worker(first_host, broker, demo, platform_url, slack, namespace)
    try:
        topics.wait_for(
            lambda: wanted <= set(topics.alert_keys()), FIRST_ALERTS_S, f"alerts {wanted}"
        )
    finally:
        assert first.stop() == 0, (first_host / "worker.log").read_text()[-4000:]
    assert not (first_host / "state.sqlite3").exists(), "the state is in PostgreSQL"

    second_host = tmp_path_factory.mktemp("host-b")  # empty: nothing of the first host's disk
    second = start_worker(second_host, broker, demo, platform_url, slack, namespace)
    try:
        key, value = sighting(demo, platform_url, "after-the-move", "bbb-cropped")
        asyncio.run(produce(broker.bootstrap, "clips.discovered", (key, value)))
        topics.wait_for(
            lambda: "demo:after-the-move:big-buck-bunny" in topics.alert_keys(),
            FIRST_ALERTS_S,
            "the alert for a clip discovered after the move",
        )
        scored_before = len(topics.of("clips.scored"))
        topics.wait_for(
            lambda: len(topics.of("clips.scored")) >= scored_before + len(demo.clips),
            90,
            "another crawl of the whole demo, on the second host",
        )
        web = f"http://127.0.0.1:{second.env['LIKENESS_MONITOR_PIPELINE__WEB_PORT']}"
        scored = _scored_by_outcome(httpx.get(f"{web}/metrics", timeout=10).text)
    finally:
        assert second.stop() == 0, (second_host / "worker.log").read_text()[-4000:]
    duplicates = {key: n for key, n in topics.alert_keys().items() if n > 1}
    assert duplicates == {}, duplicates
    assert max(slack_alert_ids().values()) == 1, "no Slack message twice across the move"
    assert scored.get("cached", 0) >= len(demo.clips), scored
    assert scored.get("scored", 0) <= 1, f"only the new clip is scored on the new host: {scored}"


def _scored_by_outcome(exposition: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "likeness_clips_scored_total":
                outcome = sample.labels["outcome"]
                found[outcome] = found.get(outcome, 0.0) + sample.value
    return found

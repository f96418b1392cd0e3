"""A real Prometheus scrapes the monitor's metrics and answers PromQL with the spread.

The decide role's own step (``_decide_one``) is driven through a scripted scenario: clips of
two franchises are flagged, then observed again with more views. The registry it fills is
served the way a worker serves it, by prometheus_client's exposition on 127.0.0.1, and the
Debian ``prometheus`` binary scrapes it every second. The assertions are the README's PromQL
examples, so the documented queries are known to return the documented figures.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faust
import httpx
import pytest
import yaml
from prometheus_client import start_http_server

from monitor import metrics
from monitor.config import Settings
from monitor.pipeline.app import Pipeline
from monitor.pipeline.harness import free_port
from monitor.pipeline.roles import _decide_one
from monitor.pipeline.worker_state import StateStore
from monitor.records import Alert, ClipRef, ClipScored, ClipSeen, ScoredEntity, decode, encode

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="prometheus missing: install the Debian package prometheus (make test does)",
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POSTED = T0 - timedelta(hours=1)


class AcknowledgingTopic:
    """Stands in for the alerts topic: every send is acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(value)
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


@dataclass(frozen=True)
class Entity:
    id: str
    franchise: str


class PrometheusServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=5.0)

    def query(self, promql: str) -> dict[str, float]:
        """Instant query; each series keyed by its labels, ``k=v,...`` ('' for none), sans name."""
        reply = self.client.get("/api/v1/query", params={"query": promql})
        reply.raise_for_status()
        body = reply.json()
        assert body["status"] == "success", body
        return {
            ",".join(
                f"{k}={v}" for k, v in sorted(series["metric"].items()) if k != "__name__"
            ): float(series["value"][1])
            for series in body["data"]["result"]
        }

    def wait_for(self, promql: str, expected: dict[str, float], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        got: dict[str, float] = {}
        while time.monotonic() < deadline:
            got = self.query(promql)
            if got == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"{promql}: {got} after {timeout}s, expected {expected}")


@pytest.fixture
def metrics_url() -> Iterator[str]:
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def prometheus(tmp_path: Path, metrics_url: str) -> Iterator[PrometheusServer]:
    assert PROMETHEUS is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "likeness-monitor", "static_configs": [{"targets": [metrics_url]}]}
                ],
            }
        )
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                if server.client.get("/-/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        server.wait_for(
            'up{job="likeness-monitor"}', {f"instance={metrics_url},job=likeness-monitor": 1.0}
        )
        yield server
    finally:
        server.client.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _scored(clip: str, entity: Entity | None, views: int, at: datetime) -> ClipScored:
    seen = ClipSeen(
        platform="demo",
        clip_id=clip,
        url=f"https://demo.invalid/{clip}",
        posted_at=POSTED,
        observed_at=at,
        views=views,
        shares=views // 10,
    )
    entities = (
        []
        if entity is None
        else [
            ScoredEntity(
                entity_id=entity.id,
                name=entity.id,
                kind="character",
                franchise=entity.franchise,
                score=0.9,
                threshold=0.6,
                flagged=True,
            )
        ]
    )
    return ClipScored(clip=ClipRef.of(seen), observation=seen, entities=entities)


def test_prometheus_reports_the_spread_of_flagged_clips_as_they_are_observed_again(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    tag = uuid.uuid4().hex[:8]  # this test's own label values, whatever else the registry holds
    gopher, sintel = Entity(f"gopher-{tag}", f"go-{tag}"), Entity(f"sintel-{tag}", f"blender-{tag}")
    ours = f'franchise=~".*-{tag}"'
    state = StateStore(tmp_path / "state.sqlite3")
    pipeline = Pipeline(
        app=faust.App(f"promtest-{tag}", broker="kafka://127.0.0.1:9"),
        settings=Settings(),
        state=state,
        roles=frozenset({"decide"}),
    )
    alerts = AcknowledgingTopic()

    async def observe(views: dict[str, int], at: datetime) -> None:
        who = {"a": gopher, "b": gopher, "c": sintel, "d": None}
        for clip, count in views.items():
            await _decide_one(
                pipeline, alerts, encode(_scored(f"{clip}-{tag}", who[clip], count, at))
            )

    try:
        asyncio.run(observe({"a": 100, "b": 50, "c": 10, "d": 999}, T0))
        prometheus.wait_for(
            f"sum by (franchise) (likeness_flagged_views{{{ours}}})",
            {f"franchise=go-{tag}": 150.0, f"franchise=blender-{tag}": 10.0},
        )
        asyncio.run(observe({"a": 1000, "b": 500, "c": 20, "d": 5000}, T0 + timedelta(minutes=10)))
        prometheus.wait_for(
            f"sum by (franchise) (likeness_flagged_views{{{ours}}})",
            {f"franchise=go-{tag}": 1500.0, f"franchise=blender-{tag}": 20.0},
        )
    finally:
        state.close()

    # Views grew between scrapes: Prometheus holds both figures, not just the latest.
    for over_time, views in (("min_over_time", 150.0), ("max_over_time", 1500.0)):
        assert prometheus.query(
            f'sum by (entity) ({over_time}(likeness_flagged_views{{entity="{gopher.id}"}}[5m]))'
        ) == {f"entity={gopher.id}": views}
    assert prometheus.query(f"sum by (entity) (likeness_flagged_shares{{{ours}}})") == {
        f"entity={gopher.id}": 150.0,
        f"entity={sintel.id}": 2.0,
    }
    # Flagged once per clip and entity, however often a clip is observed; one alert each.
    assert prometheus.query(f"sum(likeness_clips_flagged_total{{{ours}}})") == {"": 3.0}
    assert prometheus.query(f"sum by (entity) (likeness_alerts_total{{{ours}}})") == {
        f"entity={gopher.id}": 2.0,
        f"entity={sintel.id}": 1.0,
    }
    assert sorted(decode(Alert, raw).clip.clip_id for raw in alerts.sent) == [
        f"a-{tag}",
        f"b-{tag}",
        f"c-{tag}",
    ]
    # Views per hour since posting: 100 + 50 at one hour old, 1000 + 500 at 70 minutes.
    velocity = prometheus.query(
        f'sum(likeness_flagged_view_velocity_sum{{franchise="{gopher.franchise}"}})'
    )
    assert velocity[""] == pytest.approx(150 + 1500 * 60 / 70)
    assert prometheus.query(
        f'sum(likeness_flagged_view_velocity_count{{franchise="{gopher.franchise}"}})'
    ) == {"": 4.0}
    # The unflagged clip never shows: no series carries its views.
    assert (
        prometheus.query("count(likeness_flagged_views == 999 or likeness_flagged_views == 5000)")
        == {}
    )

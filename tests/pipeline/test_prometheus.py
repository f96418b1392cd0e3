"""A real Prometheus scrapes a real worker's ``/metrics`` and answers every PromQL query the
README and the dashboards show.

One worker runs every role as users run it (``python -m monitor up``) on the embedded broker:
it crawls a fake YouTube on 127.0.0.1 (whose thumbnails, a YouTube clip's media, are not found
there, so the scorer fails those clips), scores a real clip served on 127.0.0.1 against a
one-entity gallery, decides on verdicts the test sends (two franchises, observed twice with
more views), notifies to the console and to a webhook whose first delivery fails,
dead-letters a junk record, and applies two review decisions. The Debian ``prometheus``
binary scrapes it every second. Nothing leaves 127.0.0.1.

The queries are read from README.md's ``promql`` block and from every dashboard in
``dashboards/json/`` (Grafana's variables set to their "All" value), so a query added there is
run here: each must parse and return series. The spread queries of the README are also held to
the figures the test's traffic makes.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from dashboards.build import JSON_DIR, expressions
from dashboards.promql import metric_names
from monitor.likeness.models import Models
from monitor.pipeline.broker import EmbeddedBroker, free_port
from monitor.pipeline.harness import Worker, produce
from monitor.records import (
    Alert,
    ClipRef,
    ClipScored,
    ClipSeen,
    Review,
    ScoredEntity,
    Synthetic,
    encode,
)
from tests.conftest import require_binary
from tests.resilience.media import MediaServer, build_bunny_gallery, clip, scorer_env
from tests.sources.platforms import FakeYouTube, Video, catalogue
from tests.threaded import ThreadedApp

README = Path(__file__).resolve().parents[2] / "README.md"
REVIEW_TOKEN = "prometheus-test-review-token"
WEBHOOK_SECRET = "prometheus-test-webhook-secret"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
POSTED = T0 - timedelta(hours=1)
GOPHER = ("gopher", "Go")  # entity id, franchise (the README's example filters on "Go")
SINTEL = ("sintel", "Blender")
OURS = ("Go", "Blender")
"""The franchises of the verdicts the test sends: only these figures are known in advance (the
scored clip may flag the gallery's entity too, with no franchise)."""

AI_MADE_CLIPS = frozenset({"a"})
"""The clips whose verdicts say they are AI-generated: the Spread dashboard charts them apart."""
AI_MADE = Synthetic(source="caption", value="ai_generated", detail="caption hints: #sora")

NOT_PRODUCED: dict[str, str] = {}
"""Metrics that the queries read but this test's traffic cannot make, each with why: a query
over one of them is only required to be accepted by Prometheus. Every metric the README and
dashboards chart today is produced, so none is listed."""


# --- the queries ----------------------------------------------------------------------------


def readme_queries() -> list[str]:
    """Each line of the README's ``promql`` blocks, without its trailing comment."""
    blocks = re.findall(r"```promql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    lines = (
        re.sub(r"\s+#\s.*$", "", line).strip() for block in blocks for line in block.splitlines()
    )
    return [line for line in lines if line]


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable, variables set to "All"."""
    found = []
    for path in sorted(JSON_DIR.glob("*.json")):
        model = json.loads(path.read_text())
        every = {
            variable["name"]: variable.get("allValue") or ".*"
            for variable in model.get("templating", {}).get("list", [])
        }
        for where, expr in expressions(model):
            for name, value in every.items():
                expr = re.sub(rf"\$\{{{name}\}}|\${name}\b", value, expr)
            assert "$" not in expr, f"{path.name} {where}: a variable this test does not set"
            found.append((f"{path.name}: {where}", expr))
    return found


def test_the_queries_are_found_in_the_readme_and_the_dashboards() -> None:
    """The extraction itself: the README's block and both dashboards, none missed."""
    readme = readme_queries()
    assert len(readme) >= 13 and "sum by (franchise) (likeness_flagged_views)" in readme
    assert all("#" not in query for query in readme)
    panels = dashboard_queries()
    assert {where.split(":")[0] for where, _ in panels} == {"pipeline-health.json", "spread.json"}
    assert len(panels) >= 40


# --- the worker's surroundings ----------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    """A webhook receiver on 127.0.0.1: its first delivery gets a 500, the others a 200."""
    delivered: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        delivered.append(await request.read())
        return web.Response(status=500 if len(delivered) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    served = ThreadedApp(app)
    yield f"{served.url}/hook"
    served.close()


class LocalYouTube(FakeYouTube):
    """The fake YouTube with its thumbnails, a YouTube clip's ``media_url``, on 127.0.0.1 where
    nothing is found: the scorer fails those clips (http_404) without reaching outside."""

    def __init__(self, thumbnails: str) -> None:
        super().__init__(catalogue(3, "found"), popular=catalogue(2, "popular"))
        self.thumbnails = thumbnails

    def resource(self, v: Video) -> dict[str, Any]:  # type: ignore[override]  # needs self
        body = FakeYouTube.resource(v)
        body["snippet"]["thumbnails"] = {"high": {"url": f"{self.thumbnails}/{v.id}.jpg"}}
        return body


@pytest.fixture(scope="module")
def youtube(media_server: MediaServer) -> Iterator[str]:
    fake = LocalYouTube(f"{media_server.url}/thumbnails")
    served = ThreadedApp(fake.app())
    fake.base_url = served.url
    yield f"{served.url}/youtube/v3"
    served.close()


@pytest.fixture(scope="module")
def media_server(package_file: Callable[[str], Path]) -> Iterator[MediaServer]:
    running = MediaServer(package_file("bigbuckbunny.mp4"), drip_s=2.0)
    yield running
    running.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def web_port(broker: EmbeddedBroker) -> int:
    """The worker's web port, known before it starts so that Prometheus can start first."""
    return free_port()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    web_port: int,
    youtube: str,
    webhook: str,
    package_file: Callable[[str], Path],
    models: Models,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Worker, str]]:
    """Every role in one ``python -m monitor up``; yields it and its web address."""
    root = tmp_path_factory.mktemp("worker")
    gallery = build_bunny_gallery(root / "gallery", package_file("bigbuckbunny.mp4"), models)
    env = scorer_env(
        broker.url,
        root / "state",
        gallery,
        LIKENESS_MONITOR_SOURCES__YOUTUBE__API_KEY=FakeYouTube.KEY,
        LIKENESS_MONITOR_SOURCES__YOUTUBE__BASE_URL=youtube,
        LIKENESS_MONITOR_SOURCES__YOUTUBE__INTERVAL_S="1",
        LIKENESS_MONITOR_SOURCES__YOUTUBE__DAILY_QUOTA="1000000",  # never spent by a pass a second
        LIKENESS_MONITOR_NOTIFY__WEBHOOK_URL=webhook,
        LIKENESS_MONITOR_NOTIFY__WEBHOOK_SECRET=WEBHOOK_SECRET,
        LIKENESS_MONITOR_NOTIFY__RETRY_BACKOFF_S="0.1",
        LIKENESS_MONITOR_REVIEW__TOKEN=REVIEW_TOKEN,
        LIKENESS_MONITOR_PIPELINE__WEB_PORT=str(web_port),
    )
    running = Worker(env, root / "worker.log", roles="crawl,score,decide,notify,review")
    running.start()
    web = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"{web}/metrics"):
            assert running.alive(), _tail(running)
            assert time.monotonic() < deadline, f"no /metrics after 120 s\n{_tail(running)}"
            time.sleep(0.3)
        yield running, web
    finally:
        if running.alive():
            running.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _tail(worker: Worker) -> str:
    return worker.log.read_text(errors="replace")[-4000:]


# --- Prometheus ---------------------------------------------------------------------------------


class PrometheusServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def result(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's series; an expression Prometheus does not accept fails here."""
        reply = self.client.get("/api/v1/query", params={"query": promql})
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", f"{promql}: {body}"
        assert body["data"]["resultType"] in ("vector", "scalar"), body
        result: list[dict[str, Any]] = body["data"]["result"]
        return (
            result if body["data"]["resultType"] == "vector" else [{"metric": {}, "value": result}]
        )

    def query(self, promql: str) -> dict[str, float]:
        """Each series keyed by its labels, ``k=v,...`` ('' for none), without the name."""
        return {
            ",".join(
                f"{k}={v}" for k, v in sorted(series["metric"].items()) if k != "__name__"
            ): float(series["value"][1])
            for series in self.result(promql)
        }

    def wait_until(
        self,
        promql: str,
        holds: Callable[[dict[str, float]], bool],
        timeout: float = 30.0,
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.query(promql)
            if holds(got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql}: {got} after {timeout:.0f} s")
            time.sleep(0.25)


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, web_port: int
) -> Iterator[PrometheusServer]:
    """Prometheus scraping the worker's port every second, started before the worker: a
    missing binary is known at once, not after the worker's start."""
    binary = require_binary("prometheus")
    root = tmp_path_factory.mktemp("prometheus")
    target = f"127.0.0.1:{web_port}"
    config = root / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "likeness-monitor", "static_configs": [{"targets": [target]}]}
                ],
            }
        )
    )
    port = free_port(avoid=(web_port,))
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while not _answers(f"{server.url}/-/ready"):
            assert process.poll() is None, (root / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
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


# --- the traffic ------------------------------------------------------------------------------


def _verdict(clip_id: str, entity: tuple[str, str] | None, views: int, at: datetime) -> ClipScored:
    seen = ClipSeen(
        platform="demo",
        clip_id=clip_id,
        url=f"https://demo.invalid/{clip_id}",
        posted_at=POSTED,
        observed_at=at,
        views=views,
        shares=views // 10,
    )
    flagged = [
        ScoredEntity(
            entity_id=entity[0],
            name=entity[0].title(),
            kind="character",
            franchise=entity[1],
            score=0.9,
            threshold=0.6,
            flagged=True,
        )
        for entity in ([entity] if entity else [])
    ]
    synthetic = AI_MADE if clip_id in AI_MADE_CLIPS else Synthetic()
    return ClipScored(
        clip=ClipRef.of(seen), observation=seen, entities=flagged, synthetic=synthetic
    )


def _send(bootstrap: str, topic: str, *records: tuple[bytes, bytes]) -> None:
    asyncio.run(produce(bootstrap, topic, *records))


def _observe(bootstrap: str, views: dict[str, int], at: datetime) -> None:
    who = {"a": GOPHER, "b": GOPHER, "c": SINTEL, "d": None, "e": GOPHER}
    verdicts = [_verdict(clip_id, who[clip_id], count, at) for clip_id, count in views.items()]
    _send(bootstrap, "clips.scored", *((v.clip.key.encode(), encode(v)) for v in verdicts))


def _ours(got: dict[str, float]) -> dict[str, float]:
    """Only the series of the test's own franchises."""
    return {k: v for k, v in got.items() if any(f"franchise={f}" in k.split(",") for f in OURS)}


@pytest.fixture(scope="module")
def traffic(
    prometheus: PrometheusServer,
    broker: EmbeddedBroker,
    worker: tuple[Worker, str],
    media_server: MediaServer,
) -> PrometheusServer:
    """Drives the worker in two rounds a few scrapes apart, so that counters grow between
    samples (rate, increase and deriv need two), then reviews two alerts."""
    running, web = worker
    bootstrap = broker.bootstrap
    spread = "sum by (franchise) (likeness_flagged_views)"
    up = f"instance={web.removeprefix('http://')},job=likeness-monitor"
    prometheus.wait_until('up{job="likeness-monitor"}', lambda got: got == {up: 1.0})

    bunny = clip(media_server, "fast", "bunny-scored")
    _send(bootstrap, "clips.discovered", (bunny.key.encode(), encode(bunny)))
    _send(bootstrap, "clips.scored", (b"junk", b"\x00 not a record"))
    _observe(bootstrap, {"a": 100, "b": 50, "c": 10, "d": 999}, T0)
    prometheus.wait_until(
        spread, lambda got: _ours(got) == {"franchise=Go": 150.0, "franchise=Blender": 10.0}
    )
    time.sleep(2.5)  # two scrapes of the first round

    later = T0 + timedelta(minutes=10)
    _observe(bootstrap, {"a": 1000, "b": 500, "c": 20, "d": 5000, "e": 7}, later)
    prometheus.wait_until(
        spread, lambda got: _ours(got) == {"franchise=Go": 1507.0, "franchise=Blender": 20.0}
    )

    # Reviews name alerts the review store holds: wait for the page to list them.
    confirm = Alert.id_for("demo:a", GOPHER[0])
    dismiss = Alert.id_for("demo:c", SINTEL[0])
    bearer = {"Authorization": f"Bearer {REVIEW_TOKEN}"}
    deadline = time.monotonic() + 30
    while not all(
        i in httpx.get(f"{web}/review", headers=bearer, timeout=5).text for i in (confirm, dismiss)
    ):
        assert running.alive(), _tail(running)
        assert time.monotonic() < deadline, "the review page never listed the alerts"
        time.sleep(0.3)
    reviews = [
        Review(alert_id=confirm, decision="confirm", reviewer="rita"),
        Review(alert_id=dismiss, decision="dismiss", reviewer="rita", reason="a look-alike"),
    ]
    _send(bootstrap, "reviews", *((r.alert_id.encode(), encode(r)) for r in reviews))
    prometheus.wait_until(
        "sum by (decision) (likeness_reviews_total)",
        lambda got: got == {"decision=confirm": 1.0, "decision=dismiss": 1.0},
    )
    # The real clip is fetched, decoded in the decode pool and scored on the CPU: the slowest.
    prometheus.wait_until(
        "sum by (outcome) (likeness_clips_scored_total)",
        lambda got: "outcome=scored" in got,
        timeout=90.0,
    )
    assert running.alive(), _tail(running)
    return prometheus


# --- every query ------------------------------------------------------------------------------


def _all_queries() -> list[tuple[str, str]]:
    return [("README.md", q) for q in readme_queries()] + dashboard_queries()


_AGGREGATION = re.compile(r"\b(?:sum|max|min|avg|count|topk|bottomk)\s*(?:\(|by\b|without\b)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def kept_labels(promql: str) -> set[str] | None:
    """The label names an aggregating query's series may carry: those of its ``by`` clauses
    (``le`` is consumed by ``histogram_quantile``); None for a query that aggregates nothing."""
    if not _AGGREGATION.search(promql):
        return None
    kept = {name.strip() for group in _BY.findall(promql) for name in group.split(",")}
    kept.discard("")
    return kept - {"le"} if "histogram_quantile" in promql else kept


def test_kept_labels_reads_the_by_clauses() -> None:
    assert kept_labels("sum(rate(x[5m])) / sum(rate(y[5m]))") == set()
    assert kept_labels("topk(10, sum by (entity, franchise) (v))") == {"entity", "franchise"}
    assert kept_labels("histogram_quantile(0.9, sum by (le, device) (rate(b[5m])))") == {"device"}
    assert kept_labels("likeness_flagged_views") is None


@pytest.mark.parametrize(("where", "promql"), _all_queries(), ids=lambda v: str(v)[:90])
def test_every_documented_query_parses_and_returns_series(
    traffic: PrometheusServer, where: str, promql: str
) -> None:
    unproduced = sorted(metric_names(promql) & NOT_PRODUCED.keys())
    if unproduced:
        # The traffic cannot make these metrics: Prometheus must still accept the query.
        traffic.result(promql)
        return
    # Series appear once Prometheus holds two samples of every metric read: a few scrapes.
    try:
        got = traffic.wait_until(promql, bool, timeout=20.0)
    except AssertionError:
        pytest.fail(
            f"{where}: no series for {promql}; if the traffic here cannot make "
            f"{sorted(metric_names(promql))}, list them in NOT_PRODUCED with why",
            pytrace=False,
        )
    kept = kept_labels(promql)
    if kept is not None:  # each series is one of the breakdown the query asks for
        for series in got:
            assert {pair.split("=")[0] for pair in series.split(",") if pair} <= kept, series


def test_the_readme_spread_queries_return_the_figures_of_the_traffic(
    traffic: PrometheusServer,
) -> None:
    q = traffic.query
    # Views of flagged clips now: a 1000 + b 500 + e 7 for the Go character, c 20 for Sintel.
    now = {"franchise=Go": 1507.0, "franchise=Blender": 20.0}
    assert _ours(q("sum by (franchise) (likeness_flagged_views)")) == now
    top = q("topk(10, sum by (entity) (likeness_flagged_views))")
    assert top["entity=gopher"] == 1507.0 and top["entity=sintel"] == 20.0
    assert q('sum by (platform) (likeness_flagged_views{franchise="Go"})') == {
        "platform=demo": 1507.0
    }
    # Views grew between scrapes, so the views gained per hour are positive, and Prometheus
    # holds both figures, not just the latest.
    growth = q("sum by (entity) (deriv(likeness_flagged_views[15m])) * 3600")
    assert growth["entity=gopher"] > 0 and growth["entity=sintel"] > 0
    for over_time, views in (("min_over_time", 150.0), ("max_over_time", 1507.0)):
        assert q(
            f'sum by (entity) ({over_time}(likeness_flagged_views{{entity="gopher"}}[5m]))'
        ) == {"entity=gopher": views}
    # Clip e was first flagged in the second round: newly flagged clips per hour are positive.
    assert q("sum by (entity) (increase(likeness_clips_flagged_total[1h]))")["entity=gopher"] > 0
    velocity = q(
        "histogram_quantile(0.9, sum by (le, franchise) "
        "(rate(likeness_flagged_view_velocity_bucket[30m])))"
    )
    assert {"franchise=Go", "franchise=Blender"} <= velocity.keys()
    # Flagged once per clip and entity, however often a clip is observed; one alert each; the
    # unflagged clip's views never show.
    assert q('sum(likeness_clips_flagged_total{franchise=~"Go|Blender"})') == {"": 4.0}
    assert q('sum by (entity) (likeness_alerts_total{franchise=~"Go|Blender"})') == {
        "entity=gopher": 3.0,
        "entity=sintel": 1.0,
    }
    assert q("count(likeness_flagged_views == 999 or likeness_flagged_views == 5000)") == {}
    # Clip a said it was AI-generated: counted apart, by the bounded synthetic label.
    assert q(
        'sum by (entity, synthetic) (likeness_clips_flagged_total{franchise=~"Go|Blender"})'
    ) == {
        "entity=gopher,synthetic=ai_generated": 1.0,
        "entity=gopher,synthetic=unknown": 2.0,
        "entity=sintel,synthetic=unknown": 1.0,
    }
    assert q('sum(likeness_alerts_total{synthetic="ai_generated"})') == {"": 1.0}


def test_the_other_roles_figures_are_those_of_the_traffic(traffic: PrometheusServer) -> None:
    q = traffic.query
    # The real clip was scored; the YouTube clips, whose thumbnails are not found, failed.
    assert {"outcome=scored", "outcome=failed"} <= q(
        "sum by (outcome) (likeness_clips_scored_total)"
    ).keys()
    assert "platform=youtube,reason=http_404" in q(
        "sum by (platform, reason) (likeness_media_failures_total)"
    )
    assert q("sum by (device) (likeness_scorer_batch_size_count)")["device=cpu"] >= 1
    # The crawler's passes of the fake YouTube, and the quota they spent.
    assert (
        q("sum by (source, outcome) (likeness_crawl_passes_total)")["outcome=ok,source=youtube"]
        >= 1
    )
    assert 0 < q("max by (source) (likeness_source_quota_used_ratio)")["source=youtube"] < 1
    # The webhook's first delivery failed once and was tried again.
    assert q("sum by (sink, reason) (likeness_notify_attempt_failures_total)") == {
        "reason=server_error,sink=webhook": 1.0
    }
    sent = q('sum by (sink) (likeness_notifications_total{outcome="sent",franchise=~"Go|Blender"})')
    assert sent == {"sink=console": 4.0, "sink=webhook": 4.0}
    assert q("sum by (topic) (likeness_deadletters_total)") == {"topic=clips.scored": 1.0}
    assert _ours(q("max by (entity, franchise) (likeness_review_dismissed_share)")) == {
        "entity=gopher,franchise=Go": 0.0,
        "entity=sintel,franchise=Blender": 1.0,
    }

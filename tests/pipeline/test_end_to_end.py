"""The whole monitor, as users run it: a real broker process, the demo platform on 127.0.0.1,
real models, and every role in one worker process (``python -m monitor up``).

The tests run in order against one worker: it finds every positive of the demo once, survives
bad records and broken media, and resumes after a restart without alerting twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.config import DecodeSettings, LikenessSettings
from monitor.demo.catalogue import DemoCatalogue, build_demo
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.models import Models
from monitor.pipeline.broker import EmbeddedBroker
from monitor.pipeline.run import demo_platform_in_thread
from monitor.records import Alert, ClipScored, ClipSeen, DeadLetter, decode, encode

DECODE = DecodeSettings(max_frames=4, even_frames=4)
FIRST_ALERTS_S = 240.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Topics:
    """Everything written to the pipeline's topics, read by a consumer in a background thread."""

    def __init__(self, bootstrap: str) -> None:
        self.records: dict[str, list[tuple[bytes | None, bytes]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run(bootstrap)), daemon=True
        )
        self._thread.start()

    async def _run(self, bootstrap: str) -> None:
        consumer = AIOKafkaConsumer(
            "alerts", "clips.scored", "deadletter", bootstrap_servers=bootstrap,
            auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
            metadata_max_age_ms=1000,
        )  # fmt: skip
        await consumer.start()
        try:
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                with self._lock:
                    for partition, messages in batches.items():
                        for message in messages:
                            self.records.setdefault(partition.topic, []).append(
                                (message.key, message.value)
                            )
        finally:
            await consumer.stop()

    def of(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        with self._lock:
            return list(self.records.get(topic, []))

    def alert_keys(self) -> Counter[str]:
        return Counter(decode(Alert, value).key for _, value in self.of("alerts"))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Worker:
    """``python -m monitor up`` with the test's broker, platform, gallery and state folder."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "up"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, models: Models) -> DemoCatalogue:
    catalogue = build_demo(tmp_path_factory.mktemp("demo"))
    built = build_gallery(catalogue.gallery_dir, models, LikenessSettings(device="cpu"), DECODE)
    built.save(catalogue.gallery_dir / "built")
    return catalogue


@pytest.fixture(scope="module")
def platform_url(demo: DemoCatalogue) -> Iterator[str]:
    with demo_platform_in_thread(demo.root, 0) as url:
        yield url


@pytest.fixture(scope="module")
def topics(broker: EmbeddedBroker) -> Iterator[Topics]:
    observed = Topics(broker.bootstrap)
    yield observed
    observed.close()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    demo: DemoCatalogue,
    platform_url: str,
    topics: Topics,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    state = tmp_path_factory.mktemp("state")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LIKENESS_MONITOR_PIPELINE__BROKER_URL": broker.url,
        "LIKENESS_MONITOR_PIPELINE__DEMO_PLATFORM_URL": platform_url,
        "LIKENESS_MONITOR_PIPELINE__GALLERY": str(demo.gallery_dir / "built"),
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(state),
        "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(_free_port()),
        "LIKENESS_MONITOR_PIPELINE__PARTITIONS": "2",
        "LIKENESS_MONITOR_PIPELINE__CRAWL_INTERVAL_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S": "0.5",
        "LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS": "1",
        "LIKENESS_MONITOR_LIKENESS__DEVICE": "cpu",
        "LIKENESS_MONITOR_DECODE__MAX_FRAMES": str(DECODE.max_frames),
        "LIKENESS_MONITOR_DECODE__EVEN_FRAMES": str(DECODE.even_frames),
    }
    running = Worker(env, state / "worker.log")
    running.start()
    yield running
    if running.alive():
        running.stop()


def expected_alerts(demo: DemoCatalogue) -> set[str]:
    return {f"demo:{clip.id}:{entity}" for clip in demo.clips for entity in clip.expect}


def worker_log(worker: Worker) -> str:
    return worker.log.read_text(errors="replace")[-4000:]


def test_every_positive_is_alerted_exactly_once_and_no_negative_ever(
    worker: Worker, topics: Topics, demo: DemoCatalogue
) -> None:
    wanted = expected_alerts(demo)
    assert len(wanted) >= 7
    try:
        topics.wait_for(
            lambda: wanted <= set(topics.alert_keys()), FIRST_ALERTS_S, f"alerts {wanted}"
        )
    except AssertionError:
        raise AssertionError(
            f"missing {wanted - set(topics.alert_keys())}\n{worker_log(worker)}"
        ) from None
    crawls_before = len(topics.of("clips.scored"))
    topics.wait_for(lambda: len(topics.of("clips.scored")) >= crawls_before + 2 * len(demo.clips), 60,
                    "two more crawls of the whole demo")  # fmt: skip
    keys = topics.alert_keys()
    assert set(keys) == wanted, "only positives alert, for the entities they show"
    assert all(count == 1 for count in keys.values()), keys
    alert = decode(Alert, topics.of("alerts")[0][1])
    assert (
        alert.evidence
        and alert.score >= alert.threshold
        and alert.clip.url.startswith("http://127.0.0.1")
    )


def test_broken_media_yield_a_scored_record_with_the_reason_and_a_metric(
    worker: Worker, topics: Topics, demo: DemoCatalogue
) -> None:
    broken = {clip.id: clip.failure_reason for clip in demo.clips if clip.broken}
    assert broken == {"gone": "http_404", "glitch": "unreadable"}
    reasons = {}
    for _, value in topics.of("clips.scored"):
        scored = decode(ClipScored, value)
        if scored.clip.clip_id in broken and scored.failure is not None:
            reasons[scored.clip.clip_id] = scored.failure.reason
    assert reasons == broken
    port = worker.env["LIKENESS_MONITOR_PIPELINE__WEB_PORT"]
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'likeness_media_failures_total{platform="demo",reason="http_404"}' in page
    assert 'likeness_media_failures_total{platform="demo",reason="unreadable"}' in page
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["gallery_version"]


async def _produce(bootstrap: str, *records: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait("clips.discovered", key=key, value=value)
    finally:
        await producer.stop()


def _sighting(
    demo: DemoCatalogue, platform_url: str, clip_id: str, like: str
) -> tuple[bytes, bytes]:
    """A new clip id whose media is that of the demo clip ``like``."""
    media = demo.clip(like).media
    seen = ClipSeen(platform="demo", clip_id=clip_id, url=f"{platform_url}/watch/{like}",
                    media_url=f"{platform_url}/media/{media}", title="reposted", views=5)  # fmt: skip
    return seen.key.encode(), encode(seen)


def test_a_malformed_record_goes_to_deadletter_and_later_records_still_flow(
    worker: Worker, topics: Topics, demo: DemoCatalogue, broker: EmbeddedBroker, platform_url: str
) -> None:
    garbage = b"\x00this is not a ClipSeen"
    asyncio.run(_produce(broker.bootstrap, (b"demo:bad", garbage),
                         _sighting(demo, platform_url, "repost-1", "bbb-mirrored")))  # fmt: skip
    topics.wait_for(lambda: "demo:repost-1:big-buck-bunny" in topics.alert_keys(), 120,
                    "the alert for the record after the bad one")  # fmt: skip
    letters = [decode(DeadLetter, value) for _, value in topics.of("deadletter")]
    ours = [letter for letter in letters if letter.raw == garbage]
    assert len(ours) == 1
    assert ours[0].source_topic == "clips.discovered" and ours[0].offset is not None
    assert "ClipSeen" in ours[0].reason


def test_a_restarted_worker_resumes_from_committed_offsets_without_alerting_twice(
    worker: Worker, topics: Topics, demo: DemoCatalogue, broker: EmbeddedBroker, platform_url: str
) -> None:
    assert worker.stop() == 0, worker_log(worker)
    asyncio.run(
        _produce(broker.bootstrap, _sighting(demo, platform_url, "while-down", "bbb-cropped"))
    )
    worker.start()
    topics.wait_for(lambda: "demo:while-down:big-buck-bunny" in topics.alert_keys(), FIRST_ALERTS_S,
                    "the alert for a clip discovered while the worker was down")  # fmt: skip
    scored_before = len(topics.of("clips.scored"))
    topics.wait_for(lambda: len(topics.of("clips.scored")) >= scored_before + len(demo.clips), 60,
                    "another crawl of the whole demo")  # fmt: skip
    duplicates = {key: n for key, n in topics.alert_keys().items() if n > 1}
    assert duplicates == {}, duplicates

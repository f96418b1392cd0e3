"""A worker as a child process, and a reader of the topics it writes.

The end-to-end test and the pipeline benchmark both run the monitor the way users do, as
``python -m monitor up`` in its own process, and watch what comes out on the topics.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.records import Alert, decode

__all__ = ["Topics", "Worker", "produce"]


class Topics:
    """Everything written to the pipeline's topics, read by a consumer in a background thread."""

    def __init__(
        self, bootstrap: str, topics: tuple[str, ...] = ("alerts", "clips.scored", "deadletter")
    ) -> None:
        self.records: dict[str, list[tuple[bytes | None, bytes, float]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run(bootstrap, topics)), daemon=True
        )
        self._thread.start()

    async def _run(self, bootstrap: str, topics: tuple[str, ...]) -> None:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            metadata_max_age_ms=1000,
        )
        await consumer.start()
        try:
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                now = time.time()
                with self._lock:
                    for partition, messages in batches.items():
                        for message in messages:
                            self.records.setdefault(partition.topic, []).append(
                                (message.key, message.value, now)
                            )
        finally:
            await consumer.stop()

    def of(self, topic: str) -> list[bytes]:
        """The values written to ``topic`` so far, in the order they were read."""
        with self._lock:
            return [value for _, value, _ in self.records.get(topic, [])]

    def timed(self, topic: str) -> list[tuple[bytes, float]]:
        """Values with the wall-clock time they were read."""
        with self._lock:
            return [(value, seen) for _, value, seen in self.records.get(topic, [])]

    def alert_keys(self) -> Counter[str]:
        return Counter(decode(Alert, value).key for value in self.of("alerts"))

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

    def __init__(
        self, env: dict[str, str], log: Path, roles: str = "crawl,score,decide,notify"
    ) -> None:
        self.roles = roles
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "up", "--roles", self.roles],
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


async def produce(bootstrap: str, topic: str, *records: tuple[bytes, bytes]) -> None:
    """Send records as any client may, up to 8 MiB each (the broker takes them; the monitor's
    own records stay far smaller, and a test must be able to send the ones that are not)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()

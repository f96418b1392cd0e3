"""What the restart tests share: the monitor as users run it (``python -m monitor up``), on
the embedded broker it starts itself unless told otherwise, killed and restarted; and a real
HTTP receiver on 127.0.0.1 that can be down.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from monitor.pipeline.broker import free_port
from monitor.pipeline.harness import Worker, produce
from monitor.records import Alert, encode

REVIEW_TOKEN = "resilience-review-token"
_BROKER_LINE = re.compile(rb"embedded broker at (kafka://127\.0\.0\.1:\d+)")


def send(bootstrap: str, alerts: list[Alert]) -> None:
    """Put ``alerts`` on the ``alerts`` topic, as the decide role would."""
    asyncio.run(produce(bootstrap, "alerts", *((a.key.encode(), encode(a)) for a in alerts)))


class Monitor:
    """``likeness-monitor up --roles ...`` in a child process, started again and again over one
    state folder, as an operator would after a crash or a Ctrl-C."""

    def __init__(self, roles: str, state: Path, **env: str) -> None:
        self.web_port = free_port()
        self.state = state
        self.worker = Worker(
            {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(state),
                "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(self.web_port),
                "LIKENESS_MONITOR_PIPELINE__PARTITIONS": "2",
                "LIKENESS_MONITOR_PIPELINE__BROKER_SESSION_TIMEOUT_S": "3",
                "LIKENESS_MONITOR_PIPELINE__BROKER_HEARTBEAT_INTERVAL_S": "0.3",
                "LIKENESS_MONITOR_LIKENESS__DEVICE": "cpu",
                "LIKENESS_MONITOR_REVIEW__TOKEN": REVIEW_TOKEN,
                **env,
            },
            state / "worker.log",
            roles=roles,
        )

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> str:
        """Start the worker; returns the broker's bootstrap address once it serves.

        On the embedded default that is the broker this start made, read from what ``up``
        prints; otherwise the configured one."""
        seen = self.worker.log.stat().st_size if self.worker.log.exists() else 0
        self.worker.start()
        deadline = time.monotonic() + 120
        bootstrap = self.worker.env.get("LIKENESS_MONITOR_PIPELINE__BROKER_URL", "")
        while time.monotonic() < deadline:
            assert self.worker.alive(), self.log_tail()
            if not bootstrap:
                found = _BROKER_LINE.search(self.worker.log.read_bytes()[seen:])
                bootstrap = found.group(1).decode() if found else ""
            if bootstrap and self._healthy():
                return bootstrap.removeprefix("kafka://")
            time.sleep(0.5)
        raise AssertionError(f"the worker did not start:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.web}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup runs; the embedded broker goes with it (parent-death signal)."""
        assert self.worker.process is not None
        self.worker.process.send_signal(signal.SIGKILL)
        self.worker.process.wait(30)

    def stop(self) -> None:
        """A clean stop, as Ctrl-C or SIGTERM gives."""
        assert self.worker.stop() == 0, self.log_tail()

    def close(self) -> None:
        if self.worker.alive():
            self.kill()

    def log_tail(self) -> str:
        return self.worker.log.read_text(errors="replace")[-4000:]


class Receiver:
    """A Slack incoming webhook and a generic webhook on one 127.0.0.1 port. While ``down`` it
    answers 503 to everything; while ``slow`` it holds each request unanswered until it is not,
    then drops it (kept as answered 0); each request is kept with the answer it got."""

    def __init__(self) -> None:
        self.down = True
        self.slow = False
        self.requests: list[tuple[str, int, bytes]] = []
        self.held = 0
        """Requests that came in while ``slow``."""
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.slow:
                    receiver.held += 1
                    while receiver.slow:
                        time.sleep(0.2)
                    with receiver._lock:
                        receiver.requests.append((self.path, 0, body))
                    self.close_connection = True
                    return
                status = 503 if receiver.down else 200
                with receiver._lock:
                    receiver.requests.append((self.path, status, body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"down")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, alert_ids: list[str], status: int) -> Counter[tuple[str, str]]:
        """(path, alert id) of the requests answered ``status``, counted."""
        found: Counter[tuple[str, str]] = Counter()
        with self._lock:
            for path, answered, body in self.requests:
                if answered != status:
                    continue
                for alert_id in alert_ids:
                    if alert_id.encode() in body:
                        found[path, alert_id] += 1
        return found

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    monitor: Monitor | None = None,
    counts: Callable[[], str] | None = None,
) -> None:
    """Until ``condition``; on a timeout the error says ``counts()`` (what was there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    have = f" (got {counts()})" if counts is not None else ""
    tail = f"\nworker log:\n{monitor.log_tail()}" if monitor is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{have}{tail}")

"""`likeness-monitor up` on its embedded defaults starts its own broker and demo platform, opens
the review page with a password made for the run, and Ctrl-C stops every process it started."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from mode.threads import ServiceThread

from monitor.pipeline.broker import free_port
from monitor.pipeline.run import stop_service_threads


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.update(int(child) for child in children)
    return found


def wait_for_web(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"nothing answers at {url}"
            time.sleep(0.3)


def test_ctrl_c_stops_the_worker_the_broker_and_the_demo_platform(tmp_path: Path) -> None:
    platform_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(tmp_path / "state"),
        "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(web_port),
        "LIKENESS_MONITOR_PIPELINE__DEMO_PLATFORM_PORT": str(platform_port),
        "LIKENESS_MONITOR_PIPELINE__BROKER_SESSION_TIMEOUT_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BROKER_HEARTBEAT_INTERVAL_S": "0.3",
    }
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "monitor", "up", "--roles", "crawl,review"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "metrics at" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert "embedded broker at kafka://127.0.0.1:" in text
        assert f"demo platform at http://127.0.0.1:{platform_port}" in text
        assert httpx.get(f"http://127.0.0.1:{platform_port}/healthz", timeout=5).status_code == 200
        review = f"http://127.0.0.1:{web_port}/review"
        sign_in = re.search(
            rf"review page at {review} \(demo sign-in for this run: user demo, password (\S+);",
            text,
        )
        assert sign_in is not None, text
        wait_for_web(review)
        assert httpx.get(review, timeout=5).status_code == 401
        opened = httpx.get(review, auth=("demo", sign_in.group(1)), timeout=5)
        assert opened.status_code == 200 and "Alerts to review" in opened.text
        broker_pids = {
            pid
            for pid in _children(worker.pid)
            if "tansu" in Path(f"/proc/{pid}/cmdline").read_text()
        }
        assert len(broker_pids) == 1
        worker.send_signal(signal.SIGINT)
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
    (broker,) = broker_pids
    deadline = time.monotonic() + 10
    while (
        Path(f"/proc/{broker}").exists()
        and "Z" not in Path(f"/proc/{broker}/stat").read_text().split()[2]
    ):
        assert time.monotonic() < deadline, "the broker outlived the worker"
        time.sleep(0.1)
    try:
        httpx.get(f"http://127.0.0.1:{platform_port}/healthz", timeout=2)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the demo platform still answers after Ctrl-C")


def test_a_service_thread_that_missed_its_stop_is_stopped_so_the_process_can_exit() -> None:
    """Ctrl-C while Faust's consumer thread was still starting left that thread waiting for a
    stop that never came, and the process waiting for the thread (seen in CI: ``up`` did not
    end). Whatever service thread the worker leaves running is stopped after it."""

    class Idle(ServiceThread):
        abstract = False

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        service = Idle(loop=loop)
        loop.run_until_complete(service.start())  # and never stopped, as in the race
        thread = service._thread
        assert thread is not None and thread.is_alive()
        assert stop_service_threads(timeout_s=10) == []
        assert not thread.is_alive()
    finally:
        loop.close()
        asyncio.set_event_loop(None)

"""A broker started apart from the worker, as an operator runs one: ``likeness-monitor broker``
in its own process, which prints its ``kafka://`` URL once it answers. A worker pointed at it
(``LIKENESS_MONITOR_PIPELINE__BROKER_URL``) is the external-broker case of the resilience tests.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerProcess"]

_URL = re.compile(rb"kafka://127\.0\.0\.1:\d+")


def _command() -> list[str]:
    """The installed ``likeness-monitor`` beside this interpreter, else the same CLI as a module."""
    script = Path(sys.executable).with_name("likeness-monitor")
    if script.is_file():
        return [str(script), "broker"]
    return [sys.executable, "-m", "monitor", "broker"]


class BrokerProcess:
    """``likeness-monitor broker`` in a child process; ``url`` and ``bootstrap`` as
    ``EmbeddedBroker`` has them. Its output goes to ``log``."""

    def __init__(self, log: Path, start_timeout_s: float = 60.0) -> None:
        self.log = log
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def bootstrap(self) -> str:
        return self.url.removeprefix("kafka://")

    def __enter__(self) -> BrokerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(_command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            found = _URL.search(self.log.read_bytes())
            if found:
                self.url = found.group(0).decode()
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.close()
        raise AssertionError(f"likeness-monitor broker did not start:\n{self.log_tail()}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """SIGTERM, as Ctrl-C would stop it; killed if it does not stop within 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

"""A decode pool that breaks while a decode is being submitted is rebuilt like one that broke
under it, and the decode is tried again alone (Python 3.11 raises an ``OSError``, "handle is
closed", from ``submit`` when the dying pool's pipes close as it spawns a replacement)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from monitor.media import DecodeLimits
from monitor.pipeline.decode_pool import DecodePool


class BreakingAsSubmitted:
    """A pool whose every submission meets it breaking."""

    def submit(self, *args: Any) -> Future[Any]:
        raise OSError("handle is closed")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


async def test_a_pool_breaking_as_a_decode_is_submitted_is_rebuilt_and_the_decode_retried(
    package_file: Callable[[str], Path],
) -> None:
    deaths: list[int] = []
    pool = DecodePool(1, on_death=lambda: deaths.append(1))
    pool._pool.shutdown()
    pool._pool = BreakingAsSubmitted()  # type: ignore[assignment]
    try:
        frames = await pool.decode(package_file("bikes.mp4"), DecodeLimits(max_frames=3), 2)
    finally:
        pool.shutdown()
    assert len(frames) == 3
    assert pool.generation == 1 and deaths == [1]


_OWNER = """
import asyncio, sys
from pathlib import Path
from monitor.media import DecodeLimits
from monitor.pipeline.decode_pool import DecodePool

async def main() -> None:
    pool = DecodePool(2)
    await pool.decode(Path(sys.argv[1]), DecodeLimits(), 2)
    print("decoded", flush=True)
    await asyncio.sleep(600)

if __name__ == "__main__":  # spawned decode processes import this file too
    asyncio.run(main())
"""


def test_decode_processes_exit_when_their_worker_is_killed_outright(
    package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    """SIGKILL (the OOM killer, a container killed) lets a worker shut nothing down; its decode
    processes notice they were orphaned and exit, instead of holding a decoder's memory on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "owner.py"
    script.write_text(_OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(package_file("bigbuckbunny.mp4"))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    children: list[int] = []
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "decoded"
        children = _children(owner.pid)
        assert children, "the pool started its processes"
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_running(pid) for pid in children):
            time.sleep(0.2)
        assert not [pid for pid in children if _running(pid)], "orphaned decode processes"
    finally:
        owner.kill()
        for pid in children if children else _children(owner.pid):
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

"""What the scorer resilience tests share: a media server on 127.0.0.1 with fast and dripping
clips, a one-entity gallery, a scoring worker's environment, and a "OOM killer" that kills the
decode processes that have a chosen clip open."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from aiohttp import web
from PIL import Image

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.models import Models
from monitor.media import decode_clip
from monitor.media.transforms import pattern_frames, write_clip
from monitor.pipeline.broker import free_port
from monitor.records import ClipSeen
from tests.threaded import ThreadedApp

DECODE = DecodeSettings(max_frames=4, even_frames=4)
DRIP_S = 2.0
"""Seconds between the slow server's bytes: under the 15 s read timeout, so only a fetch's
total-time bound ends it."""


class MediaServer:
    """``/fast/<name>``: a real clip at once. ``/slow/<name>``: one byte every ``drip_s``
    seconds, for as long as the client listens (a server as slow as one can be while never
    going quiet long enough for a read timeout)."""

    def __init__(self, clip: Path, drip_s: float) -> None:
        self.clip, self.drip_s = clip, drip_s
        self.slow_bytes = 0
        app = web.Application()
        app.router.add_get("/fast/{name}", self._fast)
        app.router.add_get("/slow/{name}", self._slow)
        self._served = ThreadedApp(app)
        self.url = self._served.url

    async def _fast(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.clip.read_bytes(), content_type="video/mp4")

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        await answer.prepare(request)
        try:
            while True:
                await answer.write(b"\0")
                self.slow_bytes += 1
                await asyncio.sleep(self.drip_s)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return answer

    def close(self) -> None:
        self._served.close()


def clip(server: MediaServer, kind: str, name: str) -> ClipSeen:
    return ClipSeen(
        platform="demo",
        clip_id=name,
        url=f"https://clips.example/{name}",
        media_url=f"{server.url}/{kind}/{name}",
    )


def large_clip(dst: Path, frames: int) -> Path:
    """A 1080p clip of ``frames`` different pictures: the largest frames the default decode
    limits keep at full size (``max_pixels`` 1920 x 1080), 6.2 MB each once decoded."""
    return write_clip(pattern_frames(frames, 1920, 1080), dst, fps=frames)


def build_bunny_gallery(root: Path, clip: Path, models: Models) -> Path:
    """A gallery of one character (the clip's last frame); returns the built folder."""
    (root / "refs" / "bunny").mkdir(parents=True)
    entities = [{"id": "bunny", "name": "Bunny", "kind": "character"}]
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    Image.fromarray(decode_clip(clip)[-1].image).save(root / "refs" / "bunny" / "end.png")
    build_gallery(root, models, LikenessSettings(device="cpu"), DECODE).save(root / "built")
    return root / "built"


def scorer_env(bootstrap_url: str, state: Path, gallery: Path, **extra: str) -> dict[str, str]:
    """A worker on the test's broker, CPU, small decodes, 127.0.0.1 media allowed."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LIKENESS_MONITOR_PIPELINE__BROKER_URL": bootstrap_url,
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(state),
        "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(free_port()),
        "LIKENESS_MONITOR_PIPELINE__PARTITIONS": "1",
        "LIKENESS_MONITOR_PIPELINE__BROKER_SESSION_TIMEOUT_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BROKER_HEARTBEAT_INTERVAL_S": "0.3",
        "LIKENESS_MONITOR_PIPELINE__GALLERY": str(gallery),
        "LIKENESS_MONITOR_PIPELINE__FETCH_ALLOW": '["127.0.0.1/32"]',
        "LIKENESS_MONITOR_LIKENESS__DEVICE": "cpu",
        "LIKENESS_MONITOR_DECODE__MAX_FRAMES": str(DECODE.max_frames),
        "LIKENESS_MONITOR_DECODE__EVEN_FRAMES": str(DECODE.even_frames),
        **extra,
    }


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``: a worker's decode processes and their resource tracker."""
    found: list[int] = []
    for child in _children(pid):
        found += [child, *descendants(child)]
    return found


def _has_open(pid: int, wanted: Callable[[str], bool]) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if wanted(os.readlink(fd)):
                return True
        except OSError:
            continue
    return False


class Killer:
    """Kills (SIGKILL, as the OOM killer does) every process under ``root`` that has a file
    open for which ``wanted(path)`` holds, while ``armed``. ``kills`` counts them.

    A process must be seen holding the file at two polls in a row: a child that is being
    spawned holds its parent's open files for the moment between fork and exec, and the
    worker reads each fetched file's headers itself (its C2PA store), so a decoder started
    just then would otherwise be killed for a file it never opened."""

    def __init__(self, root: int, wanted: Callable[[str], bool]) -> None:
        self.root, self.wanted = root, wanted
        self.armed = True
        self.kills = 0
        self._killed: set[int] = set()
        self._holding: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.armed:
                holding = {
                    pid
                    for pid in _children(self.root)
                    if pid not in self._killed and _has_open(pid, self.wanted)
                }
                for pid in holding & self._holding:
                    self._killed.add(pid)
                    try:
                        os.kill(pid, signal.SIGKILL)
                        self.kills += 1
                    except ProcessLookupError:
                        pass
                self._holding = holding - self._killed
            time.sleep(0.002)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

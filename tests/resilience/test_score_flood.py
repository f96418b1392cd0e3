"""A flood of large clips costs the scorer memory bounded by its queues, not by the flood
(issue 15, "done when": peak memory of a scorer stays bounded by its queue sizes).

The score flow and the scoring service run in this process, as the score role runs them,
fed 1080p clips (the largest frames the decode limits keep at full size: 6.2 MB each once
decoded, ``FRAMES`` of them a clip) from a real HTTP server on 127.0.0.1, by a producer that
submits as fast as ``submit`` lets it. The model is made the slow stage: its ``score_many``
waits until the frames gate is full (or nothing more can be decoded) before it answers, so
fetch and decode always outrun it, and every batch is scored with as many decoded clips
waiting as the flow allows.

What holds memory back, and what is asserted:

- ``max_in_flight`` slots: ``submit`` waits for one, so the producer (the worker's consumer)
  is held back while the model is behind: never more than ``MAX_IN_FLIGHT`` clips handed over
  and not yet delivered, and the producer does reach that bound and wait.
- The frames gate: a clip takes a slot before it is decoded and gives it back once scored, so
  at most ``GATE`` (two batches) decoded clips exist at any moment, whatever the flood:
  ``flow.frames_held`` never exceeds it (sampled on the event loop, in the model's thread
  and at every delivery), and reaches it. The frames themselves are counted apart from the
  flow (``Decoded``: each decoded picture watched until it is freed): never more than the
  gate's clips' frames alive at once. (Before, a scored clip's slot was given back while the
  collector still held its frames until it moved on to a later batch: up to 7 decoded clips
  alive with a gate of 4.)
- So the process's peak resident memory grows, over what it was before the floods, by at most
  the gate's clips, one more clip's bytes as they come from a decode process (the pickled
  result is read whole, then unpickled), and some slack (``rss_bound``), and a flood of 40
  clips grows it no more than a flood of 10 (within the same slack): four times the clips,
  not four times the memory. Without the gate, ``MAX_IN_FLIGHT`` decoded clips could be held,
  twice as many as the gate allows here; without the slots, the whole flood.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import DecodeSettings, LikenessSettings, PipelineSettings, Settings
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import ClipScore, Scorer
from monitor.media import DecodeLimits
from monitor.media.frames import Frame
from monitor.pipeline.score_flow import ScoreFlow
from monitor.pipeline.scoring_service import ScoringService
from monitor.pipeline.worker_state import StateStore
from monitor.records import ClipScored
from tests.resilience.media import DRIP_S, MediaServer, clip, large_clip

FRAMES = 8
FRAME_BYTES = 1920 * 1080 * 3
CLIP_BYTES = FRAMES * FRAME_BYTES
"""A decoded clip: 8 frames of 1080p RGB, 50 MB."""
BATCH_SIZE = 2
FETCH_CONCURRENCY = 2
MAX_IN_FLIGHT = max(4 * BATCH_SIZE, 2 * FETCH_CONCURRENCY)
"""As the score role sizes the flow's slots (``roles._score``): 8."""
GATE = 2 * BATCH_SIZE
"""The frames gate: decoded clips that may wait for the model or be on it (4)."""
SLACK = 64 * 1024 * 1024
"""Whatever else a flood allocates for a while: the media server's answers, httpx's buffers,
records, the allocator's rounding."""


def rss_bound() -> int:
    """The most a flood may add to the peak resident memory: the gate's decoded clips, one
    more clip's pickled bytes while it is read from a decode process, and ``SLACK``."""
    return (GATE + 1) * CLIP_BYTES + SLACK


def _status(field: str) -> int:
    """A ``/proc/self/status`` size, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Set VmHWM back to the current VmRSS (``clear_refs`` 5); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """The highest VmRSS seen, sampled every 2 ms from a thread of its own (VmHWM is the exact
    peak where it can be reset; this is the fallback, and a check on it)."""

    def __init__(self) -> None:
        self.peak = _status("VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status("VmRSS"))
            time.sleep(0.002)

    def close(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


class Decoded:
    """The decoded frames alive in this process, counted from the decode pool's answers:
    each frame's picture is watched until it is freed. Independent of the flow's own count."""

    def __init__(self) -> None:
        self.clips = 0
        """Decodes answered since ``reset``."""
        self.alive = 0
        self.peak = 0
        self._lock = threading.RLock()

    def watch(self, frames: Sequence[Frame]) -> None:
        with self._lock:
            self.clips += 1
            self.alive += len(frames)
            self.peak = max(self.peak, self.alive)
        for frame in frames:
            weakref.finalize(frame.image, self._gone)

    def _gone(self) -> None:
        with self._lock:
            self.alive -= 1

    def reset(self) -> None:
        with self._lock:
            self.clips = 0
            self.peak = self.alive


@dataclass
class Flood:
    clips: int
    frames_per_clip: int = 0
    frame_bytes: int = 0
    peak_frames_held: int = 0
    """The most decoded clips the flow counted (``frames_held``) at any sample."""
    peak_frames_alive: int = 0
    """The most decoded frames alive in the process at once (``Decoded``)."""
    peak_pending: int = 0
    waited: int = 0
    """Submits that returned only after a verdict went out (the producer held back)."""
    model_timeouts: int = 0
    rss_growth: int = 0
    sampled_growth: int = 0
    seconds: float = 0.0


class SlowModel:
    """``score_many`` for a flow: waits until as many decoded clips wait for it as the gate
    lets through (or every clip not yet delivered is decoded), then answers that nothing was
    found (a verdict with the clip's frame count)."""

    def __init__(self, scorer: Scorer, decoded: Decoded) -> None:
        self.scorer = scorer
        self.decoded = decoded
        self.flow: ScoreFlow[int] | None = None
        self.flood = Flood(0)
        self.delivered = 0

    def sample(self) -> None:
        assert self.flow is not None
        flood = self.flood
        flood.peak_frames_held = max(flood.peak_frames_held, self.flow.frames_held)
        flood.peak_frames_alive = max(flood.peak_frames_alive, self.decoded.peak)

    def score_many(self, clips: Sequence[tuple[Sequence[Frame], str | None]]) -> list[ClipScore]:
        deadline = time.monotonic() + 120
        while True:
            self.sample()
            waiting = self.decoded.clips - self.delivered
            if waiting >= min(GATE, self.flood.clips - self.delivered):
                break
            if time.monotonic() > deadline:  # a decode that never came: counted, asserted
                self.flood.model_timeouts += 1
                break
            time.sleep(0.005)
        self.flood.frames_per_clip = max(len(frames) for frames, _ in clips)
        self.flood.frame_bytes = max(f.image.nbytes for frames, _ in clips for f in frames)
        return [
            ClipScore(
                entities=[],
                gallery_version=self.scorer.gallery.version,
                models=dict(self.scorer.models.versions),
                frames=len(frames),
            )
            for frames, _ in clips
        ]


@pytest.fixture(scope="module")
def large_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    made = large_clip(tmp_path_factory.mktemp("large") / "large.mp4", FRAMES)
    running = MediaServer(made, DRIP_S)
    yield running
    running.close()


async def _flood(
    service: ScoringService,
    model: SlowModel,
    server: MediaServer,
    count: int,
    name: str,
    baseline: int,
) -> Flood:
    """``count`` clips through a flow as fast as it takes them; the peak resident memory is
    measured against ``baseline`` (what the process held before the first flood: memory
    the allocator kept from an earlier flood counts against the later one too)."""
    flood = model.flood = Flood(count)
    model.delivered = 0
    model.decoded.reset()
    verdicts: list[ClipScored] = []

    async def deliver(tags: Sequence[int], record: ClipScored) -> None:
        model.sample()
        verdicts.append(record)
        model.delivered += len(tags)

    async def reject(tags: Sequence[int], exc: BaseException) -> None:
        raise AssertionError(f"{tags} rejected: {exc!r}")

    flow: ScoreFlow[int] = ScoreFlow(
        service, deliver, reject, batch_size=BATCH_SIZE, max_in_flight=MAX_IN_FLIGHT
    )
    model.flow = flow

    async def watch() -> None:
        while True:
            model.sample()
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    exact = _reset_peak()
    sampler = RssSampler()
    started = time.monotonic()
    try:
        for n in range(count):
            delivered = model.delivered
            await flow.submit(n, clip(server, "fast", f"{name}-{n:02d}.mp4"))
            pending = n + 1 - model.delivered
            assert pending <= MAX_IN_FLIGHT, (n, model.delivered)
            flood.peak_pending = max(flood.peak_pending, pending)
            flood.waited += model.delivered > delivered
        await asyncio.wait_for(flow.drained(), 600)
    finally:
        watcher.cancel()
        await flow.close()
    flood.seconds = time.monotonic() - started
    sampled = sampler.close()
    peak = _status("VmHWM") if exact else sampled
    flood.rss_growth = peak - baseline
    flood.sampled_growth = sampled - baseline
    assert sorted(v.clip.clip_id for v in verdicts) == [f"{name}-{n:02d}.mp4" for n in range(count)]
    assert all(v.failure is None and v.frames == FRAMES for v in verdicts)
    return flood


async def test_a_flood_of_large_clips_holds_memory_to_the_queues_not_to_the_flood(
    large_server: MediaServer,
    bunny_gallery: Path,
    models: Models,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        likeness=LikenessSettings(device="cpu"),
        decode=DecodeSettings(max_frames=FRAMES, even_frames=FRAMES),
        pipeline=PipelineSettings(
            gallery=bunny_gallery,
            state_dir=tmp_path / "state",
            decode_workers=2,
            fetch_concurrency=FETCH_CONCURRENCY,
            fetch_allow=("127.0.0.1",),
        ),
    )
    state = StateStore(tmp_path / "state" / "state.sqlite3")
    scorer = Scorer(Gallery.load(bunny_gallery), models, settings.likeness)
    model = SlowModel(scorer, Decoded())
    slow: Callable[..., list[ClipScore]] = model.score_many
    monkeypatch.setattr(scorer, "score_many", slow)
    service = ScoringService(scorer, state, settings)
    decode = service.decoders.decode

    async def watched(path: Path, limits: DecodeLimits, even_frames: int) -> list[Frame]:
        frames = await decode(path, limits, even_frames)
        model.decoded.watch(frames)
        return frames

    monkeypatch.setattr(service.decoders, "decode", watched)
    try:
        baseline = _status("VmRSS")
        await _flood(service, model, large_server, 4, "warm", baseline)  # decoders started
        small = await _flood(service, model, large_server, 10, "ten", baseline)
        large = await _flood(service, model, large_server, 40, "forty", baseline)
    finally:
        await service.close()
        state.close()

    mib = 1024 * 1024
    for flood in (small, large):
        print(
            f"{flood.clips} clips of {flood.frames_per_clip} 1080p frames: peak decoded clips "
            f"held {flood.peak_frames_held} (gate {GATE}), peak frames alive "
            f"{flood.peak_frames_alive} ({GATE} x {FRAMES}), peak in flight {flood.peak_pending} "
            f"(max {MAX_IN_FLIGHT}), submits that waited {flood.waited}; peak RSS +"
            f"{flood.rss_growth / mib:.0f} MiB (sampled +{flood.sampled_growth / mib:.0f}), "
            f"bound {rss_bound() / mib:.0f} MiB; {flood.seconds:.1f} s"
        )
    for flood in (small, large):
        assert (flood.frames_per_clip, flood.frame_bytes) == (FRAMES, FRAME_BYTES)
        assert flood.model_timeouts == 0
        # The frames gate: full while the model works, never over; and the frames in memory
        # are those it counts, no more.
        assert flood.peak_frames_held == GATE
        assert flood.peak_frames_alive == GATE * FRAMES
        # Backpressure: the producer filled every slot, then waited for verdicts.
        assert flood.peak_pending == MAX_IN_FLIGHT
        assert flood.waited >= (flood.clips - MAX_IN_FLIGHT) // BATCH_SIZE
        # Memory: the gate's worth, not the flood's.
        assert flood.rss_growth <= rss_bound(), flood
    assert large.rss_growth <= small.rss_growth + SLACK, (small, large)

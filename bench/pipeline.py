"""Clips per second and discovery->alert latency through the running pipeline, for each
runtime and number of scorer workers asked for, measured side by side in one run.

    python -m bench.pipeline [--clips 24] [--batch 8] [--runtimes torch,auto]
                             [--workers 1,2,3] [--rate R] [--alone]

The pipeline run is the real thing: the embedded broker, the demo platform on 127.0.0.1
serving the media, and worker processes with the score and decide roles (as the compose and
Kubernetes deploys scale them: each worker one more member of the consumer groups, sharing
the 4 partitions of ``clips.discovered`` and ``clips.scored``); the benchmark sends N
discoveries of demo clips (fresh clip ids, so nothing is answered from the score cache) and
reads ``clips.scored`` and ``alerts``. Every configuration runs on the same broker, the same
clips and the same machine, one after another.

``--runtimes``: what runs the visual model (``LikenessSettings.visual_runtime``): ``torch``
is the path before ONNX Runtime, kept runnable for this comparison; ``auto`` today's. Only
the first runtime runs with more than one worker.

Throughput is N over the time from the first discovery sent to the last verdict. Latency is
discovery to alert, and it waits for every alert it should see: each clip the scorer flagged
is one alert (decide sends one per flagged copy, keyed by story), so alerts still on their
way through decide are not left out. With ``--rate`` the discoveries are sent at that many a
second (the load a latency figure is meant for) instead of all at once, where the latency is
mostly queueing. ``--alone`` adds the baseline of scoring the same clips one at a time in this
process with no pipeline (fetch, decode, score each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from monitor.config import Settings
from monitor.demo.catalogue import DemoCatalogue, build_demo
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import Scorer
from monitor.media import load_media
from monitor.pipeline.app import TOPICS
from monitor.pipeline.broker import EmbeddedBroker, ensure_topics, free_port
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.pipeline.run import demo_platform_in_thread, prepare_demo_gallery
from monitor.records import Alert, ClipScored, ClipSeen, decode, encode

__all__ = ["main"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sightings(demo: DemoCatalogue, base: str, count: int, tag: str) -> list[ClipSeen]:
    usable = [clip for clip in demo.clips if not clip.broken]
    return [
        ClipSeen(
            platform="bench",
            clip_id=f"{tag}-{i}",
            url=f"{base}/watch/{usable[i % len(usable)].id}",
            media_url=f"{base}/media/{usable[i % len(usable)].media}",
            title=usable[i % len(usable)].title,
            views=100,
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Result:
    """One configuration's run."""

    runtime: str
    workers: int
    clips_per_s: float
    latencies: list[float]
    expected_alerts: int

    def line(self) -> str:
        got = len(self.latencies)
        latency = (
            f"discovery->alert p50 {statistics.median(self.latencies):5.2f} s, "
            f"p99 {_percentile(self.latencies, 0.99):5.2f} s"
            if self.latencies
            else "no alerts"
        )
        return (
            f"{self.runtime:>6}, {self.workers} worker{'s' if self.workers > 1 else ' '}: "
            f"{self.clips_per_s:6.2f} clips/s, alerts {got}/{self.expected_alerts}, {latency}"
        )


def _env(
    broker: EmbeddedBroker, gallery: Path, state: Path, batch: int, runtime: str
) -> dict[str, str]:
    return {
        **os.environ,
        "LIKENESS_MONITOR_PIPELINE__BROKER_URL": broker.url,
        "LIKENESS_MONITOR_PIPELINE__GALLERY": str(gallery),
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(state),
        "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(free_port()),
        "LIKENESS_MONITOR_PIPELINE__BATCH_SIZE": str(batch),
        "LIKENESS_MONITOR_PIPELINE__FETCH_ALLOW": '["127.0.0.1/32"]',  # the demo platform
        "LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S": "0.5",
        "LIKENESS_MONITOR_PIPELINE__BROKER_SESSION_TIMEOUT_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BROKER_HEARTBEAT_INTERVAL_S": "0.3",
        "LIKENESS_MONITOR_LIKENESS__VISUAL_RUNTIME": runtime,
    }


async def _send(bootstrap: str, sightings: list[ClipSeen], rate: float | None) -> dict[str, float]:
    """Send the discoveries (all at once, or ``rate`` a second); when each was sent."""
    if rate is None:
        now = time.time()
        await produce(
            bootstrap, "clips.discovered", *((s.key.encode(), encode(s)) for s in sightings)
        )
        return {seen.key: now for seen in sightings}
    sent = {}
    start = time.monotonic()
    for i, seen in enumerate(sightings):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        sent[seen.key] = time.time()
        await produce(bootstrap, "clips.discovered", (seen.key.encode(), encode(seen)))
    return sent


def run_pipeline(
    broker: EmbeddedBroker,
    demo: DemoCatalogue,
    gallery: Path,
    base: str,
    *,
    clips: int,
    batch: int,
    runtime: str,
    workers: int,
    rate: float | None,
) -> Result:
    tag = f"{runtime}-w{workers}-{time.monotonic_ns()}"
    running = []
    topics = Topics(broker.bootstrap, ("clips.scored", "alerts"))
    try:
        for _ in range(workers):
            state = Path(tempfile.mkdtemp(prefix="bench-state-"))
            env = _env(broker, gallery, state, batch, runtime)
            running.append(Worker(env, state / "worker.log", roles="score,decide"))
            running[-1].start()
        # Warm every worker (models loaded, partitions assigned): one clip per partition.
        warm = _sightings(demo, base, 4 * workers, f"warm-{tag}")
        asyncio.run(_send(broker.bootstrap, warm, None))
        keys = {seen.key for seen in warm}

        def verdicts() -> dict[str, tuple[ClipScored, float]]:
            found: dict[str, tuple[ClipScored, float]] = {}
            for value, at in topics.timed("clips.scored"):
                record = decode(ClipScored, value)
                found.setdefault(record.clip.key, (record, at))
            return found

        topics.wait_for(lambda: keys <= set(verdicts()), 600, f"{workers} workers to warm up")
        sightings = _sightings(demo, base, clips, f"run-{tag}")
        sent = asyncio.run(_send(broker.bootstrap, sightings, rate))
        topics.wait_for(lambda: set(sent) <= set(verdicts()), 1800, f"{clips} clips scored")
        done = {key: v for key, v in verdicts().items() if key in sent}
        failed = {k: r.failure.reason for k, (r, _) in done.items() if r.failure is not None}
        if failed:  # a figure for clips that were never scored would be meaningless
            raise SystemExit(f"{tag}: {len(failed)} clips failed: {failed}")
        flagged = {key for key, (record, _) in done.items() if record.flagged}

        def alerted() -> dict[str, float]:
            found: dict[str, float] = {}
            for value, at in topics.timed("alerts"):
                found.setdefault(decode(Alert, value).clip.key, at)
            return {key: at for key, at in found.items() if key in flagged}

        try:
            topics.wait_for(lambda: set(alerted()) >= flagged, 300, f"{len(flagged)} alerts")
        except AssertionError as exc:  # reported as alerts got/expected, not hidden
            print(f"{tag}: {exc}")
        throughput = clips / (max(at for _, at in done.values()) - min(sent.values()))
        latencies = [at - sent[key] for key, at in alerted().items()]
        return Result(runtime, workers, throughput, latencies, len(flagged))
    finally:
        for worker in running:
            worker.stop()
        topics.close()


def run_one_at_a_time(
    settings: Settings, gallery: Path, base: str, demo: DemoCatalogue, clips: int
) -> float:
    scorer = Scorer(Gallery.load(gallery), Models.load(settings.likeness), settings.likeness)
    limits = settings.decode.limits
    sightings = _sightings(demo, base, clips, "alone")
    with httpx.Client(timeout=60) as client, tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        for seen in sightings:
            assert seen.media_url is not None
            path = Path(work) / "clip.mp4"
            path.write_bytes(client.get(seen.media_url).raise_for_status().content)
            scorer.score_frames(
                load_media(path, limits, even_frames=settings.decode.even_frames), seen.text
            )
        return clips / (time.perf_counter() - started)


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runtimes", default="torch,auto", help="visual runtimes, in order")
    parser.add_argument("--workers", type=_numbers, default=[1], help="e.g. 1,2,3")
    parser.add_argument("--rate", type=float, default=None, help="discoveries a second")
    parser.add_argument("--alone", action="store_true", help="also score one at a time")
    args = parser.parse_args(argv)
    runtimes = [part.strip() for part in args.runtimes.split(",") if part.strip()]
    settings = Settings()
    demo = build_demo()
    gallery = prepare_demo_gallery(settings, print)
    results = []
    with EmbeddedBroker() as broker, demo_platform_in_thread(demo.root, 0) as base:
        asyncio.run(ensure_topics(broker.url, dict.fromkeys(TOPICS, 4)))
        for runtime in runtimes:
            counts = args.workers if runtime == runtimes[-1] else [1]
            for workers in counts:
                results.append(
                    run_pipeline(
                        broker,
                        demo,
                        gallery,
                        base,
                        clips=args.clips,
                        batch=args.batch,
                        runtime=runtime,
                        workers=workers,
                        rate=args.rate,
                    )
                )
                print(results[-1].line(), flush=True)
        alone = run_one_at_a_time(settings, gallery, base, demo, args.clips) if args.alone else None
    load = f"{args.rate:g} a second" if args.rate else "all at once"
    print(
        f"\n{args.clips} clips of the demo, sent {load}, batch {args.batch}, device "
        f"{settings.likeness.device or 'auto'}, {os.cpu_count()} cores, decode max "
        f"{settings.decode.max_frames} frames"
    )
    for result in results:
        print(result.line())
    first = results[0]
    for result in results[1:]:
        print(
            f"ratio {result.runtime} x{result.workers} / {first.runtime} x{first.workers}: "
            f"{result.clips_per_s / first.clips_per_s:.2f}x"
        )
    if alone is not None:
        print(
            f"one at a time, no pipeline ({settings.likeness.visual_runtime}): {alone:6.2f} clips/s"
        )


if __name__ == "__main__":
    main()

"""Clips per second and discovery->alert latency through the running pipeline, against scoring
the same clips one at a time with no batching, measured side by side in one run.

    python -m bench.pipeline [--clips 32] [--batch 8]

The pipeline run is the real thing: the embedded broker, the demo platform on 127.0.0.1
serving the media, and a worker process with the score and decide roles; the benchmark sends
N discoveries of demo clips (fresh clip ids, so nothing is answered from the score cache) and
reads ``clips.scored`` and ``alerts``. It runs twice, with batches of ``--batch`` clips and
with batches of one, so the effect of batching is measured through the same pipeline. The
baseline, in this process afterwards, fetches, decodes and scores each clip alone with the
same models and no pipeline at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
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


def run_pipeline(
    broker: EmbeddedBroker, demo: DemoCatalogue, gallery: Path, base: str, clips: int, batch: int
) -> tuple[float, list[float], int]:
    """Returns clips/s, discovery->alert latencies (s) and the number of alerts."""
    state = Path(tempfile.mkdtemp(prefix="bench-state-"))
    env = {
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
    }
    topics = Topics(broker.bootstrap, ("clips.scored", "alerts"))
    worker = Worker(env, state / "worker.log", roles="score,decide")
    worker.start()
    try:
        warm = _sightings(demo, base, 1, f"warmup-b{batch}")[0]
        asyncio.run(
            produce(broker.bootstrap, "clips.discovered", (warm.key.encode(), encode(warm)))
        )
        topics.wait_for(
            lambda: any(
                decode(ClipScored, value).clip.key == warm.key
                for value in topics.of("clips.scored")
            ),
            300,
            "the worker to warm up",
        )
        sightings = _sightings(demo, base, clips, f"run-b{batch}")
        started = time.time()
        asyncio.run(
            produce(
                broker.bootstrap,
                "clips.discovered",
                *((s.key.encode(), encode(s)) for s in sightings),
            )
        )
        sent = {seen.key: started for seen in sightings}

        def scored() -> dict[str, float]:
            return {
                decode(ClipScored, value).clip.key: at
                for value, at in topics.timed("clips.scored")
                if decode(ClipScored, value).clip.key in sent
            }

        topics.wait_for(lambda: len(scored()) >= clips, 900, f"{clips} clips scored")
        done = scored()
        failed = {
            record.clip.key: record.failure.reason
            for record in (decode(ClipScored, value) for value in topics.of("clips.scored"))
            if record.clip.key in sent and record.failure is not None
        }
        if failed:  # a figure for clips that were never scored would be meaningless
            raise SystemExit(f"batch {batch}: {len(failed)} clips failed: {failed}")
        throughput = clips / (max(done.values()) - started)
        alerts = [(decode(Alert, value), at) for value, at in topics.timed("alerts")]
        latencies = [at - sent[alert.clip.key] for alert, at in alerts if alert.clip.key in sent]
        return throughput, latencies, len(latencies)
    finally:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    settings = Settings()
    demo = build_demo()
    gallery = prepare_demo_gallery(settings, print)
    with EmbeddedBroker() as broker, demo_platform_in_thread(demo.root, 0) as base:
        asyncio.run(ensure_topics(broker.url, dict.fromkeys(TOPICS, 4)))
        runs = {
            batch: run_pipeline(broker, demo, gallery, base, args.clips, batch)
            for batch in dict.fromkeys((args.batch, 1))
        }
        alone = run_one_at_a_time(settings, gallery, base, demo, args.clips)
    print(
        f"\n{args.clips} clips of the demo, device {settings.likeness.device or 'auto'}, decode max "
        f"{settings.decode.max_frames} frames"
    )
    for batch, (throughput, latencies, alerts) in runs.items():
        latency = (
            f"discovery->alert p50 {statistics.median(latencies):.2f} s, "
            f"p99 {_percentile(latencies, 0.99):.2f} s"
            if latencies
            else "no alerts"
        )
        print(
            f"pipeline, batch {batch:2d}:        {throughput:6.2f} clips/s, {alerts} alerts, {latency}"
        )
    print(f"one at a time, no pipeline: {alone:6.2f} clips/s")
    batched, single = runs[args.batch][0], runs[1][0]
    print(f"ratio batch {args.batch} / batch 1 (same pipeline): {batched / single:.2f}x")
    print(f"ratio batch {args.batch} pipeline / one at a time:  {batched / alone:.2f}x")


if __name__ == "__main__":
    main()

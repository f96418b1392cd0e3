"""One slow media server holds only its own clip (issue 11, found 7).

A real scoring worker (``python -m monitor up --roles score``) on the embedded broker scores
clips from a real HTTP server on 127.0.0.1, one of which drips a byte every 2 s: never quiet
long enough for the read timeout, so only the fetch's total-time bound ends it. Before, the
clips batched with it waited for that bound, and the next batch behind them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.pipeline.broker import EmbeddedBroker
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.records import ClipScored, ClipSeen, decode, encode
from tests.resilience.media import DRIP_S, MediaServer, clip, scorer_env

FETCH_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


def test_one_dripping_server_holds_only_its_own_clip(
    broker: EmbeddedBroker, media_server: MediaServer, bunny_gallery: Path, tmp_path: Path
) -> None:
    env = scorer_env(
        broker.url,
        tmp_path / "state",
        bunny_gallery,
        LIKENESS_MONITOR_PIPELINE__FETCH_TIMEOUT_S=str(FETCH_TIMEOUT_S),
        LIKENESS_MONITOR_PIPELINE__BATCH_SIZE="8",
        LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S="1",
        LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS="2",
    )
    topics = Topics(broker.bootstrap, ("clips.scored",))
    worker = Worker(env, tmp_path / "worker.log", roles="score")
    worker.start()

    def scored() -> dict[str, tuple[ClipScored, float]]:
        found = ((decode(ClipScored, value), at) for value, at in topics.timed("clips.scored"))
        return {record.clip.key: (record, at) for record, at in found}

    def send(*clips: ClipSeen) -> float:
        asyncio.run(
            produce(
                broker.bootstrap, "clips.discovered", *((c.key.encode(), encode(c)) for c in clips)
            )
        )
        return time.time()

    try:
        warm = clip(media_server, "fast", "warm-up.mp4")
        send(warm)  # models loaded, pool started: what follows measures scoring alone
        topics.wait_for(lambda: warm.key in scored() or not worker.alive(), 240, "warm-up")
        assert worker.alive(), worker.log.read_text()[-3000:]

        slow = clip(media_server, "slow", "drip.mp4")
        first = [clip(media_server, "fast", f"first-{n}.mp4") for n in range(3)]
        second = [clip(media_server, "fast", f"second-{n}.mp4") for n in range(4)]
        sent_first = send(slow, *first)  # one batch: the dripping clip with three fast ones
        time.sleep(1.5)
        sent_second = send(*second)  # the next batch
        fast = {c.key for c in first + second}
        topics.wait_for(lambda: fast <= set(scored()), 3 * FETCH_TIMEOUT_S, "every fast clip")
        topics.wait_for(lambda: slow.key in scored(), 2 * FETCH_TIMEOUT_S, "the slow clip")
        results = scored()
    finally:
        worker.stop()
        topics.close()

    took = {
        c.key: results[c.key][1] - (sent_first if c in first else sent_second)
        for c in first + second
    }
    print(f"fast clips took {min(took.values()):.1f} to {max(took.values()):.1f} s")
    # Counts: 8 sent, 7 scored, 1 failed with its reason, none missing.
    assert all(results[key][0].failure is None for key in fast), {
        key: results[key][0].failure for key in fast
    }
    slow_record, slow_at = results[slow.key]
    assert slow_record.failure is not None and slow_record.failure.reason == "timeout"
    # The fast clips did not wait for the slow one: every one of them, of its batch and of
    # the next, was out before the slow clip's verdict (before, the slow clip's batch went
    # out together, after the whole bound, and the next batch after it), each inside the
    # bound; the slow one took the whole bound, no more. (Inside the bound, not well inside:
    # three clips scored one after another on a loaded 2-core host took 25-28 s of the 30,
    # the code before and after stories alike.)
    assert max(results[key][1] for key in fast) < slow_at
    assert max(took.values()) < FETCH_TIMEOUT_S, took
    assert FETCH_TIMEOUT_S - 1 <= slow_at - sent_first <= FETCH_TIMEOUT_S + 15
    assert media_server.slow_bytes >= FETCH_TIMEOUT_S / DRIP_S - 2

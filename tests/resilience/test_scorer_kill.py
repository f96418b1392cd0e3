"""A scorer killed while it scores loses no clip and repeats at most its in-flight clips
(issue 15, deliver 1).

A real scoring worker (``python -m monitor up --roles score``) on an embedded broker of the
test's own (so the broker outlives the worker) is handed distinct clips on
``clips.discovered``; once some of their ``ClipScored`` are on ``clips.scored`` and while the
others are still being fetched, decoded or scored, it is killed with SIGKILL, with its decode
processes (no cleanup, no last commit), and started again over the same state folder.

What the restarted worker reads again is everything from the consumer's last committed offset:
an observation is acknowledged only after its ``ClipScored`` is sent, and the consumer commits
(every second, ``broker_commit_interval``) only up to the oldest observation not yet
acknowledged. So no clip is lost, and the clips whose verdict is on the topic twice are those
between that offset and the kill: the ones the worker held unacknowledged at its last commit
(at most the score flow's ``max_in_flight`` slots and the batch being handed to it,
``REPEAT_BOUND``) and scored before the kill. A clip scored before the kill is not scored
again after it: its verdict is in the state's cache and is re-sent from there, which is a
repeat on the topic like any other.
(Clips here are all alike; one that takes far longer than the others, a dripping server, holds
the committed offset back while the clips after it are scored, and those would be repeated
too.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.pipeline.broker import EmbeddedBroker
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.records import ClipScored, decode, encode
from tests.resilience.media import MediaServer, clip, descendants, scorer_env
from tests.resilience.restarts import wait_for

CLIPS = 16
BATCH_SIZE = 2
FETCH_CONCURRENCY = 1
MAX_IN_FLIGHT = max(4 * BATCH_SIZE, 2 * FETCH_CONCURRENCY)
"""The score flow's slots, as the score role sizes them (``roles._score``): 8 here."""
REPEAT_BOUND = MAX_IN_FLIGHT + BATCH_SIZE
"""The observations a worker holds unacknowledged: its flow's slots, and the batch taken from
the stream that is being handed to the flow (``noack_take``) while those are full."""
KILL_AFTER = 3
"""Distinct clips on ``clips.scored`` before the kill: some, far from all."""


def kill(worker: Worker) -> None:
    """SIGKILL the worker and every process under it, as a container that is killed goes:
    no cleanup, no last commit. (Killed alone, its decode processes would outlive it.)"""
    assert worker.process is not None
    tree = descendants(worker.process.pid)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(30)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


async def _end_offset(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds, all partitions together."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


def test_a_scorer_killed_mid_stream_loses_nothing_and_repeats_at_most_its_in_flight_clips(
    broker: EmbeddedBroker, media_server: MediaServer, bunny_gallery: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    env = scorer_env(
        broker.url,
        tmp_path / "state",
        bunny_gallery,
        LIKENESS_MONITOR_PIPELINE__BATCH_SIZE=str(BATCH_SIZE),
        LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S="0.5",
        LIKENESS_MONITOR_PIPELINE__FETCH_CONCURRENCY=str(FETCH_CONCURRENCY),
        LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS="1",
    )
    topics = Topics(broker.bootstrap, ("clips.scored",))
    worker = Worker(env, tmp_path / "worker.log", roles="score")
    clips = [clip(media_server, "fast", f"kill-{n:02d}.mp4") for n in range(CLIPS)]
    wanted = {c.key for c in clips}

    def scored() -> Counter[str]:
        return Counter(decode(ClipScored, value).clip.key for value in topics.of("clips.scored"))

    def log_tail() -> str:
        return worker.log.read_text(errors="replace")[-3000:]

    try:
        worker.start()
        records = [(c.key.encode(), encode(c)) for c in clips]
        asyncio.run(produce(broker.bootstrap, "clips.discovered", *records))

        # Killed while it scores: some verdicts out, the others in flight. Polled closely, so
        # that the last verdict out is most likely not yet committed (commits are a second
        # apart) and is read again.
        deadline = time.monotonic() + 300
        while len(scored()) < KILL_AFTER and worker.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.alive() and len(scored()) >= KILL_AFTER, log_tail()
        kill(worker)
        end = asyncio.run(_end_offset(broker.bootstrap, "clips.scored"))
        topics.wait_for(lambda: len(topics.of("clips.scored")) >= end, 60, "the verdicts so far")
        before = scored()
        assert KILL_AFTER <= len(before) < CLIPS, before

        # Started again over the same state folder: it reads from the last committed offset.
        worker.start()
        wait_for(
            lambda: wanted <= set(scored()) or not worker.alive(),
            300,
            "every clip's verdict",
            counts=lambda: f"none for {sorted(wanted - set(scored()))}",
        )
        assert worker.alive(), log_tail()
        assert worker.stop() == 0, log_tail()  # a clean stop: nothing more comes out
        end = asyncio.run(_end_offset(broker.bootstrap, "clips.scored"))
        topics.wait_for(lambda: len(topics.of("clips.scored")) >= end, 60, "clips.scored's end")
        verdicts = [decode(ClipScored, value) for value in topics.of("clips.scored")]
    finally:
        if worker.alive():
            worker.stop()
        topics.close()

    counts = Counter(v.clip.key for v in verdicts)
    repeated = sorted(key for key, n in counts.items() if n > 1)
    # A verdict re-sent from the cache keeps the time it was scored at.
    scored_at = {key: {v.scored_at for v in verdicts if v.clip.key == key} for key in repeated}
    resent = sum(1 for times in scored_at.values() if len(times) == 1)
    print(
        f"{CLIPS} clips, {len(before)} scored before the kill; {len(verdicts)} verdicts on "
        f"clips.scored, {len(repeated)} clips repeated ({resent} re-sent from the cache), "
        f"bound {REPEAT_BOUND}; {time.monotonic() - started:.0f} s"
    )
    # None lost: every clip has a verdict, and a real one (the media were there to score).
    assert set(counts) == wanted, wanted - set(counts)
    assert all(v.failure is None for v in verdicts), [v.failure for v in verdicts if v.failure]
    # Repeated at most the in-flight clips, each at most once more (one kill, one restart).
    assert len(repeated) <= REPEAT_BOUND, counts
    assert max(counts.values()) <= 2, counts
    # What was repeated had been scored before the kill; after it, such a clip's verdict came
    # from the cache, not from scoring it again.
    assert set(repeated) <= set(before), (repeated, before)
    assert resent == len(repeated), scored_at
    assert len(verdicts) == CLIPS + len(repeated)

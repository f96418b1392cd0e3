"""Scorer workers that join and leave while clips are being scored share ``clips.discovered``'s
partitions, lose no clip, and repeat at most their in-flight clips (issue 15, deliver 5).

Scaled out the way the compose and Kubernetes deploys scale the scorer: more copies of
``python -m monitor up --roles score``, each with a state folder of its own (as separate pods
have), all in the same consumer group on one broker, here an embedded one of the test's own.
``clips.discovered`` has four partitions and each wave of clips is spread evenly over them
(names picked by the producer's own key hash), so any split of the partitions gives every
member work.

Clips are sent in waves of eight, a wave more whenever fewer than eight wait for their
verdicts, so the workers always have clips in flight. Worker A starts alone and takes every
partition. Once some of its verdicts are out, worker B starts (a pod scaled up); the group
rebalances and B takes half the partitions while A is scoring, until B has scored some clips
and A more since. Then worker C joins the two the same way (four partitions over three
members). Then A is stopped with SIGTERM (a pod scaled down) while clips still wait for their
verdicts; the group rebalances again and B and C take every partition, until every clip has
its ``ClipScored``. A worker is known to be in the group by what it scores (its own state's
verdict cache). (A third member used to be given no partition, 2/2/0, by Faust's assignor
with its default of one table standby: the app now sets ``table_standby_replicas=0``.)

Why nothing is lost and what may repeat: a partition that is revoked from a member is read by
its new owner from the partition's last committed offset, and a worker acknowledges an
observation (so lets the commit pass it) only after its ``ClipScored`` is sent
(``score_flow.py``). What the old owner held unacknowledged is read again; of that, what it
had already scored and sent is scored again by the new owner (it is not in the new owner's
cache), a repeat on ``clips.scored``. A worker holds at most the score flow's slots and the
batch being handed to it, ``REPEAT_BOUND``: the bound a change of membership is held to.

Faust waits, at a rebalance, for the events its streams hold to be acknowledged and commits
them before it gives its partitions up, and a stopping worker drops its in-flight clips
unsent, so most changes repeat nothing. What does repeat: this broker finishes a rebalance
without a member that is still waiting for its clips (seconds, on these loaded cores); that
member's commit then fails (``IllegalGeneration``, in its log) and what it acknowledged since
its last commit is read again, by another member or by itself (then re-sent from its cache).
A rebalance revokes every member's partitions (aiokafka's eager protocol), so any member may
repeat at a change, not only the worker that joins or leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner

from monitor.pipeline.app import TOPICS
from monitor.pipeline.broker import EmbeddedBroker, ensure_topics
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.records import ClipScored, ClipSeen, decode, encode
from tests.resilience.media import MediaServer, clip, scorer_env
from tests.resilience.restarts import wait_for
from tests.resilience.test_scorer_kill import (
    BATCH_SIZE,
    FETCH_CONCURRENCY,
    REPEAT_BOUND,
    _end_offset,
)

PARTITIONS = 4
WAVE = 8
"""Clips sent at a time, two a partition: a wave more whenever fewer than that wait for their
verdicts, so the workers always have clips in flight, and one before A leaves."""
MAX_CLIPS = 96
"""Waves stop here if a worker takes that long to join (it fails then, on the wait for it)."""
FIRST_VERDICTS = 2
"""Clips a worker has scored before the next change: it is under way, far from done."""


def _waves(server: MediaServer) -> Iterator[list[ClipSeen]]:
    """Waves of ``WAVE`` distinct clips, each wave with ``WAVE / PARTITIONS`` on every
    partition of ``clips.discovered`` (by the producer's default partitioner on the key)."""
    partitions = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()
    names = (f"scale-{n:04d}.mp4" for n in itertools.count())
    while True:
        wave: list[ClipSeen] = []
        taken: Counter[int] = Counter()
        while len(wave) < WAVE:
            seen = clip(server, "fast", next(names))
            partition = partitioner(seen.key.encode(), partitions, partitions)
            if taken[partition] < WAVE // PARTITIONS:
                taken[partition] += 1
                wave.append(seen)
        yield wave


def _scored_by(state: Path) -> set[str]:
    """The clips a worker scored itself (its verdict cache; the state store is in WAL mode,
    so reading it does not hold the worker's writes)."""
    path = state / "state.sqlite3"
    if not path.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            return {key for (key,) in db.execute("SELECT clip_key FROM scored")}
    except sqlite3.OperationalError:  # not created yet
        return set()


def test_scorers_that_join_and_leave_mid_stream_share_partitions_lose_nothing_and_repeat_little(
    media_server: MediaServer, bunny_gallery: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    waves = _waves(media_server)
    sent: list[ClipSeen] = []
    snapshots: dict[str, Counter[str]] = {}
    """The verdicts on clips.scored just before each change, by the change."""
    waiting_at: dict[str, int] = {}
    """Clips sent and not yet scored at each change, by the change."""
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap, dict.fromkeys(TOPICS, PARTITIONS)))
        states = {name: tmp_path / name for name in ("a", "b", "c")}
        workers = {
            name: Worker(
                scorer_env(
                    broker.url,
                    state,
                    bunny_gallery,
                    LIKENESS_MONITOR_PIPELINE__PARTITIONS=str(PARTITIONS),
                    LIKENESS_MONITOR_PIPELINE__BATCH_SIZE=str(BATCH_SIZE),
                    LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S="0.5",
                    LIKENESS_MONITOR_PIPELINE__FETCH_CONCURRENCY=str(FETCH_CONCURRENCY),
                    LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS="1",
                ),
                tmp_path / f"{name}.log",
                roles="score",
            )
            for name, state in states.items()
        }
        topics = Topics(broker.bootstrap, ("clips.scored",))

        def send_wave() -> None:
            wave = next(waves)
            records = [(c.key.encode(), encode(c)) for c in wave]
            asyncio.run(produce(broker.bootstrap, "clips.discovered", *records))
            sent.extend(wave)

        def scored() -> Counter[str]:
            return Counter(decode(ClipScored, v).clip.key for v in topics.of("clips.scored"))

        def waiting() -> int:
            return len(sent) - len(scored())

        def by(name: str) -> int:
            return len(_scored_by(states[name]))

        def logs() -> str:
            return "\n".join(
                f"--- {name}:\n{w.log.read_text(errors='replace')[-2500:]}"
                for name, w in workers.items()
                if w.log.exists()
            )

        def alive(names: str) -> bool:
            return all(workers[name].alive() for name in names)

        def change(what: str) -> None:
            snapshots[what] = scored()
            waiting_at[what] = waiting()

        def fed(condition: Callable[[], bool]) -> Callable[[], bool]:
            """``condition``, sending a wave first whenever few clips are left to score."""

            def check() -> bool:
                if waiting() < WAVE and len(sent) < MAX_CLIPS:
                    send_wave()
                return condition()

            return check

        def join(name: str, members: str) -> None:
            """Start ``name`` while ``members`` score, until it has scored some clips (it is in
            the group, with partitions), and each of them has scored more since."""
            change(f"{name} joins")
            workers[name].start()
            wait_for(
                fed(lambda: by(name) >= FIRST_VERDICTS or not alive(members + name)),
                300,
                f"{name}'s first verdicts",
                counts=lambda: f"scored {[(n, by(n)) for n in workers]}\n{logs()}",
            )
            before = {member: by(member) for member in members}
            wait_for(
                fed(lambda: all(by(m) > n for m, n in before.items()) or not alive(members + name)),
                300,
                f"{members} scoring beside {name}",
                counts=lambda: f"scored {[(n, by(n)) for n in workers]}\n{logs()}",
            )
            assert alive(members + name), logs()

        try:
            workers["a"].start()
            send_wave()
            wait_for(
                lambda: len(scored()) >= FIRST_VERDICTS or not alive("a"),
                300,
                "A's first verdicts",
                counts=lambda: f"{len(scored())} clips scored\n{logs()}",
            )
            assert alive("a"), logs()
            join("b", "a")
            join("c", "ab")

            # A leaves as a scaled-down pod does (SIGTERM), with clips still to score.
            send_wave()
            change("a leaves")
            assert workers["a"].stop() == 0, logs()
            wanted = {c.key for c in sent}
            wait_for(
                lambda: wanted <= set(scored()) or not alive("bc"),
                300,
                "every clip's verdict",
                counts=lambda: f"none for {sorted(wanted - set(scored()))}\n{logs()}",
            )
            assert alive("bc"), logs()
            for name in "bc":  # a clean stop: nothing more comes out
                assert workers[name].stop() == 0, logs()
            end = asyncio.run(_end_offset(broker.bootstrap, "clips.scored"))
            topics.wait_for(lambda: len(topics.of("clips.scored")) >= end, 60, "the end")
            verdicts = [decode(ClipScored, value) for value in topics.of("clips.scored")]
        finally:
            for worker in workers.values():
                if worker.alive():
                    worker.stop()
            topics.close()

    scored_by = {name: _scored_by(state) for name, state in states.items()}
    counts = Counter(v.clip.key for v in verdicts)
    repeated = {key for key, n in counts.items() if n > 1}
    # Repeats seen before each change came from the changes before it.
    repeats_before = {what: sum(n > 1 for n in seen.values()) for what, seen in snapshots.items()}
    by_workers = Counter(key for keys in scored_by.values() for key in keys)
    twice = {key for key, n in by_workers.items() if n > 1}
    print(
        f"{len(wanted)} clips over {PARTITIONS} partitions; clips waiting at each change "
        f"{waiting_at}; scored by {[(n, len(k)) for n, k in scored_by.items()]}, by two or "
        f"more {len(twice)}; {len(verdicts)} verdicts, "
        f"{len(repeated)} clips repeated (seen before each change: {repeats_before}), bound "
        f"{REPEAT_BOUND} a change; {time.monotonic() - started:.0f} s"
    )
    # The changes came mid-stream: clips were waiting for their verdicts at each.
    assert all(n > 0 for n in waiting_at.values()), waiting_at
    # None lost: every clip has a verdict, and a real one.
    assert set(counts) == wanted, wanted - set(counts)
    assert all(v.failure is None for v in verdicts), [v.failure for v in verdicts if v.failure]
    # Shared: each worker scored some clips while others were in the group, between them all.
    assert all(scored_by.values()), scored_by
    assert set().union(*scored_by.values()) == wanted
    # Repeated at most the in-flight clips a change: before C joined only B's join had
    # happened, before A left two changes; over all three. A change repeats a clip at most once.
    changes = len(snapshots)
    assert repeats_before["c joins"] <= REPEAT_BOUND, snapshots["c joins"]
    assert repeats_before["a leaves"] <= 2 * REPEAT_BOUND, snapshots["a leaves"]
    assert len(repeated) <= changes * REPEAT_BOUND, counts
    assert max(counts.values()) <= 1 + changes, counts
    assert len(twice) <= changes * REPEAT_BOUND, twice
    assert (
        len(verdicts) == sum(counts.values()) == len(wanted) + sum(n - 1 for n in counts.values())
    )

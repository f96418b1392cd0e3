"""What must survive a restart: scores already computed, alerts already sent, spread.

Faust tables on this broker lose keys after a restart (measured; see DESIGN.md), so the
source of truth for "this clip was scored with this gallery", "this (clip, entity) was
alerted" and "these are its latest counts" is a transactional store: a SQLite file on the
worker's disk, or a PostgreSQL schema that every scorer and decide replica shares (a scorer
that takes over a partition finds its verdicts; a decide replica, the alerts already sent).
An alert is marked only after its send is acknowledged: marking first loses alerts when the
worker dies in between, marking after can at worst repeat a send, which the alert key lets
consumers drop.

Each sent alert's record is kept too, for ``StateStore.resend_window_s`` after it was sent,
marked in the same transaction as its key: the embedded broker keeps its topics in memory, so
an alert on ``alerts`` that notify had not taken yet goes with a restart of it, while its key
here says it was sent. Decide puts the kept records back on a new broker's ``alerts`` topic
(``roles.py``); every consumer drops a repeat by its key, so nothing is delivered twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from monitor.storage import Connection, Database, Migration, Store, postgresql_ddl

__all__ = ["MIGRATIONS", "POSTGRESQL_MIGRATIONS", "EntitySpread", "StateStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scored (
    clip_key TEXT NOT NULL,
    gallery_version TEXT NOT NULL,
    models TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (clip_key, gallery_version, models)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_key TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    alerted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
    alert_key TEXT PRIMARY KEY,
    sent_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sent_by_time ON sent (sent_at);
CREATE TABLE IF NOT EXISTS clips (
    clip_key TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    views INTEGER,
    shares INTEGER
);
CREATE TABLE IF NOT EXISTS flagged (
    clip_key TEXT NOT NULL,
    entity TEXT NOT NULL,
    franchise TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (clip_key, entity)
);
"""

MIGRATIONS = (
    Migration("scores, alerts sent, spread", _SCHEMA),
    Migration(
        "each clip's AI-generated verdict, so the spread is charted by it",
        run=lambda db: _add_column(db, "clips", "synthetic TEXT NOT NULL DEFAULT 'unknown'"),
    ),
)
"""The schema of the file, in order (``monitor.storage``): append, never edit one released."""

POSTGRESQL_MIGRATIONS = (
    Migration(
        MIGRATIONS[0].summary,
        postgresql_ddl(
            _SCHEMA, rowid=["sent"], collate_c=["clips.first_seen", "clips.observed_at"]
        ),
    ),
    Migration(
        MIGRATIONS[1].summary,
        "ALTER TABLE clips ADD COLUMN IF NOT EXISTS synthetic TEXT NOT NULL DEFAULT 'unknown'",
    ),
)
"""The same store in PostgreSQL (``monitor.storage.translate``): append, never edit."""


def _add_column(db: Connection, table: str, column: str) -> None:
    """``ALTER TABLE ... ADD COLUMN``, unless the column is there already (a file whose
    version mark was lost keeps its columns: adding one twice is an error)."""
    name = column.split()[0]
    if name not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


@dataclass(frozen=True)
class EntitySpread:
    entity: str
    franchise: str
    platform: str
    kind: str
    synthetic: str
    clips: int
    views: int
    shares: int


class StateStore(Store):
    """A worker's state (a SQLite file, or a PostgreSQL schema replicas share); safe to call
    from the event loop and worker threads."""

    def __init__(self, where: Path | Database, *, resend_window_s: float = 86_400.0) -> None:
        super().__init__(where, MIGRATIONS, postgresql=POSTGRESQL_MIGRATIONS)
        self.resend_window_s = resend_window_s
        """How long a sent alert's record is kept for a new broker (``sent_since``)."""

    # --- scores ---------------------------------------------------------------------------

    def cached_score(
        self, clip_key: str, gallery_version: str, models: dict[str, str]
    ) -> str | None:
        with self._read() as db:
            row = db.execute(
                "SELECT result FROM scored WHERE clip_key=? AND gallery_version=? AND models=?",
                (clip_key, gallery_version, json.dumps(models, sort_keys=True)),
            ).fetchone()
        return None if row is None else str(row[0])

    def save_score(
        self, clip_key: str, gallery_version: str, models: dict[str, str], result: str
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO scored VALUES (?, ?, ?, ?) "
                "ON CONFLICT (clip_key, gallery_version, models) DO UPDATE SET result=excluded.result",
                (clip_key, gallery_version, json.dumps(models, sort_keys=True), result),
            )

    # --- alerts ---------------------------------------------------------------------------

    def alert_sent(self, alert_key: str) -> bool:
        with self._read() as db:
            row = db.execute("SELECT 1 FROM alerts WHERE alert_key=?", (alert_key,))
            return row.fetchone() is not None

    def mark_alert(self, alert_key: str, alert_id: str, at: datetime, record: bytes) -> None:
        """The alert was sent (the broker acknowledged ``record``, its encoding, at ``at``).
        Its record is kept for ``resend_window_s``; older ones go in the same transaction, so
        what is kept stays bounded by what one window sends."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO alerts VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (alert_key, alert_id, at.isoformat()),
            )
            db.execute(
                "INSERT INTO sent VALUES (?, ?, ?) ON CONFLICT (alert_key) "
                "DO UPDATE SET sent_at=excluded.sent_at, record=excluded.record",
                (alert_key, at.timestamp(), record.decode()),
            )
            cutoff = at - timedelta(seconds=self.resend_window_s)
            db.execute("DELETE FROM sent WHERE sent_at < ?", (cutoff.timestamp(),))

    def sent_since(self, since: datetime, until: datetime) -> list[bytes]:
        """The records of the alerts sent from ``since`` to before ``until``, oldest first;
        older ones are dropped (a worker that sends nothing for a while still keeps only the
        window)."""
        with self._tx() as db:
            db.execute("DELETE FROM sent WHERE sent_at < ?", (since.timestamp(),))
            rows = db.execute(
                "SELECT record FROM sent WHERE sent_at < ? ORDER BY sent_at, rowid",
                (until.timestamp(),),
            ).fetchall()
        return [str(row[0]).encode() for row in rows]

    # --- spread ---------------------------------------------------------------------------

    def observe(
        self,
        clip_key: str,
        platform: str,
        observed_at: datetime,
        views: int | None,
        shares: int | None,
        synthetic: str = "unknown",
    ) -> datetime:
        """Record counts (and whether the clip is AI-generated, as the newest verdict says) if
        newer than what is kept; returns when the clip was first seen."""
        stamp = observed_at.isoformat()
        with self._tx() as db:
            db.execute(
                "INSERT INTO clips (clip_key, platform, first_seen, observed_at, views, shares, "
                "synthetic) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(clip_key) DO UPDATE SET "
                "observed_at=excluded.observed_at, views=excluded.views, shares=excluded.shares, "
                "synthetic=excluded.synthetic, first_seen=CASE WHEN excluded.first_seen < "
                "clips.first_seen THEN excluded.first_seen ELSE clips.first_seen END "
                "WHERE excluded.observed_at > clips.observed_at",
                (clip_key, platform, stamp, stamp, views, shares, synthetic),
            )
            row = db.execute(
                "SELECT first_seen FROM clips WHERE clip_key=?", (clip_key,)
            ).fetchone()
        return datetime.fromisoformat(row[0])

    def flag(self, clip_key: str, entity: str, franchise: str | None, kind: str) -> bool:
        """Remember that a clip shows an entity; True the first time."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO flagged VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (clip_key, entity, franchise or "", kind),
            )
            return cursor.rowcount == 1

    def spread(self) -> list[EntitySpread]:
        """Per entity, platform and AI-generated verdict: flagged clips and their latest total
        views and shares."""
        with self._read() as db:
            rows = db.execute(
                "SELECT f.entity, f.franchise, c.platform, f.kind, c.synthetic, count(*), "
                "CAST(coalesce(sum(c.views), 0) AS BIGINT), "
                "CAST(coalesce(sum(c.shares), 0) AS BIGINT) "
                "FROM flagged f JOIN clips c USING (clip_key) "
                "GROUP BY f.entity, f.franchise, c.platform, f.kind, c.synthetic"
            ).fetchall()
        return [EntitySpread(*row) for row in rows]

"""What the review page reads: the alerts and every decision on them, in SQLite on this host.

The ``alerts`` and ``reviews`` topics are the source of truth; this store is their
materialised view, fed by the review role's agents, so the page survives a restart without
replaying the topics. Decisions are a log, never an update in place: an alert's state is its
latest decision, so a review that arrives before its alert (two topics, no order between them)
or twice (at-least-once delivery) still lands on the same state.

Alerts are kept as their JSON records and read back on every page view. Records now refuse a
time without a zone, but an alert stored before that may carry one (always meant as UTC): such
records are rewritten once, by the store's schema migration 2 (``monitor.storage``), so that
every read is a plain parse (``_zone_old_alerts``). A file that the rewrite's earlier, separate
mark (``user_version`` 1) says was rewritten is version 1 now and is scanned once more, finding
nothing to rewrite.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from monitor.records import Alert, Review, as_utc
from monitor.storage import FeedOffsets, Migration

__all__ = [
    "MIGRATIONS",
    "STATES",
    "AlertFilter",
    "Applied",
    "ReviewStore",
    "ReviewedAlert",
    "State",
]

State = Literal["new", "confirmed", "dismissed"]
STATES: tuple[State, ...] = ("new", "confirmed", "dismissed")
_STATE_OF = {"confirm": "confirmed", "dismiss": "dismissed", "undo": "new"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    franchise TEXT NOT NULL,
    platform TEXT NOT NULL,
    clip_key TEXT NOT NULL,
    alerted_at TEXT NOT NULL,
    velocity REAL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (alerted_at);
CREATE TABLE IF NOT EXISTS reviews (
    alert_id TEXT NOT NULL,
    at TEXT NOT NULL,
    decision TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (alert_id, at, decision, reviewer)
);
"""

# An alert's state is its latest decision; ties in time (never in practice) go to the later row.
_LATEST = """
SELECT r.alert_id, r.decision, r.reason, r.reviewer, r.at FROM reviews r
WHERE r.rowid = (SELECT r2.rowid FROM reviews r2 WHERE r2.alert_id = r.alert_id
                 ORDER BY r2.at DESC, r2.rowid DESC LIMIT 1)
"""

_STATE_SQL = (
    "CASE latest.decision WHEN 'confirm' THEN 'confirmed' WHEN 'dismiss' THEN 'dismissed' "
    "ELSE 'new' END"
)


@dataclass(frozen=True)
class ReviewedAlert:
    alert: Alert
    state: State
    velocity: float | None
    reason: str | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None


@dataclass(frozen=True)
class AlertFilter:
    entity: str | None = None
    franchise: str | None = None
    platform: str | None = None
    state: State | None = None
    sort: Literal["newest", "spreading"] = "newest"


@dataclass(frozen=True)
class Applied:
    """What applying a review changed: nothing for a repeat; for a first decision on a known
    alert, how long the alert had waited for it."""

    new: bool
    alert: Alert | None
    first_decision_after_s: float | None


def views_per_hour(alert: Alert) -> float | None:
    """Views per hour between posting and the observation that raised the alert."""
    if alert.views is None or alert.posted_at is None:
        return None
    posted = as_utc(alert.posted_at)
    # At least a minute: a clip seen seconds after posting would read as millions an hour.
    hours = max((alert.observed_at - posted).total_seconds(), 60.0) / 3600
    return alert.views / hours


class ReviewStore(FeedOffsets):
    def __init__(self, path: Path) -> None:
        super().__init__(path, MIGRATIONS)

    def add_alert(self, alert: Alert) -> bool:
        """Keep an alert; True the first time (a redelivered alert changes nothing)."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.alert_id,
                    alert.entity.id,
                    alert.entity.franchise or "",
                    alert.clip.platform,
                    alert.clip.key,
                    _stamp(alert.alerted_at),
                    views_per_hour(alert),
                    alert.model_dump_json(by_alias=True),
                ),
            )
            return cursor.rowcount == 1

    def apply(self, review: Review) -> Applied:
        """Log a decision; a repeat of one already logged is ignored."""
        with self._tx() as db:
            earlier = db.execute(
                "SELECT count(*) FROM reviews WHERE alert_id=? AND decision != 'undo'",
                (review.alert_id,),
            ).fetchone()[0]
            cursor = db.execute(
                "INSERT OR IGNORE INTO reviews VALUES (?, ?, ?, ?, ?)",
                (
                    review.alert_id,
                    _stamp(review.at),
                    review.decision,
                    review.reviewer,
                    review.reason,
                ),
            )
            row = db.execute(
                "SELECT record FROM alerts WHERE alert_id=?", (review.alert_id,)
            ).fetchone()
        alert = None if row is None else Alert.model_validate_json(row[0])
        waited = None
        if cursor.rowcount == 1 and alert is not None and not earlier and review.decision != "undo":
            waited = max((review.at - alert.alerted_at).total_seconds(), 0.0)
        return Applied(new=cursor.rowcount == 1, alert=alert, first_decision_after_s=waited)

    def get(self, alert_id: str) -> ReviewedAlert | None:
        found = self._select("WHERE a.alert_id = ?", [alert_id], "a.alerted_at DESC", 1)
        return found[0] if found else None

    def alerts(self, where: AlertFilter = AlertFilter(), limit: int = 200) -> list[ReviewedAlert]:
        """Newest first, or fastest-spreading first; filtered on any of the four facets."""
        clauses: list[str] = []
        params: list[str] = []
        for column, value in (
            ("a.entity", where.entity),
            ("a.franchise", where.franchise),
            ("a.platform", where.platform),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.state:
            clauses.append(f"{_STATE_SQL} = ?")
            params.append(where.state)
        order = (
            "a.velocity IS NULL, a.velocity DESC, a.alerted_at DESC"
            if where.sort == "spreading"
            else "a.alerted_at DESC"
        )
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(sql_where, params, order, limit)

    def facets(self) -> dict[str, list[str]]:
        """The entities, franchises and platforms there are alerts for: the filters' choices."""
        with self._lock:
            return {
                column: [
                    row[0]
                    for row in self._db.execute(
                        f"SELECT DISTINCT {column} FROM alerts WHERE {column} != '' ORDER BY 1"
                    )
                ]
                for column in ("entity", "franchise", "platform")
            }

    def dismissed_share(self, entity: str) -> float | None:
        """Of the entity's reviewed alerts (confirmed or dismissed), the share dismissed."""
        with self._lock:
            row = self._db.execute(
                f"SELECT sum({_STATE_SQL} = 'dismissed'), sum({_STATE_SQL} != 'new') "
                f"FROM alerts a LEFT JOIN ({_LATEST}) latest USING (alert_id) WHERE a.entity = ?",
                (entity,),
            ).fetchone()
        dismissed, reviewed = row
        return None if not reviewed else float(dismissed) / float(reviewed)

    def dismissed(self, clip_key: str, entity: str) -> bool:
        """Whether a reviewer's latest word on this clip and entity is a dismissal."""
        with self._lock:
            row = self._db.execute(
                f"SELECT 1 FROM alerts a JOIN ({_LATEST}) latest USING (alert_id) "
                "WHERE a.clip_key = ? AND a.entity = ? AND latest.decision = 'dismiss'",
                (clip_key, entity),
            ).fetchone()
        return row is not None

    def _select(
        self, where: str, params: Sequence[str], order: str, limit: int
    ) -> list[ReviewedAlert]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT a.record, {_STATE_SQL}, a.velocity, latest.reason, latest.reviewer, "
                f"latest.at FROM alerts a LEFT JOIN ({_LATEST}) latest USING (alert_id) "
                f"{where} ORDER BY {order} LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [
            ReviewedAlert(
                alert=Alert.model_validate_json(record),
                state=state,
                velocity=velocity,
                reason=reason if state != "new" else None,
                reviewer=reviewer,
                reviewed_at=None if at is None else datetime.fromisoformat(at),
            )
            for record, state, velocity, reason, reviewer, at in rows
        ]


def _zone_old_alerts(db: sqlite3.Connection) -> None:
    """Rewrite alert records kept before records refused a time without a zone, their zoneless
    times as UTC (what the monitor always wrote). A record that fails for any other reason is
    left as it was, for the reader to refuse as ever: opening the store, and so starting the
    worker, must not fail on one bad row."""
    for alert_id, record in db.execute("SELECT alert_id, record FROM alerts").fetchall():
        zoned = _zoned(record)
        if zoned is not None:
            db.execute("UPDATE alerts SET record=? WHERE alert_id=?", (zoned, alert_id))


MIGRATIONS = (
    Migration("alerts and reviews, offsets", _SCHEMA),
    Migration("alert records' zoneless times read as UTC", run=_zone_old_alerts),
)
"""The schema of the file, in order (``monitor.storage``): append, never edit one released."""


def _zoned(record: str) -> str | None:
    """``record`` with its zoneless times read as UTC, or None when it needs no rewrite (it
    validates) or cannot be mended so (it fails for another reason too)."""
    try:
        Alert.model_validate_json(record)
        return None
    except ValidationError as exc:
        naive = [e["loc"] for e in exc.errors() if e["type"] == "timezone_aware"]
        if len(naive) < exc.error_count():
            return None
    data = json.loads(record)
    try:
        for loc in naive:
            holder: Any = data
            for part in loc[:-1]:
                holder = holder[part]
            holder[loc[-1]] = as_utc(datetime.fromisoformat(holder[loc[-1]])).isoformat()
        return Alert.model_validate(data).model_dump_json(by_alias=True)
    except (ValueError, TypeError):  # a time pydantic reads and fromisoformat does not
        return None


def _stamp(at: datetime) -> str:
    """UTC ISO text of fixed width, so that text order is time order in SQL."""
    return as_utc(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

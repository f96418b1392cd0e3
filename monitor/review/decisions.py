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

One viral clip re-posted on many platforms is many alerts, one per copy, all naming the same
story (``Alert.story``). The page lists stories, not alerts, so each alert's story id is kept in
a column of its own (migration 3, which fills it from the records already kept): grouping by it
is an indexed query rather than a parse of every record. What a story's header shows is read
from a bounded few of its copies (``STORY_SAMPLE``, ``HISTORY_NEWEST``, ``HISTORY_OLDEST``) and
the copies listed under it are at most ``COPIES_SHOWN``, so that a story of thousands of copies
costs a page view little more than a small one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from monitor.records import Alert, AlertEntity, Review, ViewsAt, as_utc
from monitor.storage import Connection, Database, FeedOffsets, Migration, postgresql_ddl

__all__ = [
    "COPIES_SHOWN",
    "HISTORY_NEWEST",
    "HISTORY_OLDEST",
    "MIGRATIONS",
    "POSTGRESQL_MIGRATIONS",
    "STATES",
    "STORY_SAMPLE",
    "AlertFilter",
    "Applied",
    "ReviewStore",
    "ReviewedAlert",
    "ReviewedStory",
    "State",
    "StoryPage",
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

# The same state, for one alert ``a`` at a time: an indexed look-up, where the join above
# would read every review for a query that only needs a story's copies.
_STATE_OF_ROW = (
    "CASE (SELECT r.decision FROM reviews r WHERE r.alert_id = a.alert_id "
    "ORDER BY r.at DESC, r.rowid DESC LIMIT 1) "
    "WHEN 'confirm' THEN 'confirmed' WHEN 'dismiss' THEN 'dismissed' ELSE 'new' END"
)

# A story's key in a GROUP BY: its id, or for an alert without one the alert itself (marked,
# so that an alert id can never pass for a story id).
_STORY_KEY = "coalesce(a.story_id, '~' || a.alert_id)"

# The copies a story's row counts for the exports: itself alone when it has no story.
_STORY_COPIES = (
    "CASE WHEN a.story_id IS NULL THEN 1 "
    "ELSE (SELECT count(*) FROM alerts s WHERE s.story_id = a.story_id) END"
)

COPIES_SHOWN = 20
"""The most copies listed under one story on the page; the rest are counted."""
STORY_SAMPLE = 500
"""The newest copies of a story its header's views and first sighting are read from."""
HISTORY_NEWEST, HISTORY_OLDEST = 50, 10
"""The copies of a story whose alerts' histories make its chart: the newest and the oldest."""


@dataclass(frozen=True)
class ReviewedAlert:
    alert: Alert
    state: State
    velocity: float | None
    reason: str | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    story_copies: int = 1
    """The copies of the alert's story this store holds (1: it has no story)."""


@dataclass(frozen=True)
class ReviewedStory:
    """One story as the page lists it: the whole story in the header, and under it the copies
    that match the page's filter, newest first, at most ``COPIES_SHOWN`` of ``matching``."""

    story_id: str | None
    """None for an alert without a story, which is a story of one."""
    entity: AlertEntity
    first_seen: datetime
    copies: int
    platforms: dict[str, int]
    states: dict[State, int]
    views: int | None
    history: list[ViewsAt]
    shown: list[ReviewedAlert]
    matching: int

    @property
    def key(self) -> str:
        """What names the story on the page: its id, or its only alert's."""
        return self.story_id or self.shown[0].alert.alert_id

    @property
    def not_shown(self) -> int:
        return self.matching - len(self.shown)


@dataclass(frozen=True)
class StoryPage:
    stories: list[ReviewedStory]
    more: bool
    """Whether stories follow on a next page."""


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
    def __init__(self, where: Path | Database) -> None:
        super().__init__(where, MIGRATIONS, postgresql=POSTGRESQL_MIGRATIONS)

    def add_alert(self, alert: Alert) -> bool:
        """Keep an alert; True the first time (a redelivered alert changes nothing)."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO alerts (alert_id, entity, franchise, platform, clip_key, "
                "alerted_at, velocity, record, story_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (
                    alert.alert_id,
                    alert.entity.id,
                    alert.entity.franchise or "",
                    alert.clip.platform,
                    alert.clip.key,
                    _stamp(alert.alerted_at),
                    views_per_hour(alert),
                    alert.model_dump_json(by_alias=True),
                    None if alert.story is None else alert.story.story_id,
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
                "INSERT INTO reviews VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
        clauses, params = _clauses(where)
        order = (
            "a.velocity IS NULL, a.velocity DESC, a.alerted_at DESC"
            if where.sort == "spreading"
            else "a.alerted_at DESC"
        )
        return self._select(_where_sql(clauses), params, order, limit)

    def stories(
        self, where: AlertFilter = AlertFilter(), limit: int = 50, offset: int = 0
    ) -> StoryPage:
        """The stories with a copy that matches ``where``, newest activity first (or fastest
        spreading copy first), ``limit`` of them after the first ``offset``."""
        clauses, params = _clauses(where)
        order = (
            "max(a.velocity) IS NULL, max(a.velocity) DESC, latest_at DESC"
            if where.sort == "spreading"
            else "latest_at DESC"
        )
        with self._read() as db:
            keys = db.execute(
                f"SELECT min(a.story_id), min(a.alert_id), count(*), max(a.alerted_at) AS latest_at "
                f"FROM alerts a LEFT JOIN ({_LATEST}) latest USING (alert_id) "
                f"{_where_sql(clauses)} GROUP BY {_STORY_KEY} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, limit + 1, offset],
            ).fetchall()
        stories = [
            self._story(story_id, alert_id, matching, where)
            for story_id, alert_id, matching, _ in keys[:limit]
        ]
        return StoryPage(stories=stories, more=len(keys) > limit)

    def story_states(self, story_id: str) -> dict[str, State]:
        """Every copy of the story, by alert id, with its state: what a story-wide decision
        acts on (empty for a story this store does not know)."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT a.alert_id, {_STATE_OF_ROW} FROM alerts a WHERE a.story_id = ?",
                (story_id,),
            ).fetchall()
        return {alert_id: state for alert_id, state in rows}

    def _story(
        self, story_id: str | None, alert_id: str, matching: int, where: AlertFilter
    ) -> ReviewedStory:
        own, key = ("a.story_id = ?", story_id) if story_id else ("a.alert_id = ?", alert_id)
        clauses, params = _clauses(where)
        shown = self._select(
            _where_sql([own, *clauses]), [key, *params], "a.alerted_at DESC", COPIES_SHOWN
        )
        platforms, states = self._tally(own, key)
        sample = self._sample(own, key)
        return ReviewedStory(
            story_id=story_id,
            entity=shown[0].alert.entity,
            first_seen=min(copy.first_seen for copy in sample),
            copies=sum(platforms.values()),
            platforms=platforms,
            states=states,
            views=_story_views(sample),
            history=self._history(own, key) or _observed_views(sample),
            shown=shown,
            matching=matching,
        )

    def _tally(self, own: str, key: str) -> tuple[dict[str, int], dict[State, int]]:
        """A story's copies by platform and by state, all of them."""
        platforms: dict[str, int] = {}
        states: dict[State, int] = dict.fromkeys(STATES, 0)
        with self._read() as db:
            rows = db.execute(
                f"SELECT a.platform, {_STATE_OF_ROW}, count(*) FROM alerts a WHERE {own} "
                "GROUP BY 1, 2",
                (key,),
            ).fetchall()
        for platform, state, count in rows:
            platforms[platform] = platforms.get(platform, 0) + count
            states[state] += count
        return dict(sorted(platforms.items())), states

    def _sample(self, own: str, key: str) -> list[_Copy]:
        """What the header needs of a story's newest ``STORY_SAMPLE`` copies, read from their
        records in SQL, without parsing each whole record."""
        field = self.database.json_text
        with self._read() as db:
            rows = db.execute(
                f"SELECT {field('a.record', 'first_seen')}, "
                f"{field('a.record', 'story', 'first_seen')}, "
                f"{field('a.record', 'observed_at')}, {field('a.record', 'views', number=True)}, "
                f"{field('a.record', 'story', 'views', number=True)} FROM alerts a WHERE {own} "
                "ORDER BY a.alerted_at DESC LIMIT ?",
                (key, STORY_SAMPLE),
            ).fetchall()
        return [_Copy.of(*row) for row in rows]

    def _history(self, own: str, key: str) -> list[ViewsAt]:
        """The union of the story's views over time as its alerts told it, one point a time
        (the highest count, should two alerts disagree), oldest first. Each alert told the
        newest points up to its time, so the newest alerts tell the recent past and the oldest
        the start; those are read, not the thousands between."""
        copies = (
            f"SELECT record FROM (SELECT a.record FROM alerts a WHERE {own} "
            "ORDER BY a.alerted_at {} LIMIT ?) c"
        )
        field = self.database.json_text
        with self._read() as db:
            rows = db.execute(
                f"SELECT {field('h.value', 'at')} AS at, "
                f"max({field('h.value', 'views', number=True)}) "
                f"FROM ({copies.format('DESC')} UNION {copies.format('ASC')}) s, "
                f"{self.database.json_elements('s.record', 'story', 'history')} GROUP BY at",
                (key, HISTORY_NEWEST, key, HISTORY_OLDEST),
            ).fetchall()
        return _union((_parse_time(at), int(views)) for at, views in rows if views is not None)

    def facets(self) -> dict[str, list[str]]:
        """The entities, franchises and platforms there are alerts for: the filters' choices."""
        with self._read() as db:
            return {
                column: [
                    row[0]
                    for row in db.execute(
                        f"SELECT DISTINCT {column} FROM alerts WHERE {column} != '' ORDER BY 1"
                    )
                ]
                for column in ("entity", "franchise", "platform")
            }

    def dismissed_share(self, entity: str) -> float | None:
        """Of the entity's reviewed alerts (confirmed or dismissed), the share dismissed."""
        with self._read() as db:
            row = db.execute(
                f"SELECT sum(CASE WHEN {_STATE_SQL} = 'dismissed' THEN 1 ELSE 0 END), "
                f"sum(CASE WHEN {_STATE_SQL} != 'new' THEN 1 ELSE 0 END) "
                f"FROM alerts a LEFT JOIN ({_LATEST}) latest USING (alert_id) WHERE a.entity = ?",
                (entity,),
            ).fetchone()
        dismissed, reviewed = row
        return None if not reviewed else float(dismissed) / float(reviewed)

    def dismissed(self, clip_key: str, entity: str) -> bool:
        """Whether a reviewer's latest word on this clip and entity is a dismissal."""
        with self._read() as db:
            row = db.execute(
                f"SELECT 1 FROM alerts a JOIN ({_LATEST}) latest USING (alert_id) "
                "WHERE a.clip_key = ? AND a.entity = ? AND latest.decision = 'dismiss'",
                (clip_key, entity),
            ).fetchone()
        return row is not None

    def _select(
        self, where: str, params: Sequence[str], order: str, limit: int
    ) -> list[ReviewedAlert]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT a.record, {_STATE_SQL}, a.velocity, latest.reason, latest.reviewer, "
                f"latest.at, {_STORY_COPIES} FROM alerts a LEFT JOIN ({_LATEST}) latest "
                "USING (alert_id) "
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
                story_copies=copies,
            )
            for record, state, velocity, reason, reviewer, at, copies in rows
        ]


@dataclass(frozen=True)
class _Copy:
    """Of one copy of a story, what the story's header is made of."""

    first_seen: datetime
    observed_at: datetime
    views: int | None
    story_views: int | None
    in_story: bool

    @classmethod
    def of(
        cls,
        first_seen: str,
        story_first_seen: str | None,
        observed_at: str,
        views: int | None,
        story_views: int | None,
    ) -> _Copy:
        return cls(
            first_seen=_parse_time(story_first_seen or first_seen),
            observed_at=_parse_time(observed_at),
            views=views,
            story_views=story_views,
            in_story=story_first_seen is not None,
        )


def _story_views(sample: Sequence[_Copy]) -> int | None:
    """The story's latest total: the highest any of its alerts told; without a story, the
    sum of the copies' own views (the one copy's, as a story of one)."""
    if any(copy.in_story for copy in sample):
        told = [copy.story_views for copy in sample if copy.story_views is not None]
        return max(told) if told else None
    views = [copy.views for copy in sample if copy.views is not None]
    return sum(views) if views else None


def _observed_views(sample: Sequence[_Copy]) -> list[ViewsAt]:
    """Views over time where no alert told a history: each copy's views when it was seen."""
    return _union((copy.observed_at, copy.views) for copy in sample if copy.views is not None)


def _union(points: Iterable[tuple[datetime, int]]) -> list[ViewsAt]:
    best: dict[datetime, int] = {}
    for at, views in points:
        best[at] = max(views, best.get(at, 0))
    return [ViewsAt(at=at, views=views) for at, views in sorted(best.items())]


def _parse_time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def _clauses(where: AlertFilter) -> tuple[list[str], list[str]]:
    """The SQL conditions (on ``a`` and ``latest``) and their parameters of a filter."""
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
    return clauses, params


def _where_sql(clauses: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _zone_old_alerts(db: Connection) -> None:
    """Rewrite alert records kept before records refused a time without a zone, their zoneless
    times as UTC (what the monitor always wrote). A record that fails for any other reason is
    left as it was, for the reader to refuse as ever: opening the store, and so starting the
    worker, must not fail on one bad row."""
    for alert_id, record in db.execute("SELECT alert_id, record FROM alerts").fetchall():
        zoned = _zoned(record)
        if zoned is not None:
            db.execute("UPDATE alerts SET record=? WHERE alert_id=?", (zoned, alert_id))


def _keep_story_ids(db: Connection) -> None:
    """Give ``alerts`` its ``story_id`` column and index, and fill it from the records kept
    before. Safe to run on a file that already has them: a file whose version was set back
    (from before versions, or the zone rewrite's old mark) runs it again."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
    if "story_id" not in columns:
        db.execute("ALTER TABLE alerts ADD COLUMN story_id TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS alerts_by_story ON alerts (story_id, alerted_at)")
    # A record that is not JSON is left alone (CASE: json_type is never asked of it), for the
    # reader to refuse as ever: one bad row must not keep the store from opening.
    db.execute(
        "UPDATE alerts SET story_id = json_extract(record, '$.story.story_id') "
        "WHERE story_id IS NULL AND CASE WHEN json_valid(record) "
        "THEN json_type(record, '$.story.story_id') = 'text' ELSE 0 END"
    )


MIGRATIONS = (
    Migration("alerts and reviews, offsets", _SCHEMA),
    Migration("alert records' zoneless times read as UTC", run=_zone_old_alerts),
    Migration("each alert's story id, by which the page groups copies", run=_keep_story_ids),
)
"""The schema of the file, in order (``monitor.storage``): append, never edit one released."""

POSTGRESQL_MIGRATIONS = (
    Migration(
        "alerts with their story id, reviews, offsets",
        postgresql_ddl(_SCHEMA, rowid=["reviews"], collate_c=["alerts.alerted_at", "reviews.at"])
        + "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS story_id TEXT;"
        "CREATE INDEX IF NOT EXISTS alerts_by_story ON alerts (story_id, alerted_at);",
    ),
)
"""The same store in PostgreSQL (``monitor.storage.translate``): append, never edit. Its
records are JSON text read with ``jsonb`` there, with SQLite's JSON functions here."""


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

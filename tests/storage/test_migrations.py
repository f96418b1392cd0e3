"""Schema versions of the SQLite stores: every file carries one (``PRAGMA user_version``), is
migrated forward on open in one transaction, and a file from a newer monitor is refused.
PostgreSQL's schemas keep theirs in a table: ``test_postgres.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from monitor.alerts import deliveries
from monitor.alerts.deliveries import DeliveryStore
from monitor.errors import MonitorError, StoreError, StoreVersionError
from monitor.pipeline import stories, worker_state
from monitor.pipeline.stories import StoryBook
from monitor.pipeline.worker_state import StateStore
from monitor.review import decisions
from monitor.review.decisions import ReviewStore
from monitor.sources import crawl_state
from monitor.sources.crawl_state import CrawlState
from monitor.storage import Connection, FeedOffsets, Migration, Store

NOTES = """
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notes_by_text ON notes (text);
"""


class Counted:
    """A migration's ``run`` that counts how often it ran."""

    def __init__(self, sql: str = "") -> None:
        self.sql = sql
        self.runs = 0

    def __call__(self, db: Connection) -> None:
        self.runs += 1
        if self.sql:
            db.execute(self.sql)


def _version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def _set_version(path: Path, version: int) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {version}")


def _columns(path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")]


def _notes(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [str(text) for (text,) in db.execute("SELECT text FROM notes ORDER BY id")]


def _first() -> Migration:
    return Migration("notes", NOTES)


def _add_column(runs: Counted) -> Migration:
    # ALTER TABLE fails when it runs twice: running once is checked by the file, not only
    # by the count.
    runs.sql = "ALTER TABLE notes ADD COLUMN author TEXT"
    return Migration("notes' authors", run=runs)


def _today(path: Path) -> None:
    """A file as the code before schema versions left it: the tables, ``user_version`` 0."""
    store = Store(path, [_first()])
    store.follow_broker("cluster-a")
    with store._tx() as db:
        db.execute("INSERT INTO notes (text) VALUES ('kept')")
    store.close()
    _set_version(path, 0)


def test_a_new_file_runs_every_migration_and_gets_the_newest_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "new.sqlite3"
    first, second = Counted(), Counted()
    store = Store(path, [Migration("notes", NOTES, run=first), _add_column(second)])
    assert (store.version, store.newest) == (2, 2)
    assert (first.runs, second.runs) == (1, 1)
    store.close()
    assert _version(path) == 2
    assert _columns(path, "notes") == ["id", "text", "author"]
    assert _columns(path, "broker") == ["only", "cluster_id"], "the base's table, with migration 1"


def test_a_file_from_before_versions_is_taken_as_version_1_and_migrated_forward(
    tmp_path: Path,
) -> None:
    path = tmp_path / "today.sqlite3"
    _today(path)
    first, second = Counted(), Counted()
    store = Store(path, [Migration("notes", NOTES, run=first), _add_column(second)])
    assert store.version == 2
    assert first.runs == 0, "its tables are there: migration 1 is not run again"
    assert second.runs == 1
    assert store.followed_broker() == "cluster-a"
    store.close()
    assert _version(path) == 2
    assert _notes(path) == ["kept"]
    assert _columns(path, "notes") == ["id", "text", "author"]


def test_a_file_from_before_versions_missing_a_table_is_completed_by_migration_1(
    tmp_path: Path,
) -> None:
    # Made before the base's broker table existed: opening creates it, as it always did.
    path = tmp_path / "older.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(NOTES)
        db.execute("INSERT INTO notes (text) VALUES ('kept')")
    first = Counted()
    store = Store(path, [Migration("notes", NOTES, run=first)])
    assert (store.version, first.runs) == (1, 1)
    assert store.followed_broker() is None
    store.close()
    assert _notes(path) == ["kept"]
    assert _version(path) == 1


def test_a_migration_added_later_runs_once_on_an_old_file_and_never_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    store = Store(path, [_first()])
    assert store.version == 1
    store.close()
    assert _version(path) == 1

    later = Counted()
    for _ in range(3):
        store = Store(path, [_first(), _add_column(later)])
        assert store.version == 2
        store.close()
    assert later.runs == 1
    assert _version(path) == 2
    assert _columns(path, "notes") == ["id", "text", "author"]


def test_a_failing_migration_leaves_the_file_at_its_version_with_nothing_half_done(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    Store(path, [_first()]).close()

    def fails(db: Connection) -> None:
        raise RuntimeError("half way")

    with pytest.raises(RuntimeError, match="half way"):
        Store(
            path,
            [_first(), Migration("tags", "CREATE TABLE tags (name TEXT)", run=fails)],
        )
    assert _version(path) == 1
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name='tags'").fetchone() is None


def test_a_file_from_a_newer_monitor_is_refused_by_name_and_left_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "newer.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:  # not in WAL mode: opening must not set it
        db.executescript(NOTES + "CREATE TABLE future (x INTEGER);")
        db.execute("PRAGMA user_version = 3")
    before = path.read_bytes()

    with pytest.raises(StoreVersionError) as refused:
        Store(path, [_first(), _add_column(Counted())])
    error = refused.value
    assert isinstance(error, StoreError) and isinstance(error, MonitorError)
    assert (error.path, error.version, error.newest) == (str(path), 3, 2)
    message = str(error)
    assert str(path) in message and "version 3" in message and "at most 2" in message
    assert "Upgrade the monitor" in message
    assert path.read_bytes() == before
    assert _version(path) == 3


Opener = Callable[[Path], Store]
STORES: list[tuple[Opener, tuple[Migration, ...]]] = [
    (StateStore, worker_state.MIGRATIONS),
    (CrawlState, crawl_state.MIGRATIONS),
    (DeliveryStore, deliveries.MIGRATIONS),
    (ReviewStore, decisions.MIGRATIONS),
    (lambda path: StoryBook(path, match_share=0.3, window_s=3600.0), stories.MIGRATIONS),
]
IDS = ["StateStore", "CrawlState", "DeliveryStore", "ReviewStore", "StoryBook"]


@pytest.mark.parametrize(("open_store", "migrations"), STORES, ids=IDS)
def test_each_store_reports_its_version_and_adopts_a_file_from_before_versions(
    tmp_path: Path, open_store: Opener, migrations: tuple[Migration, ...]
) -> None:
    path = tmp_path / "store.sqlite3"
    store = open_store(path)
    assert store.version == store.newest == len(migrations)
    store.follow_broker("cluster-a")
    if isinstance(store, FeedOffsets):
        store.remember_offset("alerts", 0, 7)
    store.close()
    assert _version(path) == len(migrations)

    _set_version(path, 0)  # as the code before schema versions left it
    store = open_store(path)
    assert store.version == len(migrations)
    assert store.followed_broker() == "cluster-a"
    if isinstance(store, FeedOffsets):
        assert store.read_offsets() == {("alerts", 0): 7}
    store.close()
    assert _version(path) == len(migrations)


@pytest.mark.parametrize(("open_store", "migrations"), STORES, ids=IDS)
def test_each_store_refuses_a_file_from_a_newer_monitor(
    tmp_path: Path, open_store: Opener, migrations: tuple[Migration, ...]
) -> None:
    path = tmp_path / "store.sqlite3"
    open_store(path).close()
    _set_version(path, len(migrations) + 1)
    before = path.read_bytes()
    with pytest.raises(StoreVersionError, match=f"version {len(migrations) + 1} is newer"):
        open_store(path)
    assert path.read_bytes() == before


def test_a_review_file_marked_by_the_old_zone_rewrite_is_version_1_and_opens(
    tmp_path: Path,
) -> None:
    # The rewrite once kept its own mark, user_version 1; that is schema version 1 now, and
    # migration 2 (the same rewrite) finds nothing left to rewrite, and the later ones run.
    path = tmp_path / "review.sqlite3"
    ReviewStore(path).close()
    _set_version(path, 1)
    store = ReviewStore(path)
    assert store.version == len(decisions.MIGRATIONS)
    assert store.alerts() == []
    store.close()

"""Stores in PostgreSQL: a schema per store, migrated once however many replicas open it at
the same time, refused when a newer monitor wrote it, and a server that cannot be reached is a
``ReadAgain`` (the record is read again later), never a crash or a dead letter."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from monitor.alerts.deliveries import DeliveryStore
from monitor.config import PipelineSettings
from monitor.errors import (
    ConfigError,
    MonitorError,
    ReadAgain,
    StoreError,
    StoreUnavailableError,
    StoreVersionError,
)
from monitor.pipeline.worker_state import StateStore
from monitor.storage import Connection, Migration, Store
from monitor.storage.postgres import PostgresDatabase, redact
from tests.conftest import in_ci
from tests.postgres import postgres_schemas, require_postgres

NOTES = "CREATE TABLE IF NOT EXISTS notes (id BIGINT GENERATED ALWAYS AS IDENTITY, text TEXT);"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def url() -> str:
    return require_postgres(in_ci())


@pytest.fixture
def schema(url: str) -> Iterator[Callable[[str], PostgresDatabase]]:
    with postgres_schemas(url) as make:
        yield make


class Counted:
    def __init__(self) -> None:
        self.runs = 0
        self.lock = threading.Lock()

    def __call__(self, db: Connection) -> None:
        with self.lock:
            self.runs += 1


def _notes(runs: Counted) -> list[Migration]:
    return [Migration("notes", NOTES), Migration("counted", run=runs)]


def test_a_new_schema_runs_every_migration_once_and_keeps_its_version(
    schema: Callable[[str], PostgresDatabase],
) -> None:
    runs = Counted()
    store = Store(schema("notes"), [], postgresql=_notes(runs))
    assert (store.version, store.newest, runs.runs) == (2, 2, 1)
    store.close()
    store = Store(schema("notes"), [], postgresql=_notes(runs))
    assert (store.version, runs.runs) == (2, 1), "opened again: nothing runs"
    store.close()


def test_replicas_opening_one_schema_at_once_migrate_it_once(
    schema: Callable[[str], PostgresDatabase],
) -> None:
    runs = Counted()
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(Store(schema("notes"), [], postgresql=_notes(runs)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert runs.runs == 1 and [s.version for s in stores] == [2] * 4
    for store in stores:
        store.close()


def test_a_schema_from_a_newer_monitor_is_refused_and_left_as_it_was(
    schema: Callable[[str], PostgresDatabase], url: str
) -> None:
    database = schema("notes")
    Store(database, [], postgresql=_notes(Counted())).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{database.schema}".store_version SET version = 5'.encode())
    with pytest.raises(StoreVersionError, match="version 5 is newer than this monitor knows"):
        Store(schema("notes"), [], postgresql=_notes(Counted()))
    with psycopg.connect(url) as conn:
        query = f'SELECT version FROM "{database.schema}".store_version'.encode()
        assert conn.execute(query).fetchone() == (5,)


def test_a_store_without_a_postgresql_schema_says_so(
    schema: Callable[[str], PostgresDatabase],
) -> None:
    with pytest.raises(StoreError, match="Store has no postgresql schema"):
        Store(schema("notes"), [Migration("notes", NOTES)])


def test_a_server_unreachable_at_start_is_a_store_error_that_never_shows_the_password() -> None:
    url = "postgresql://monitor:s3cret@127.0.0.1:9/state"  # the discard port: nothing listens
    with pytest.raises(StoreError, match=r"cannot be reached within 0\.5 s") as refused:
        PostgresDatabase(url, "state", connect_timeout_s=0.5)
    assert not isinstance(refused.value, ReadAgain), "the role does not start: it says why"
    assert "s3cret" not in str(refused.value) and "monitor:***@127.0.0.1:9" in str(refused.value)
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_connections_the_server_dropped_are_replaced_before_they_are_used(
    schema: Callable[[str], PostgresDatabase], url: str
) -> None:
    database = schema("state")
    state = StateStore(database)
    state.mark_alert("a", "alert-a", T0, b"{}")
    with psycopg.connect(url, autocommit=True) as conn:  # the server drops the pool's sessions
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (database.application_name,),
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    outcomes = [state.alert_sent("a") for _ in range(3)]
    assert outcomes == [True, True, True], "the pool replaced the dead connection before use"
    state.close()


def test_two_replicas_marking_the_same_alert_keep_one_row(
    schema: Callable[[str], PostgresDatabase],
) -> None:
    one, two = StateStore(schema("state")), StateStore(schema("state"))
    barrier = threading.Barrier(2)

    def mark(store: StateStore) -> None:
        barrier.wait()
        for number in range(50):
            store.mark_alert(f"alert-{number}", f"id-{number}", T0, b"{}")
            store.flag(f"clip-{number}", "gopher", "Go", "character")

    threads = [threading.Thread(target=mark, args=(store,)) for store in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(one.alert_sent(f"alert-{n}") for n in range(50))
    with one.database.reading() as db:
        assert db.execute("SELECT count(*) FROM alerts").fetchone() == (50,)
        assert db.execute("SELECT count(*) FROM flagged").fetchone() == (50,)
    one.close()
    two.close()


def test_state_url_puts_each_store_in_its_schema_and_without_it_in_state_dir(
    url: str, tmp_path: Path
) -> None:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    settings = PipelineSettings(
        state_dir=tmp_path, state_url=SecretStr(url), state_namespace=namespace
    )
    assert "postgres@" not in repr(settings), "the URL may carry a password: kept secret"
    where = settings.store("notify")
    try:
        assert isinstance(where, PostgresDatabase) and where.schema == f"{namespace}_notify"
        DeliveryStore(where).close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{namespace}_notify" CASCADE'.encode())
    assert PipelineSettings(state_dir=tmp_path).store("notify") == tmp_path / "notify.sqlite3"
    with pytest.raises(ConfigError, match="postgresql:// URL"):
        PipelineSettings(state_url=SecretStr("mysql://db/state")).store("notify")


def test_a_server_gone_after_the_start_is_read_again_not_a_crash_of_the_record(
    schema: Callable[[str], PostgresDatabase],
) -> None:
    database = schema("state")
    state = StateStore(database)
    database._pool.close()  # as if every connection were gone and none could be made
    with pytest.raises(StoreUnavailableError) as unavailable:
        state.alert_sent("a")
    assert isinstance(unavailable.value, ReadAgain) and not isinstance(
        unavailable.value, MonitorError
    ), "the record is read again, never dead-lettered"


async def test_calls_from_the_event_loop_wait_off_it_on_one_thread_of_the_stores(
    schema: Callable[[str], PostgresDatabase],
) -> None:
    state = StateStore(schema("state"))
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def mark(number: int) -> None:
        ran_on.append(threading.get_ident())
        state.mark_alert(f"a{number}", f"id{number}", T0, b"{}")

    ticks = 0

    async def ticking() -> None:  # the loop keeps running while the database answers
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(ticking())
    for number in range(20):
        await state.run(mark, number)
    ticker.cancel()
    assert loop_thread not in ran_on and len(set(ran_on)) == 1, "one thread of the store's"
    assert ticks > 20, "the loop ran other work meanwhile"
    sent = state.sent_since(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert len(sent) == 20 and all(
        await asyncio.gather(*(state.run(state.alert_sent, f"a{n}") for n in range(20)))
    )
    state.close()


async def test_a_sqlite_store_runs_its_calls_in_place(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.sqlite3")
    assert await state.run(threading.get_ident) == threading.get_ident()
    state.close()

"""What a store call costs on SQLite and on PostgreSQL, side by side in one run.

    python -m bench.state_stores [--calls N] [--url postgresql://...]

The stores are called from the roles' event loop, synchronously (issue 16: a PostgreSQL call
is a round trip on the pool's connection, where SQLite's is a local file write); this prints
what one call holds the loop for. For each database: decide's ``alert_sent`` (a read) and
``mark_alert`` (a write transaction of three statements), notify's ``settle`` and ``outcome``,
and ``mark_alert`` from two threads at once (two replicas writing the same store, taking turns
on its lock). Median and p99 in milliseconds, and calls a second. PostgreSQL is the machine's
(``LIKENESS_TEST_POSTGRES_URL`` or 127.0.0.1:5432/test), in a schema dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from monitor.alerts.deliveries import DeliveryStore
from monitor.pipeline.worker_state import StateStore
from monitor.storage import Database
from monitor.storage.postgres import PostgresDatabase

__all__ = ["main"]

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def _timed(call: Callable[[int], object], calls: int) -> list[float]:
    spent = []
    for number in range(calls):
        start = time.perf_counter()
        call(number)
        spent.append((time.perf_counter() - start) * 1000)
    return spent


def _row(name: str, spent: list[float], wall_s: float | None = None) -> str:
    ordered = sorted(spent)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    rate = len(spent) / (wall_s if wall_s is not None else sum(spent) / 1000)
    return (
        f"  {name:<28} median {statistics.median(spent):6.2f} ms  p99 {p99:6.2f} ms  {rate:8.0f}/s"
    )


def _measure(label: str, where: Callable[[str], Path | Database], calls: int) -> None:
    print(label)
    state = StateStore(where("state"))
    print(
        _row(
            "decide mark_alert (write)",
            _timed(lambda n: state.mark_alert(f"a{n}", f"id{n}", T0, b"{}"), calls),
        )
    )
    print(_row("decide alert_sent (read)", _timed(lambda n: state.alert_sent(f"a{n}"), calls)))
    deliveries = DeliveryStore(where("notify"))
    print(
        _row(
            "notify settle (write)",
            _timed(lambda n: deliveries.settle(f"a{n}", "slack", "sent", T0), calls),
        )
    )
    print(
        _row("notify outcome (read)", _timed(lambda n: deliveries.outcome(f"a{n}", "slack"), calls))
    )
    other = StateStore(where("state"))
    spent: list[list[float]] = [[], []]

    def replica(index: int, store: StateStore) -> None:
        spent[index] = _timed(
            lambda n: store.mark_alert(f"r{index}-{n}", "id", T0, b"{}"), calls // 2
        )

    threads = [threading.Thread(target=replica, args=(i, s)) for i, s in enumerate((state, other))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(_row("mark_alert, two writers", spent[0] + spent[1], time.perf_counter() - start))
    for store in (state, other, deliveries):
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    default = os.environ.get(
        "LIKENESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--url", default=default)
    args = parser.parse_args()
    print(
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; {args.calls} calls each"
    )
    with tempfile.TemporaryDirectory() as folder:
        _measure("SQLite (a file, WAL)", lambda name: Path(folder) / f"{name}.sqlite3", args.calls)
    prefix = f"bench{os.getpid()}"
    try:
        _measure(
            "PostgreSQL (pool, advisory lock per write)",
            lambda name: PostgresDatabase(args.url, f"{prefix}_{name}"),
            args.calls,
        )
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            for name in ("state", "notify"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}_{name}" CASCADE'.encode())


if __name__ == "__main__":
    main()

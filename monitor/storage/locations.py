"""Where a role's store lives, from its settings: a file in ``state_dir``, or, when
``state_url`` names a PostgreSQL server, a schema there that every replica shares."""

from __future__ import annotations

from pathlib import Path

from monitor.errors import ConfigError
from monitor.storage.database import Database

__all__ = ["state_location"]


def state_location(
    name: str, *, state_dir: Path, state_url: str | None, namespace: str
) -> Path | Database:
    """The store ``name`` (``state``, ``stories``, ``notify``, ``crawl``, ``review``):
    ``state_dir/<name>.sqlite3``, or the schema ``<namespace>_<name>`` at ``state_url``."""
    if not state_url:
        return state_dir / f"{name}.sqlite3"
    if not state_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"state_url must be a postgresql:// URL, not {state_url.split(':')[0]}")
    from monitor.storage.postgres import PostgresDatabase

    return PostgresDatabase(state_url, f"{namespace}_{name}")

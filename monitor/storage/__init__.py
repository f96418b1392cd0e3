"""Where the roles keep what must survive a restart, and what replicas on several hosts share.

On one host (``make run``, the embedded defaults) each store is a SQLite file on the role's
own disk; with ``pipeline.state_url`` set, each is a schema of one PostgreSQL database that
every replica of every role reaches, so a partition that moves between hosts finds what the
previous owner wrote. The stores' code is the same on both (``store.py``); ``database.py`` is
the seam, ``sqlite.py`` and ``postgres.py`` its two sides.
"""

from monitor.storage.database import Connection, Cursor, Database
from monitor.storage.locations import state_location
from monitor.storage.sqlite import SqliteDatabase
from monitor.storage.store import FeedOffsets, Migration, Store
from monitor.storage.translate import postgresql_ddl

__all__ = [
    "Connection",
    "Cursor",
    "Database",
    "FeedOffsets",
    "Migration",
    "SqliteDatabase",
    "Store",
    "postgresql_ddl",
    "state_location",
]

"""SQLAlchemy engines for the store URIs mltrail accepts, with the settings each database needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from mltrail.errors import InvalidInput

#: Seconds a SQLite connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_S = 60.0

#: Execution option that makes a SQLite transaction take the write lock at BEGIN.
WRITE = {"mltrail_write": True}

#: Bound parameters per IN (...) list: well under SQLite's limit (32766; 999 before 3.32).
IN_CHUNK = 900


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``, for IN (...) lists of bound parameters."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def normalize_uri(uri: str) -> str:
    """Map user-facing URIs onto SQLAlchemy driver URLs (``postgresql://`` → psycopg 3)."""
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if uri.startswith(("sqlite://", "postgresql+psycopg://")):
        return uri
    raise InvalidInput(
        f"unsupported store URI {uri!r}",
        hint="Use sqlite:///path/to/mltrail.db or postgresql://user@host/dbname.",
    )


def make_engine(uri: str) -> sa.Engine:
    """Create an engine for ``uri``; SQLite gets WAL, a busy timeout and explicit BEGINs."""
    url = normalize_uri(uri)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        # The planner over-estimates search queries and JIT-compiles them, which costs more
        # (100-200 ms) than the query itself.
        connect_args={"options": "-c jit=off"},
    )


def _sqlite_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's implicit transactions defer BEGIN and cannot take the write lock up front;
        # we issue BEGIN ourselves (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives any process crash; only an OS crash can drop the last commits.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # The filter language's LIKE is case-sensitive, as in PostgreSQL; ILIKE is not.
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A write transaction that starts deferred and upgrades later can fail with "database is
        # locked" without waiting; BEGIN IMMEDIATE waits for the lock under the busy timeout.
        if conn.get_execution_options().get("mltrail_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def is_sqlite(engine: sa.Engine) -> bool:
    """True when ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"

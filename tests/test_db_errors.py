"""Database failures, as real SQLite raises them, become waits or clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from mltrail.errors import StoreError
from mltrail.store.db_errors import is_database_error, is_transient, store_error


def _full_db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "full.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.commit()
    # SQLite's own page cap raises the very error a full disk does.
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    return conn


def test_a_full_database_is_reported_at_once_in_words(tmp_path: Path):
    conn = _full_db(tmp_path)
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    exc = raised.value
    assert is_database_error(exc) and not is_transient(exc)
    error = store_error(exc)
    assert "is full" in error.message and "Free space" in (error.hint or "")


def test_a_locked_database_is_waited_for(tmp_path: Path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as raised:
        other.execute("INSERT INTO t VALUES (1)")
    assert is_transient(raised.value)
    holder.execute("ROLLBACK")


def test_logging_into_a_full_store_fails_the_run_with_a_clear_error(tmp_path: Path):
    from mltrail import MltrailClient

    client = MltrailClient(str(tmp_path / "proj"))
    run = client.create_run()
    engine = client.store.engine  # type: ignore[attr-defined]
    engine.dispose()

    @sa.event.listens_for(engine, "connect")
    def cap(dbapi_conn, _record):
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    for i in range(50_000):
        client.log_metric(run.run_id, "loss", float(i), step=i)
    with pytest.raises(StoreError) as raised:
        client.flush()
    text = f"{raised.value.message} {raised.value.hint}"
    assert "is full" in text
    assert "sqlalche" not in text and "OperationalError" not in text
    client.close()

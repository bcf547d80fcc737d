"""Schema creation, migrations matching the table definitions, and stores mltrail must refuse."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from mltrail.errors import CorruptStore, SchemaTooNew, StoreError
from mltrail.store import migrate, open_store
from mltrail.store.engine import make_engine
from mltrail.store.schema import metadata
from mltrail.store.sql import SqlStore

# The SQL schema and migrations themselves: not run against the HTTP store.
pytestmark = pytest.mark.sql_only


def test_migrations_match_schema(store_uri):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    SqlStore(store_uri).close()
    engine = make_engine(store_uri)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_opening_twice_is_idempotent(store_uri):
    SqlStore(store_uri).close()
    store = SqlStore(store_uri)
    assert len(store.list_experiments()) == 1
    with store.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.HEAD


def test_sqlite_uses_wal(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_newer_schema_is_refused(store_uri):
    SqlStore(store_uri).close()
    engine = make_engine(store_uri)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaTooNew, match="'9999'") as err:
        SqlStore(store_uri)
    assert "Upgrade mltrail" in str(err.value)


def test_foreign_database_is_refused(store_uri):
    engine = make_engine(store_uri)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(CorruptStore, match="customers"):
        SqlStore(store_uri)
    # The foreign table is untouched and nothing of ours was added.
    assert sa.inspect(make_engine(store_uri)).get_table_names() == ["customers"]


def test_garbage_file_is_refused_and_left_alone(tmp_path: Path):
    db = tmp_path / "mltrail.db"
    junk = b"this is not a database" * 100
    db.write_bytes(junk)
    with pytest.raises(CorruptStore, match="not a usable mltrail store"):
        open_store(f"sqlite:///{db}")
    assert db.read_bytes() == junk


def test_revisions_match_alembic_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate._MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == migrate.HEAD
    ordered = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert tuple(ordered) == migrate.REVISIONS


def test_integrity_check_after_writes(tmp_path: Path):
    store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.create_experiment("x")
    store.close()
    con = sqlite3.connect(tmp_path / "m.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_unreachable_postgresql_server_gets_a_server_hint():
    import socket

    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port that was just free: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match="cannot connect to the store at postgresql://") as err:
        open_store(f"postgresql://bob:s3cret@127.0.0.1:{port}/mltrail")
    assert not isinstance(err.value, CorruptStore)
    assert "s3cret" not in str(err.value)  # the password is never echoed
    hint = err.value.hint or ""
    assert "PostgreSQL server is running" in hint and "move the file" not in hint

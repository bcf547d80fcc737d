"""Schema versions: create a new store, upgrade an old one, refuse a newer or foreign one.

Alembic (slow to import) is only loaded when a migration actually has to run; checking an
up-to-date store is one SELECT.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mltrail.errors import CorruptStore, SchemaTooNew, StoreError
from mltrail.store.engine import WRITE, is_sqlite

#: Every revision this version of mltrail knows, oldest first. Add new ones at the end.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005")
HEAD = REVISIONS[-1]

_MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any 64-bit number, the same in every process: serializes schema creation on PostgreSQL.
_PG_LOCK_ID = 0x6D6C747261696C


def current_revision(conn: sa.Connection) -> str | None:
    """Return the store's schema revision, or None for a database without mltrail's tables."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else None


def check_revision(revision: str | None, where: str) -> None:
    """Raise if ``revision`` was written by a newer mltrail."""
    if revision is not None and revision not in REVISIONS:
        raise SchemaTooNew(
            f"the store at {where} has schema revision {revision!r}, newer than this mltrail "
            f"knows (latest {HEAD!r})",
            hint="Upgrade mltrail (pip install -U mltrail) to open it.",
        )


def ensure_schema(engine: sa.Engine, where: str, *, upgrade: bool = True) -> None:
    """Bring the store's schema to HEAD, creating it in an empty database.

    With ``upgrade=False`` (the server) a store that is not at HEAD is refused instead, naming
    the command that migrates it: a team's database changes only when someone says so.
    """
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
            conn.rollback()
    except sa.exc.DatabaseError as exc:
        if not is_sqlite(engine):
            _server_error(engine, exc)
        raise CorruptStore(
            f"{where} is not a usable mltrail store: {_first_line(exc)}",
            hint="Point MLTRAIL_TRACKING_URI elsewhere, or move the file away and run "
            "`mltrail init` to start a new store.",
        ) from None
    check_revision(revision, where)
    if revision == HEAD:
        return
    if not upgrade:
        state = "is empty" if revision is None else f"has schema revision {revision}"
        raise StoreError(
            f"the store at {where} {state}; this mltrail needs revision {HEAD}",
            hint=f"Apply the migrations first: mltrail server migrate --store {where}",
        )
    # Several processes may open a new store at once: take the write lock, then look again.
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        if not is_sqlite(engine):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
        revision = current_revision(conn)
        check_revision(revision, where)
        if revision is None:
            foreign = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
            if foreign:
                raise CorruptStore(
                    f"{where} holds tables that are not mltrail's ({', '.join(foreign[:5])})",
                    hint="Use an empty database for mltrail, or another path.",
                )
        if revision != HEAD:
            _upgrade(conn)


def _upgrade(conn: sa.Connection, target: str = "head") -> None:
    # ``target`` other than head only serves tests that build an old store to upgrade.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, target)


def _server_error(engine: sa.Engine, exc: sa.exc.DatabaseError) -> None:
    """Raise the error for a database server (PostgreSQL) that could not be opened."""
    # The URI as given may hold a password: name the server without it.
    url = engine.url.set(drivername=engine.url.get_backend_name())
    where = url.render_as_string(hide_password=True)
    if isinstance(exc, sa.exc.OperationalError):
        raise StoreError(
            f"cannot connect to the store at {where}: {_first_line(exc)}",
            hint="Check that the PostgreSQL server is running and reachable, and that the host, "
            "port, database name, user and password in the URI are right.",
        ) from None
    raise CorruptStore(
        f"{where} is not a usable mltrail store: {_first_line(exc)}",
        hint="Point the URI at a database mltrail created, or at an empty one.",
    ) from None


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0] if str(orig) else type(orig).__name__

"""What a database driver's error means for the user: wait and retry, or stop and say why.

SQLite and PostgreSQL report "locked", "restarting" and "disk full" through the same exception
classes; only the message or SQLSTATE tells them apart. Waiting helps the first two; for a full
disk it only hides the problem for minutes, so that one is reported at once, in words.
"""

from __future__ import annotations

from mltrail.errors import StoreError

# SQLite: the message is the only signal (sqlite3 has no error codes before Python 3.11's
# sqlite_errorcode, and the wording is stable across versions).
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")
_SQLITE_FULL = ("database or disk is full", "disk is full")
_SQLITE_READONLY = ("attempt to write a readonly database", "readonly database")
_SQLITE_IO = ("disk i/o error",)

# PostgreSQL SQLSTATE classes and codes that pass with time.
_PG_TRANSIENT_CLASSES = ("08", "57", "40")  # connection, operator intervention, rollback
_PG_TRANSIENT_CODES = ("53300",)  # too many connections
_PG_FULL = "53100"


def is_database_error(exc: BaseException) -> bool:
    """True for an error raised by SQLAlchemy or a database driver."""
    return type(exc).__module__.split(".")[0] in ("sqlalchemy", "sqlite3", "psycopg")


def _orig(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or exc


def _first_line(exc: BaseException) -> str:
    text = str(_orig(exc)).strip()
    return text.splitlines()[0] if text else type(_orig(exc)).__name__


def is_transient(exc: BaseException) -> bool:
    """True when waiting can help: a lock, a restarting or unreachable server."""
    orig = _orig(exc)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code:
        return code[:2] in _PG_TRANSIENT_CLASSES or code in _PG_TRANSIENT_CODES
    text = str(orig).lower()
    if any(s in text for s in _SQLITE_TRANSIENT):
        return True
    if any(s in text for s in _SQLITE_FULL + _SQLITE_READONLY + _SQLITE_IO):
        return False
    # A driver error without a code is a broken or refused connection (PostgreSQL down).
    name = type(exc).__name__
    return name in ("OperationalError", "InterfaceError") and "sqlite" not in type(orig).__module__


def store_error(exc: BaseException, where: str = "the metadata database") -> StoreError:
    """The error a user sees for a database failure: what happened and what to do, no driver
    text beyond its first line."""
    orig = _orig(exc)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    text = str(orig).lower()
    if code == _PG_FULL or any(s in text for s in _SQLITE_FULL):
        return StoreError(
            f"the disk holding {where} is full; the write was not stored",
            hint="Free space on that disk (or move the store to a larger one), then log again. "
            "What was stored before is intact.",
        )
    if any(s in text for s in _SQLITE_READONLY):
        return StoreError(
            f"{where} is read-only for this process: {_first_line(exc)}",
            hint="Check the permissions of the database file and its folder, and that the disk "
            "is not mounted read-only.",
        )
    if any(s in text for s in _SQLITE_IO):
        return StoreError(
            f"the disk holding {where} failed a read or write: {_first_line(exc)}",
            hint="Check the disk (dmesg, free space); then run `mltrail doctor`.",
        )
    if is_transient(exc):
        return StoreError(
            f"{where} is unavailable: {_first_line(exc)}",
            hint="It may be locked by another process or restarting; try again shortly.",
        )
    return StoreError(
        f"{where} failed the request: {_first_line(exc)}",
        hint="Run `mltrail doctor` to check the store.",
    )

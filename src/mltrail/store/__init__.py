"""Metadata stores: one interface (:class:`TrackingStore`), one implementation per backend."""

from __future__ import annotations

from mltrail.store.base import TrackingStore

__all__ = ["TrackingStore", "open_store"]


def open_store(uri: str, where: str | None = None, *, migrate: bool = True) -> TrackingStore:
    """Open the metadata store at ``uri`` (``sqlite:///…``, ``postgresql://…``, ``http(s)://…``)."""
    from mltrail.errors import InvalidInput

    if uri.startswith(("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")):
        if uri.startswith("postgres"):
            _require_psycopg()
        from mltrail.store.sql import SqlStore

        return SqlStore(uri, where, migrate=migrate)
    if uri.startswith(("http://", "https://")):
        # Writes to a server go through the local spool first, so an outage loses nothing.
        from mltrail.store.spool import SpooledStore, offline_mode

        return SpooledStore(uri, offline=offline_mode())
    raise InvalidInput(
        f"unsupported tracking URI {uri!r}",
        hint="Use sqlite:///path/to/mltrail.db, postgresql://user@host/db, http://server:5000 "
        "or a project folder.",
    )


def _require_psycopg() -> None:
    from mltrail.errors import StoreError

    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(
            "PostgreSQL stores need the psycopg driver, which is not installed",
            hint="pip install 'mltrail[postgres]'",
        ) from None

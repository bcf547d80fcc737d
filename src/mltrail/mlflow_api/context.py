"""What an MLflow API handler works with: the store, the object store, the caller's access."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mltrail.errors import StoreError
from mltrail.mlflow_api.uris import ArtifactUris

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectStore
    from mltrail.store.sql import SqlStore


class Access(Protocol):
    """What the caller may do, and the name their changes are recorded under."""

    def allow(
        self, level: str, *, experiment_id: str | None = None, model: str | None = None
    ) -> None:
        """Raise PermissionDenied unless the caller holds ``level`` (read, write, admin)."""

    def allow_run(self, run_id: str, level: str) -> None:
        """:meth:`allow` on the experiment of a run."""

    def allow_objects(self, hashes: Iterable[str]) -> None:
        """Raise PermissionDenied unless the caller may read every object (see mltrail.access)."""

    def visible_experiment(self, experiment_id: str) -> bool:
        """Whether listings show the experiment to the caller."""

    def visible_model(self, name: str) -> bool:
        """Whether listings show the registered model to the caller."""

    def actor(self, claimed: str | None) -> str:
        """The user a change is recorded under (``claimed`` is what the request says)."""


class OpenAccess:
    """The embedded store's access: its user may do everything, as with mltrail's own API."""

    def allow(
        self, level: str, *, experiment_id: str | None = None, model: str | None = None
    ) -> None:
        """Allow everything."""

    def allow_run(self, run_id: str, level: str) -> None:
        """Allow everything."""

    def allow_objects(self, hashes: Iterable[str]) -> None:
        """Allow everything."""

    def visible_experiment(self, experiment_id: str) -> bool:
        """Show everything."""
        return True

    def visible_model(self, name: str) -> bool:
        """Show everything."""
        return True

    def actor(self, claimed: str | None) -> str:
        """The user the request names, else the OS user."""
        from mltrail.tracking.capture import current_user

        return claimed or current_user()


def mlflow_store(store: object) -> SqlStore:
    """The view of a SQL store the MLflow API writes through (ended runs take data, as in MLflow).

    Logged models live in SQL stores only: a client of another server is sent to that server.
    """
    from mltrail.store.sql import SqlStore

    if not isinstance(store, SqlStore):
        raise StoreError(
            f"MLflow's API needs an SQLite or PostgreSQL store, not {store!r}",
            hint="Point the mlflow client at the mltrail server itself (MLFLOW_TRACKING_URI="
            "http://server:5000) rather than through another store.",
        )
    return store.finished_runs_writable()


@dataclass
class Context:
    """One request's store, object store (opened on first use), access and artifact URIs."""

    store: SqlStore
    access: Access
    uris: ArtifactUris
    open_objects: Callable[[], ObjectStore] | None = None
    _objects: ObjectStore | None = field(default=None, repr=False)

    @property
    def objects(self) -> ObjectStore:
        """The object store artifacts go to."""
        if self._objects is None:
            if self.open_objects is None:
                raise StoreError(
                    "this store has no object store for artifacts",
                    hint="Start the server with --objects s3://bucket/prefix or a folder.",
                )
            self._objects = self.open_objects()
        return self._objects

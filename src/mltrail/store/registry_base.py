"""The model registry part of the metadata store interface.

:class:`~mltrail.store.base.TrackingStore` inherits this, so every store (SQL now, HTTP later)
holds both runs and registered models. Names, aliases, stages and hashes are checked here too, not
only in the Python API, so the rules hold whatever calls the store.

Every method that changes something takes the ``actor`` (who did it) and an optional ``comment``,
and writes its audit event(s) in the same transaction as the change: there is no change without
its event, and no event without its change. Events are filed under the model's name at the time;
they have no foreign key and outlive a deleted model. A rename is filed under both names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from mltrail.entities import ModelVersion, PagedList, RegisteredModel, RegistryEvent


class RegistryAction:
    """The ``action`` strings of registry events."""

    CREATE_MODEL = "create_model"
    UPDATE_MODEL = "update_model"
    RENAME_MODEL = "rename_model"
    DELETE_MODEL = "delete_model"
    SET_MODEL_TAG = "set_model_tag"
    DELETE_MODEL_TAG = "delete_model_tag"
    CREATE_VERSION = "create_version"
    UPDATE_VERSION = "update_version"
    SET_VERSION_TAG = "set_version_tag"
    DELETE_VERSION_TAG = "delete_version_tag"
    DELETE_VERSION = "delete_version"
    SET_ALIAS = "set_alias"
    DELETE_ALIAS = "delete_alias"
    TRANSITION_STAGE = "transition_stage"


class RegistryStore(ABC):
    """Registered models, their versions, tags, aliases, stages and audit trail."""

    # -- registered models -------------------------------------------------------------------
    @abstractmethod
    def create_registered_model(
        self,
        name: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
        comment: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model with no versions; the name must be unused."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags, aliases and latest active version."""

    @abstractmethod
    def list_registered_models(
        self, name_like: str | None = None, max_results: int = 100, page_token: str | None = None
    ) -> PagedList:
        """Return a page of registered models ordered by name.

        ``name_like`` is a case-sensitive SQL LIKE pattern (``%`` any text, ``_`` one character).
        """

    @abstractmethod
    def update_registered_model(
        self, name: str, description: str | None, actor: str, comment: str | None = None
    ) -> RegisteredModel:
        """Replace a registered model's description."""

    @abstractmethod
    def rename_registered_model(
        self, name: str, new_name: str, actor: str, comment: str | None = None
    ) -> RegisteredModel:
        """Give a registered model a new, unused name; its versions, tags and aliases follow."""

    @abstractmethod
    def delete_registered_model(
        self, name: str, actor: str, force: bool = False, comment: str | None = None
    ) -> None:
        """Delete a registered model and everything under it; its events remain.

        Refused while an active version holds an alias or is in Staging or Production, unless
        ``force``.
        """

    @abstractmethod
    def set_registered_model_tag(
        self, name: str, key: str, value: str, actor: str, comment: str | None = None
    ) -> None:
        """Set one tag of a registered model."""

    @abstractmethod
    def delete_registered_model_tag(
        self, name: str, key: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove one tag of a registered model (NotFound if it has no such tag)."""

    # -- versions ----------------------------------------------------------------------------
    @abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        artifact_path: str | None,
        tree_hash: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
        comment: str | None = None,
        *,
        version: int | None = None,
    ) -> ModelVersion:
        """Add the next version to a model, creating the registered model if it is missing.

        The number is one more than the highest ever given (deleted versions included), and is
        allocated safely when several writers add versions at once. ``version`` asks for a
        number above that one instead (an import keeping the source's numbers, gaps included).
        """

    @abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Return one version, a deleted one included (its ``lifecycle_stage`` says so)."""

    @abstractmethod
    def list_model_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """Return a model's versions, newest first; deleted ones only if asked for."""

    @abstractmethod
    def find_model_versions(
        self,
        run_id: str | None = None,
        tree_hash: str | None = None,
        include_deleted: bool = False,
    ) -> list[ModelVersion]:
        """Return the versions (of any model) made from a run and/or naming a tree, for lineage.

        At least one of ``run_id`` and ``tree_hash`` is required. Ordered by name, newest first.
        """

    @abstractmethod
    def update_model_version(
        self,
        name: str,
        version: int,
        description: str | None,
        actor: str,
        comment: str | None = None,
    ) -> ModelVersion:
        """Replace a version's description."""

    @abstractmethod
    def set_model_version_tag(
        self,
        name: str,
        version: int,
        key: str,
        value: str,
        actor: str,
        comment: str | None = None,
    ) -> None:
        """Set one tag of a version."""

    @abstractmethod
    def delete_model_version_tag(
        self, name: str, version: int, key: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove one tag of a version (NotFound if it has no such tag)."""

    @abstractmethod
    def delete_model_version(
        self,
        name: str,
        version: int,
        actor: str,
        force: bool = False,
        comment: str | None = None,
    ) -> None:
        """Mark a version deleted; its number is never given again.

        Refused while it holds aliases or is in Staging or Production, unless ``force``, which
        first removes its aliases and archives it (each recorded as its own event).
        """

    # -- aliases and stages ------------------------------------------------------------------
    @abstractmethod
    def set_model_alias(
        self, name: str, alias: str, version: int, actor: str, comment: str | None = None
    ) -> None:
        """Point an alias at an active version; an alias that exists moves."""

    @abstractmethod
    def delete_model_alias(
        self, name: str, alias: str, actor: str, comment: str | None = None
    ) -> None:
        """Remove an alias (NotFound if the model has no such alias)."""

    @abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at."""

    @abstractmethod
    def transition_model_version_stage(
        self,
        name: str,
        version: int,
        stage: str,
        archive_existing: bool,
        actor: str,
        comment: str | None = None,
    ) -> ModelVersion:
        """Move an active version to a stage (any case); optionally archive the others there."""

    @abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Return the newest active version in each stage (every stage when ``stages`` is None)."""

    # -- audit and gc ------------------------------------------------------------------------
    @abstractmethod
    def get_registry_events(
        self, name: str, version: int | None = None, limit: int | None = None
    ) -> list[RegistryEvent]:
        """Return the events filed under a model name (deleted models too), newest first."""

    @abstractmethod
    def registry_tree_hashes(self) -> set[str]:
        """Return the tree hash of every model version, deleted ones included."""

"""The part of the metadata store that holds what the real mlflow client logs beyond runs.

MLflow 3 logs models as objects of their own (``m-<hex>`` ids, a status, params and tags) and
records which models a run used or produced; ``log_input`` names datasets by name and digest.
The SQL stores keep these in the same database as everything else (migration 0005), so the
MLflow REST API of ``mltrail server`` and the ``mltrail:`` plugin for the mlflow client read and
write one set of data with mltrail's own API.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from mltrail.entities import FileInfo, LoggedModel, NamedDataset, RunModel, ViewType


class LoggedModelStore(ABC):
    """Logged models, their files, the models a run used or produced, and named datasets."""

    @abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        run_id: str | None = None,
        model_type: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        model_id: str | None = None,
    ) -> LoggedModel:
        """Create a PENDING logged model with a new ``m-<32 hex>`` id (or ``model_id``, an
        import keeping its source's; a taken one is AlreadyExists).

        With a run, its files go among the run's artifacts under ``name`` (or, when the run
        already has files there, under ``name-<id prefix>``), recorded as ``artifact_path``.
        """

    @abstractmethod
    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Return a logged model, a deleted one included."""

    @abstractmethod
    def list_logged_models(
        self,
        experiment_ids: Sequence[str],
        *,
        name: str | None = None,
        run_id: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[LoggedModel]:
        """Return the logged models of the experiments (of one name, of one run), newest first."""

    @abstractmethod
    def set_logged_model_status(self, model_id: str, status: str) -> LoggedModel:
        """Mark a logged model READY (its files are complete) or FAILED."""

    @abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        """Set tags of a logged model."""

    @abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag of a logged model (NotFound if it has none by that key)."""

    @abstractmethod
    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        """Add params to a logged model; a param cannot change value."""

    @abstractmethod
    def delete_logged_model(self, model_id: str) -> None:
        """Move a logged model to the bin; its files and registered versions stay."""

    @abstractmethod
    def add_logged_model_files(self, model_id: str, files: Sequence[FileInfo]) -> None:
        """Record stored files (paths relative to the model folder) as a logged model's files."""

    @abstractmethod
    def list_logged_model_files(self, model_id: str, prefix: str | None = None) -> list[FileInfo]:
        """Return a logged model's files (paths relative to its folder), optionally under a path."""

    @abstractmethod
    def log_run_models(
        self, run_id: str, direction: str, models: Sequence[tuple[str, int]]
    ) -> None:
        """Record ``(model_id, step)`` pairs a run used (``input``) or produced (``output``)."""

    @abstractmethod
    def log_named_datasets(self, run_id: str, datasets: Sequence[NamedDataset]) -> None:
        """Record datasets a run read, by name and digest; the same one again updates its tags."""

    @abstractmethod
    def get_run_links(self, run_id: str) -> tuple[list[NamedDataset], list[RunModel]]:
        """Return a run's named datasets (in the order first logged) and the logged models it
        used or produced (inputs, then outputs)."""

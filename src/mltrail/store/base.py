"""The metadata store interface.

One interface, several implementations: SQL (SQLite embedded, PostgreSQL for teams) now, an HTTP
client talking to ``mltrail server`` later. The API layer only ever sees this class.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

from mltrail.entities import (
    DatasetRef,
    DatasetSummary,
    DatasetUse,
    Experiment,
    FileInfo,
    Metric,
    PagedList,
    Run,
    RunBatch,
    RunDataset,
    RunInfo,
    ViewType,
)
from mltrail.store.auth_base import AuthStore
from mltrail.store.registry_base import RegistryStore

#: The experiment every store has from the start, as in MLflow.
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

#: Upper bound of one search page.
MAX_RESULTS_LIMIT = 50_000


class MetricArrays(NamedTuple):
    """A metric series as columns (see :meth:`TrackingStore.metric_arrays`)."""

    steps: list[int]
    timestamps: list[int]
    values: list[float]
    total: int


class TrackingStore(AuthStore, RegistryStore):
    """Experiments, runs, params, metrics, tags, artifact listings and the model registry."""

    uri: str

    # -- experiments -------------------------------------------------------------------------
    @abstractmethod
    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> str:
        """Create an experiment and return its id; the name must be unused."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id, deleted ones included."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name, or None."""

    @abstractmethod
    def list_experiments(self, view: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """Return experiments in the view, ordered by id."""

    @abstractmethod
    def experiment_summaries(self, experiment_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return, per experiment id, (active run count, latest run start time or 0)."""

    @abstractmethod
    def set_experiment_lifecycle(self, experiment_id: str, stage: str) -> None:
        """Move an experiment (and, on delete, its runs) to ``active`` or ``deleted``."""

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new, unused name."""

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set one experiment tag."""

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one experiment tag (NotFound if the experiment has no such tag)."""

    # -- runs --------------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        run_name: str,
        user_id: str,
        start_time: int,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run in an active experiment.

        ``run_id`` lets a remote client choose the id, so that sending the same create twice
        (a retry after a lost reply) returns the run made the first time.
        """

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, latest metrics and tags."""

    @abstractmethod
    def match_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Return up to ``limit`` run ids starting with ``prefix`` (any experiment or stage)."""

    @abstractmethod
    def get_run_info(self, run_id: str) -> RunInfo:
        """Return a run's info only (cheap)."""

    @abstractmethod
    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name."""

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, stage: str) -> None:
        """Move a run to ``active`` or ``deleted``."""

    @abstractmethod
    def write_batches(
        self, batches: Sequence[RunBatch], batch_id: str | None = None
    ) -> dict[str, Exception]:
        """Write metrics, params and tags of several runs in one transaction.

        With a ``batch_id``, a batch whose id was already applied is not applied again (a
        remote client's retry after a lost reply); the reply is then an empty mapping.

        A run that cannot take its batch (unknown, deleted, finished, a changed param) is skipped
        and reported in the returned mapping run_id → error; the other runs' writes commit.
        """

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of one metric, ordered by step then timestamp."""

    def metric_history_page(
        self, run_id: str, key: str, offset: int, limit: int | None
    ) -> list[Metric]:
        """Return ``limit`` points of one metric (all with None) from position ``offset``.

        Stores that can read a slice of the series override this; the default reads it whole.
        """
        points = self.get_metric_history(run_id, key)
        return points[offset:] if limit is None else points[offset : offset + limit]

    def metric_arrays(self, run_id: str, key: str, buckets: int | None = None) -> MetricArrays:
        """Return one metric's steps, timestamps and values, ordered by step then timestamp.

        With ``buckets``, a store may answer a long series with fewer points: for each of up to
        ``buckets`` equal step ranges its lowest and highest point, plus the first and last
        points (so extremes and shape survive; NaN points may be left out); ``total`` is then
        the length of the whole series. Charts use this; the default returns every point.
        """
        points = self.get_metric_history(run_id, key)
        return MetricArrays(
            [p.step for p in points],
            [p.timestamp for p in points],
            [p.value for p in points],
            len(points),
        )

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> PagedList:
        """Return a page of runs matching the filter, in order, with the next page token."""

    # -- artifacts ---------------------------------------------------------------------------
    @abstractmethod
    def add_artifacts(self, run_id: str, files: Sequence[FileInfo]) -> None:
        """Record files (already in the object store) as artifacts of a run; replaces same paths."""

    @abstractmethod
    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[FileInfo]:
        """Return a run's artifact files, optionally those under a path prefix."""

    @abstractmethod
    def delete_artifacts(self, run_id: str, path: str) -> int:
        """Forget a run's artifact file, or every file under a folder; return how many.

        The objects stay in the object store (another run, model or dataset may hold the same
        bytes) until garbage collection finds nothing referring to them.
        """

    # -- datasets ----------------------------------------------------------------------------
    @abstractmethod
    def log_run_datasets(self, run_id: str, direction: str, refs: Sequence[DatasetRef]) -> None:
        """Record dataset versions a RUNNING run read (``input``) or wrote (``output``).

        A version already recorded for the run in that direction (same path and hash) stays as it
        is, except that a new non-empty ``context`` replaces the old one.
        """

    @abstractmethod
    def get_run_datasets(self, run_id: str) -> list[RunDataset]:
        """Return a run's dataset versions: inputs, then outputs, each by path and log time."""

    @abstractmethod
    def find_dataset_uses(
        self,
        path: str | None = None,
        hash: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetUse]:
        """Return the runs that read or wrote a dataset path and/or version, newest run first.

        At least one of ``path`` and ``hash`` is required. Deleted runs are left out unless
        ``view`` asks for them.
        """

    @abstractmethod
    def list_datasets(
        self,
        experiment_ids: Sequence[str] | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetSummary]:
        """Return every dataset path runs read or wrote, summarised, ordered by path.

        Only runs in ``view`` count, and only those in ``experiment_ids`` when it is given (so a
        server can leave out experiments the caller may not see).
        """

    @abstractmethod
    def referenced_objects(self) -> tuple[set[str], set[str], set[str]]:
        """Return the object hashes runs refer to: artifact files, file datasets, folder trees.

        Every run counts, deleted ones included (they can be restored). A folder dataset is
        its tree object's hash; the files it lists are not included.
        """

    def close(self) -> None:
        """Release connections."""

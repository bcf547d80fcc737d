"""The objects the tracking API hands to users: experiments, runs, metrics, artifacts, datasets."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage(enum.StrEnum):
    """Whether an experiment or run is in use or in the bin (restorable)."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(enum.StrEnum):
    """Which lifecycle stages a listing shows."""

    ACTIVE_ONLY = "active_only"
    DELETED_ONLY = "deleted_only"
    ALL = "all"

    @property
    def stages(self) -> tuple[str, ...]:
        """The lifecycle stages this view includes."""
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE.value,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED.value,)
        return (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value)


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)


class Metric(NamedTuple):
    """One point of a metric series (a tuple: a 1M-point history builds a million of them)."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A run artifact: a file stored as one object in the object store."""

    path: str
    hash: str
    size: int
    mode: int = 0o644


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Identity, status and timing of a run."""

    run_id: str
    experiment_id: str
    run_name: str
    status: str
    user_id: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    parent_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunData:
    """What a run logged: params, the latest value of each metric, tags."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: Metric key → (step, timestamp) of its latest value, where the store reports them (SQL).
    metric_steps: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    """A run with its info and data."""

    info: RunInfo
    data: RunData

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.info.run_id

    def to_row(self) -> dict[str, Any]:
        """Flatten into one dict, with ``metrics.``/``params.``/``tags.`` prefixed columns."""
        info = self.info
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "status": info.status,
            "user_id": info.user_id,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "lifecycle_stage": info.lifecycle_stage,
            "parent_run_id": info.parent_run_id,
        }
        row.update({f"metrics.{k}": v for k, v in self.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in self.data.params.items()})
        row.update({f"tags.{k}": v for k, v in self.data.tags.items()})
        return row


@dataclass(frozen=True, slots=True)
class RunBatch:
    """Everything to write for one run in one store transaction."""

    run_id: str
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


class DatasetDirection(enum.StrEnum):
    """Whether a run read a dataset version or wrote it."""

    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """One version of a tracked dataset, as a run recorded it.

    ``path`` is relative to the project root (POSIX); ``hash`` names the file, or the folder's tree
    object, in the object store; ``nfiles`` is None for a file.
    """

    path: str
    hash: str
    kind: str
    size: int
    nfiles: int | None = None
    context: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "path": self.path,
            "hash": self.hash,
            "kind": self.kind,
            "size": self.size,
            "nfiles": self.nfiles,
            "context": self.context,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetRef:
        """Inverse of :meth:`to_dict`."""
        return cls(d["path"], d["hash"], d["kind"], d["size"], d.get("nfiles"), d.get("context"))


@dataclass(frozen=True, slots=True)
class RunDataset:
    """A dataset version recorded on a run as an input or an output, and when it was logged."""

    direction: str
    dataset: DatasetRef
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the dataset's keys plus direction and timestamp."""
        return {"direction": self.direction, **self.dataset.to_dict(), "timestamp": self.timestamp}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunDataset:
        """Inverse of :meth:`to_dict`."""
        return cls(d["direction"], DatasetRef.from_dict(d), d["timestamp"])


@dataclass(frozen=True, slots=True)
class DatasetUse:
    """A run that read (input) or wrote (output) a dataset version, for lineage queries."""

    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int
    lifecycle_stage: str
    direction: str
    dataset: DatasetRef
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "experiment_id": self.experiment_id,
            "status": self.status,
            "start_time": self.start_time,
            "lifecycle_stage": self.lifecycle_stage,
            "direction": self.direction,
            "dataset": self.dataset.to_dict(),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetUse:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "dataset": DatasetRef.from_dict(d["dataset"])})


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """One tracked dataset path across the runs that used it, for listings.

    ``latest`` is the version logged most recently; ``first_seen`` and ``last_seen`` are the
    times of its first and last use; ``readers`` and ``writers`` count the runs that read it
    (input) and wrote it (output), so ``runs`` may be less than their sum.
    """

    path: str
    versions: int
    runs: int
    readers: int
    writers: int
    first_seen: int
    last_seen: int
    latest: DatasetRef

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "path": self.path,
            "versions": self.versions,
            "runs": self.runs,
            "readers": self.readers,
            "writers": self.writers,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "latest": self.latest.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "latest": DatasetRef.from_dict(d["latest"])})


class PagedList(list):
    """A page of results with the token for the next page (None on the last page)."""

    def __init__(self, items: list, next_page_token: str | None) -> None:
        super().__init__(items)
        self.next_page_token = next_page_token


def metric_value_to_db(value: float) -> float | None:
    """NaN is stored as NULL (SQLite cannot store it); everything else as is."""
    return None if math.isnan(value) else value


def metric_value_from_db(value: float | None) -> float:
    """Inverse of :func:`metric_value_to_db`."""
    return math.nan if value is None else value


# -- model registry ------------------------------------------------------------------------------


class ModelStage(enum.StrEnum):
    """The legacy (MLflow 1.x) stages of a model version; aliases are the newer way."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model with numbered versions, tags and aliases (alias → version number)."""

    name: str
    description: str | None
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    #: The highest version number that is not deleted, or None when there is none.
    latest_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "name": self.name,
            "description": self.description,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
            "tags": dict(self.tags),
            "aliases": dict(self.aliases),
            "latest_version": self.latest_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegisteredModel:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "tags": dict(d["tags"]), "aliases": dict(d["aliases"])})


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model: the model folder of a run, frozen by its tree hash.

    ``source`` is where it came from (``runs:/<run_id>/<artifact_path>``); ``tree_hash`` names
    the folder's tree object in the object store, so the files behind a version never change.
    A deleted version keeps its number (``lifecycle_stage`` is ``deleted``).
    """

    name: str
    version: int
    run_id: str | None
    source: str
    artifact_path: str | None
    tree_hash: str
    description: str | None
    status: str
    stage: str
    lifecycle_stage: str
    user_id: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source": self.source,
            "artifact_path": self.artifact_path,
            "tree_hash": self.tree_hash,
            "description": self.description,
            "status": self.status,
            "stage": self.stage,
            "lifecycle_stage": self.lifecycle_stage,
            "user_id": self.user_id,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "tags": dict(d["tags"]), "aliases": list(d["aliases"])})


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One change in the model registry's audit trail.

    ``before`` and ``after`` are the old and new value as short strings (a description, a tag
    value, an alias's version number, a stage, a model name), None where there was none; ``key``
    is the tag key or alias name the change was about.
    """

    model_name: str
    version: int | None
    action: str
    actor: str
    timestamp: int
    before: str | None = None
    after: str | None = None
    comment: str | None = None
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "action": self.action,
            "key": self.key,
            "actor": self.actor,
            "timestamp": self.timestamp,
            "before": self.before,
            "after": self.after,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegistryEvent:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token of the team server, as listed: never its secret, which only its owner holds.

    Times are milliseconds since the epoch, like every other timestamp of the store.
    """

    token_id: str
    user: str
    role: str
    description: str | None
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    def is_active(self, now_ms: int) -> bool:
        """True unless revoked or expired at ``now_ms``."""
        return self.revoked_at is None and (self.expires_at is None or now_ms < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "token_id": self.token_id,
            "user": self.user,
            "role": self.role,
            "description": self.description,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Permission:
    """A user's level on one experiment (``kind`` "experiment", ``target`` its id) or model.

    It overrides the role of the user's tokens there: ``none`` hides it, ``read`` or ``write``
    give exactly that.
    """

    user: str
    kind: str
    target: str
    level: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {"user": self.user, "kind": self.kind, "target": self.target, "level": self.level}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Permission:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


# -- MLflow's own objects ------------------------------------------------------------------------


class LoggedModelStatus(enum.StrEnum):
    """Where a logged model's upload is: files still coming, complete, or abandoned."""

    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model folder with an id of its own, as MLflow 3's ``log_model`` creates it.

    ``run_id`` is the run that produced it, if any; its files are then that run's artifacts under
    ``artifact_path``. A model without a run holds its files itself.
    """

    model_id: str
    experiment_id: str
    name: str
    run_id: str | None
    artifact_path: str | None
    model_type: str | None
    status: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunModel:
    """A logged model a run used (``input``) or produced (``output``) at a step."""

    direction: str
    model_id: str
    step: int


@dataclass(frozen=True, slots=True)
class NamedDataset:
    """A dataset a run names by name and digest (MLflow's ``log_input``); mltrail holds no bytes."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

"""An MLflow file store (``./mlruns``), read as ``mltrail import mlflow`` reads a database.

The layout is MLflow's ``FileStore``: one folder per experiment (``<id>/meta.yaml``, deleted
ones under ``.trash/``), one per run inside it (``meta.yaml`` with an integer status; ``params/``,
``tags/`` and ``metrics/`` hold one file per key, nested keys as folders; a metric file has a
``timestamp value step`` line per point), dataset inputs (``<run>/inputs/<id>/meta.yaml`` naming
``<experiment>/datasets/<id>/meta.yaml``), MLflow 3 logged models (``<experiment>/models/<id>/``)
and the registry under ``models/<name>/`` (``version-N/meta.yaml``, ``tags/``, ``aliases/``).
Nothing is written: files are only opened for reading.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from mltrail import safe_yaml
from mltrail.entities import Metric
from mltrail.errors import InvalidInput
from mltrail.importers.mlflow_db import (
    DELETED_STAGE,
    LOGGED_MODEL_STATUS,
    METRIC_BATCH,
    SourceExperiment,
    SourceLoggedModel,
    SourceModel,
    SourceRun,
)

#: MLflow's RunStatus enum as the file store writes it.
_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_TRASH = ".trash"
_REGISTRY = "models"


def _meta(path: Path) -> dict[str, Any]:
    try:
        found = safe_yaml.load(path.read_text(encoding="utf-8"), f"MLflow's {path}")
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise InvalidInput(f"cannot read MLflow's {path}: {e}") from None
    return found if isinstance(found, dict) else {}


def _key_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(key, file) of a params/tags/metrics folder; a key with slashes is nested folders."""
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield path.relative_to(folder).as_posix(), path


def _points(key: str, path: Path) -> Iterator[Metric]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            value = float(parts[1])
            step = int(parts[2]) if len(parts) > 2 else 0
            yield Metric(key, math.nan if value != value else value, int(parts[0]), step)


def folder_of(source: str) -> Path | None:
    """The folder a ``file:`` URI or path names when it holds an MLflow file store, else None."""
    path = Path(unquote(urlparse(source).path)) if source.startswith("file:") else Path(source)
    if not path.is_dir():
        return None
    if any(path.glob("*/meta.yaml")) or (path / _TRASH).is_dir() or (path / _REGISTRY).is_dir():
        return path
    return None


class MlflowFiles:
    """The experiments, runs and registry of one MLflow file store folder, read-only."""

    kind = "file store"
    revision = ""

    def __init__(self, root: Path) -> None:
        self.uri = str(root)
        self.root = root
        self._runs: dict[str, Path] = {}
        self._experiments: dict[str, Path] = {}

    def close(self) -> None:
        """Nothing to release (kept for the readers' common shape)."""

    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones (in ``.trash``) included, ordered by id."""
        found = []
        for folder in [*self.root.glob("*/"), *(self.root / _TRASH).glob("*/")]:
            meta_path = folder / "meta.yaml"
            if folder.name == _REGISTRY or not meta_path.is_file():
                continue
            meta = _meta(meta_path)
            if "experiment_id" not in meta or "name" not in meta:
                continue
            exp = SourceExperiment(
                str(meta["experiment_id"]),
                str(meta["name"]),
                str(meta.get("lifecycle_stage") or "active"),
                meta.get("artifact_location"),
            )
            # Tags are files in tags/; some releases also wrote them into meta.yaml.
            exp.tags = {str(k): str(v) for k, v in (meta.get("tags") or {}).items()}
            exp.tags.update(
                (k, p.read_text(encoding="utf-8")) for k, p in _key_files(folder / "tags")
            )
            self._experiments[exp.experiment_id] = folder
            found.append(exp)
        return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        """The runs of the experiments, oldest first (parents before their children)."""
        if not self._experiments:
            self.experiments()
        found = []
        for exp_id in experiment_ids:
            folder = self._experiments.get(exp_id)
            if folder is None:
                continue
            for meta_path in folder.glob("*/meta.yaml"):
                meta = _meta(meta_path)
                run_id = meta.get("run_id") or meta.get("run_uuid")
                if not run_id:
                    continue
                self._runs[str(run_id)] = meta_path.parent
                status = meta.get("status")
                found.append(
                    SourceRun(
                        str(run_id),
                        exp_id,
                        meta.get("run_name") or None,
                        str(meta.get("user_id") or "unknown"),
                        _STATUS.get(status, str(status)) if isinstance(status, int) else status,
                        int(meta.get("start_time") or 0),
                        meta.get("end_time"),
                        str(meta.get("lifecycle_stage") or "active"),
                        meta.get("artifact_uri"),
                    )
                )
        return sorted(found, key=lambda r: (r.start_time, r.run_id))

    def prefetch(self, run_ids: list[str]) -> None:
        """Nothing to read ahead: each run's files are read when asked."""

    def key_values(self, table: str, run_id: str) -> dict[str, str]:
        """A run's params or tags."""
        return {
            k: p.read_text(encoding="utf-8") for k, p in _key_files(self._runs[run_id] / table)
        }

    def metric_counts(self, run_id: str) -> dict[str, int]:
        """How many points each metric of a run has."""
        counts = {}
        for key, path in _key_files(self._runs[run_id] / "metrics"):
            with path.open("rb") as f:
                counts[key] = sum(1 for line in f if line.strip())
        return counts

    def metric_points(self, run_id: str, keys: list[str]) -> list[Metric]:
        """Every point of the run's metrics ``keys`` (for short series)."""
        folder = self._runs[run_id] / "metrics"
        return [point for key in keys for point in _points(key, folder / key)]

    def metrics(self, run_id: str, key: str, skip: int = 0) -> Iterator[list[Metric]]:
        """One metric's points in batches, in the file's order, after the first ``skip``."""
        batch: list[Metric] = []
        for n, point in enumerate(_points(key, self._runs[run_id] / "metrics" / key)):
            if n < skip:
                continue
            batch.append(point)
            if len(batch) == METRIC_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def dataset_inputs(self, run_id: str) -> list[dict[str, Any]]:
        """The datasets a run logged as inputs, with their input tags."""
        run = self._runs[run_id]
        found = []
        for meta_path in sorted(run.glob("inputs/*/meta.yaml")):
            link = _meta(meta_path)
            if link.get("source_type") != "DATASET":
                continue
            dataset = run.parent / "datasets" / str(link.get("source_id")) / "meta.yaml"
            if not dataset.is_file():
                continue
            d = _meta(dataset)
            found.append(
                {
                    "name": str(d.get("name") or ""),
                    "digest": str(d.get("digest") or ""),
                    "source_type": str(d.get("source_type") or ""),
                    "source": str(d.get("source") or ""),
                    "schema": d.get("schema"),
                    "profile": d.get("profile"),
                    "tags": {str(k): str(v) for k, v in (link.get("tags") or {}).items()},
                }
            )
        return found

    def registered_models(self, names: list[str] | None = None) -> list[SourceModel]:
        """The registered models (only ``names`` if given), with versions, tags and aliases."""
        found = []
        for meta_path in sorted((self.root / _REGISTRY).glob("*/meta.yaml")):
            folder = meta_path.parent
            meta = _meta(meta_path)
            name = str(meta.get("name") or folder.name)
            if names and name not in names:
                continue
            model = SourceModel(name, meta.get("description"))
            model.tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(folder / "tags")}
            aliases = dict(meta.get("aliases") or {})
            aliases.update(
                (k, p.read_text(encoding="utf-8").strip())
                for k, p in _key_files(folder / "aliases")
            )
            model.aliases = {str(k): int(v) for k, v in aliases.items()}
            versions = []
            for version_meta in folder.glob("version-*/meta.yaml"):
                mv = _meta(version_meta)
                if mv.get("current_stage") == DELETED_STAGE or "version" not in mv:
                    continue
                tags = _key_files(version_meta.parent / "tags")
                versions.append(
                    {
                        "version": int(mv["version"]),
                        "description": mv.get("description"),
                        "user_id": mv.get("user_id"),
                        "stage": mv.get("current_stage") or "None",
                        "source": str(mv.get("source") or ""),
                        "storage_location": mv.get("storage_location"),
                        "run_id": mv.get("run_id") or None,
                        "status": mv.get("status"),
                        "tags": {k: p.read_text(encoding="utf-8") for k, p in tags},
                    }
                )
            model.versions = sorted(versions, key=lambda x: x["version"])
            found.append(model)
        return found

    def logged_models(self, experiment_ids: list[str]) -> list[SourceLoggedModel]:
        """The logged models of the experiments (MLflow 3), with their params and tags."""
        if not self._experiments:
            self.experiments()
        found = []
        for exp_id in experiment_ids:
            folder = self._experiments.get(exp_id)
            for meta_path in folder.glob("models/*/meta.yaml") if folder else ():
                meta = _meta(meta_path)
                if not meta.get("model_id"):
                    continue
                status = meta.get("status")
                model = SourceLoggedModel(
                    str(meta["model_id"]), exp_id, str(meta.get("name") or "model"),
                    meta.get("source_run_id") or None, meta.get("model_type"),
                    LOGGED_MODEL_STATUS.get(status, "READY"),
                    str(meta.get("lifecycle_stage") or "active"),
                    str(meta.get("artifact_location") or ""),
                )  # fmt: skip
                for field_name in ("params", "tags"):
                    values = _key_files(meta_path.parent / field_name)
                    read = {k: f.read_text(encoding="utf-8") for k, f in values}
                    setattr(model, field_name, read)
                found.append((int(meta.get("creation_timestamp") or 0), model))
        return [model for _, model in sorted(found, key=lambda x: (x[0], x[1].model_id))]

    def logged_model_location(self, model_id: str) -> str | None:
        """Where an MLflow 3 logged model's files are (its artifact location), or None."""
        for folder in [self.root, self.root / _TRASH]:
            for meta_path in folder.glob(f"*/models/{model_id}/meta.yaml"):
                location = _meta(meta_path).get("artifact_location")
                return str(location) if location else None
        return None

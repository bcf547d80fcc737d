"""mltrail: experiment tracking, model registry and data versioning in one tool.

``import mltrail`` is cheap: the store, SQLAlchemy and the object store load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mltrail._version import __version__

if TYPE_CHECKING:
    from mltrail.entities import (
        DatasetRef,
        DatasetUse,
        Experiment,
        FileInfo,
        LifecycleStage,
        Metric,
        Run,
        RunData,
        RunDataset,
        RunInfo,
        RunStatus,
        ViewType,
    )
    from mltrail.errors import MltrailError
    from mltrail.models.api import load_model, log_model, register_model, save_model
    from mltrail.tracking.client import MltrailClient
    from mltrail.tracking.fluent import (
        ActiveRun,
        active_run,
        delete_run,
        delete_tag,
        end_run,
        flush,
        get_metric_history,
        get_run,
        get_tracking_uri,
        log_artifact,
        log_artifacts,
        log_dict,
        log_input,
        log_metric,
        log_metrics,
        log_output,
        log_param,
        log_params,
        log_text,
        restore_run,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )

__all__ = [
    "ActiveRun",
    "DatasetRef",
    "DatasetUse",
    "Experiment",
    "FileInfo",
    "LifecycleStage",
    "Metric",
    "MltrailClient",
    "MltrailError",
    "Run",
    "RunData",
    "RunDataset",
    "RunInfo",
    "RunStatus",
    "ViewType",
    "__version__",
    "active_run",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_output",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "restore_run",
    "save_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_ENTITIES = {
    "DatasetRef", "DatasetUse", "Experiment", "FileInfo", "LifecycleStage", "Metric", "Run",
    "RunData", "RunDataset", "RunInfo", "RunStatus", "ViewType",
}  # fmt: skip


_MODEL_FUNCTIONS = {"load_model", "log_model", "register_model", "save_model"}


def _module_of(name: str) -> str:
    if name in _ENTITIES:
        return "mltrail.entities"
    if name == "MltrailClient":
        return "mltrail.tracking.client"
    if name == "MltrailError":
        return "mltrail.errors"
    if name in _MODEL_FUNCTIONS:
        return "mltrail.models.api"
    return "mltrail.tracking.fluent"


#: Subpackages reachable as attributes (``mt.data.open(...)``) without importing them first.
_SUBPACKAGES = frozenset({"data", "lineage", "models", "sklearn"})


def __getattr__(name: str) -> Any:
    # Loaded on first access so `import mltrail` stays cheap.
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mltrail.{name}")
    if name not in __all__ or name == "__version__":
        raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(_module_of(name)), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

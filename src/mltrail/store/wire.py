"""Entities as JSON and back: the body format of the REST API, shared by server and HTTP store.

:func:`encode` turns any entity (a dataclass or named tuple, nested ones included) into JSON by
its fields; the REST API's shapes are built on it, and so are MLflow's (``mltrail.mlflow_api.
codec`` renames and reshapes its output), so a field added to an entity reaches every wire
format from its definition.

Metric values that JSON cannot hold (NaN, ±infinity) travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mltrail.entities import (
    Experiment,
    FileInfo,
    Metric,
    Run,
    RunBatch,
    RunData,
    RunInfo,
)
from mltrail.transport import decode_float, encode_float


def encode(value: Any) -> Any:
    """``value`` as JSON: entities by their fields, floats as JSON can hold them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {k: encode(v) for k, v in zip(value._fields, value, strict=True)}
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def experiment_to_json(e: Experiment) -> dict[str, Any]:
    """An experiment as JSON."""
    return encode(e)


def experiment_from_json(d: dict[str, Any]) -> Experiment:
    """Inverse of :func:`experiment_to_json`."""
    return Experiment(
        d["experiment_id"],
        d["name"],
        d["lifecycle_stage"],
        d["creation_time"],
        d["last_update_time"],
        dict(d.get("tags") or {}),
    )


def metric_to_json(m: Metric) -> dict[str, Any]:
    """One metric point as JSON (by hand, not :func:`encode`: histories have millions)."""
    return {"key": m.key, "value": encode_float(m.value), "timestamp": m.timestamp, "step": m.step}


def metric_from_json(d: dict[str, Any]) -> Metric:
    """Inverse of :func:`metric_to_json`."""
    return Metric(d["key"], decode_float(d["value"]), d["timestamp"], d["step"])  # type: ignore[arg-type]


def file_to_json(f: FileInfo) -> dict[str, Any]:
    """An artifact file as JSON."""
    return encode(f)


def file_from_json(d: dict[str, Any]) -> FileInfo:
    """Inverse of :func:`file_to_json`."""
    return FileInfo(d["path"], d["hash"], d["size"], d.get("mode", 0o644))


def run_info_to_json(i: RunInfo) -> dict[str, Any]:
    """A run's info as JSON."""
    return encode(i)


def run_info_from_json(d: dict[str, Any]) -> RunInfo:
    """Inverse of :func:`run_info_to_json`."""
    return RunInfo(
        d["run_id"],
        d["experiment_id"],
        d["run_name"],
        d["status"],
        d["user_id"],
        d["start_time"],
        d.get("end_time"),
        d["lifecycle_stage"],
        d.get("parent_run_id"),
    )


def run_to_json(r: Run) -> dict[str, Any]:
    """A run (info, params, latest metric values, tags) as JSON."""
    # Not the latest values' steps: listings of thousands of runs would carry them for nothing.
    data = {"params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags}
    return {"info": encode(r.info), "data": encode(data)}


def run_from_json(d: dict[str, Any]) -> Run:
    """Inverse of :func:`run_to_json`."""
    data = d.get("data") or {}
    return Run(
        run_info_from_json(d["info"]),
        RunData(
            dict(data.get("params") or {}),
            {k: decode_float(v) for k, v in (data.get("metrics") or {}).items()},  # type: ignore[misc]
            dict(data.get("tags") or {}),
        ),
    )


def batch_to_json(b: RunBatch) -> dict[str, Any]:
    """One run's share of a write batch as JSON; metrics as ``[key, value, timestamp, step]``."""
    return {
        "run_id": b.run_id,
        "metrics": [[m.key, encode_float(m.value), m.timestamp, m.step] for m in b.metrics],
        "params": dict(b.params),
        "tags": dict(b.tags),
    }


def batch_from_json(d: dict[str, Any]) -> RunBatch:
    """Inverse of :func:`batch_to_json`."""
    return RunBatch(
        d["run_id"],
        [Metric(k, decode_float(v), ts, step) for k, v, ts, step in d.get("metrics") or ()],  # type: ignore[arg-type]
        dict(d.get("params") or {}),
        dict(d.get("tags") or {}),
    )

"""The run cache: (cmd, deps hashes, params values, out paths) → the outs that execution wrote.

An entry is a small JSON file, ``.mltrail/runs/<key[:2]>/<key>.json``, written after every
successful stage execution; the outs themselves are in the object store. It is machine-local
(git-ignored, like the objects). Across machines the same entry is found in the metadata store
instead: every stage run carries the tag ``mltrail.stage.run_key`` and records its outs as output
datasets, so a team server's runs make a run cache for everyone who shares it (the objects come
from the local cache, or from the default remote when they are missing locally).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.pipeline.lock import canonical

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

RUNS_DIR = "runs"
ENTRY_VERSION = 1
#: The tag holding a stage run's run key: how a run cache entry is found in the store.
TAG_RUN_KEY = "mltrail.stage.run_key"


def run_key(
    cmd: str, wdir: str, deps: list[dict[str, Any]], params: dict[str, Any], outs: list[str]
) -> str:
    """Return the run-cache key: the BLAKE3 hash of what decides a stage's result."""
    from mltrail.objects.hashing import hash_bytes

    doc = {
        "cmd": cmd,
        "wdir": wdir,
        "deps": sorted([d["path"], d["hash"]] for d in deps),
        "params": params,
        "outs": sorted(outs),
    }
    return hash_bytes(canonical(doc).encode("utf-8"))


def entry_path(project_dir: Path, key: str) -> Path:
    """Return where the entry of ``key`` lives."""
    return project_dir / RUNS_DIR / key[:2] / f"{key}.json"


def read_entry(project_dir: Path, key: str) -> dict[str, Any] | None:
    """Return the local entry of ``key`` (``outs``, ``metrics``, ``run_id``), or None."""
    try:
        doc = json.loads(entry_path(project_dir, key).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None  # absent, or damaged: a cache miss, never an error
    if not isinstance(doc, dict) or doc.get("version") != ENTRY_VERSION:
        return None
    return doc


def write_entry(
    project_dir: Path,
    key: str,
    stage: str,
    outs: list[dict[str, Any]],
    metrics: list[dict[str, Any]],
    run_id: str | None,
) -> None:
    """Record that the execution keyed ``key`` wrote ``outs`` and ``metrics``."""
    from mltrail.atomic import write_text_atomic
    from mltrail.data.project import ensure_gitignored

    path = entry_path(project_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_gitignored(project_dir / RUNS_DIR)
    doc = {
        "version": ENTRY_VERSION,
        "key": key,
        "stage": stage,
        "outs": outs,
        "metrics": metrics,
        "run_id": run_id,
    }
    write_text_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def find_in_store(
    client: MltrailClient, experiment: str, key: str, out_paths: set[str], metric_paths: set[str]
) -> dict[str, Any] | None:
    """Return an entry built from a finished run with tag run_key = ``key``, or None."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    page = client.search_runs(
        [exp.experiment_id],
        f"tags.`{TAG_RUN_KEY}` = '{key}' and attributes.status = 'FINISHED'",
        max_results=5,
    )
    for run in page:
        outputs = {
            d.dataset.path: d.dataset
            for d in client.get_run_datasets(run.info.run_id)
            if d.direction == "output"
        }
        if not (out_paths | metric_paths) <= outputs.keys():
            continue

        def entry(p: str, outputs: dict[str, Any] = outputs) -> dict[str, Any]:
            ref = outputs[p]
            item: dict[str, Any] = {"path": p, "hash": ref.hash, "size": ref.size}
            if ref.nfiles is not None:
                item["nfiles"] = ref.nfiles
            return item

        return {
            "version": ENTRY_VERSION,
            "key": key,
            "outs": [entry(p) for p in sorted(out_paths)],
            "metrics": [entry(p) for p in sorted(metric_paths)],
            "run_id": run.info.run_id,
        }
    return None


def cache_size(project_dir: Path) -> int:
    """Return how many entries the local run cache holds."""
    base = project_dir / RUNS_DIR
    return sum(len(files) for _, _, files in os.walk(base)) if base.is_dir() else 0


__all__ = [
    "RUNS_DIR",
    "TAG_RUN_KEY",
    "cache_size",
    "entry_path",
    "find_in_store",
    "read_entry",
    "run_key",
]

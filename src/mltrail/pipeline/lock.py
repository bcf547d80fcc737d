"""``mltrail.lock``: what each stage's last execution read and wrote, committed to Git.

::

    # mltrail pipeline lock: the deps, params and outs of each stage's last execution.
    # Written by `mltrail repro`; commit it. See docs/pipelines.md.
    schema: 1
    stages:
      train:
        cmd: python src/train.py
        deps:
        - path: data/prepared
          hash: 9a1c…
          size: 81920
          nfiles: 20
        params:
          params.yaml:
            train.max_depth: 5
        outs:
        - path: models/rf.pkl
          hash: 4f1c…
          size: 1234
        metrics:
        - path: metrics.json
          hash: 77aa…
          size: 40
        run_key: 0b5e…

Stages appear in ``mltrail.yaml`` order; deps and outs sorted by path; keys always in this order,
so the same execution always writes the same bytes and a change is a small diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput

LOCK_FILE = "mltrail.lock"
LOCK_SCHEMA = 1
_HEADER = (
    "# mltrail pipeline lock: the deps, params and outs of each stage's last execution.\n"
    "# Written by `mltrail repro`; commit it. See docs/pipelines.md.\n"
)
_ENTRY_KEYS = ("cmd", "wdir", "deps", "params", "outs", "metrics", "run_key")


def file_entry(path: str, hash: str, size: int, nfiles: int | None) -> dict[str, Any]:
    """Return one deps/outs item: path, hash, size and (folders) nfiles, in that key order."""
    item: dict[str, Any] = {"path": path, "hash": hash, "size": size}
    if nfiles is not None:
        item["nfiles"] = nfiles
    return item


def stage_entry(
    cmd: str,
    wdir: str,
    deps: list[dict[str, Any]],
    params: dict[str, dict[str, Any]],
    outs: list[dict[str, Any]],
    metrics: list[dict[str, Any]],
    run_key: str | None,
) -> dict[str, Any]:
    """Return a lock entry in canonical form (empty parts left out)."""
    entry: dict[str, Any] = {"cmd": cmd}
    if wdir != ".":
        entry["wdir"] = wdir
    if deps:
        entry["deps"] = sorted(deps, key=lambda d: d["path"])
    if params:
        entry["params"] = {f: dict(sorted(v.items())) for f, v in sorted(params.items())}
    if outs:
        entry["outs"] = sorted(outs, key=lambda d: d["path"])
    if metrics:
        entry["metrics"] = sorted(metrics, key=lambda d: d["path"])
    if run_key:
        entry["run_key"] = run_key
    return entry


def read_lock(root: Path) -> dict[str, dict[str, Any]]:
    """Return ``{stage: entry}`` from ``root/mltrail.lock`` (empty when there is none)."""
    path = root / LOCK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{LOCK_FILE} is not UTF-8 text ({path})",
            hint=f"Restore it from Git (git checkout {LOCK_FILE}) or delete it to run every stage.",
        ) from None
    import yaml

    from mltrail import safe_yaml

    try:
        doc = safe_yaml.load(text, LOCK_FILE)
    except yaml.YAMLError as e:
        raise InvalidInput(
            f"{LOCK_FILE} is not valid YAML: {e}",
            hint=f"Restore it from Git (git checkout {LOCK_FILE}) or delete it to run every stage.",
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("stages", {}), dict):
        raise InvalidInput(
            f"{LOCK_FILE} does not hold a `stages:` mapping",
            hint="Restore it from Git or delete it to run every stage.",
        )
    schema = doc.get("schema", LOCK_SCHEMA)
    if schema != LOCK_SCHEMA:
        raise InvalidInput(
            f"{LOCK_FILE} has schema {schema!r}; this mltrail reads schema {LOCK_SCHEMA}",
            hint="Upgrade mltrail, or delete the lock file to run every stage again.",
        )
    stages = doc.get("stages") or {}
    return {str(k): v for k, v in stages.items() if isinstance(v, dict)}


def dump_lock(stages: dict[str, dict[str, Any]]) -> str:
    """Return the lock file text for ``{stage: entry}`` (in the given stage order)."""
    import yaml

    body = {"schema": LOCK_SCHEMA, "stages": {name: _ordered(e) for name, e in stages.items()}}
    return _HEADER + yaml.safe_dump(
        body, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )


def write_lock(root: Path, stages: dict[str, dict[str, Any]]) -> None:
    """Write ``root/mltrail.lock`` atomically, unless it already holds exactly this."""
    from mltrail.atomic import write_text_atomic

    text = dump_lock(stages)
    path = root / LOCK_FILE
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass  # no lock yet, or one that is not UTF-8: either way it is replaced
    write_text_atomic(path, text)


def _ordered(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: entry[k] for k in _ENTRY_KEYS if k in entry}
    out.update({k: v for k, v in entry.items() if k not in out})
    return out


def canonical(value: Any) -> str:
    """Return compact, key-sorted JSON: the form hashed and compared."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


__all__ = [
    "LOCK_FILE",
    "LOCK_SCHEMA",
    "canonical",
    "dump_lock",
    "file_entry",
    "read_lock",
    "stage_entry",
    "write_lock",
]

"""One stage in the workspace: what it reads now, whether that differs from the lock, its outs.

Hashes come from the stat cache (:func:`mltrail.data.workspace.scan`), so on a no-op ``repro``
nothing is read but ``stat`` results and a few SQLite rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.data.statcache import StatCache
from mltrail.data.workspace import Scan, scan
from mltrail.errors import InvalidInput
from mltrail.pipeline.lock import canonical, file_entry, stage_entry
from mltrail.pipeline.params import flatten, get_key, read_params_file
from mltrail.pipeline.spec import Pipeline, Stage, overlaps


class Workspace:
    """The project's files as the pipeline sees them: scans memoized for one ``repro``."""

    def __init__(self, root: Path, project_dir: Path, cache: StatCache) -> None:
        self.root = root
        self.dir = project_dir
        self.cache = cache
        self._scans: dict[str, Scan | None] = {}
        self._params: dict[str, dict[str, Any]] = {}

    def scan(self, path: str) -> Scan | None:
        """Return the scan of a root-relative path, or None if it does not exist."""
        if path not in self._scans:
            full = self.root / path
            self._scans[path] = scan(self.root, full, self.cache) if full.exists() else None
        return self._scans[path]

    def forget(self, paths: list[str]) -> None:
        """Drop memoized scans of ``paths`` and anything inside or around them (they changed)."""
        for key in list(self._scans):
            if any(overlaps(key, p) for p in paths):
                del self._scans[key]

    def params_file(self, file: str) -> dict[str, Any]:
        """Return a params file's mapping (read once per repro)."""
        if file not in self._params:
            self._params[file] = read_params_file(self.root / file)
        return self._params[file]

    def preload_params(self, docs: dict[str, dict[str, Any]]) -> None:
        """Use these params mappings instead of reading the files (``--dry`` with ``-S``)."""
        self._params.update(docs)

    def forget_params(self) -> None:
        """Read params files again next time (after ``-S`` rewrote them)."""
        self._params.clear()


@dataclass
class StageState:
    """What a stage would read and has written, now, and why it must run (empty: it need not)."""

    stage: Stage
    deps: list[dict[str, Any]]
    params: dict[str, dict[str, Any]]
    outs: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    missing_outs: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        """True when the stage must run (or be restored)."""
        return bool(self.reasons)

    def lock_entry(self, run_key: str | None) -> dict[str, Any]:
        """Return the lock entry of this state (after the stage ran, with its new outs)."""
        return stage_entry(
            self.stage.command,
            self.stage.wdir,
            self.deps,
            self.params,
            self.outs,
            self.metrics,
            run_key,
        )


def entry_of(path: str, found: Scan) -> dict[str, Any]:
    """Return the lock item of a scanned path."""
    return file_entry(path, found.hash, found.size, found.nfiles if found.kind == "dir" else None)


def param_values(stage: Stage, ws: Workspace, pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """Return ``{file: {key: value}}`` (a whole file: its whole mapping) for a stage's params."""
    out: dict[str, dict[str, Any]] = {}
    whole = {p.file for p in stage.params if p.key is None}
    for p in stage.params:
        try:
            doc = ws.params_file(p.file)
        except InvalidInput as e:
            raise InvalidInput(
                f"{pipeline.where(p.line)}: stage {stage.name!r}: {e.message}", hint=e.hint
            ) from None
        if p.key is None:
            out[p.file] = dict(doc)
            continue
        try:
            value = get_key(doc, p.key)
        except KeyError:
            raise InvalidInput(
                f"{pipeline.where(p.line)}: stage {stage.name!r} uses param {p.key!r}, which is "
                f"missing from {p.file}",
                hint=f"Add {p.key} to {p.file}, or remove it from the stage's params.",
            ) from None
        if p.file not in whole:
            out.setdefault(p.file, {})[p.key] = value
    return out


def dep_entries(stage: Stage, ws: Workspace, pipeline: Pipeline) -> list[dict[str, Any]]:
    """Return the lock items of a stage's deps; raise naming a dep that does not exist."""
    out = []
    for dep in stage.deps:
        found = ws.scan(dep.path)
        if found is None:
            producers = [
                s.name for s in pipeline for o in s.all_outs() if overlaps(o.path, dep.path)
            ]
            where = pipeline.where(dep.line)
            if producers:
                raise InvalidInput(
                    f"{where}: dep {dep.path} of stage {stage.name!r} does not exist; stage "
                    f"{producers[0]!r} writes it but has not produced it",
                    hint=f"Run `mltrail repro {producers[0]}` (check that its command writes "
                    f"{dep.path}).",
                )
            raise InvalidInput(
                f"{where}: dep {dep.path} of stage {stage.name!r} does not exist, and no stage "
                "writes it",
                hint="Create it (or `mltrail data pull` it), or fix the path in mltrail.yaml.",
            )
        out.append(entry_of(dep.path, found))
    return out


def state_of(
    stage: Stage,
    ws: Workspace,
    pipeline: Pipeline,
    locked: dict[str, Any] | None,
    *,
    force: bool = False,
) -> StageState:
    """Return the stage's current state and the reasons it is stale against its lock entry."""
    deps = dep_entries(stage, ws, pipeline)
    params = param_values(stage, ws, pipeline)
    outs, metrics, missing = [], [], []
    for group, items in ((stage.outs, outs), (stage.metrics, metrics)):
        for o in group:
            found = ws.scan(o.path)
            if found is None:
                missing.append(o.path)
            else:
                items.append(entry_of(o.path, found))
    st = StageState(stage, deps, params, outs, metrics, missing)
    reasons = st.reasons
    if force:
        reasons.append("forced")
    if stage.always_changed:
        reasons.append("always changed")
    if locked is None:
        reasons.append("never ran")
        return st
    if locked.get("cmd") != stage.command or locked.get("wdir", ".") != stage.wdir:
        reasons.append("command changed")
    old_deps = {d.get("path"): d.get("hash") for d in locked.get("deps") or []}
    new_deps = {d["path"]: d["hash"] for d in deps}
    if old_deps != new_deps:
        every = new_deps.keys() | old_deps.keys()
        changed = sorted(p for p in every if new_deps.get(p) != old_deps.get(p))
        reasons.append("deps changed: " + ", ".join(changed))
    if canonical(locked.get("params") or {}) != canonical(params):
        changed = _changed_params(locked.get("params"), params)
        reasons.append("params changed: " + ", ".join(changed))
    if missing:
        reasons.append("outs missing: " + ", ".join(missing))
    for key, now in (("outs", outs), ("metrics", metrics)):
        old = {d.get("path"): d.get("hash") for d in locked.get(key) or []}
        paths = [o.path for o in (stage.outs if key == "outs" else stage.metrics)]
        if set(old) != set(paths):
            reasons.append(f"{key} changed in mltrail.yaml")
            continue
        modified = [d["path"] for d in now if old.get(d["path"]) != d["hash"]]
        if modified:
            reasons.append(f"{key} modified: " + ", ".join(modified))
    return st


def _changed_params(old: Any, new: dict[str, dict[str, Any]]) -> list[str]:
    old = old if isinstance(old, dict) else {}
    out = []
    for file in sorted(old.keys() | new.keys()):
        a, b = old.get(file) or {}, new.get(file) or {}
        for key in sorted(a.keys() | b.keys()):
            if canonical(a.get(key)) != canonical(b.get(key)):
                out.append(key if file == "params.yaml" else f"{file}:{key}")
    return out or ["(values)"]


def flat_params(params: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Return run params: ``key`` (params.yaml) or ``file:key``, nested mappings dotted."""
    out: dict[str, str] = {}
    for file, values in params.items():
        for key, value in values.items():
            label = key if file == "params.yaml" else f"{file}:{key}"
            for flat, leaf in flatten(value, label).items():
                out[flat] = _param_text(leaf)
    return out


def _param_text(value: Any) -> str:
    """Return a param value as a run records it: YAML-style booleans, containers as JSON."""
    if isinstance(value, (dict, list)):
        return canonical(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- moving outs aside while a stage runs ---------------------------------------------------------


class Backup:
    """Previous outs moved aside before a stage runs; put back if it fails, dropped if not."""

    def __init__(self, root: Path, tmp: Path, paths: list[str]) -> None:
        self.root = root
        self.tmp = tmp
        self.paths = paths
        self.moved: list[tuple[Path, Path]] = []

    def __enter__(self) -> Backup:
        self.tmp.mkdir(parents=True, exist_ok=True)
        for i, rel in enumerate(self.paths):
            src = self.root / rel
            if os.path.lexists(src):
                dest = self.tmp / str(i)
                os.replace(src, dest)  # same filesystem (.mltrail/ is in the project): atomic
                self.moved.append((src, dest))
            else:
                src.parent.mkdir(parents=True, exist_ok=True)
        return self

    def restore(self) -> None:
        """Remove what the failed command wrote at the out paths; put the previous outs back."""
        for rel in self.paths:
            remove_path(self.root / rel)
        for src, dest in self.moved:
            os.replace(dest, src)
        self.moved = []
        self.drop()

    def drop(self) -> None:
        """Delete the moved-aside outs (the stage succeeded)."""
        for _, dest in self.moved:
            remove_path(dest)
        self.moved = []
        with contextlib.suppress(OSError):
            shutil.rmtree(self.tmp)

    def __exit__(self, *exc: object) -> None:
        if self.moved:
            self.restore()


def remove_path(path: Path) -> None:
    """Delete a file, symlink or folder (read-only folders too); a missing path is fine."""
    if path.is_dir() and not path.is_symlink():

        def writable(func: Any, p: str, _exc: Any) -> None:
            os.chmod(os.path.dirname(p), 0o755)  # read-only folders cannot lose entries
            func(p)

        shutil.rmtree(path, onerror=writable)  # onexc is Python 3.12+
    elif os.path.lexists(path):
        os.unlink(path)


__all__ = [
    "Backup",
    "StageState",
    "Workspace",
    "dep_entries",
    "entry_of",
    "flat_params",
    "param_values",
    "remove_path",
    "state_of",
]

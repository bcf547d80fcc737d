"""``repro --grid``: one repro per point of a params grid, each stage execution a run.

Points share the workspace, so they run one after another (``jobs`` still runs independent stages
of a point in parallel). Each point's values are written into the params file for its repro; when
the sweep ends, the params files and ``mltrail.lock`` are put back byte for byte and the outs are
restored from the object store to what they were before the sweep. Every point's executions are in
the run cache, so ``repro -S key=value`` with a swept value afterwards restores it instantly.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.data.project import Project
from mltrail.errors import InvalidInput, MltrailError
from mltrail.pipeline.lock import LOCK_FILE, read_lock
from mltrail.pipeline.params import parse_override
from mltrail.pipeline.runner import (
    Progress,
    ReproResult,
    StageFailed,
    _quiet,
    read_metrics,
    repro,
)
from mltrail.pipeline.spec import load

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

TAG_GRID_POINT = "mltrail.pipeline.grid_point"


@dataclass
class PointResult:
    """One grid point: its overrides, what repro did, the metrics files' values after it."""

    overrides: list[str]
    result: ReproResult | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "overrides": self.overrides,
            "stages": self.result.to_dict()["stages"] if self.result else [],
            "metrics": self.metrics,
            "error": self.error,
        }


def grid_points(specs: Iterable[str]) -> list[list[str]]:
    """Expand ``key=v1,v2`` specs into the cross product of ``key=v`` override lists."""
    axes: list[list[str]] = []
    for spec in specs:
        if "=" not in spec:
            raise InvalidInput(
                f"grid {spec!r} has no '='",
                hint="Write it as key=v1,v2,v3, e.g. train.lr=0.1,0.01.",
            )
        target, values = spec.split("=", 1)
        parse_override(f"{target}=x")  # checks the key part
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise InvalidInput(f"grid {spec!r} lists no values", hint="Write key=v1,v2,v3.")
        axes.append([f"{target.strip()}={v}" for v in items])
    return [list(p) for p in itertools.product(*axes)] if axes else []


def sweep(
    grid: Iterable[str],
    targets: Iterable[str] | None = None,
    *,
    force: bool = False,
    overrides: Iterable[str] = (),
    jobs: int = 1,
    start: str | os.PathLike[str] | None = None,
    progress: Progress = _quiet,
    client: MltrailClient | None = None,
) -> list[PointResult]:
    """Run ``repro`` once per grid point; leave the workspace as it was before the sweep."""
    points = grid_points(grid)
    if not points:
        raise InvalidInput("no grid given", hint="Pass --grid key=v1,v2.")
    project = Project.find(start)
    root = project.root
    pipeline = load(root)
    base = list(overrides)
    files = {"params.yaml"} | {
        parse_override(o)[0] or "params.yaml" for o in [*base, *(p for pt in points for p in pt)]
    }
    saved = {f: _read_bytes(root / f) for f in [*sorted(files), LOCK_FILE]}
    before = read_lock(root)
    results: list[PointResult] = []
    targets = list(targets or [])
    try:
        for point in points:
            _put_back(root, saved, only_params=True)
            label = " ".join(point)
            progress("point", label, "")
            pr = PointResult(point)
            try:
                pr.result = repro(
                    targets or None,
                    force=force,
                    overrides=[*base, *point],
                    jobs=jobs,
                    start=root,
                    progress=progress,
                    client=client,
                    tags={TAG_GRID_POINT: label},
                )
            except StageFailed as e:
                pr.error = e.message
            for m in pipeline.metrics_files():
                pr.metrics.update(read_metrics(root / m))
            results.append(pr)
    finally:
        _put_back(root, saved, only_params=False)
        _restore_outs(project, before, progress)
    return results


def _read_bytes(path: os.PathLike[str]) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _put_back(root: Any, saved: dict[str, bytes | None], *, only_params: bool) -> None:
    from mltrail.atomic import write_text_atomic

    for name, data in saved.items():
        if only_params and name == LOCK_FILE:
            continue
        path = root / name
        if data is None:
            if path.exists():
                path.unlink()
        else:
            write_text_atomic(path, data.decode("utf-8"))


def _restore_outs(project: Project, before: dict[str, dict[str, Any]], progress: Progress) -> None:
    """Put back the outs the lock named before the sweep (those whose objects are stored)."""
    from mltrail.pipeline.restore import restore_outs
    from mltrail.pipeline.stage import Workspace

    pipeline = load(project.root)
    with project.stat_cache() as cache:
        ws = Workspace(project.root, project.dir, cache)
        for stage in pipeline:
            entry = before.get(stage.name)
            if not entry or not stage.all_outs():
                continue
            items = [*entry.get("outs", []), *entry.get("metrics", [])]
            now = {}
            for item in items:
                found = ws.scan(item["path"])
                now[item["path"]] = found.hash if found else None
            if all(now.get(i["path"]) == i["hash"] for i in items):
                continue
            try:
                restore_outs(project, ws, stage, entry)
            except MltrailError as e:
                progress("warning", stage.name, f"could not restore its outs: {e.message}")


__all__ = ["TAG_GRID_POINT", "PointResult", "grid_points", "sweep"]

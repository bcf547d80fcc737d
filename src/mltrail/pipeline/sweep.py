"""``repro --grid``: one repro per point of a params grid, each stage execution a run.

With ``jobs`` > 1 and several points, the points run at the same time, each in a temporary
workspace of its own (:mod:`mltrail.pipeline.gridpool`), and the user's workspace is never
written. Otherwise points share the workspace and run one after another: each point's values are
written into the params file for its repro; when the sweep ends, the params files and
``mltrail.lock`` are put back byte for byte and the outs are restored from the object store to
what they were before the sweep. ``cache: false`` outs are not in the object store: they are kept
aside (hard links, or copies) before the first point and moved back at the end. Every point's
executions are in the run cache, so ``repro -S key=value`` with a swept value afterwards restores
it instantly.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.data.project import Project
from mltrail.errors import InvalidInput, InvalidState, MltrailError
from mltrail.pipeline.dag import build
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
from mltrail.pipeline.spec import Pipeline, Stage, load
from mltrail.pipeline.stage import Workspace, remove_path

if TYPE_CHECKING:
    from mltrail.pipeline.gridpool import PointProgress
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


class OutsNotRestored(InvalidState):
    """The sweep ran, but some stages' outs could not be put back as they were before it."""

    code = "OUTS_NOT_RESTORED"

    def __init__(self, problems: dict[str, str], points: list[PointResult], aside: Path) -> None:
        stages = list(problems)
        lines = "; ".join(f"{name}: {why}" for name, why in problems.items())
        hint = (
            "The params files and mltrail.lock are back as they were, so `mltrail repro "
            + " ".join(stages)
            + "` rebuilds those outs (from the run cache when it can)."
        )
        if aside.exists():
            hint += f" The outs kept aside before the sweep are in {aside}."
        super().__init__(
            f"the grid ran, but the outs of {len(stages)} stage(s) could not be put back as "
            f"they were: {lines}",
            hint=hint,
        )
        self.problems = problems
        self.points = points


@dataclass(frozen=True)
class _Kept:
    """A ``cache: false`` out as it was before the sweep: where it was kept aside, and its hash."""

    copy: Path | None  # None: the out did not exist
    hash: str | None


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
    point_progress: PointProgress | None = None,
) -> list[PointResult]:
    """Run ``repro`` once per grid point; leave the workspace as it was before the sweep.

    With ``jobs`` > 1 and several points, up to ``jobs`` points run at once in temporary
    workspaces; ``point_progress(label)`` then gives each point's progress callback (default:
    ``progress``, whose calls are made one at a time). Raises :class:`OutsNotRestored`
    (carrying the points' results) when some outs could not be put back.
    """
    points = grid_points(grid)
    if not points:
        raise InvalidInput("no grid given", hint="Pass --grid key=v1,v2.")
    project = Project.find(start)
    root = project.root
    pipeline = load(root)
    targets = list(targets or [])
    selected = [pipeline.stages[n] for n in build(pipeline).order(targets or None)]
    if jobs > 1 and len(points) > 1:
        from mltrail.pipeline.gridpool import run_points

        return run_points(
            project,
            pipeline,
            points,
            targets,
            force=force,
            overrides=list(overrides),
            jobs=jobs,
            progress=progress,
            point_progress=point_progress,
            client=client,
        )
    base = list(overrides)
    files = {"params.yaml"} | {
        parse_override(o)[0] or "params.yaml" for o in [*base, *(p for pt in points for p in pt)]
    }
    saved = {f: _read_bytes(root / f) for f in [*sorted(files), LOCK_FILE]}
    before = read_lock(root)
    aside = project.dir / "tmp" / "sweep" / str(os.getpid())
    kept = _keep_uncached(project, selected, aside)
    results: list[PointResult] = []
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
        problems = _restore_outs(project, before, kept)
        if not problems:
            shutil.rmtree(aside, ignore_errors=True)
        elif sys.exc_info()[1] is not None:
            # Another error is on its way up and OutsNotRestored cannot be raised: say it here.
            for name, why in problems.items():
                progress("warning", name, f"could not put back its outs: {why}")
    if problems:
        raise OutsNotRestored(problems, results, aside)
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


def _keep_uncached(project: Project, stages: list[Stage], aside: Path) -> dict[str, _Kept]:
    """Keep the ``cache: false`` outs of ``stages`` aside: the object store cannot restore them."""
    kept: dict[str, _Kept] = {}
    shutil.rmtree(aside, ignore_errors=True)  # left by an interrupted sweep with the same pid
    try:
        with project.stat_cache() as cache:
            ws = Workspace(project.root, project.dir, cache)
            for stage in stages:
                for o in stage.outs:
                    if o.cache:
                        continue
                    found = ws.scan(o.path)
                    if found is None:
                        kept[o.path] = _Kept(None, None)
                        continue
                    aside.mkdir(parents=True, exist_ok=True)
                    copy = aside / str(len(kept))
                    _link_tree(project.root / o.path, copy)
                    kept[o.path] = _Kept(copy, found.hash)
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return kept


def _link_tree(src: Path, dest: Path) -> None:
    if src.is_symlink():
        shutil.copy2(src, dest, follow_symlinks=False)
    elif src.is_dir():
        shutil.copytree(src, dest, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dest))


def _link_or_copy(src: str, dest: str) -> None:
    # A hard link is instant and safe here: repro moves an out aside before a command writes its
    # path (and restores replace files, never write into them), so the linked bytes never change.
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _restore_outs(
    project: Project,
    before: dict[str, dict[str, Any]],
    kept: dict[str, _Kept],
) -> dict[str, str]:
    """Put the outs back as they were before the sweep; return ``{stage: why not}`` on failures.

    Cached outs and metrics files come from the object store (the lock names them); ``cache:
    false`` outs from the copies kept aside.
    """
    from mltrail.pipeline.restore import restore_outs

    pipeline: Pipeline = load(project.root)
    problems: dict[str, str] = {}
    with project.stat_cache() as cache:
        ws = Workspace(project.root, project.dir, cache)
        for stage in pipeline:
            uncached = [o.path for o in stage.outs if not o.cache]
            try:
                for path in uncached:
                    if path in kept:
                        _put_back_out(project.root, ws, path, kept[path])
                entry = before.get(stage.name)
                if not entry:
                    continue
                items = [
                    i
                    for i in [*entry.get("outs", []), *entry.get("metrics", [])]
                    if i["path"] not in uncached
                ]
                if all(_hash_now(ws, i["path"]) == i["hash"] for i in items):
                    continue
                restore_outs(project, ws, stage, entry, skip=uncached)
            except (MltrailError, OSError) as e:
                why = e.message if isinstance(e, MltrailError) else str(e)
                problems[stage.name] = why
    return problems


def _hash_now(ws: Workspace, path: str) -> str | None:
    found = ws.scan(path)
    return found.hash if found else None


def _put_back_out(root: Path, ws: Workspace, path: str, kept: _Kept) -> None:
    """Make a ``cache: false`` out what it was before the sweep (absent, if it was)."""
    if _hash_now(ws, path) == kept.hash:
        return
    full = root / path
    remove_path(full)
    if kept.copy is not None:
        full.parent.mkdir(parents=True, exist_ok=True)
        os.replace(kept.copy, full)
    ws.forget([path])
    if _hash_now(ws, path) != kept.hash:
        raise InvalidState(f"{path} does not hash as it did before the sweep")


__all__ = ["TAG_GRID_POINT", "OutsNotRestored", "PointResult", "grid_points", "sweep"]

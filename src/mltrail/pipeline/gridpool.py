"""``repro --grid … -j N``: up to N grid points at once, each in its own temporary workspace.

Points of a sweep cannot share the workspace when they run at the same time (each writes its
params file and outs), so each point gets a copy of the project under ``.mltrail/tmp/grid/<pid>/``:

- the working files as they are now, committed or not (code, params files, ``mltrail.yaml``,
  ``mltrail.lock``, metrics files, ``cache: false`` outs), copied; ``.mltrail/`` and ``.git`` are
  left out, and so is whatever Git ignores (virtualenvs, caches, scratch data) unless the pipeline
  names it as a dep, out, params or metrics file;
- data tracked by a pointer file (the pipeline's cached outs, ``mltrail data add``-ed inputs),
  hard-linked: mltrail replaces such files and never writes into them, and a stage's outs are
  moved aside before its command runs, so the user's files are never changed through the link;
- a ``.mltrail/`` whose ``objects`` and ``runs`` are the project's own (symbolic links), so the
  outs a point writes land in the project's object store and run cache.

A copy rather than ``git worktree add``: a worktree holds only committed files, and the sweep must
run the workspace as it is (and works in a project without Git, or without a commit). Runs are
recorded in the project's metadata store (one client per point), and the stage commands get
``MLTRAIL_TRACKING_URI`` pointing there, so runs they log themselves land there too. The user's
workspace is never written, so nothing needs putting back; each temporary workspace is removed when
its point ends, and the whole folder when the sweep ends, on failure or Ctrl-C too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.config import ENV_OBJECTS, ENV_TRACKING_URI, OBJECTS_DIR, PROJECT_DIR
from mltrail.data.pointer import POINTER_SUFFIX
from mltrail.data.project import Project
from mltrail.pipeline.runcache import RUNS_DIR
from mltrail.pipeline.runner import Progress, StageFailed, read_metrics, repro
from mltrail.pipeline.spec import Pipeline
from mltrail.pipeline.stage import remove_path
from mltrail.pipeline.sweep import TAG_GRID_POINT, PointResult

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

#: Entries of a point's ``.mltrail/`` that are the project's own.
SHARED = (OBJECTS_DIR, RUNS_DIR)
#: Makes the progress callback of one point from its label (``key=v key2=w``).
PointProgress = Callable[[str], Progress]


def run_points(
    project: Project,
    pipeline: Pipeline,
    points: list[list[str]],
    targets: list[str],
    *,
    force: bool,
    overrides: list[str],
    jobs: int,
    progress: Progress,
    point_progress: PointProgress | None,
    client: MltrailClient | None,
) -> list[PointResult]:
    """Run the points ``jobs`` at a time, each in a temporary workspace; return them in order.

    The workers share ``jobs``: with 4 jobs and 2 points each point runs 2 stages at once, with
    2 jobs and 4 points each runs its stages one by one. A failing stage marks its point failed
    and the others go on; any other error stops starting points and is raised once the running
    ones have ended.
    """
    workers = min(jobs, len(points))
    inner = max(1, jobs // workers)
    uri = client.tracking_uri if client else os.environ.get(ENV_TRACKING_URI) or str(project.dir)
    objects = client.location.objects if client else os.environ.get(ENV_OBJECTS)
    env = {ENV_TRACKING_URI: uri, **({ENV_OBJECTS: objects} if objects else {})}
    lock = threading.Lock()

    def serialised(fn: Progress) -> Progress:
        def call(event: str, name: str, detail: str) -> None:
            with lock:  # one line at a time from all the points
                fn(event, name, detail)

        return call

    tell = serialised(progress)
    base = project.dir / "tmp" / "grid" / str(os.getpid())
    remove_path(base)  # left by an interrupted sweep with the same pid

    def one(index: int, point: list[str]) -> PointResult:
        label = " ".join(point)
        tell("point", label, "")
        root = base / f"p{index}"
        pr = PointResult(point)
        try:
            copy_workspace(project, pipeline, root)
            project.share_into(root, SHARED)
            from mltrail.tracking.client import MltrailClient

            own = MltrailClient(uri, objects, create=False)  # a client is not shared by threads
            try:
                pr.result = repro(
                    targets or None,
                    force=force,
                    overrides=[*overrides, *point],
                    jobs=inner,
                    start=root,
                    progress=serialised(point_progress(label)) if point_progress else tell,
                    client=own,
                    tags={TAG_GRID_POINT: label},
                    env=env,
                    label=label,
                )
            except StageFailed as e:
                pr.error = e.message
            finally:
                own.close()
            for m in pipeline.metrics_files():
                pr.metrics.update(read_metrics(root / m))
        finally:
            remove_path(root)
        r, done = pr.result, ""
        if pr.error:
            done = f"failed: {pr.error}"
        elif r is not None:
            done = f"{r.count('ran')} ran, {r.count('restored')} restored"
        tell("point done", label, done)
        return pr

    results: dict[int, PointResult] = {}
    error: BaseException | None = None
    pool = ThreadPoolExecutor(workers, thread_name_prefix="mltrail-grid")
    try:
        futures: dict[Future[PointResult], int] = {
            pool.submit(one, i, p): i for i, p in enumerate(points)
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is None:
                    results[futures[fut]] = fut.result()
                elif error is None:
                    error = exc
                    for other in pending:
                        other.cancel()  # points not started yet; the running ones end first
    finally:
        # Ctrl-C lands here too: no new point starts; the running ones (whose commands got the
        # signal as well) end before their workspaces, and the folder holding them, go.
        pool.shutdown(wait=True, cancel_futures=True)
        remove_path(base)
    if error is not None:
        raise error
    return [results[i] for i in sorted(results)]


def copy_workspace(project: Project, pipeline: Pipeline, dest: Path) -> None:
    """Copy the project's working files into ``dest`` (see the module docstring for what)."""
    root = str(project.root)
    ignored = _git_ignored(project.root)
    needed = set(pipeline.params_files()) | set(pipeline.metrics_files())
    for stage in pipeline:
        needed.update(d.path for d in stage.deps)
        needed.update(o.path for o in stage.all_outs())
    linked: set[str] = set()  # tracked data, and every folder inside tracked data

    def wanted(rel: str) -> bool:
        return any(n == rel or n.startswith(rel + "/") or rel.startswith(n + "/") for n in needed)

    def skipped(folder: str, names: list[str]) -> set[str]:
        skip = set()
        inside_tracked = folder in linked
        for name in names:
            src = os.path.join(folder, name)
            rel = os.path.relpath(src, root).replace(os.sep, "/")
            if name == ".git" or rel == PROJECT_DIR:
                skip.add(name)
            elif not (os.path.isdir(src) or os.path.isfile(src) or os.path.islink(src)):
                skip.add(name)  # sockets, fifos: nothing a pipeline reads, and unsafe to copy
            elif inside_tracked or os.path.exists(src + POINTER_SUFFIX):
                linked.add(src)
            elif _under(rel, ignored) and not wanted(rel):
                skip.add(name)
        return skip

    def link_or_copy(src: str, dst: str) -> None:
        if src in linked:
            try:
                os.link(src, dst)
                return
            except OSError:
                pass  # another file system, or links not allowed: a copy is as good
        shutil.copy2(src, dst)

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(root, dest, symlinks=True, ignore=skipped, copy_function=link_or_copy)


def _under(rel: str, ignored: set[str]) -> bool:
    """Return True if ``rel`` or one of its folders is in ``ignored``."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in ignored for i in range(1, len(parts) + 1))


def _git_ignored(root: Path) -> set[str]:
    """Return the paths under ``root`` Git ignores (whole folders as one), relative, POSIX."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
            cwd=root,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()  # no Git: every file is copied
    if done.returncode != 0:
        return set()  # not a Git repository
    names = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {n.rstrip("/") for n in names if n}


__all__ = ["SHARED", "PointProgress", "copy_workspace", "run_points"]

"""Garbage collection of the local cache: remove objects nothing refers to any more.

What counts as referenced is chosen by the caller (``keep``), always including the pointer files
of the working tree, the artifacts of every run (deleted runs too: they can be restored; a run's
artifacts are not a dataset and ``data gc`` is not the way to drop them) and the files of every
registered model version:

- ``workspace``: the versions the pointer files in the working tree name;
- ``all-commits``: every version of every pointer file committed on any branch, tag or ref;
- ``all-runs``: every dataset version a run recorded as an input or output (``mt.log_input``).

Objects younger than :data:`GRACE_SECONDS` are kept whatever refers to them: a run or an
``add`` may have stored them a moment ago without having recorded the reference yet. Temp files
that killed writers left in the cache (see ``objects.tempfiles``) are removed too; those of
writers still running are not.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mltrail.data.diff import workspace_pointers
from mltrail.data.git import GitRepo
from mltrail.data.lock import data_lock
from mltrail.data.pointer import Pointer
from mltrail.data.project import Project
from mltrail.data.workspace import QUIET, Reporter
from mltrail.errors import IntegrityError, InvalidInput, NotFound
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.tree import read_tree

SCOPES = ("workspace", "all-commits", "all-runs")
#: Objects stored less than this long ago are never collected.
GRACE_SECONDS = 15 * 60


@dataclass
class Collected:
    """What :func:`gc` found (and, unless a dry run, removed)."""

    scopes: list[str]
    #: Objects in the cache before, objects kept because referenced, and those too young.
    total: int
    referenced: int
    recent: int
    removed: int
    removed_bytes: int
    dry_run: bool
    #: Folder versions whose tree object is not in the cache (their files cannot be told apart).
    unknown_trees: int = 0
    #: Temp files of dead writers removed (or, in a dry run, that would be), and their bytes.
    temp_files: int = 0
    temp_bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return dict(self.__dict__)


def check_scopes(keep: Iterable[str]) -> list[str]:
    """Return the scopes, refusing unknown ones; ``workspace`` is always part of them."""
    scopes = ["workspace"]
    for s in keep:
        if s not in SCOPES:
            raise InvalidInput(
                f"unknown gc scope {s!r}", hint=f"Choose among: {', '.join(SCOPES)}."
            )
        if s not in scopes:
            scopes.append(s)
    return scopes


def _run_references(project: Project) -> tuple[set[str], set[str], set[str], set[str]]:
    """Return what the project's tracking store refers to: artifacts, file datasets, trees
    of folder datasets, and trees of registered model versions."""
    from mltrail.config import resolve
    from mltrail.store import open_store

    # The store the project's runs go to (MLTRAIL_TRACKING_URI may name another one).
    uri = resolve(create=False, start=project.root).tracking_uri
    if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///") :]):
        return set(), set(), set(), set()
    store = open_store(uri)
    try:
        return (*store.referenced_objects(), store.registry_tree_hashes())
    finally:
        store.close()


def gc(
    keep: Iterable[str] = ("workspace",),
    *,
    dry_run: bool = False,
    start: str | os.PathLike[str] | None = None,
    reporter: Reporter = QUIET,
) -> Collected:
    """Remove from the local cache every object not referenced within the ``keep`` scopes."""
    scopes = check_scopes(keep)
    project = Project.find(start)
    with data_lock(project.dir):
        store = project.store()
        pointers: list[Pointer] = list(workspace_pointers(project).values())
        if "all-commits" in scopes:
            pointers += GitRepo(project.root).all_pointers()
        artifacts, run_files, run_trees, model_trees = _run_references(project)
        # Registered model versions are always kept, whatever the scope: a deployment may load
        # any of them by alias.
        kept = artifacts | model_trees | {p.hash for p in pointers}
        trees = {p.hash for p in pointers if p.kind == "dir"} | model_trees
        if "all-runs" in scopes:
            kept |= run_files | run_trees
            trees |= run_trees
        unknown = 0
        for h in trees:
            try:
                tree = read_tree(store, h)
            except NotFound:
                unknown += 1
                continue
            except (IntegrityError, InvalidInput) as e:
                # Its files cannot be known, so none of them may be removed: stop here.
                raise IntegrityError(
                    f"gc stopped, nothing was removed: the folder listing {h[:12]} is damaged "
                    f"({e.message})",
                    hint="Fetch that version again (mltrail data fetch), or delete the damaged "
                    "object, then run gc again.",
                ) from None
            kept.update(e.hash for e in tree)
        result = _sweep(store, scopes, kept, dry_run, unknown, reporter)
        temps = store.temp_files(remove=not dry_run)
        result.temp_files, result.temp_bytes = temps.stale, temps.stale_bytes
        return result


def _sweep(
    store: LocalObjectStore,
    scopes: list[str],
    kept: set[str],
    dry_run: bool,
    unknown: int,
    reporter: Reporter,
) -> Collected:
    cutoff = time.time() - GRACE_SECONDS
    result = Collected(scopes, 0, 0, 0, 0, 0, dry_run, unknown)
    doomed: list[tuple[str, int]] = []
    for h in store.iter_hashes():
        result.total += 1
        if h in kept:
            result.referenced += 1
            continue
        try:
            st = os.stat(store.path_of(h))
        except FileNotFoundError:
            continue
        if st.st_mtime > cutoff:
            result.recent += 1
            continue
        doomed.append((h, st.st_size))
    result.removed = len(doomed)
    result.removed_bytes = sum(size for _, size in doomed)
    if dry_run or not doomed:
        return result
    reporter.begin("removing", result.removed_bytes, len(doomed))
    try:
        for h, size in doomed:
            with contextlib.suppress(NotFound):  # removed meanwhile: the goal is reached
                store.delete(h)
            reporter.advance(size)
    finally:
        reporter.end()
    return result


__all__ = ["GRACE_SECONDS", "SCOPES", "Collected", "check_scopes", "gc"]

"""Which version of a dataset a run used, and every version a dataset has had.

:func:`version_of` answers "what should a run record for ``data/train.csv``?": the version its
pointer names when the workspace matches it (or is missing), otherwise the version on disk, flagged
as not recorded. :func:`dataset_log` lists a dataset's versions: the Git commits that changed its
pointer, merged with the versions runs recorded in the metadata store, each with those runs.

Both only read: neither takes the data lock.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mltrail.data.pointer import Pointer, pointer_path, read_pointer
from mltrail.data.project import Project
from mltrail.data.workspace import scan
from mltrail.entities import DatasetRef, DatasetUse
from mltrail.errors import InvalidInput, InvalidState

if TYPE_CHECKING:
    from mltrail.store import TrackingStore
    from mltrail.tracking.client import MltrailClient

PathArg = str | os.PathLike[str]


class DatasetVersionWarning(UserWarning):
    """A run recorded a dataset version that its pointer file does not name."""


@dataclass(frozen=True)
class DatasetVersion:
    """The version of a tracked dataset to record for a run, and how it compares to its pointer."""

    #: Relative to the project root, POSIX style.
    path: str
    kind: Literal["file", "dir"]
    hash: str
    size: int
    #: Number of files for a folder, None for a file.
    nfiles: int | None
    #: The workspace compared with the pointer: ``unchanged``, ``modified`` or ``missing``.
    workspace: Literal["unchanged", "modified", "missing"]
    #: What the pointer file names.
    pointer: Pointer
    #: True when this version is the one the pointer names (so Git records it).
    recorded: bool
    #: True when the local object store holds this version.
    stored: bool

    def ref(self, context: str | None = None) -> DatasetRef:
        """Return the reference a run records for this version."""
        return DatasetRef(self.path, self.hash, self.kind, self.size, self.nfiles, context)

    def warning(self) -> str | None:
        """Return what to tell the user when this version is not the pointer's, else None."""
        if self.recorded:
            return None
        head = (
            f"{self.path} differs from its pointer ({self.pointer.hash[:12]}); logged the version "
            f"on disk ({self.hash[:12]})"
        )
        if self.stored:
            return (
                f"{head}: run `mltrail data checkout {self.path}` to use the pointer's version, or "
                f"`mltrail data add {self.path}` to record this one"
            )
        return f"{head}, which is not stored: run `mltrail data add {self.path}` to keep it"


def warn_if_unrecorded(version: DatasetVersion) -> None:
    """Issue a :class:`DatasetVersionWarning` at the user's line if the version is not recorded."""
    message = version.warning()
    if message is not None:
        warnings.warn(message, DatasetVersionWarning, stacklevel=_outside_mltrail())


def _outside_mltrail() -> int:
    """Return the ``stacklevel`` of the nearest caller outside the mltrail package."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("mltrail."):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def tracked_path(project: Project, given: PathArg) -> tuple[Path, str]:
    """Return the absolute and relative path of a tracked dataset; refuse anything else."""
    data = project.data_path(given)
    rel = project.rel(data)
    if pointer_path(data).exists():
        return data, rel
    for parent in data.parents:
        if parent == project.root:
            break
        if pointer_path(parent).exists():
            folder = project.rel(parent)
            raise InvalidInput(
                f"{rel} is inside {folder}, which is tracked as a whole; versions are recorded "
                f"for {folder}, not for the files in it",
                hint=f"Use the dataset's path: {folder}",
            )
    if not os.path.lexists(data):
        raise InvalidInput(
            f"{rel} is not tracked and does not exist (no {rel}, no {rel}.trail)",
            hint="Check the path; `mltrail data status` lists the tracked datasets.",
        )
    raise InvalidInput(
        f"{rel} is not tracked (no {rel}.trail)",
        hint=f"Track it first: mltrail data add {rel}",
    )


def version_of(path: PathArg, *, start: PathArg | None = None) -> DatasetVersion:
    """Return the version of a tracked dataset to record for a run.

    ``path`` is a dataset (or its pointer file) in the project found from ``start`` (default: the
    working directory). The workspace copy is compared with the pointer through the stat cache, so
    unchanged files are not hashed again.
    """
    project = Project.find(start)
    data, rel = tracked_path(project, path)
    pointer = read_pointer(pointer_path(data))
    store = project.store()
    if not os.path.exists(data):
        return _version(rel, pointer, "missing", pointer, store.exists(pointer.hash))
    project.ignore_local_state()
    with project.stat_cache() as cache:
        found = scan(project.root, data, cache)
    on_disk = Pointer(
        found.hash, found.kind, found.size, found.nfiles if found.kind == "dir" else None
    )
    if on_disk == pointer:
        return _version(rel, pointer, "unchanged", pointer, store.exists(pointer.hash))
    # A folder's tree object is written after its files, so its presence means the whole version.
    return _version(rel, on_disk, "modified", pointer, store.exists(on_disk.hash))


def _version(
    rel: str, found: Pointer, workspace: Any, pointer: Pointer, stored: bool
) -> DatasetVersion:
    return DatasetVersion(
        rel,
        found.kind,
        found.hash,
        found.size,
        found.nfiles,
        workspace,
        pointer,
        recorded=found == pointer,
        stored=stored,
    )


# -- history ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetCommit:
    """A Git commit that set a dataset's pointer file to a version."""

    commit: str
    #: Commit time, milliseconds since the epoch.
    time: int
    author: str
    subject: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "commit": self.commit,
            "time": self.time,
            "author": self.author,
            "subject": self.subject,
        }


@dataclass
class DatasetLogEntry:
    """One version of a dataset: the commits that recorded it and the runs that used it."""

    path: str
    hash: str
    kind: str
    size: int
    nfiles: int | None
    #: When it appeared (ms): its newest commit, else the pointer file's mtime for a version not
    #: committed yet, else the first time a run logged it.
    time: int
    #: The workspace pointer names this version.
    current: bool = False
    #: Commits that set the pointer to this version, newest first (empty: not in Git history).
    commits: list[DatasetCommit] = field(default_factory=list)
    #: Runs that read or wrote this version, newest first.
    uses: list[DatasetUse] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "hash": self.hash,
            "kind": self.kind,
            "size": self.size,
            "nfiles": self.nfiles,
            "time": self.time,
            "current": self.current,
            "commit": self.commits[0].commit if self.commits else None,
            "commits": [c.to_dict() for c in self.commits],
            "runs": [
                {
                    "run_id": u.run_id,
                    "run_name": u.run_name,
                    "experiment_id": u.experiment_id,
                    "status": u.status,
                    "start_time": u.start_time,
                    "direction": u.direction,
                    "context": u.dataset.context,
                }
                for u in self.uses
            ],
        }


@dataclass
class DatasetLog:
    """Every known version of one dataset, newest first."""

    path: str
    #: False when the project is not in a Git repository (or it has no commits yet).
    in_git: bool
    versions: list[DatasetLogEntry]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "path": self.path,
            "in_git": self.in_git,
            "versions": [v.to_dict() for v in self.versions],
        }


def dataset_log(
    path: PathArg, *, start: PathArg | None = None, client: MltrailClient | None = None
) -> DatasetLog:
    """Return the versions of a dataset, newest first, each with the runs that read or wrote it.

    Versions come from the Git commits that changed ``PATH.trail``, the pointer in the workspace
    (committed or not) and the versions runs recorded in the metadata store (``client``'s, else
    the project's). Commits that deleted the pointer are not versions and are left out. Deleted
    runs are not counted.
    """
    project = Project.find(start)
    data = project.data_path(path)
    rel = project.rel(data)
    ptr = pointer_path(data)
    in_git, commits = _history(project, rel)
    uses = _uses(project, rel, client)
    if not ptr.exists() and not commits and not uses:
        tracked_path(project, path)  # raises the error that says why
    by_hash: dict[str, DatasetLogEntry] = {}
    for c in commits:
        if c.pointer is None:
            continue
        entry = by_hash.get(c.pointer.hash)
        if entry is None:
            p = c.pointer
            entry = by_hash[p.hash] = DatasetLogEntry(
                rel, p.hash, p.kind, p.size, p.nfiles, c.time * 1000
            )
        entry.commits.append(DatasetCommit(c.commit, c.time * 1000, c.author, c.subject))
    if ptr.exists():
        current = read_pointer(ptr)
        entry = by_hash.get(current.hash)
        if entry is None:
            mtime = int(ptr.stat().st_mtime * 1000)
            entry = by_hash[current.hash] = DatasetLogEntry(
                rel, current.hash, current.kind, current.size, current.nfiles, mtime
            )
        entry.current = True
    for use in uses:
        entry = by_hash.get(use.dataset.hash)
        if entry is None:
            d = use.dataset
            entry = by_hash[d.hash] = DatasetLogEntry(
                rel, d.hash, d.kind, d.size, d.nfiles, use.timestamp
            )
        elif not entry.commits and not entry.current:
            entry.time = min(entry.time, use.timestamp)
        entry.uses.append(use)
    versions = sorted(by_hash.values(), key=lambda e: (e.time, e.current), reverse=True)
    return DatasetLog(rel, in_git, versions)


def _history(project: Project, rel: str) -> tuple[bool, list[Any]]:
    """Return whether the project has Git history, and the commits that changed the pointer."""
    from mltrail.data.git import GitRepo

    try:
        repo = GitRepo(project.root)
    except InvalidState:
        return False, []  # not in a Git repository, or no git on this machine
    try:
        repo.resolve("HEAD")
    except InvalidInput:
        return False, []  # a repository without commits yet
    return True, repo.history(rel)


def _uses(project: Project, rel: str, client: MltrailClient | None) -> list[DatasetUse]:
    if client is not None:
        return client.find_dataset_uses(path=rel)
    from mltrail.config import resolve
    from mltrail.store import open_store

    location = resolve(create=False, start=project.root)
    store: TrackingStore = open_store(location.tracking_uri, where=str(project.dir))
    try:
        return store.find_dataset_uses(path=rel)
    finally:
        store.close()


__all__ = [
    "DatasetCommit",
    "DatasetLog",
    "DatasetLogEntry",
    "DatasetVersion",
    "DatasetVersionWarning",
    "dataset_log",
    "tracked_path",
    "version_of",
    "warn_if_unrecorded",
]

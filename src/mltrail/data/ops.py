"""The data operations: add, status, checkout, unprotect."""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mltrail.data.links import check_link_type, current_umask, hardlink_risk, place
from mltrail.data.links import unprotect as _unprotect_file
from mltrail.data.lock import data_lock
from mltrail.data.pointer import Pointer, pointer_path, read_pointer, write_pointer
from mltrail.data.problems import MissingObject, Places, Stores, incomplete, lacking
from mltrail.data.project import Project, ensure_gitignored
from mltrail.data.statcache import StatCache, StatKey
from mltrail.data.workspace import QUIET, Reporter, rel_key, scan
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound
from mltrail.objects.hashing import default_workers, map_parallel
from mltrail.objects.tree import MODE_EXECUTABLE, MODE_FILE, Tree, TreeEntry, read_tree, store_tree

PathArg = str | os.PathLike[str]
State = Literal["unchanged", "modified", "deleted", "not in cache"]


@dataclass(frozen=True)
class Added:
    """One dataset recorded by :func:`add`."""

    path: str
    pointer: str
    kind: str
    hash: str
    size: int
    nfiles: int
    #: False when the pointer already named this version (nothing was written).
    changed: bool
    #: Files that had to be hashed (the rest were unchanged according to the stat cache).
    hashed: int


@dataclass
class DatasetStatus:
    """How a dataset in the workspace compares with its pointer file."""

    path: str
    pointer: str
    kind: str
    state: State
    #: ``unchanged``, ``modified`` or ``missing``.
    workspace: str
    #: True if the object (and, for folders, every file of the tree) is in the local cache.
    in_cache: bool
    hash: str
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict with stable keys."""
        return {
            "path": self.path,
            "pointer": self.pointer,
            "kind": self.kind,
            "state": self.state,
            "workspace": self.workspace,
            "in_cache": self.in_cache,
            "hash": self.hash,
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
        }


@dataclass
class CheckedOut:
    """One dataset handled by :func:`checkout`."""

    path: str
    kind: str
    hash: str
    #: Files written into the workspace.
    written: int
    #: Files already right, left alone.
    unchanged: int
    #: How the written files were made: ``{"copy": 3, "reflink": 1}``.
    links: dict[str, int] = field(default_factory=dict)
    #: Set when files were hardlinked into the cache as root (an in-place edit would damage it).
    warning: str = ""


# -- add -------------------------------------------------------------------------------------------


def add(
    paths: Iterable[PathArg], *, start: PathArg | None = None, reporter: Reporter = QUIET
) -> list[Added]:
    """Record the current version of files or folders: store them, write ``<path>.trail``.

    Each path must be inside the project (the folder holding ``.mltrail/``), not Git-tracked and not
    a link out of the project. The data goes into ``.mltrail/objects``, the pointer is written
    beside it and the path is added to the ``.gitignore`` of its folder. The workspace copy is left
    as it is. Adding an unchanged path again changes nothing.
    """
    project = Project.find(start)
    targets: list[Path] = []
    for given in paths:
        path = project.data_path(given, for_add=True)
        if path not in targets:
            targets.append(path)
    if not targets:
        raise InvalidInput("no paths to add", hint="Name the files or folders to track.")
    for path in targets:
        project.check_not_in_git(path)
    results = []
    project.ignore_local_state()
    with data_lock(project.dir), project.stat_cache() as cache:
        store = project.store()
        for path in targets:
            found = scan(project.root, path, cache, reporter)
            reporter.begin("storing", found.size, found.nfiles)
            try:
                if found.tree is not None:
                    files = {rel: Path(src) for rel, src in found.files.items()}
                    store_tree(store, found.tree, files, progress=reporter.advance)
                else:
                    store.put_files([(path, found.hash)], progress=reporter.advance)
            finally:
                reporter.end()
            new = Pointer(
                found.hash, found.kind, found.size, found.nfiles if found.kind == "dir" else None
            )
            ptr = pointer_path(path)
            try:
                old = read_pointer(ptr) if ptr.exists() else None
            except InvalidInput:
                old = None  # a damaged pointer is simply replaced by the right one
            if old != new:
                write_pointer(ptr, new)
            ensure_gitignored(path)
            results.append(
                Added(
                    project.rel(path),
                    project.rel(ptr),
                    found.kind,
                    found.hash,
                    found.size,
                    found.nfiles,
                    changed=old != new,
                    hashed=found.hashed,
                )
            )
    return results


# -- status ----------------------------------------------------------------------------------------


def status(
    paths: Iterable[PathArg] | None = None,
    *,
    start: PathArg | None = None,
    reporter: Reporter = QUIET,
) -> list[DatasetStatus]:
    """Compare every pointer file (or those of ``paths``) with the workspace and the cache."""
    project = Project.find(start)
    out = []
    project.ignore_local_state()
    with project.stat_cache() as cache:
        store = project.store()
        for ptr in project.selected(paths):
            pointer = read_pointer(ptr)
            data = ptr.with_name(ptr.name[: -len(".trail")])
            found = scan(project.root, data, cache, reporter) if os.path.exists(data) else None
            same = found is not None and (found.kind, found.hash) == (pointer.kind, pointer.hash)
            tree: Tree | None = None
            if pointer.kind == "file":
                in_cache = store.exists(pointer.hash)
            elif same and found is not None:
                # The workspace hashes to the pointer's tree: its files are the tree's entries,
                # so there is no need to read and check the stored tree entry by entry.
                in_cache = store.exists(pointer.hash) and not store.missing(
                    row[1] for row in found.rows
                )
            else:
                try:
                    tree = read_tree(store, pointer.hash)
                    in_cache = not store.missing({e.hash for e in tree})
                except (NotFound, IntegrityError, InvalidInput):
                    in_cache = False
            st = DatasetStatus(
                project.rel(data),
                project.rel(ptr),
                pointer.kind,
                "unchanged",
                "unchanged",
                in_cache,
                pointer.hash,
            )
            if found is None:
                st.workspace = "missing"
            elif not same:
                st.workspace = "modified"
                if tree is not None and found.kind == "dir":
                    _diff(tree, found.by_path(), st)
            if st.workspace == "missing":
                st.state = "deleted" if in_cache else "not in cache"
            elif st.workspace == "modified":
                st.state = "modified"
            elif not in_cache:
                st.state = "not in cache"
            out.append(st)
    return out


def _diff(old: Tree, after: dict[str, tuple[str, int]], into: DatasetStatus) -> None:
    before = {e.path: (e.hash, e.mode) for e in old}
    into.added = sorted(after.keys() - before.keys())
    into.deleted = sorted(before.keys() - after.keys())
    into.modified = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])


# -- checkout --------------------------------------------------------------------------------------


@dataclass
class _Job:
    dataset: str
    entry: TreeEntry
    dest: Path


def checkout(
    paths: Iterable[PathArg] | None = None,
    *,
    start: PathArg | None = None,
    force: bool = False,
    link: str | None = None,
    reporter: Reporter = QUIET,
) -> list[CheckedOut]:
    """Make the workspace match the pointer files (all, or those of ``paths``), from the cache.

    Files already right are left alone. A workspace file with changes not recorded by a pointer is
    not overwritten unless ``force``; files in a tracked folder that the pointer does not list are
    kept. A workspace file whose content is itself in the cache (an earlier or later version that
    was added) is replaced without ``force``: nothing is lost. Every file is verified against its
    hash before it is put in place. A dataset with objects missing from the cache is left alone,
    and a damaged object is not put in place; the other datasets are checked out, then
    :class:`~mltrail.data.problems.Incomplete` names every such object (``partial`` holds the
    results).
    """
    project = Project.find(start)
    results, problems = checkout_available(
        paths, start=project.root, force=force, link=link, reporter=reporter
    )
    if problems:
        lost = lacking(problems)
        done = len([r for r in results if r.path not in lost])
        shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        raise incomplete(
            f"checked out {done} dataset(s), but {len(lost)} could not be checked out "
            f"completely ({shown})",
            problems,
            Stores(project.store()),
            partial=results,
        )
    return results


def checkout_available(
    paths: Iterable[PathArg] | None = None,
    *,
    start: PathArg | None = None,
    force: bool = False,
    link: str | None = None,
    reporter: Reporter = QUIET,
) -> tuple[list[CheckedOut], list[MissingObject]]:
    """Like :func:`checkout`, but return the objects missing or damaged instead of raising."""
    project = Project.find(start)
    link = check_link_type(link, "the link argument") if link else project.link_type()
    results: list[CheckedOut] = []
    jobs: list[_Job] = []
    changed: list[tuple[str, str]] = []
    places = Places()
    problems: list[MissingObject] = []
    project.ignore_local_state()
    with data_lock(project.dir), project.stat_cache() as cache:
        store = project.store()
        for ptr in project.selected(paths):
            pointer = read_pointer(ptr)
            data = ptr.with_name(ptr.name[: -len(".trail")])
            name = project.rel(data)
            linked: set[str] = set()
            if pointer.kind == "dir":
                places.add(pointer.hash, name, listing=True)
                try:
                    tree = read_tree(store, pointer.hash)
                except (NotFound, IntegrityError) as e:
                    damaged = isinstance(e, IntegrityError)
                    problems.append(places.problem(pointer.hash, damaged=damaged, side="local"))
                    continue
                if os.path.lexists(data) and not os.path.isdir(data):
                    raise InvalidInput(f"cannot check out folder {name}: a file is in the way")
                entries = list(tree)
                found = scan(project.root, data, cache, reporter) if os.path.isdir(data) else None
                have = found.by_path() if found else {}
                linked.update(found.linked if found else ())
            else:
                if os.path.isdir(data):
                    raise InvalidInput(f"cannot check out file {name}: a folder is in the way")
                entries = [TreeEntry(data.name, pointer.hash, pointer.size, MODE_FILE)]
                have = {}
                if os.path.exists(data):
                    found = scan(project.root, data, cache, reporter)
                    have[data.name] = (found.hash, MODE_FILE)
                    if found.linked:
                        linked.add(data.name)
            if link == "hardlink":
                linked.clear()
            base = data if pointer.kind == "dir" else data.parent
            result = CheckedOut(name, pointer.kind, pointer.hash, 0, 0)
            for e in entries:
                places.add(e.hash, name, e.path if pointer.kind == "dir" else "")
                now = have.get(e.path)
                # A read-only hardlink an older checkout made is replaced by a safe copy.
                if now == (e.hash, e.mode) and e.path not in linked:
                    result.unchanged += 1
                    continue
                if now is not None and now[0] != e.hash and not force:
                    changed.append((project.rel(base / e.path), now[0]))
                jobs.append(_Job(name, e, base / e.path))
            results.append(result)
        # Overwriting a version that is in the cache loses nothing (the usual case after
        # `git checkout` of older pointers); only content stored nowhere else is protected.
        unsaved = store.missing({h for _, h in changed})
        conflicts = [path for path, h in changed if h in unsaved]
        if conflicts:
            shown = ", ".join(conflicts[:5]) + (
                f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
            )
            raise InvalidState(
                f"checkout would overwrite changes that were never added: {shown}",
                hint="Record them with `mltrail data add`, or discard them with --force.",
            )
        # A dataset with files missing from the cache is left as it is, whole.
        missing = store.missing({j.entry.hash for j in jobs})
        if missing:
            problems += [places.problem(h, side="local") for h in sorted(missing)]
            lost = places.datasets(missing)
            jobs = [j for j in jobs if j.dataset not in lost]
            results = [r for r in results if r.path not in lost]
        problems += _run(project, jobs, link, results, cache, reporter, places)
    return results, problems


def _run(
    project: Project,
    jobs: list[_Job],
    link: str,
    results: list[CheckedOut],
    cache: StatCache,
    reporter: Reporter,
    places: Places,
) -> list[MissingObject]:
    """Put the files of ``jobs`` in place; return the damaged objects, which were not."""
    if not jobs:
        return []
    umask = current_umask()
    store = project.store()
    for folder in sorted({j.dest.parent for j in jobs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidInput(
                f"cannot create folder {project.rel(folder)}: a file is in the way",
                hint="Move the file away and check out again.",
            ) from None
    by_name = {r.path: r for r in results}
    done: list[tuple[_Job, str]] = []
    damaged: set[str] = set()

    def one(job: _Job) -> str:
        e = job.entry
        try:
            return place(
                store.path_of(e.hash),
                e.hash,
                job.dest,
                link=link,
                executable=e.mode == MODE_EXECUTABLE,
                umask=umask,
            )
        except IntegrityError:
            # The cached object is damaged: this file stays as it was, the others go on.
            damaged.add(e.hash)
            return ""

    def finished(job: _Job, used: str) -> None:
        if used:
            done.append((job, used))
        reporter.advance(job.entry.size)

    reporter.begin("checking out", sum(j.entry.size for j in jobs), len(jobs))
    try:
        map_parallel(one, jobs, default_workers(), finished)
    finally:
        reporter.end()
        rows = []
        for job, used in done:
            r = by_name[job.dataset]
            r.written += 1
            r.links[used] = r.links.get(used, 0) + 1
            try:
                st = os.stat(job.dest)
            except OSError:
                continue
            rows.append((rel_key(project.root, job.dest), StatKey.of(st), job.entry.hash))
        # mltrail wrote and verified these files itself: no racy-timestamp doubt.
        cache.put_many(rows, trusted=True)
        for r in results:
            r.warning = hardlink_risk(r.path, r.links.get("hardlink", 0))
    return [places.problem(h, damaged=True, side="local") for h in sorted(damaged)]


# -- unprotect -------------------------------------------------------------------------------------


def unprotect(paths: Iterable[PathArg], *, start: PathArg | None = None) -> int:
    """Turn hardlinked (read-only) workspace files into private writable copies; return how many."""
    project = Project.find(start)
    count = 0
    umask = current_umask()
    with data_lock(project.dir):
        for ptr in project.selected(paths):
            data = ptr.with_name(ptr.name[: -len(".trail")])
            if os.path.isdir(data):
                files = [Path(d, f) for d, _, fs in os.walk(data) for f in fs]
            elif os.path.exists(data):
                files = [data]
            else:
                files = []
            for f in files:
                if stat.S_ISREG(os.lstat(f).st_mode) and _unprotect_file(f, umask):
                    count += 1
    return count


def link_counts(results: Iterable[CheckedOut]) -> Counter[str]:
    """Return how many files each link type produced over several checkout results."""
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.links)
    return total


__all__ = [
    "Added",
    "CheckedOut",
    "DatasetStatus",
    "add",
    "checkout",
    "checkout_available",
    "link_counts",
    "status",
    "unprotect",
]

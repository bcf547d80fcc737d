"""Moving dataset versions between the local cache and a remote: push, fetch, pull.

Only objects the other side lacks are sent, found with one batched existence check. Folder
versions travel as their files first and their tree object last, so a remote never holds a tree
whose files are not all there (an interrupted push looks incomplete, and a rerun completes it).
Every object is verified against its hash as it arrives.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from mltrail.data.lock import data_lock
from mltrail.data.pointer import Pointer, data_path_of, read_pointer
from mltrail.data.problems import (
    Incomplete,
    MissingObject,
    Places,
    Side,
    Stores,
    incomplete,
    lacking,
)
from mltrail.data.project import Project
from mltrail.data.remotes import Remote, get_remote, open_remote
from mltrail.data.workspace import QUIET, Reporter
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound
from mltrail.objects.base import ObjectStore
from mltrail.objects.hashing import default_workers, map_parallel
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.tree import read_tree

PathArg = str | os.PathLike[str]
#: Dataset names listed in a summary before "and N more".
MAX_DATASETS = 5


@dataclass
class Transfer:
    """What a push or fetch did.

    ``copied`` and ``present`` count objects alike in both directions: every file's content
    once (files with the same bytes share one object) plus one listing per folder version.
    """

    remote: str
    url: str
    datasets: int = 0
    #: Objects copied, and their bytes.
    copied: int = 0
    bytes: int = 0
    #: Objects the destination already had.
    present: int = 0
    #: Objects the source lacks (fetch: not on the remote; push: not in the local cache).
    missing: list[MissingObject] = field(default_factory=list)
    #: Objects whose bytes no longer match their hash (on the remote, or in the local cache).
    damaged: list[MissingObject] = field(default_factory=list)
    #: Datasets that lack at least one object (missing or damaged), which were left out.
    incomplete: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[MissingObject]:
        """Return the missing and the damaged objects."""
        return [*self.damaged, *self.missing]

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "remote": self.remote,
            "url": self.url,
            "datasets": self.datasets,
            "copied": self.copied,
            "bytes": self.bytes,
            "present": self.present,
            "missing": [m.to_dict() for m in self.missing],
            "damaged": [m.to_dict() for m in self.damaged],
            "incomplete": self.incomplete,
        }


@dataclass
class _Wanted:
    """The objects of the selected datasets (files and folder listings apart), and problems."""

    #: File objects: hash → size.
    files: dict[str, int] = field(default_factory=dict)
    #: Folder listings: hash → the (first) dataset.
    trees: dict[str, str] = field(default_factory=dict)
    places: Places = field(default_factory=Places)
    problems: list[MissingObject] = field(default_factory=list)

    def add_file(self, name: str, pointer: Pointer) -> None:
        self.files[pointer.hash] = pointer.size
        self.places.add(pointer.hash, name)

    def add_tree(self, name: str, pointer: Pointer, store: ObjectStore) -> bool:
        """Add a folder version's files from its listing in ``store`` (the local cache).

        Return False, with the problem recorded, if the listing is missing or damaged there.
        """
        self.places.add(pointer.hash, name, listing=True)
        try:
            tree = read_tree(store, pointer.hash)
        except (NotFound, IntegrityError) as e:
            damaged = isinstance(e, IntegrityError)
            self.problem(pointer.hash, damaged=damaged, side="local")
            return False
        self.trees.setdefault(pointer.hash, name)
        for e in tree:
            self.files[e.hash] = e.size
            self.places.add(e.hash, name, e.path)
        return True

    def problem(self, hash: str, *, damaged: bool = False, side: Side = "remote") -> None:
        self.problems.append(self.places.problem(hash, damaged=damaged, side=side))

    def lost(self) -> set[str]:
        """Return the datasets a problem makes incomplete (every one holding such an object)."""
        return self.places.datasets(m.hash for m in self.problems)

    def report(self, result: Transfer) -> None:
        """Copy the problems and the incomplete datasets into ``result``."""
        result.missing = [m for m in self.problems if not m.damaged]
        result.damaged = [m for m in self.problems if m.damaged]
        result.incomplete = sorted(self.lost())


def _objects(n: int) -> str:
    return f"{n} object{'' if n == 1 else 's'}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_DATASETS])
    more = f" and {len(names) - MAX_DATASETS} more" if len(names) > MAX_DATASETS else ""
    return shown + more


def _datasets_word(n: int) -> str:
    return f"{n} dataset{'' if n == 1 else 's'}"


def _datasets(project: Project, paths: Iterable[PathArg] | None) -> list[tuple[str, Pointer]]:
    return [(project.rel(data_path_of(ptr)), read_pointer(ptr)) for ptr in project.selected(paths)]


def _open(
    project: Project, remote: str | None, jobs: int | None, *, reading: bool = False
) -> tuple[Remote, ObjectStore]:
    r = get_remote(project.dir, remote)
    store = open_remote(project.root, r)
    if reading and isinstance(store, LocalObjectStore) and not store.root.is_dir():
        raise NotFound(
            f"remote {r.name!r}: the folder {store.root} does not exist",
            hint="Check the path (mltrail remote list), or mount the share it is on.",
        )
    if jobs is not None and hasattr(store, "max_workers"):
        store.max_workers = max(1, jobs)
    return r, store


def _incomplete_head(done: str, result: Transfer, state: str) -> str:
    """``pushed 12 objects to origin, but 1 of 3 datasets is not complete there (data/a)``."""
    lost = result.incomplete
    verb = "is" if len(lost) == 1 else "are"
    return (
        f"{done}, but {len(lost)} of {_datasets_word(result.datasets)} {verb} {state} "
        f"({_names(lost)})"
    )


# -- push ------------------------------------------------------------------------------------------


def push(
    paths: Iterable[PathArg] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    start: PathArg | None = None,
    reporter: Reporter = QUIET,
    all_commits: bool = False,
) -> Transfer:
    """Send the versions the pointer files name (all, or those of ``paths``) to a remote.

    ``all_commits`` adds every version committed on any branch, tag or ref (those an import
    recorded from before the cutover included), so a clone can open any revision with the
    remote alone. Only objects the remote lacks are sent. Objects missing from the local cache
    or damaged there leave out only the datasets that hold them: everything else is sent, then
    :class:`~mltrail.data.problems.Incomplete` names every such object (its ``partial`` is the
    :class:`Transfer`).
    """
    project = Project.find(start)
    r, dest = _open(project, remote, jobs)
    result = Transfer(r.name, dest.location)
    with data_lock(project.dir):
        local = project.store()
        wanted = _Wanted()
        datasets = _datasets(project, paths)
        if all_commits:
            from mltrail.data.git import GitRepo

            named = {p.hash for _, p in datasets}
            for pointer in GitRepo(project.root).all_pointers():
                if pointer.hash not in named:
                    named.add(pointer.hash)
                    datasets.append((f"a committed version {pointer.hash[:12]}", pointer))
        result.datasets = len(datasets)
        for name, pointer in datasets:
            if pointer.kind == "dir":
                wanted.add_tree(name, pointer, local)
            else:
                wanted.add_file(name, pointer)
        absent = local.missing(wanted.files)
        for h in sorted(absent):
            wanted.problem(h, side="local")
        files = [h for h in wanted.files if h not in absent]
        need = sorted(dest.missing(files))
        result.present = len(files) - len(need)
        reporter.begin(f"pushing to {r.name}:", sum(wanted.files[h] for h in need), len(need))
        try:
            sent = _upload(local, dest, need, reporter, wanted)
        finally:
            reporter.end()
        # A listing goes up only with all its files: it must never announce files the remote
        # lacks (checked after the files went up, which is when damaged ones come to light).
        lost = wanted.lost()
        trees = [h for h, name in wanted.trees.items() if name not in lost]
        need_trees = sorted(dest.missing(trees))
        result.present += len(trees) - len(need_trees)
        sent_trees = _upload(local, dest, need_trees, QUIET, wanted)
        result.copied = len(sent) + len(sent_trees)
        result.bytes = sum(wanted.files[h] for h in sent) + sum(local.size(h) for h in sent_trees)
    wanted.report(result)
    if result.problems:
        raise incomplete(
            _incomplete_head(
                f"pushed {_objects(result.copied)} to {r.name} ({result.url})",
                result,
                "not complete there",
            ),
            result.problems,
            Stores(local, dest, r.name),
            partial=result,
        )
    return result


def _upload(
    local: LocalObjectStore,
    dest: ObjectStore,
    hashes: list[str],
    reporter: Reporter,
    wanted: _Wanted,
) -> list[str]:
    """Send ``hashes`` from the local cache; return those sent (damaged ones are recorded)."""
    left = list(hashes)
    bad: set[str] = set()
    while left:
        try:
            dest.put_files([(local.path_of(h), h) for h in left], progress=reporter.advance)
            break
        except (InvalidState, InvalidInput):
            # The destination refuses bytes that do not hash to their name (InvalidState), and
            # a vanished file cannot be read (InvalidInput): find every such object among those
            # not sent yet, record it, and send the others.
            left = sorted(dest.missing(left))
            found = _unusable(local, left, wanted)
            if not found:
                raise
            bad |= found
            left = [h for h in left if h not in found]
    return [h for h in hashes if h not in bad]


def _unusable(local: LocalObjectStore, hashes: list[str], wanted: _Wanted) -> set[str]:
    """Return those of ``hashes`` that are damaged or gone in the local cache, recording them."""

    def check(h: str) -> str:
        try:
            return "" if local.verify(h) else "damaged"
        except NotFound:
            return "missing"

    found = set()
    for h, state in zip(hashes, map_parallel(check, hashes, default_workers()), strict=True):
        if state:
            found.add(h)
            wanted.problem(h, damaged=state == "damaged", side="local")
    return found


# -- fetch and pull --------------------------------------------------------------------------------


def _fetch(
    project: Project,
    datasets: list[tuple[str, Pointer]],
    remote: str | None,
    jobs: int | None,
    reporter: Reporter,
) -> tuple[Transfer, Stores]:
    """Fetch what ``datasets`` need; objects missing or damaged on the remote are recorded."""
    r, src = _open(project, remote, jobs, reading=True)
    result = Transfer(r.name, src.location)
    local = project.store()
    stores = Stores(local, src, r.name)
    wanted = _Wanted()
    result.datasets = len(datasets)
    workers = jobs or getattr(src, "max_workers", None)
    skipped: dict[str, bool] = {}

    def skip(h: str, e: IntegrityError | NotFound) -> None:
        skipped[h] = isinstance(e, IntegrityError)

    # Folder listings first: they say which files to fetch.
    tree_hashes = set()
    for name, p in datasets:
        if p.kind == "dir":
            wanted.places.add(p.hash, name, listing=True)
            tree_hashes.add(p.hash)
    need_trees = local.missing(tree_hashes)
    gone = src.missing(need_trees) if need_trees else set()
    todo_trees = sorted(need_trees - gone)
    copied = local.fetch_from(src, todo_trees, workers=workers, skip=skip)
    for h in sorted(gone):
        wanted.problem(h)
    for h, damaged in sorted(skipped.items()):
        wanted.problem(h, damaged=damaged)
    tree_bytes = sum(local.size_or_none(h) or 0 for h in todo_trees if h not in skipped)
    result.present = len(tree_hashes) - len(need_trees)
    unavailable = gone | set(skipped)
    for name, p in datasets:
        if p.kind == "dir":
            if p.hash not in unavailable:
                wanted.add_tree(name, p, local)
        else:
            wanted.add_file(name, p)
    need = local.missing(wanted.files)
    gone = src.missing(need)
    for h in sorted(gone):
        wanted.problem(h)
    todo = sorted(need - gone)
    result.present += len(wanted.files) - len(need)
    skipped.clear()
    reporter.begin(f"fetching from {r.name}:", sum(wanted.files[h] for h in todo), len(todo))
    try:
        copied += local.fetch_from(
            src, todo, progress=reporter.advance, workers=workers, sizes=wanted.files, skip=skip
        )
    finally:
        reporter.end()
    for h, damaged in sorted(skipped.items()):
        wanted.problem(h, damaged=damaged)
    result.copied = copied
    result.bytes = tree_bytes + sum(wanted.files[h] for h in todo if h not in skipped)
    wanted.report(result)
    return result, stores


def _fetch_error(result: Transfer, stores: Stores, partial: object) -> Incomplete:
    return incomplete(
        _incomplete_head(
            f"fetched {_objects(result.copied)} from {result.remote} ({result.url})",
            result,
            "incomplete in the local cache",
        ),
        result.problems,
        stores,
        partial=partial,
    )


def fetch(
    paths: Iterable[PathArg] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    start: PathArg | None = None,
    reporter: Reporter = QUIET,
) -> Transfer:
    """Download into the local cache the versions the pointer files name (all, or ``paths``).

    The workspace is not touched (see :func:`pull`). Objects missing or damaged on the remote
    leave out only the datasets that hold them (nothing damaged is stored): everything else is
    fetched, then :class:`~mltrail.data.problems.Incomplete` names every such object.
    """
    project = Project.find(start)
    with data_lock(project.dir):
        result, stores = _fetch(project, _datasets(project, paths), remote, jobs, reporter)
    if result.problems:
        raise _fetch_error(result, stores, result)
    return result


def fetch_versions(
    datasets: Iterable[tuple[str, Pointer]],
    *,
    remote: str | None = None,
    jobs: int | None = None,
    start: PathArg | None = None,
    reporter: Reporter = QUIET,
) -> Transfer:
    """Download given dataset versions (``(path, pointer)`` pairs) into the local cache.

    Like :func:`fetch`, for versions no pointer file in the workspace names (a run's inputs).
    """
    project = Project.find(start)
    with data_lock(project.dir):
        result, stores = _fetch(project, list(datasets), remote, jobs, reporter)
    if result.problems:
        raise _fetch_error(result, stores, result)
    return result


@dataclass
class Pulled:
    """What :func:`pull` did: the fetch, then the checkout of every complete dataset."""

    fetched: Transfer
    checked_out: list = field(default_factory=list)


def pull(
    paths: Iterable[PathArg] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    link: str | None = None,
    start: PathArg | None = None,
    reporter: Reporter = QUIET,
) -> Pulled:
    """Fetch, then check out: the workspace gets the exact bytes the pointer files name.

    Datasets whose objects are all available are checked out even when others' are missing
    from the remote or damaged (on the remote or in the local cache); then
    :class:`~mltrail.data.problems.Incomplete` names every such object (its ``partial`` is the
    :class:`Pulled`).
    """
    from mltrail.data.ops import checkout_available

    project = Project.find(start)
    with data_lock(project.dir):
        datasets = _datasets(project, paths)
        fetched, stores = _fetch(project, datasets, remote, jobs, reporter)
    lost = set(fetched.incomplete)
    complete = [project.root / name for name, _ in datasets if name not in lost]
    result = Pulled(fetched)
    problems = list(fetched.problems)
    if complete:
        result.checked_out, more = checkout_available(
            complete, start=project.root, force=force, link=link, reporter=reporter
        )
        problems += more
    if problems:
        names = lacking(problems)
        done = len(datasets) - len(names)
        raise incomplete(
            f"fetched {_objects(fetched.copied)} from {fetched.remote} ({fetched.url}), "
            f"checked out {done} of {_datasets_word(len(datasets))}; {len(names)} not checked out "
            f"({_names(names)})",
            problems,
            stores,
            partial=result,
        )
    return result


__all__ = ["MissingObject", "Pulled", "Transfer", "fetch", "fetch_versions", "pull", "push"]

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
from mltrail.data.project import Project
from mltrail.data.remotes import Remote, get_remote, open_remote
from mltrail.data.workspace import QUIET, Reporter
from mltrail.errors import IntegrityError, InvalidState, NotFound
from mltrail.objects.base import ObjectStore
from mltrail.objects.hashing import hash_file
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.tree import read_tree

PathArg = str | os.PathLike[str]
#: Missing objects named one by one in an error before "and N more".
MAX_NAMED = 5


@dataclass(frozen=True)
class MissingObject:
    """An object a dataset needs that the source does not have."""

    dataset: str
    #: The file inside a folder dataset ("" for a file dataset or a folder's tree object).
    file: str
    hash: str

    @property
    def where(self) -> str:
        """Return ``dataset/file``, or the dataset alone."""
        return f"{self.dataset}/{self.file}" if self.file else self.dataset

    def describe(self) -> str:
        """Return ``dataset/file (object abc123…)`` for messages."""
        return f"{self.where} (object {self.hash[:12]})"


@dataclass
class Transfer:
    """What a push or fetch did."""

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
    #: Datasets that lack at least one object (each missing object names only one of them).
    incomplete: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "remote": self.remote,
            "url": self.url,
            "datasets": self.datasets,
            "copied": self.copied,
            "bytes": self.bytes,
            "present": self.present,
            "missing": [m.__dict__ for m in self.missing],
            "incomplete": self.incomplete,
        }


@dataclass
class _Wanted:
    """The objects of the selected datasets: hash → (dataset, file), files and trees apart."""

    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    trees: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    missing: list[MissingObject] = field(default_factory=list)
    #: Every object each dataset needs (several datasets may share one).
    members: dict[str, set[str]] = field(default_factory=dict)

    def add_file(self, name: str, pointer: Pointer) -> None:
        self.files.setdefault(pointer.hash, (name, ""))
        self.sizes[pointer.hash] = pointer.size
        self.members.setdefault(name, set()).add(pointer.hash)

    def add_tree(self, name: str, pointer: Pointer, store: ObjectStore) -> None:
        tree = read_tree(store, pointer.hash)
        self.trees[pointer.hash] = name
        needs = self.members.setdefault(name, set())
        for e in tree:
            self.files.setdefault(e.hash, (name, e.path))
            self.sizes[e.hash] = e.size
            needs.add(e.hash)

    def lacking(self, absent: set[str]) -> set[str]:
        """Return the datasets that miss an object: those in ``absent`` or already recorded."""
        return {m.dataset for m in self.missing} | {
            name for name, needs in self.members.items() if not needs.isdisjoint(absent)
        }


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


def _missing_error(verb: str, missing: list[MissingObject], where: str, hint: str) -> NotFound:
    named = ", ".join(m.describe() for m in missing[:MAX_NAMED])
    more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
    return NotFound(f"{verb}: {len(missing)} object(s) not {where}: {named}{more}", hint=hint)


def _damaged(e: IntegrityError, wanted: _Wanted, where: str) -> IntegrityError:
    """Name the dataset and file of a damaged object in the error."""
    h = e.object_hash
    if h in wanted.files:
        e.message = f"{MissingObject(*wanted.files[h], h).where}: {where} copy is damaged. " + (
            e.message
        )
    elif h in wanted.trees:
        e.message = f"{wanted.trees[h]}: {where} folder listing is damaged. {e.message}"
    return e


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
    remote alone. Only objects the remote lacks are sent. Versions not in the local cache are
    reported (as ``NotFound``, after everything else was sent).
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
                try:
                    wanted.add_tree(name, pointer, local)
                except NotFound:
                    wanted.missing.append(MissingObject(name, "", pointer.hash))
            else:
                wanted.add_file(name, pointer)
        absent = local.missing(wanted.files)
        incomplete = wanted.lacking(absent)
        result.incomplete = sorted(incomplete)
        wanted.missing += [MissingObject(*wanted.files[h], h) for h in sorted(absent)]
        # A tree goes up only with all its files: it must never announce files the remote lacks.
        trees = [h for h, name in wanted.trees.items() if name not in incomplete]
        files = [h for h in wanted.files if h not in absent]
        need = sorted(dest.missing(files))
        need_trees = sorted(dest.missing(trees))
        result.present = len(files) + len(trees) - len(need) - len(need_trees)
        total = sum(wanted.sizes[h] for h in need)
        reporter.begin(f"pushing to {r.name}:", total, len(need))
        try:
            _upload(local, dest, need, reporter, wanted)
        finally:
            reporter.end()
        _upload(local, dest, need_trees, QUIET, wanted)
        result.copied = len(need) + len(need_trees)
        result.bytes = total + sum(local.size(h) for h in need_trees)
    result.missing = wanted.missing
    if result.missing:
        raise _missing_error(
            f"pushed {result.copied} object(s) to {r.name}, but",
            result.missing,
            "in the local cache",
            "Those versions were never added here: push them from the machine that has them, "
            "or add the data again.",
        )
    return result


def _upload(
    local: LocalObjectStore,
    dest: ObjectStore,
    hashes: list[str],
    reporter: Reporter,
    wanted: _Wanted,
) -> None:
    if not hashes:
        return
    try:
        dest.put_files([(local.path_of(h), h) for h in hashes], progress=reporter.advance)
    except InvalidState:
        # The store refuses bytes that do not hash to their name: a damaged local object.
        for h in hashes:
            if not local.verify(h):
                actual = hash_file(local.path_of(h))
                raise _damaged(local.corrupted(h, actual), wanted, "the local") from None
        raise


# -- fetch and pull --------------------------------------------------------------------------------


def _fetch(
    project: Project,
    datasets: list[tuple[str, Pointer]],
    remote: str | None,
    jobs: int | None,
    reporter: Reporter,
) -> Transfer:
    r, src = _open(project, remote, jobs, reading=True)
    result = Transfer(r.name, src.location)
    local = project.store()
    wanted = _Wanted()
    result.datasets = len(datasets)
    workers = jobs or getattr(src, "max_workers", None)
    dirs = [(name, p) for name, p in datasets if p.kind == "dir"]
    need_trees = local.missing(p.hash for _, p in dirs)
    if need_trees:
        gone = src.missing(need_trees)
        for name, p in dirs:
            if p.hash in gone:
                wanted.missing.append(MissingObject(name, "", p.hash))
        try:
            local.fetch_from(src, need_trees - gone, workers=workers)
        except IntegrityError as e:
            wanted.trees = {p.hash: name for name, p in dirs}
            raise _damaged(e, wanted, f"the remote {r.name!r}") from None
    lost = {m.dataset for m in wanted.missing}
    for name, p in datasets:
        if p.kind == "dir":
            if name not in lost:
                wanted.add_tree(name, p, local)
        else:
            wanted.add_file(name, p)
    need = local.missing(wanted.files)
    gone = src.missing(need)
    result.incomplete = sorted(wanted.lacking(gone))
    wanted.missing += [MissingObject(*wanted.files[h], h) for h in sorted(gone)]
    todo = sorted(need - gone)
    result.present = len(wanted.files) - len(need)
    result.bytes = sum(wanted.sizes[h] for h in todo)
    reporter.begin(f"fetching from {r.name}:", result.bytes, len(todo))
    try:
        result.copied = local.fetch_from(src, todo, progress=reporter.advance, workers=workers)
    except IntegrityError as e:
        raise _damaged(e, wanted, f"the remote {r.name!r}") from None
    finally:
        reporter.end()
    result.missing = wanted.missing
    return result


def _fetch_error(result: Transfer) -> NotFound:
    return _missing_error(
        f"fetched {result.copied} object(s) from {result.remote}, but",
        result.missing,
        f"on the remote ({result.url})",
        "Push them from the machine that added that data (mltrail data push), "
        "or pick another remote with -r.",
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

    The workspace is not touched (see :func:`pull`). Objects the remote lacks are reported as
    ``NotFound`` naming the dataset and file, after everything else was fetched.
    """
    project = Project.find(start)
    with data_lock(project.dir):
        result = _fetch(project, _datasets(project, paths), remote, jobs, reporter)
    if result.missing:
        raise _fetch_error(result)
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
        result = _fetch(project, list(datasets), remote, jobs, reporter)
    if result.missing:
        raise _fetch_error(result)
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

    Datasets whose objects are all available are checked out even when others are missing from
    the remote; those are then reported as ``NotFound``.
    """
    from mltrail.data.ops import checkout

    project = Project.find(start)
    with data_lock(project.dir):
        datasets = _datasets(project, paths)
        fetched = _fetch(project, datasets, remote, jobs, reporter)
    lost = set(fetched.incomplete)
    complete = [project.root / name for name, _ in datasets if name not in lost]
    result = Pulled(fetched)
    if complete:
        result.checked_out = checkout(
            complete, start=project.root, force=force, link=link, reporter=reporter
        )
    if fetched.missing:
        raise _fetch_error(fetched)
    return result


__all__ = ["MissingObject", "Pulled", "Transfer", "fetch", "fetch_versions", "pull", "push"]

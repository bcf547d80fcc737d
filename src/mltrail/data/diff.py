"""Which datasets, and which files in them, changed between two Git revisions."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from mltrail.data.git import GitRepo
from mltrail.data.pointer import Pointer, data_path_of, read_pointer
from mltrail.data.project import Project
from mltrail.errors import IntegrityError, InvalidInput, NotFound
from mltrail.objects.base import ObjectStore
from mltrail.objects.tree import Tree, TreeEntry, read_tree

Change = Literal["added", "deleted", "modified"]


@dataclass
class DatasetDiff:
    """One dataset that differs between the two sides."""

    path: str
    change: Change
    old: Pointer | None
    new: Pointer | None
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: False when a folder's tree object is not in the local cache, so its files are unknown.
    files_known: bool = True

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict with stable keys."""

        def side(p: Pointer | None) -> dict[str, object] | None:
            if p is None:
                return None
            return {"hash": p.hash, "kind": p.kind, "size": p.size, "nfiles": p.nfiles}

        return {
            "path": self.path,
            "change": self.change,
            "old": side(self.old),
            "new": side(self.new),
            "files_known": self.files_known,
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
        }


def workspace_pointers(project: Project) -> dict[str, Pointer]:
    """Return ``{data path: pointer}`` for the pointer files in the working tree."""
    return {project.rel(data_path_of(p)): read_pointer(p) for p in project.pointers()}


def diff(
    a_rev: str = "HEAD",
    b_rev: str | None = None,
    *,
    start: str | os.PathLike[str] | None = None,
) -> list[DatasetDiff]:
    """Compare the pointer files at ``a_rev`` with those at ``b_rev`` (default: the working tree).

    Folders are compared file by file when both tree objects are in the local cache.
    """
    project = Project.find(start)
    git = GitRepo(project.root)
    old = git.pointers_at(a_rev)
    new = git.pointers_at(b_rev) if b_rev is not None else workspace_pointers(project)
    store = project.store()
    out = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        change: Change = "added" if a is None else "deleted" if b is None else "modified"
        d = DatasetDiff(path, change, a, b)
        _file_changes(store, d)
        out.append(d)
    return out


def _entries(store: ObjectStore, p: Pointer | None, name: str) -> dict[str, TreeEntry] | None:
    if p is None:
        return {}
    if p.kind == "file":
        return {"": TreeEntry(name, p.hash, p.size, 0o644)}
    try:
        tree: Tree = read_tree(store, p.hash)
    except (NotFound, IntegrityError, InvalidInput):
        return None
    return {e.path: e for e in tree}


def _file_changes(store: ObjectStore, d: DatasetDiff) -> None:
    if (d.old and d.old.kind == "file") and (d.new and d.new.kind == "file"):
        return  # a file dataset: the dataset line says it all
    before = _entries(store, d.old, d.path)
    after = _entries(store, d.new, d.path)
    if before is None or after is None:
        d.files_known = False
        return
    # The "" entry stands for a file dataset itself: only a folder's files are listed.
    d.added = sorted(p for p in after.keys() - before.keys() if p)
    d.deleted = sorted(p for p in before.keys() - after.keys() if p)
    d.modified = sorted(
        p
        for p in before.keys() & after.keys()
        if p and (before[p].hash, before[p].mode) != (after[p].hash, after[p].mode)
    )


__all__ = ["DatasetDiff", "diff", "workspace_pointers"]

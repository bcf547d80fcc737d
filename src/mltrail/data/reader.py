"""Reading one version of a tracked file without checking it out: ``mltrail.data.open``."""

from __future__ import annotations

import io
import os
from pathlib import PurePosixPath
from typing import IO

from mltrail.data.git import GitRepo
from mltrail.data.pointer import Pointer, pointer_path, read_pointer
from mltrail.data.project import Project
from mltrail.errors import InvalidInput, NotFound
from mltrail.objects.base import ObjectStore
from mltrail.objects.tree import read_tree

_MODES = {"r": "text", "rt": "text", "rb": "binary"}


def _dataset_of(project: Project, rel: str, rev: str | None) -> tuple[str, Pointer]:
    """Return the dataset holding ``rel`` (itself, or a tracked folder above it) and its pointer."""
    candidates = [rel, *(p.as_posix() for p in PurePosixPath(rel).parents if str(p) != ".")]
    if rev is None:
        for name in candidates:
            ptr = pointer_path(project.root / name)
            if ptr.exists():
                return name, read_pointer(ptr)
        where = "in the workspace"
    else:
        pointers = GitRepo(project.root).pointers_at(rev)
        for name in candidates:
            if name in pointers:
                return name, pointers[name]
        where = f"at revision {rev}"
    raise NotFound(
        f"{rel} is not tracked {where} (no pointer file for it or a folder above it)",
        hint="Check the path and the revision (mltrail data log PATH lists versions).",
    )


class _Sources:
    """The local cache first, then a remote opened only if the cache lacks something."""

    def __init__(self, project: Project, remote: str | None) -> None:
        self.project = project
        self.remote_name = remote
        self.local = project.store()
        self._remote: ObjectStore | None = None

    def remote(self) -> ObjectStore | None:
        from mltrail.data.remotes import get_remote, open_remote

        if self._remote is None:
            try:
                r = get_remote(self.project.dir, self.remote_name)
            except NotFound:
                if self.remote_name is not None:
                    raise
                return None  # no remote configured: only the cache can answer
            self._remote = open_remote(self.project.root, r)
        return self._remote

    def store_with(self, hash: str, what: str) -> ObjectStore:
        if self.local.exists(hash):
            return self.local
        remote = self.remote()
        if remote is not None and remote.exists(hash):
            return remote
        where = f"the local cache or remote {remote.location}" if remote else "the local cache"
        raise NotFound(
            f"{what} is in neither {where} (object {hash[:12]})",
            hint="Fetch it from the remote that has it (mltrail data fetch), or check the remote.",
        )


def open(  # shadows the builtin on purpose, as dvc.api.open does
    path: str | os.PathLike[str],
    rev: str | None = None,
    *,
    mode: str = "rb",
    encoding: str | None = None,
    remote: str | None = None,
    start: str | os.PathLike[str] | None = None,
) -> IO:
    """Open one version of a tracked file (or a file inside a tracked folder) for reading.

    ``rev`` is a Git revision (default: the version the pointer files in the working tree
    name). The bytes come from the local cache, else from ``remote`` (default: the default
    remote), and are verified against their hash as they are read. ``mode`` is ``"rb"``
    (default) or ``"r"`` for text.
    """
    if mode not in _MODES:
        raise InvalidInput(f"mode {mode!r} is not supported", hint="Use 'rb' or 'r'.")
    project = Project.find(start)
    rel = project.rel(project.data_path(path))
    name, pointer = _dataset_of(project, rel, rev)
    label = rel + (f" at {rev}" if rev else "")
    sources = _Sources(project, remote)
    inner = PurePosixPath(rel).relative_to(name).as_posix() if rel != name else ""
    if pointer.kind == "file":
        h = pointer.hash
    else:
        if not inner:
            raise InvalidInput(
                f"{label} is a folder; open a file inside it",
                hint=f"For example mltrail.data.open('{rel}/FILE').",
            )
        tree = read_tree(sources.store_with(pointer.hash, f"the listing of {name}"), pointer.hash)
        entry = next((e for e in tree if e.path == inner), None)
        if entry is None:
            raise NotFound(f"{label}: no file {inner!r} in that version of {name}")
        h = entry.hash
    binary = sources.store_with(h, label).open(h)
    if _MODES[mode] == "binary":
        return binary
    return io.TextIOWrapper(binary, encoding=encoding or "utf-8")


__all__ = ["open"]

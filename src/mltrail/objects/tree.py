"""Trees: a directory version stored as one object that lists its files.

A tree object is compact UTF-8 JSON, always written byte for byte the same way so that the same
directory content always gets the same hash::

    {"mltrail_tree":1,"entries":[["data/a.csv","<64 hex>",1234,420],["run.sh","<64 hex>",80,493]]}

- ``mltrail_tree`` is the format version; a reader refuses versions it does not know.
- Each entry is ``[path, hash, size, mode]``: a relative POSIX path (``/``-separated, no ``.`` or
  ``..`` or empty parts, no leading ``/``, no backslash, no NUL), the content object's hash, its
  size in bytes and its mode, 420 (0o644) or 493 (0o755, executable).
- Entries are sorted by path (code-point order, which is UTF-8 byte order) with no duplicates, and
  no path is both a file and the parent folder of another entry.
- The encoding is ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``: no whitespace,
  non-ASCII characters as raw UTF-8; only ``"``, ``\\`` and control characters are escaped, the
  latter as ``\\n``-style or lowercase ``\\u00xx`` escapes.

A tree holds files only, as Git does: empty folders are not recorded and do not come back on
checkout. Symbolic links are followed when scanning, so a tree stores what they point to.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mltrail.errors import InvalidInput, InvalidState
from mltrail.objects.base import ObjectInfo, ObjectStore
from mltrail.objects.hashing import (
    check_hash,
    default_workers,
    hash_bytes,
    hash_unchanging,
    is_valid_hash,
    map_parallel,
    usable_cpus,
)

TREE_FORMAT_VERSION = 1
MODE_FILE = 0o644
MODE_EXECUTABLE = 0o755
_MODES = frozenset({MODE_FILE, MODE_EXECUTABLE})


def check_tree_path(path: object) -> str:
    """Return ``path`` if it is a safe relative POSIX path for a tree entry, else raise."""
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"tree entry path must be a non-empty string, got {path!r}")
    problem = None
    if path.startswith("/"):
        problem = "it is absolute"
    elif "\\" in path:
        problem = "it contains a backslash"
    elif "\0" in path:
        problem = "it contains a NUL character"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "it has an empty, '.' or '..' part"
    else:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            problem = "it is not valid UTF-8"
    if problem:
        raise InvalidInput(
            f"unsafe tree entry path {path!r}: {problem}",
            hint="Tree paths are relative, '/'-separated and stay inside the tree's folder.",
        )
    return path


def tree_bytes(rows: list[list]) -> bytes:
    """Return the canonical bytes of a tree given its ``[path, hash, size, mode]`` rows, sorted.

    The rows are not checked: this is for callers that built them from a folder they scanned,
    and only want the hash (``Tree`` checks every entry, which costs ~1 s per 100,000).
    """
    doc = {"mltrail_tree": TREE_FORMAT_VERSION, "entries": rows}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file in a tree: relative path, content hash, size in bytes and mode."""

    path: str
    hash: str
    size: int
    mode: int = MODE_FILE

    def __post_init__(self) -> None:
        check_tree_path(self.path)
        if not is_valid_hash(self.hash):
            raise InvalidInput(f"tree entry {self.path!r} has an invalid hash {self.hash!r}")
        if type(self.size) is not int or self.size < 0:
            raise InvalidInput(f"tree entry {self.path!r} has an invalid size {self.size!r}")
        if self.mode not in _MODES or type(self.mode) is not int:
            raise InvalidInput(
                f"tree entry {self.path!r} has mode {self.mode!r}; only 0o644 and 0o755 exist"
            )

    @property
    def executable(self) -> bool:
        """Return True if the file is checked out with its executable bits set."""
        return self.mode == MODE_EXECUTABLE


@dataclass(frozen=True)
class Tree:
    """A directory version: file entries sorted by path."""

    entries: tuple[TreeEntry, ...] = ()

    def __post_init__(self) -> None:
        entries = tuple(self.entries)
        object.__setattr__(self, "entries", entries)
        for before, after in itertools.pairwise(entries):
            if not before.path < after.path:
                what = "twice" if before.path == after.path else "out of order"
                raise InvalidInput(f"tree lists {after.path!r} {what}")
        files = {e.path for e in entries}
        for e in entries:
            cut = e.path.rfind("/")
            while cut > 0:
                if e.path[:cut] in files:
                    raise InvalidInput(
                        f"tree lists {e.path[:cut]!r} as a file and as the folder of {e.path!r}"
                    )
                cut = e.path.rfind("/", 0, cut)

    @classmethod
    def from_entries(cls, entries: Iterable[TreeEntry]) -> Tree:
        """Build a tree from entries in any order."""
        return cls(tuple(sorted(entries, key=lambda e: e.path)))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[TreeEntry]:
        return iter(self.entries)

    @property
    def size(self) -> int:
        """Return the total size of the tree's files in bytes."""
        return sum(e.size for e in self.entries)

    @cached_property
    def hash(self) -> str:
        """Return the hash this tree has as an object."""
        return hash_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        """Return the canonical serialization (the bytes that are hashed and stored)."""
        return tree_bytes([[e.path, e.hash, e.size, e.mode] for e in self.entries])

    @classmethod
    def from_bytes(cls, data: bytes) -> Tree:
        """Parse a serialized tree, refusing anything malformed or unsafe."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("not an mltrail tree: the content is not UTF-8 JSON") from None
        if not isinstance(doc, dict) or "mltrail_tree" not in doc:
            raise InvalidInput("not an mltrail tree: no 'mltrail_tree' format marker")
        version = doc["mltrail_tree"]
        if version != TREE_FORMAT_VERSION or type(version) is not int:
            if type(version) is int and version > TREE_FORMAT_VERSION:
                raise InvalidInput(
                    f"tree format {version} is newer than this mltrail understands",
                    hint="Upgrade mltrail to read it.",
                )
            raise InvalidInput(f"not an mltrail tree: unknown format marker {version!r}")
        raw = doc.get("entries")
        if not isinstance(raw, list):
            raise InvalidInput("not an mltrail tree: 'entries' is not a list")
        entries = []
        for i, item in enumerate(raw):
            if not isinstance(item, list) or len(item) != 4:
                raise InvalidInput(f"tree entry {i} is not [path, hash, size, mode]: {item!r}")
            entries.append(TreeEntry(*item))
        return cls(tuple(entries))


# -- building trees from folders -----------------------------------------------------------------


def scan_tree(
    directory: str | os.PathLike[str], workers: int | None = None
) -> tuple[Tree, dict[str, Path]]:
    """Hash every file under ``directory``; return the tree and each entry's source path."""
    root = Path(directory)
    try:
        st = root.stat()
    except FileNotFoundError:
        raise InvalidInput(f"no such folder: {root}") from None
    except OSError as e:
        raise InvalidInput(f"cannot read {root}: {e.strerror or e}") from e
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{root} is not a folder", hint="Store single files with put_file.")
    found = _walk(os.fspath(root), (st.st_dev, st.st_ino))
    if workers is None:
        workers = default_workers()
    workers = max(1, min(workers, len(found)))
    threads = max(1, usable_cpus() // workers)
    hashed = map_parallel(lambda item: _hash_source(item[1], threads), found, workers)
    entries = [
        TreeEntry(rel, h, size, mode)
        for (rel, _), (h, size, mode) in zip(found, hashed, strict=True)
    ]
    return Tree.from_entries(entries), {rel: Path(path) for rel, path in found}


def _walk(root: str, root_id: tuple[int, int]) -> list[tuple[str, str]]:
    """Return ``(relative path, path)`` of every file under ``root``, following symlinks."""
    found: list[tuple[str, str]] = []
    # Explicit stack: deep folders must not hit the recursion limit. Each item carries the
    # (device, inode) of its ancestors so a symlink back up the tree is caught, not followed.
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [(root, "", frozenset([root_id]))]
    while stack:
        folder, prefix, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            raise InvalidInput(f"cannot read folder {folder}: {e.strerror or e}") from e
        for entry in entries:
            rel = prefix + entry.name
            _check_source_name(entry.path, rel)
            # The directory listing already says what most entries are; only symlinks and
            # folders (for loop detection) cost a stat call.
            if entry.is_file(follow_symlinks=False):
                found.append((rel, entry.path))
                continue
            st = _stat_source(entry.path)
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    raise InvalidInput(
                        f"{entry.path} is a symbolic link to one of its own parent folders"
                    )
                stack.append((entry.path, rel + "/", ancestors | {key}))
            elif stat.S_ISREG(st.st_mode):
                found.append((rel, entry.path))
            else:
                raise InvalidInput(
                    f"cannot store {entry.path}: it is not a regular file "
                    "(a socket, FIFO or device)"
                )
    return found


def _check_source_name(path: str, rel: str) -> None:
    if "\\" in rel:
        raise InvalidInput(
            f"cannot store {path}: its name contains a backslash",
            hint="Backslashes are path separators on Windows; rename the file.",
        )
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"cannot store {path!r}: its name is not valid UTF-8", hint="Rename the file."
        ) from None


def _hash_source(path: str, threads: int) -> tuple[str, int, int]:
    """Return the hash, size and tree mode of a file, refusing one that changes meanwhile."""
    try:
        h, before = hash_unchanging(path, threads)
    except InvalidInput:
        _stat_source(path)  # raises the more telling error where there is one: a broken link...
        raise
    mode = MODE_EXECUTABLE if before.st_mode & stat.S_IXUSR else MODE_FILE
    return h, before.st_size, mode


def _stat_source(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InvalidInput(
                f"{path} is a broken symbolic link (to {os.readlink(path)!r})",
                hint="Remove the link or restore its target.",
            ) from None
        raise InvalidState(
            f"{path} disappeared while the folder was being scanned",
            hint="Run the command again once nothing is writing to that folder.",
        ) from None
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from e


def put_tree(
    store: ObjectStore,
    directory: str | os.PathLike[str],
    progress: Callable[[int], None] | None = None,
) -> ObjectInfo:
    """Store every file under ``directory``, then its tree; ``progress`` gets bytes as stored."""
    tree, files = scan_tree(directory)
    return store_tree(store, tree, files, progress=progress)


def store_tree(
    store: ObjectStore,
    tree: Tree,
    files: dict[str, Path],
    progress: Callable[[int], None] | None = None,
) -> ObjectInfo:
    """Store the files of a scanned tree that the store lacks, then the tree object itself."""
    first: dict[str, TreeEntry] = {}
    for e in tree.entries:
        first.setdefault(e.hash, e)
    # One batched existence check: cheap locally, and one listing instead of N requests remotely.
    need = sorted(store.missing(first))
    if progress is not None:
        # Files already stored, and repeats of content stored once, count as done from the start.
        done_already = tree.size - sum(first[h].size for h in need)
        if done_already:
            progress(done_already)
    # The scan already hashed each file: the store only checks the copy it makes.
    store.put_files([(files[first[h].path], h) for h in need], progress=progress)
    # The tree goes last: a tree in the store promises that all its files are there too.
    return store.put_bytes(tree.to_bytes())


def read_tree(store: ObjectStore, hash: str) -> Tree:
    """Load and validate the tree object ``hash`` from ``store``."""
    data = store.read_bytes(check_hash(hash))
    try:
        return Tree.from_bytes(data)
    except InvalidInput as e:
        raise InvalidInput(f"object {hash} is not a valid tree: {e.message}", hint=e.hint) from e


def checkout_tree(
    store: ObjectStore,
    hash: str,
    dest: str | os.PathLike[str],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write tree ``hash``'s files under ``dest``, replacing same-named files, keeping others."""
    tree = read_tree(store, hash)
    dest = Path(dest).absolute()
    for e in tree.entries:
        _check_local_path(e.path)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput(f"cannot create {dest}: {e.strerror or e}") from e
    real_dest = os.path.realpath(dest)
    folders = sorted({e.path.rpartition("/")[0] for e in tree.entries} - {""})
    for folder in folders:
        target = dest / folder
        try:
            _make_folders(os.fspath(target))
        except OSError as e:
            raise InvalidInput(
                f"cannot create folder {target}: {e.strerror or e}",
                hint="A file may be in the way; move it and check out again.",
            ) from e
        # Tree paths cannot climb out, but a symlink already in ``dest`` could lead writes away.
        real = os.path.realpath(target)
        if os.path.commonpath([real_dest, real]) != real_dest:
            raise InvalidInput(
                f"cannot check out into {target}: it is a link to {real}, outside {dest}",
                hint="Remove the link and check out again.",
            )

    def get(e: TreeEntry) -> None:
        try:
            store.get_file(e.hash, dest / e.path, executable=e.executable)
        except IsADirectoryError:
            raise InvalidInput(
                f"cannot check out {dest / e.path}: a folder is in the way",
                hint="Move the folder away and check out again.",
            ) from None

    def done(e: TreeEntry, _: None) -> None:
        if progress is not None:
            progress(e.size)

    map_parallel(get, tree.entries, default_workers(), done)


def _make_folders(path: str) -> None:
    # Like os.makedirs, but a loop rather than recursion: trees may be deeper than the
    # recursion limit.
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):  # a file is in the way
                raise
            # else another thread of this checkout made it first


def _check_local_path(path: str) -> None:
    # Valid POSIX names that Windows would read as a drive, a stream or a parent reference.
    if os.name == "nt" and (":" in path or any(p.rstrip(" .") != p for p in path.split("/"))):
        raise InvalidInput(f"tree entry path {path!r} cannot be written safely on Windows")


__all__ = [
    "MODE_EXECUTABLE",
    "MODE_FILE",
    "TREE_FORMAT_VERSION",
    "Tree",
    "TreeEntry",
    "check_tree_path",
    "checkout_tree",
    "put_tree",
    "read_tree",
    "scan_tree",
    "store_tree",
]

"""Pointer files: ``<path>.trail``, the small YAML file committed to Git in place of the data.

A pointer names one version of a file or a folder by its hash in the object store::

    # mltrail data pointer: the version of 'images' tracked by mltrail.
    # Commit this file; the data itself is git-ignored. See docs/data.md.
    version: 1
    kind: dir
    hash: 4f1c…(64 hex)
    size: 81920
    nfiles: 20

- ``version``: the pointer format, 1.
- ``kind``: ``file`` or ``dir``.
- ``hash``: the BLAKE3 hash of the file, or of the tree object for a folder.
- ``size``: bytes (the total of all files for a folder).
- ``nfiles``: number of files (folders only).

Keys are always written in this order, one per line, so a new version is a one- or three-line diff.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mltrail.atomic import write_text_atomic
from mltrail.errors import InvalidInput
from mltrail.objects.hashing import is_valid_hash

POINTER_SUFFIX = ".trail"
POINTER_VERSION = 1
KINDS = ("file", "dir")

_KEYS_FILE = ("version", "kind", "hash", "size")
_KEYS_DIR = (*_KEYS_FILE, "nfiles")
_EXPECTED = (
    "a pointer has the keys version (1), kind (file or dir), hash (64 lowercase hex "
    "characters), size (bytes) and, for a dir, nfiles"
)


@dataclass(frozen=True, slots=True)
class Pointer:
    """One tracked version of a file or folder."""

    hash: str
    kind: Literal["file", "dir"]
    size: int
    nfiles: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"pointer kind must be 'file' or 'dir', got {self.kind!r}")
        if not is_valid_hash(self.hash):
            raise InvalidInput(f"pointer hash {self.hash!r} is not 64 lowercase hex characters")
        if type(self.size) is not int or self.size < 0:
            raise InvalidInput(f"pointer size must be a whole number of bytes, got {self.size!r}")
        if self.kind == "dir":
            if type(self.nfiles) is not int or self.nfiles < 0:
                raise InvalidInput(f"a dir pointer needs nfiles >= 0, got {self.nfiles!r}")
        elif self.nfiles is not None:
            raise InvalidInput("a file pointer has no nfiles")


def pointer_path(data_path: str | os.PathLike[str]) -> Path:
    """Return where the pointer of ``data_path`` lives: beside it, with ``.trail`` appended."""
    p = Path(data_path)
    return p.with_name(p.name + POINTER_SUFFIX)


def data_path_of(pointer: str | os.PathLike[str]) -> Path:
    """Return the data path a pointer file describes (the pointer path minus ``.trail``)."""
    p = Path(pointer)
    if not p.name.endswith(POINTER_SUFFIX) or p.name == POINTER_SUFFIX:
        raise InvalidInput(f"{p} is not a pointer file (its name must end in {POINTER_SUFFIX})")
    return p.with_name(p.name[: -len(POINTER_SUFFIX)])


def dump_pointer(pointer: Pointer, name: str) -> str:
    """Return the text of a pointer file for the data called ``name``."""
    lines = [
        f"# mltrail data pointer: the version of {name!r} tracked by mltrail.",
        "# Commit this file; the data itself is git-ignored. See docs/data.md.",
        f"version: {POINTER_VERSION}",
        f"kind: {pointer.kind}",
        # An all-digit hash would read back as a number: quote it (odds ~1e-13, but exact).
        f"hash: {pointer.hash!r}" if pointer.hash.isdigit() else f"hash: {pointer.hash}",
        f"size: {pointer.size}",
    ]
    if pointer.kind == "dir":
        lines.append(f"nfiles: {pointer.nfiles}")
    return "\n".join(lines) + "\n"


def write_pointer(path: str | os.PathLike[str], pointer: Pointer) -> None:
    """Write a pointer file atomically (temp file, then rename)."""
    path = Path(path)
    write_text_atomic(path, dump_pointer(pointer, data_path_of(path).name))


def read_pointer(path: str | os.PathLike[str]) -> Pointer:
    """Read and validate a pointer file; anything malformed is InvalidInput naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no pointer file {path}") from None
    except OSError as e:
        raise InvalidInput(f"cannot read pointer file {path}: {e.strerror or e}") from e
    return parse_pointer(raw, str(path))


def parse_pointer(raw: bytes | str, source: str = "<pointer>") -> Pointer:
    """Parse the text of a pointer file; ``source`` names it in error messages."""
    import yaml  # ~20 ms; only commands that read pointers pay for it

    from mltrail import safe_yaml

    hint = "Restore it from Git (git checkout -- FILE) or run `mltrail data add` on the data."
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InvalidInput(f"pointer file {source} is not UTF-8 text", hint=hint) from None
    try:
        doc = safe_yaml.load(text, f"pointer file {source}", aliases=False)
    except InvalidInput as e:
        raise InvalidInput(e.message, hint=hint) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InvalidInput(
            f"pointer file {source} is not valid YAML{where}: {problem}; {_EXPECTED}",
            hint=hint,
        ) from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"pointer file {source} is not a YAML mapping; {_EXPECTED}", hint=hint)

    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"pointer file {source}: {what}; {_EXPECTED}", hint=hint)

    version = doc.get("version")
    if "version" not in doc:
        raise bad("missing key 'version'")
    if type(version) is int and version > POINTER_VERSION:
        raise InvalidInput(
            f"pointer file {source} has format version {version}, newer than this mltrail "
            "understands",
            hint="Upgrade mltrail to read it.",
        )
    if version != POINTER_VERSION or type(version) is not int:
        raise bad(f"unknown version {version!r} (expected {POINTER_VERSION})")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise bad("missing key 'kind'" if "kind" not in doc else f"kind is {kind!r}")
    keys = _KEYS_DIR if kind == "dir" else _KEYS_FILE
    for key in keys:
        if key not in doc:
            raise bad(f"missing key {key!r}")
    unknown = sorted(str(k) for k in doc if k not in keys)
    if unknown:
        raise bad(f"unexpected key {unknown[0]!r}")
    h = doc["hash"]
    if not is_valid_hash(h):
        shown = h if isinstance(h, str) else repr(h)
        raise bad(f"hash {shown!r} is not 64 lowercase hex characters")
    size = doc["size"]
    if type(size) is not int or size < 0:
        raise bad(f"size {size!r} is not a whole number of bytes")
    nfiles = doc.get("nfiles")
    if kind == "dir" and (type(nfiles) is not int or nfiles < 0):
        raise bad(f"nfiles {nfiles!r} is not a whole number")
    return Pointer(h, kind, size, nfiles if kind == "dir" else None)


__all__ = [
    "POINTER_SUFFIX",
    "POINTER_VERSION",
    "Pointer",
    "data_path_of",
    "dump_pointer",
    "parse_pointer",
    "pointer_path",
    "read_pointer",
    "write_pointer",
]

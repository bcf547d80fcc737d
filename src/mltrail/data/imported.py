"""Pointers of revisions from before mltrail: another tool's pointer files, translated.

Revisions committed before an import (``mltrail import dvc``) hold that tool's pointer files
(``.dvc``, ``dvc.lock``), not ``.trail`` files. The import records, for every version of those
files in the Git history, the mltrail pointers it stands for, keyed by the Git blob id of the
file's content::

    .mltrail/imported-pointers.json      (committed, like config.toml)
    {"format": 1, "blobs": {"<blob id>": {"source": "dvc", "files": ["data/x.dvc"],
        "pointers": {"x": {"kind": "file", "hash": "…", "size": 6}},
        "missing": {"y": "object … is in none of …"}}}}

Paths in ``pointers`` are relative to the folder of the file (a moved file keeps its meaning).
:class:`~mltrail.data.git.GitRepo` reads a revision's pointers from its ``.trail`` files and, for
paths without one, from the table entry of any file blob of that revision, so ``data open
--rev``, ``data diff`` and ``data log`` see the old versions. The table only grows: a blob's
content never changes, so its translation never does.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from mltrail.atomic import write_text_atomic
from mltrail.data.pointer import Pointer
from mltrail.errors import CorruptStore, InvalidInput

IMPORTED_FILE = "imported-pointers.json"
FORMAT = 1


@dataclass
class ImportedBlob:
    """The translation of one version (blob) of another tool's pointer file."""

    source: str
    #: Where the blob was seen, relative to the Git top (for people; lookups use the blob id).
    files: list[str] = field(default_factory=list)
    #: Data path relative to the file's folder → the pointer it stands for.
    pointers: dict[str, Pointer] = field(default_factory=dict)
    #: Data paths whose version could not be converted → why (objects found nowhere, …).
    missing: dict[str, str] = field(default_factory=dict)

    def at(self, file: str) -> dict[str, Pointer]:
        """Return the pointers with Git-top-relative paths, for the blob found at ``file``."""
        folder = posixpath.dirname(file)
        return {
            posixpath.normpath(posixpath.join(folder, p)): ptr for p, ptr in self.pointers.items()
        }


def _pointer_doc(p: Pointer) -> dict[str, object]:
    doc: dict[str, object] = {"kind": p.kind, "hash": p.hash, "size": p.size}
    if p.nfiles is not None:
        doc["nfiles"] = p.nfiles
    return doc


def read_imported(project_dir: Path) -> dict[str, ImportedBlob]:
    """Return ``{blob id: translation}`` from ``imported-pointers.json`` (empty if none)."""
    path = project_dir / IMPORTED_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptStore(f"cannot read {path}: {e}") from None
    hint = f"Restore it from Git (git checkout -- {path.name}) or run the import again."
    try:
        doc = json.loads(text)
    except ValueError:
        raise CorruptStore(f"{path} is not valid JSON", hint=hint) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorruptStore(f"{path} is not a format {FORMAT} table of imported pointers", hint=hint)
    out = {}
    try:
        for blob, item in (doc.get("blobs") or {}).items():
            pointers = {
                rel: Pointer(p["hash"], p["kind"], p["size"], p.get("nfiles"))
                for rel, p in (item.get("pointers") or {}).items()
            }
            out[blob] = ImportedBlob(
                str(item.get("source", "")),
                list(item.get("files") or []),
                pointers,
                dict(item.get("missing") or {}),
            )
    except (AttributeError, KeyError, TypeError, InvalidInput) as e:
        raise CorruptStore(f"{path} has a malformed entry: {e}", hint=hint) from None
    return out


def write_imported(project_dir: Path, table: dict[str, ImportedBlob]) -> bool:
    """Write the table (sorted, one blob per block: additions are small diffs); True if changed."""
    blobs = {}
    for blob in sorted(table):
        item = table[blob]
        entry: dict[str, object] = {"source": item.source, "files": sorted(set(item.files))}
        entry["pointers"] = {rel: _pointer_doc(item.pointers[rel]) for rel in sorted(item.pointers)}
        if item.missing:
            entry["missing"] = dict(sorted(item.missing.items()))
        blobs[blob] = entry
    text = json.dumps({"format": FORMAT, "blobs": blobs}, indent=1, ensure_ascii=False) + "\n"
    path = project_dir / IMPORTED_FILE
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    write_text_atomic(path, text)
    return True


__all__ = ["IMPORTED_FILE", "ImportedBlob", "read_imported", "write_imported"]

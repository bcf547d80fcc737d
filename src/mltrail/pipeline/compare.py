"""``params diff`` and ``metrics diff``: params and metrics files at two Git revisions, key by key.

Which files: ``params.yaml`` and every params file ``mltrail.yaml`` names (stage ``params:`` and
the top-level ``params:`` list), and every metrics file it names (stage ``metrics:`` and the
top-level ``metrics:`` list), taken from the pipeline file on *both* sides, so a file added or
dropped between the revisions still shows. Files are read from Git at a revision (one
``cat-file`` process per side) or from the working tree. Nested keys are flattened to
``train.max_depth``; lists are compared as whole values.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mltrail.data.git import GitRepo
from mltrail.data.project import Project
from mltrail.errors import InvalidInput
from mltrail.pipeline.params import flatten, parse_bytes
from mltrail.pipeline.spec import DEFAULT_PARAMS, PIPELINE_FILE, Pipeline, parse

PathArg = str | os.PathLike[str]
State = Literal["added", "deleted", "modified", "unchanged"]
Kind = Literal["params", "metrics"]


class _Absent:
    """A key (or file) one side does not have; distinct from a YAML ``null``."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class KeyChange:
    """One key of one params or metrics file, on both sides."""

    path: str
    key: str
    old: Any
    new: Any

    @property
    def state(self) -> State:
        """``added``, ``deleted``, ``modified`` or ``unchanged``."""
        if self.old is ABSENT:
            return "added"
        if self.new is ABSENT:
            return "deleted"
        return "unchanged" if _same(self.old, self.new) else "modified"

    @property
    def change(self) -> float | None:
        """``new - old`` when both are numbers (not booleans), else None."""
        if _is_number(self.old) and _is_number(self.new):
            delta = self.new - self.old
            # 0.85 - 0.81 is 0.039999999999999925 in binary floating point: report 0.04.
            return delta if isinstance(delta, int) else float(f"{delta:.12g}")
        return None

    def to_dict(self, kind: Kind = "params") -> dict[str, Any]:
        """Return a JSON-ready dict; an absent side is null and ``state`` says which."""
        out = {
            "path": self.path,
            "key": self.key,
            "old": None if self.old is ABSENT else self.old,
            "new": None if self.new is ABSENT else self.new,
            "state": self.state,
        }
        if kind == "metrics":
            out["change"] = self.change
        return out


@dataclass
class Comparison:
    """Every key of the compared files, sorted by file then key, and what was compared."""

    kind: Kind
    #: The two sides: a revision, or None for the working tree.
    a_rev: str
    b_rev: str | None
    files: list[str]
    changes: list[KeyChange]

    def to_dict(self, all: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict (only the keys that differ unless ``all``)."""
        return {
            "a_rev": self.a_rev,
            "b_rev": self.b_rev,
            "files": self.files,
            "changes": [
                c.to_dict(self.kind) for c in self.changes if all or c.state != "unchanged"
            ],
        }


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    # 1 and 1.0 are the same value; NaN on both sides is no change.
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def parse_document(data: bytes, name: str, where: str) -> dict[str, Any]:
    """Parse a YAML, JSON or TOML file's bytes into a mapping; errors name the file and side."""
    return parse_bytes(
        data,
        Path(name).suffix,
        f"{name} ({where})",
        "Params and metrics files are YAML, JSON or TOML mappings.",
    )


class _Side:
    """Reads project files at a revision, or in the working tree when ``rev`` is None."""

    def __init__(self, project: Project, git: GitRepo, rev: str | None) -> None:
        self.project, self.git, self.rev = project, git, rev
        if rev is not None:
            git.resolve(rev)  # an unknown revision is an error naming it, before anything else
        self.where = f"at {rev}" if rev is not None else "in the working tree"

    def read(self, rel: str) -> bytes | None:
        if self.rev is None:
            try:
                return (self.project.root / rel).read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        return self.git.file_at(self.rev, rel)

    def pipeline(self) -> Pipeline | None:
        text = self.read(PIPELINE_FILE)
        if text is None:
            return None
        try:
            root = self.project.root
            return parse(text.decode("utf-8", "replace"), root, root / PIPELINE_FILE)
        except InvalidInput as e:
            raise InvalidInput(f"{e.message} ({self.where})", hint=e.hint) from None


def _files(kind: Kind, sides: list[_Side]) -> list[str]:
    files: list[str] = [DEFAULT_PARAMS] if kind == "params" else []
    for side in sides:
        p = side.pipeline()
        if p is not None:
            files += p.params_files() if kind == "params" else p.metrics_files()
    return list(dict.fromkeys(files))


def compare(
    kind: Kind,
    a_rev: str = "HEAD",
    b_rev: str | None = None,
    *,
    start: PathArg | None = None,
) -> Comparison:
    """Compare params (or metrics) files at ``a_rev`` with ``b_rev`` (default: the working tree)."""
    project = Project.find(start)
    git = GitRepo(project.root)
    a, b = _Side(project, git, a_rev), _Side(project, git, b_rev)
    files = _files(kind, [a, b])
    changes: list[KeyChange] = []
    for rel in files:
        old_bytes, new_bytes = a.read(rel), b.read(rel)
        old = flatten(parse_document(old_bytes, rel, a.where)) if old_bytes is not None else {}
        new = flatten(parse_document(new_bytes, rel, b.where)) if new_bytes is not None else {}
        for key in sorted(old.keys() | new.keys()):
            changes.append(KeyChange(rel, key, old.get(key, ABSENT), new.get(key, ABSENT)))
    return Comparison(kind, a_rev, b_rev, files, changes)


def params_diff(
    a_rev: str = "HEAD", b_rev: str | None = None, *, start: PathArg | None = None
) -> Comparison:
    """Compare the params files at two revisions (or a revision and the working tree)."""
    return compare("params", a_rev, b_rev, start=start)


def metrics_diff(
    a_rev: str = "HEAD", b_rev: str | None = None, *, start: PathArg | None = None
) -> Comparison:
    """Compare the metrics files at two revisions (or a revision and the working tree)."""
    return compare("metrics", a_rev, b_rev, start=start)


__all__ = [
    "ABSENT",
    "Comparison",
    "KeyChange",
    "compare",
    "flatten",
    "metrics_diff",
    "params_diff",
    "parse_document",
]

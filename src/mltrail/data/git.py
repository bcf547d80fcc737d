"""Pointer files as Git recorded them: at a revision, and over a dataset's history.

Everything goes through the ``git`` command (no library): ``ls-tree`` finds the pointer files of
a revision and one ``cat-file --batch`` process reads them all, so a revision with thousands of
pointers costs two processes, not thousands.

Revisions from before an import hold another tool's pointer files; where the project records
their translation (:mod:`mltrail.data.imported`), a path without a ``.trail`` file at a revision
takes the pointer its translated file stands for.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mltrail.data.imported import ImportedBlob, read_imported
from mltrail.data.pointer import POINTER_SUFFIX, Pointer, parse_pointer
from mltrail.errors import InvalidInput, InvalidState

_TIMEOUT = 300


@dataclass(frozen=True)
class PointerCommit:
    """One commit that changed a dataset's pointer file, and the pointer it left (None: deleted)."""

    commit: str
    #: Commit time, seconds since the epoch.
    time: int
    author: str
    subject: str
    pointer: Pointer | None


class GitRepo:
    """The Git work tree that holds a project; paths are given relative to the project root."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root
        top = self._git("rev-parse", "--show-toplevel", cwd=project_root, what="find the Git repo")
        self.top = Path(top.strip())
        # The project may sit in a subfolder of the repository.
        rel = os.path.relpath(os.path.realpath(project_root), os.path.realpath(self.top))
        self.prefix = "" if rel == "." else Path(rel).as_posix() + "/"
        self._imported: dict[str, ImportedBlob] | None = None

    def imported(self) -> dict[str, ImportedBlob]:
        """Return the project's translations of imported pointer files, by blob id (read once)."""
        if self._imported is None:
            from mltrail.config import PROJECT_DIR

            self._imported = read_imported(self.project_root / PROJECT_DIR)
        return self._imported

    def _project_rel(self, top_rel: str) -> str | None:
        """Return a Git-top-relative path relative to the project, or None if outside it."""
        if not top_rel.startswith(self.prefix):
            return None
        rel = top_rel[len(self.prefix) :]
        return None if rel.split("/", 1)[0] == ".mltrail" else rel

    def _git(
        self, *args: str, cwd: Path | None = None, what: str, stdin: bytes | None = None
    ) -> str:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd or self.top,
                input=stdin,
                capture_output=True,
                timeout=_TIMEOUT,
            )
        except FileNotFoundError:
            raise InvalidState(
                f"cannot {what}: git is not installed", hint="Install Git and try again."
            ) from None
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = err[-1] if err else f"exit status {done.returncode}"
            if "not a git repository" in detail:
                raise InvalidState(
                    f"cannot {what}: {cwd or self.top} is not in a Git repository",
                    hint="Git revisions need the project to be in a Git repo (git init).",
                )
            raise InvalidInput(f"cannot {what}: {detail}")
        return done.stdout.decode("utf-8", "surrogateescape")

    def resolve(self, rev: str) -> str:
        """Return the commit id ``rev`` names; an unknown revision is InvalidInput naming it."""
        if not rev or rev.startswith("-"):
            raise InvalidInput(f"{rev!r} is not a Git revision")
        try:
            out = self._git(
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{rev}^{{commit}}",
                what=f"read revision {rev}",
            )
        except InvalidInput:
            out = ""
        if not out.strip():
            raise InvalidInput(
                f"unknown Git revision {rev!r}",
                hint="Give a commit, branch or tag that exists here (git log --oneline).",
            )
        return out.strip()

    def pointers_at(self, rev: str) -> dict[str, Pointer]:
        """Return ``{data path relative to the project: pointer}`` for every pointer at ``rev``."""
        commit = self.resolve(rev)
        imported = self.imported()
        args = ["ls-tree", "-r", "-z", "--full-tree", commit]
        if self.prefix and not imported:
            args += ["--", self.prefix]  # translated files above the project may name its paths
        names, translated = [], {}
        for row in self._git(*args, what=f"list {rev}").split("\0"):
            if "\t" not in row:
                continue
            meta, n = row.split("\t", 1)
            blob = meta.split()[2]
            if (
                n.endswith(POINTER_SUFFIX)
                and Path(n).name != POINTER_SUFFIX
                and "/.mltrail/" not in f"/{n}"
                and n.startswith(self.prefix)
            ):
                names.append(n)
            elif blob in imported:
                translated.update(imported[blob].at(n))
        texts = self._cat(commit, names)
        out = {}
        # An imported file's pointers first: a .trail file for the same path wins.
        for top_rel, pointer in translated.items():
            rel = self._project_rel(top_rel)
            if rel is not None:
                out[rel] = pointer
        for name in names:
            text = texts.get(name)
            if text is not None:
                out[name[len(self.prefix) : -len(POINTER_SUFFIX)]] = parse_pointer(
                    text, f"{name} at {rev}"
                )
        return out

    def pointer_at(self, rev: str, data_rel: str) -> Pointer | None:
        """Return the pointer of one dataset at ``rev``, or None if it was not tracked there."""
        commit = self.resolve(rev)
        name = self.prefix + data_rel + POINTER_SUFFIX
        text = self._cat(commit, [name]).get(name)
        if text is None and self.imported():
            return self.pointers_at(commit).get(data_rel)
        return None if text is None else parse_pointer(text, f"{name} at {rev}")

    def file_at(self, rev: str, rel: str) -> bytes | None:
        """Return the bytes of a file (relative to the project) at ``rev``, or None if absent."""
        commit = self.resolve(rev)
        name = self.prefix + rel
        return self._cat(commit, [name]).get(name)

    def history(self, data_rel: str) -> list[PointerCommit]:
        """Return the commits that changed a dataset's pointer file, newest first."""
        name = self.prefix + data_rel + POINTER_SUFFIX
        sources = self._translating_files(data_rel)
        if sources:
            return self._history_with_imported(data_rel, name, sources)
        out = self._git(
            "log", "--format=%H%x1f%ct%x1f%an%x1f%s%x1e", "--", name, what=f"read the log of {name}"
        )
        rows = [r.strip("\n").split("\x1f") for r in out.split("\x1e") if r.strip()]
        texts = self._cat_many([(r[0], name) for r in rows])
        result = []
        for commit, when, author, subject in rows:
            text = texts.get((commit, name))
            pointer = None if text is None else parse_pointer(text, f"{name} at {commit[:12]}")
            result.append(PointerCommit(commit, int(when), author, subject, pointer))
        return result

    def _cat(self, commit: str, names: list[str]) -> dict[str, bytes]:
        found = self._cat_many([(commit, n) for n in names])
        return {n: text for (_, n), text in found.items()}

    def _cat_many(self, specs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Read ``commit:path`` blobs; absent ones are omitted."""
        found = self._cat_objects([f"{c}:{n}" for c, n in specs])
        return {
            spec: found[f"{spec[0]}:{spec[1]}"] for spec in specs if f"{spec[0]}:{spec[1]}" in found
        }

    def all_pointers(self) -> list[Pointer]:
        """Return every distinct pointer committed on any branch, tag or ref, in any commit."""
        # Each version of a pointer file is a blob that some commit introduced: the raw log of
        # the *.trail paths names them all, merges included (-m), without walking every tree.
        out = self._git(
            "log",
            "--all",
            "-m",
            "--raw",
            "--no-abbrev",
            "--format=",
            "--",
            "*" + POINTER_SUFFIX,
            what="read the history of the pointer files",
        )
        blobs = {}
        for line in out.splitlines():
            if not line.startswith(":") or "\t" not in line:
                continue
            meta, path = line.split("\t", 1)
            blob = meta.split()[3]
            name = Path(path.split("\t")[-1]).name
            if set(blob) != {"0"} and name != POINTER_SUFFIX and "/.mltrail/" not in f"/{path}":
                blobs[blob] = path
        texts = self._cat_objects(list(blobs))
        found = [
            parse_pointer(texts[b], f"{blobs[b]} (blob {b[:12]})") for b in blobs if b in texts
        ]
        # Versions from before the import: every translated pointer file, wherever it was.
        found += [p for item in self.imported().values() for p in item.pointers.values()]
        return found

    def _translating_files(self, data_rel: str) -> dict[str, str]:
        """Return ``{file: path relative to its folder}`` of imported files naming ``data_rel``."""
        target = self.prefix + data_rel
        out = {}
        for item in self.imported().values():
            for file in item.files:
                folder = posixpath.dirname(file)
                for rel in (*item.pointers, *item.missing):
                    if posixpath.normpath(posixpath.join(folder, rel)) == target:
                        out[file] = rel
        return out

    def _history_with_imported(
        self, data_rel: str, name: str, sources: dict[str, str]
    ) -> list[PointerCommit]:
        """The history of a dataset over its ``.trail`` file and the imported files naming it."""
        out = self._git(
            "log",
            "--format=\x1e%H%x1f%ct%x1f%an%x1f%s",
            "--raw",
            "-z",
            "--no-abbrev",
            # A merge that differs from all its parents is listed; without a diff of its own it
            # would name no changed file. Against its first parent it is the version it made.
            "--diff-merges=first-parent",
            "--",
            name,
            *sorted(sources),
            what=f"read the log of {name}",
        )
        imported = self.imported()
        rows = []
        trail_blobs = set()
        for head, changes in raw_log_z(out):
            commit, when, author, subject = head.split("\x1f", 3)
            changed = {path: blob for blob, path in changes}
            rows.append((commit, int(when), author, subject, changed))
            if name in changed and set(changed[name]) != {"0"}:
                trail_blobs.add(changed[name])
        texts = self._cat_objects(sorted(trail_blobs))
        result: list[PointerCommit] = []
        last: object = object()
        # Oldest first, so a commit that changed a translated file but not this dataset's
        # version (another out of the same dvc.lock) is not counted as a version of it.
        for commit, when, author, subject, changed in reversed(rows):
            if name in changed:
                blob = changed[name]
                text = texts.get(blob)
                pointer = None if text is None else parse_pointer(text, f"{name} at {commit[:12]}")
            else:
                file = next((f for f in changed if f in sources), None)
                if file is None:
                    continue  # e.g. a merge that kept its first parent's version of these files
                item = imported.get(changed[file])
                if item is None and set(changed[file]) != {"0"}:
                    continue  # a version of that file the import did not see: not a version here
                pointer = None if item is None else item.pointers.get(sources[file])
                if item is not None and pointer is None and sources[file] in item.missing:
                    continue  # a version whose data was found nowhere: the import listed it
            if pointer != last:
                result.append(PointerCommit(commit, when, author, subject, pointer))
                last = pointer
        result.reverse()
        return result

    def _cat_objects(self, specs: list[str]) -> dict[str, bytes]:
        """Read blobs named by ``git cat-file`` specs with one process; absent ones are omitted."""
        if not specs:
            return {}
        request = b"".join(s.encode("utf-8", "surrogateescape") + b"\n" for s in specs)
        try:
            done = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self.top,
                input=request,
                capture_output=True,
                timeout=_TIMEOUT,
            )
        except FileNotFoundError:
            raise InvalidState("git is not installed", hint="Install Git and try again.") from None
        data = done.stdout
        out: dict[str, bytes] = {}
        pos = 0
        for spec in specs:
            end = data.index(b"\n", pos)
            header = data[pos:end].split(b" ")
            pos = end + 1
            if header[-1] == b"missing" or len(header) != 3:
                continue
            size = int(header[2])
            if header[1] == b"blob":
                out[spec] = data[pos : pos + size]
            pos += size + 1  # the blob, then a newline
        return out


def raw_log_z(out: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Split ``git log -z --raw --format=%x1e…`` into ``(header, [(new blob, path)])`` per commit.

    With -z, paths are as they are (no quoting of non-ASCII, tabs or newlines); a rename or copy
    names two paths, of which the second is the file's path in the commit.
    """
    commits = []
    for block in out.split("\x1e")[1:]:
        head, _, raw = block.partition("\0")
        tokens = raw.split("\0")
        changes = []
        i = 0
        while i < len(tokens):
            token = tokens[i].lstrip("\n")
            i += 1
            if not token.startswith(":"):
                continue
            meta = token.split()
            n = 2 if meta[-1][:1] in ("R", "C") else 1
            if len(meta) >= 5 and i + n <= len(tokens):
                changes.append((meta[3], tokens[i + n - 1]))
            i += n
        commits.append((head, changes))
    return commits


__all__ = ["GitRepo", "PointerCommit", "raw_log_z"]

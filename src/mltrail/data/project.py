"""The project a data command works on, and which workspace paths it may track."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mltrail.atomic import write_text_atomic
from mltrail.config import OBJECTS_DIR, PROJECT_DIR, find_project, read_config
from mltrail.data.links import check_link_type
from mltrail.data.lock import LOCK_FILE
from mltrail.data.pointer import POINTER_SUFFIX, data_path_of, pointer_path
from mltrail.data.statcache import StatCache
from mltrail.errors import InvalidInput, StoreNotFound
from mltrail.objects.local import LocalObjectStore
from mltrail.validation import check_dataset_path

STAT_CACHE = "cache/stat.db"
#: Folders never searched for pointer files.
SKIP_DIRS = frozenset({PROJECT_DIR, ".git", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class Project:
    """A project: ``root`` is the folder holding ``.mltrail/`` (``dir``)."""

    root: Path
    dir: Path

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None) -> Project:
        """Return the project holding ``start`` (default: the working directory)."""
        here = Path(start) if start is not None else None
        found = find_project(here)
        if found is None:
            where = (here or Path.cwd()).resolve()
            raise StoreNotFound(
                f"no {PROJECT_DIR} folder in {where} or above",
                hint="Run `mltrail init` in the project's top folder first.",
            )
        return cls(found.parent, found)

    def ignore_local_state(self) -> None:
        """Keep the machine-local stat cache and lock file out of Git (``.mltrail/.gitignore``)."""
        ensure_gitignored(self.dir / "cache")
        ensure_gitignored(self.dir / LOCK_FILE)

    def store(self) -> LocalObjectStore:
        """Return the project's object store (``.mltrail/objects``)."""
        return LocalObjectStore(self.dir / OBJECTS_DIR)

    def stat_cache(self) -> StatCache:
        """Open the machine-local stat cache (``.mltrail/cache/stat.db``)."""
        return StatCache(self.dir / STAT_CACHE)

    def link_type(self) -> str:
        """Return ``[data] link`` from config.toml (default ``auto``)."""
        section = read_config(self.dir).get("data") or {}
        if not isinstance(section, dict):
            raise InvalidInput(f"[data] in {self.dir / 'config.toml'} is not a table")
        return check_link_type(section.get("link", "auto"), str(self.dir / "config.toml"))

    def share_into(self, root: Path, shared: Iterable[str] = (OBJECTS_DIR,)) -> Project:
        """Give ``root`` a ``.mltrail/`` whose ``shared`` entries are this project's; return it.

        Each shared entry is a symbolic link to this project's own (``objects``: one cache, so
        data is linked from it and new objects land in it); ``config.toml`` is copied. Used by
        the temporary worktree of ``mltrail reproduce`` and the workspaces of a parallel sweep.
        """
        import shutil

        from mltrail.config import CONFIG_FILE, init_project

        folder = root / PROJECT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name in shared:
            link = folder / name
            if not os.path.lexists(link):
                (self.dir / name).mkdir(parents=True, exist_ok=True)
                link.symlink_to(self.dir / name, target_is_directory=True)
        if not (folder / CONFIG_FILE).exists() and (self.dir / CONFIG_FILE).exists():
            shutil.copyfile(self.dir / CONFIG_FILE, folder / CONFIG_FILE)
        init_project(root)
        return Project(root, folder)

    def rel(self, path: Path) -> str:
        """Return ``path`` relative to the root, POSIX style, for messages and output."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    # -- paths -----------------------------------------------------------------------------------

    def data_path(self, given: str | os.PathLike[str], *, for_add: bool = False) -> Path:
        """Return the absolute path of a dataset, refusing anything that may not be tracked.

        A pointer path (``x.trail``) names its dataset, except for ``add``.
        """
        text = os.fspath(given)
        path = Path(os.path.abspath(text))
        if path.name.endswith(POINTER_SUFFIX) and path.name != POINTER_SUFFIX:
            if for_add:
                raise InvalidInput(
                    f"{text} is a pointer file; add the data it describes instead",
                    hint=f"mltrail data add {data_path_of(text)}",
                )
            path = data_path_of(path)
        root = self.root
        if path == root or root not in path.parents:
            raise InvalidInput(
                f"{text} is outside the project {root}",
                hint="Only files and folders under the folder holding .mltrail/ can be tracked.",
            )
        if path.relative_to(root).parts[0] == PROJECT_DIR:
            raise InvalidInput(f"{text} is inside {PROJECT_DIR}/, mltrail's own folder")
        # The name the dataset is recorded under obeys the rules of every path (no control or
        # bidi characters, no backslashes, names a file system can hold).
        check_dataset_path(path.relative_to(root).as_posix())
        real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
        if real != real_root and real_root not in real.parents:
            raise InvalidInput(
                f"{text} is a symbolic link (or inside one) that points outside the project, "
                f"to {real}",
                hint="Copy or move the data into the project, then add it.",
            )
        if real == real_root or real.relative_to(real_root).parts[0] == PROJECT_DIR:
            raise InvalidInput(f"{text} is a link to the project or its {PROJECT_DIR}/ folder")
        if for_add:
            if not os.path.lexists(path):
                raise InvalidInput(f"no such file or folder: {text}")
            for parent in path.parents:
                if parent == root:
                    break
                if pointer_path(parent).exists():
                    raise InvalidInput(
                        f"{text} is inside {self.rel(parent)}, which is already tracked as a whole",
                        hint=f"Run `mltrail data add {self.rel(parent)}` to record its new "
                        "version.",
                    )
        return path

    def check_not_in_git(self, path: Path) -> None:
        """Refuse a path that Git tracks: its content belongs in Git or in mltrail, not both."""
        try:
            result = subprocess.run(
                ["git", "ls-files", "--error-unmatch", "--", path.name],
                cwd=path.parent,
                capture_output=True,
                timeout=60,
            )
        except (FileNotFoundError, NotADirectoryError):
            return  # no git on this machine, or no folder yet
        if result.returncode == 0:
            rel = self.rel(path)
            raise InvalidInput(
                f"{rel} is tracked by Git; mltrail cannot take it over",
                hint=f"Stop tracking it in Git first: git rm -r --cached {rel}",
            )

    def selected(self, paths: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
        """Return the pointer files named by ``paths`` (data or pointer paths), or all of them."""
        if paths is None:
            return self.pointers()
        out = []
        for given in paths:
            data = self.data_path(given)
            ptr = pointer_path(data)
            if not ptr.exists():
                raise InvalidInput(
                    f"{self.rel(data)} is not tracked (no {self.rel(ptr)})",
                    hint=f"Track it with `mltrail data add {self.rel(data)}`.",
                )
            if ptr not in out:
                out.append(ptr)
        return out

    def pointers(self) -> list[Path]:
        """Return every pointer file under the root (not in .mltrail/ or .git/), sorted."""
        found: list[Path] = []
        for folder, dirs, files in os.walk(self.root):
            tracked = {
                name[: -len(POINTER_SUFFIX)] for name in files if name.endswith(POINTER_SUFFIX)
            }
            found.extend(Path(folder, name + POINTER_SUFFIX) for name in tracked if name)
            if "pyvenv.cfg" in files and folder != str(self.root):
                dirs[:] = []  # a virtualenv: thousands of package files and never a pointer
                continue
            # Tracked folders hold data, not pointers: don't walk through their files.
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and d not in tracked)
        return sorted(found)


def ensure_gitignored(path: Path) -> bool:
    """Add ``/name`` to the ``.gitignore`` beside ``path`` unless it is there; True if added."""
    gitignore = path.parent / ".gitignore"
    line = "/" + _gitignore_escape(path.name)
    try:
        text = gitignore.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    existing = {raw.strip() for raw in text.splitlines()}
    if line in existing or line + "/" in existing:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    write_text_atomic(gitignore, text + line + "\n")
    return True


def _gitignore_escape(name: str) -> str:
    out = "".join("\\" + c if c in "*?[]\\" else c for c in name)
    if out[:1] in ("#", "!"):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


__all__ = ["STAT_CACHE", "Project", "ensure_gitignored"]

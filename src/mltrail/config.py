"""Where the store lives: the ``.mltrail/`` project folder, environment variables, explicit URIs."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mltrail.atomic import write_text_atomic
from mltrail.errors import CorruptStore, StoreNotFound

PROJECT_DIR = ".mltrail"
DB_FILE = "mltrail.db"
OBJECTS_DIR = "objects"
CONFIG_FILE = "config.toml"

ENV_TRACKING_URI = "MLTRAIL_TRACKING_URI"
ENV_OBJECTS = "MLTRAIL_OBJECTS"

_NO_STORE_HINT = "Create one with `mltrail init`, or check --store / MLTRAIL_TRACKING_URI."

_CONFIG_TEMPLATE = """\
# mltrail project configuration.
# Remotes and defaults go here; see docs/data.md (remotes) and docs/storage.md.
[core]
schema = 1
"""

# Everything in .mltrail/ but config.toml is machine-local state. The later lines are also added on
# first use (for projects initialised before they were listed here); listing them up front keeps
# the committed .gitignore unmodified by the first `data add` or `repro`.
_GITIGNORE = "/mltrail.db*\n/objects/\n/tmp/\n/cache/\n/data.lock\n/runs/\n/spool/\n"


@dataclass(frozen=True)
class Location:
    """A resolved store: the metadata URI, the object store location, the project folder if any."""

    tracking_uri: str
    objects: str | None
    project_dir: Path | None = None


def find_project(start: Path | None = None) -> Path | None:
    """Return the nearest ``.mltrail`` folder from ``start`` upward, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_DIR
        if candidate.exists():
            if not candidate.is_dir():
                raise CorruptStore(
                    f"{candidate} exists but is not a folder",
                    hint="Move that file away, then run `mltrail init`.",
                )
            return candidate
    return None


def init_project(root: Path | None = None) -> Path:
    """Create (or complete) a ``.mltrail`` folder in ``root``; return its path."""
    project = (root or Path.cwd()).resolve() / PROJECT_DIR
    if project.exists() and not project.is_dir():
        raise CorruptStore(
            f"{project} exists but is not a folder", hint="Move that file away and try again."
        )
    (project / OBJECTS_DIR).mkdir(parents=True, exist_ok=True)
    config = project / CONFIG_FILE
    if not config.exists():
        config.write_text(_CONFIG_TEMPLATE)
    gitignore = project / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_GITIGNORE)
    return project


def read_config(project: Path) -> dict:
    """Parse ``.mltrail/config.toml``; a malformed file is a :class:`CorruptStore`."""
    path = project / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorruptStore(
            f"{path} is not valid TOML: {exc}",
            hint="Fix or delete the file (it holds settings only).",
        ) from None


def sqlite_uri(path: Path) -> str:
    """The store URI of a SQLite file."""
    return f"sqlite:///{path}"


def resolve(
    tracking_uri: str | None = None,
    objects: str | None = None,
    *,
    create: bool = True,
    start: Path | None = None,
) -> Location:
    """Work out which store to use.

    Order: the explicit argument, then ``MLTRAIL_TRACKING_URI``, then the nearest ``.mltrail``
    folder; with none of these, a new project in the working directory when ``create`` is true.
    """
    uri = tracking_uri or os.environ.get(ENV_TRACKING_URI) or None
    objects = objects or os.environ.get(ENV_OBJECTS) or None
    if uri is None:
        project = find_project(start)
        if project is None:
            if not create:
                raise StoreNotFound(
                    f"no {PROJECT_DIR} folder in {(start or Path.cwd()).resolve()} or above",
                    hint=_NO_STORE_HINT,
                )
            project = init_project(start)
        return _from_project(project, objects, create)
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        if not create and not db.exists():
            raise StoreNotFound(f"no mltrail store at {db}", hint=_NO_STORE_HINT)
        # Objects sit beside a SQLite file, as they do in a project folder.
        return Location(uri, objects or str(db.parent / OBJECTS_DIR))
    if uri.startswith(("http://", "https://")):
        # A server holds the objects too: artifacts and models travel through it.
        return Location(uri.rstrip("/"), objects or uri.rstrip("/"))
    if "://" in uri:
        return Location(uri, objects)
    # A bare path: a project folder, the folder holding one, or a database file.
    path = Path(uri).expanduser().resolve()
    if path.name == PROJECT_DIR:
        return _from_project(path, objects, create)
    if path.is_dir() or (create and not path.suffix):
        return _from_project(path / PROJECT_DIR, objects, create)
    if not create and not path.exists():
        raise StoreNotFound(f"no mltrail store at {path}", hint=_NO_STORE_HINT)
    return Location(sqlite_uri(path), objects or str(path.parent / OBJECTS_DIR))


def _from_project(project: Path, objects: str | None, create: bool) -> Location:
    if not project.is_dir():
        if not create:
            where = project.parent if project.name == PROJECT_DIR else project
            raise StoreNotFound(f"{where} has no {PROJECT_DIR} folder", hint=_NO_STORE_HINT)
        init_project(project.parent)
    read_config(project)
    return Location(
        sqlite_uri(project / DB_FILE), objects or str(project / OBJECTS_DIR), project_dir=project
    )


# -- editing config.toml -----------------------------------------------------------------------
# Edits are made on the text, line by line, so the user's comments and layout survive; the result
# is parsed again before it replaces the file, so a failed edit never leaves a broken config.


def _header(line: str) -> str | None:
    """Return the dotted table name of a ``[table]`` header line, or None."""
    text = line.split("#", 1)[0].strip()
    if text.startswith("[") and text.endswith("]") and not text.startswith("[["):
        return ".".join(part.strip() for part in text[1:-1].split("."))
    return None


def _table_span(lines: list[str], table: str) -> tuple[int, int] | None:
    """Return the [start, end) line range of ``table`` (header included), or None."""
    start = next((i for i, line in enumerate(lines) if _header(line) == table), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _header(lines[i]) is not None), None)
    end = len(lines) if end is None else end
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end


def toml_value(value: str | int | bool) -> str:
    """Return ``value`` written as a TOML literal."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes


def edit_config(
    project: Path,
    table: str,
    values: dict[str, str | int | bool | None] | None,
) -> dict:
    """Set (or, for None, remove) keys of ``[table]``; ``values=None`` removes the whole table.

    Return the new parsed configuration.
    """
    path = project / CONFIG_FILE
    read_config(project)  # refuse to edit a file that is already broken
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    span = _table_span(lines, table)
    if values is None:
        if span is not None:
            start, end = span
            while end < len(lines) and not lines[end].strip():
                end += 1
            del lines[start:end]
    else:
        if span is None:
            if lines and lines[-1].strip():
                lines.append("")
            lines.append(f"[{table}]")
            span = (len(lines) - 1, len(lines))
        start, end = span
        for key, value in values.items():
            at = next(
                (
                    i
                    for i in range(start + 1, end)
                    if lines[i].split("=", 1)[0].strip() == key and "=" in lines[i]
                ),
                None,
            )
            if value is None:
                if at is not None:
                    del lines[at]
                    end -= 1
            elif at is not None:
                lines[at] = f"{key} = {toml_value(value)}"
            else:
                lines.insert(end, f"{key} = {toml_value(value)}")
                end += 1
    new_text = "\n".join(lines) + "\n" if lines else ""
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise CorruptStore(
            f"cannot update {path} automatically ({exc}); it was left unchanged",
            hint=f"Edit [{table}] in that file by hand.",
        ) from None
    write_text_atomic(path, new_text)
    return parsed

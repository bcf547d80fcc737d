"""Remotes: named object stores that datasets are pushed to and pulled from.

They live in ``.mltrail/config.toml``, which is committed, so a clone knows them::

    [core]
    remote = "origin"          # the default remote

    [remote.origin]
    url = "s3://bucket/prefix"
    endpoint_url = "http://127.0.0.1:9000"   # optional: an S3-compatible server

A remote is any object store mltrail can open: a local or network folder (a relative path is
taken from the project root), an S3 bucket and prefix, or an ``mltrail server``
(``http(s)://host:port``; objects move through it, or straight to its S3 bucket when it hands
out presigned URLs). Credentials for S3 come from the usual AWS chain (environment,
``AWS_PROFILE``, ``~/.aws``) and the server's token from ``MLTRAIL_TOKEN``, never from this file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mltrail.config import edit_config, read_config
from mltrail.errors import AlreadyExists, CorruptStore, InvalidInput, NotFound
from mltrail.objects.base import ObjectStore

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_KEYS = ("url", "endpoint_url")


@dataclass(frozen=True)
class Remote:
    """A configured remote: its name, URL and (for S3-compatible servers) endpoint."""

    name: str
    url: str
    endpoint_url: str | None = None
    default: bool = False

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "url": self.url,
            "endpoint_url": self.endpoint_url,
            "default": self.default,
        }


def check_remote_name(name: str) -> str:
    """Return ``name`` if it may name a remote (letters, digits, ``_`` and ``-``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid remote name {name!r}",
            hint="Use 1-64 letters, digits, '_' or '-', starting with a letter or digit.",
        )
    return name


def check_remote_url(url: str) -> str:
    """Return ``url`` if it names a folder, an ``s3://bucket[/prefix]`` or a server; else raise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("the remote URL is empty", hint="Give a folder or s3://bucket/prefix.")
    if "://" not in url:
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise InvalidInput(
                f"S3 URL {url!r} names no bucket", hint="Write it as s3://bucket/prefix."
            )
        return url
    if scheme == "file":
        return url
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise InvalidInput(
                f"server URL {url!r} names no host", hint="Write it as http://host:port."
            )
        return url
    raise InvalidInput(
        f"unsupported remote URL {url!r}",
        hint="Use a local or network folder, file:///path, s3://bucket/prefix or the "
        "http(s):// URL of an mltrail server.",
    )


def _remote_tables(project_dir: Path) -> tuple[dict, str | None]:
    config = read_config(project_dir)
    remotes = config.get("remote", {})
    where = project_dir / "config.toml"
    if not isinstance(remotes, dict):
        raise CorruptStore(f"'remote' in {where} is not a table", hint="Fix it by hand.")
    core = config.get("core", {})
    default = core.get("remote") if isinstance(core, dict) else None
    if default is not None and not isinstance(default, str):
        raise CorruptStore(f"[core] remote in {where} is not a string", hint="Fix it by hand.")
    return remotes, default


def list_remotes(project_dir: Path) -> list[Remote]:
    """Return the configured remotes, sorted by name."""
    tables, default = _remote_tables(project_dir)
    out = []
    for name, table in sorted(tables.items()):
        where = f"[remote.{name}] in {project_dir / 'config.toml'}"
        if not isinstance(table, dict) or not isinstance(table.get("url"), str):
            raise CorruptStore(f"{where} has no url", hint="Fix it, or remove the remote.")
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise CorruptStore(
                f"{where} has an unknown key {unknown[0]!r}",
                hint=f"A remote has the keys {', '.join(_KEYS)}.",
            )
        endpoint = table.get("endpoint_url")
        if endpoint is not None and not isinstance(endpoint, str):
            raise CorruptStore(f"{where}: endpoint_url is not a string", hint="Fix it by hand.")
        out.append(Remote(name, table["url"], endpoint, name == default))
    return out


def get_remote(project_dir: Path, name: str | None = None) -> Remote:
    """Return the remote called ``name``, or the default one; NotFound says what exists."""
    remotes = list_remotes(project_dir)
    if name is None:
        _, default = _remote_tables(project_dir)
        if default is None:
            if len(remotes) == 1:
                return remotes[0]
            raise NotFound(
                "no default remote is set"
                + (f" (remotes: {', '.join(r.name for r in remotes)})" if remotes else ""),
                hint="Add one with `mltrail remote add NAME URL`, or pick one with -r NAME."
                if not remotes
                else "Pick one with -r NAME, or set it with `mltrail remote default NAME`.",
            )
        name = default
    for r in remotes:
        if r.name == name:
            return r
    known = ", ".join(r.name for r in remotes) or "none"
    raise NotFound(
        f"no remote named {name!r} (configured: {known})",
        hint="List them with `mltrail remote list`; add one with `mltrail remote add NAME URL`.",
    )


def add_remote(
    project_dir: Path,
    name: str,
    url: str,
    *,
    endpoint_url: str | None = None,
    default: bool = False,
    force: bool = False,
) -> Remote:
    """Add (or with ``force`` replace) a remote; the first one added becomes the default."""
    check_remote_name(name)
    check_remote_url(url)
    if endpoint_url is not None and not urlsplit(endpoint_url).scheme.startswith("http"):
        raise InvalidInput(
            f"endpoint URL {endpoint_url!r} is not an http(s) URL",
            hint="Give it as http://host:port or https://host.",
        )
    if endpoint_url is not None and not url.startswith("s3://"):
        raise InvalidInput("--endpoint-url only applies to s3:// remotes")
    existing = list_remotes(project_dir)
    if any(r.name == name for r in existing) and not force:
        raise AlreadyExists(
            f"remote {name!r} already exists",
            hint="Replace it with --force, or remove it first (mltrail remote remove).",
        )
    edit_config(project_dir, f"remote.{name}", None)
    edit_config(project_dir, f"remote.{name}", {"url": url, "endpoint_url": endpoint_url})
    _, current = _remote_tables(project_dir)
    if default or current is None:
        edit_config(project_dir, "core", {"remote": name})
    return get_remote(project_dir, name)


def remove_remote(project_dir: Path, name: str) -> None:
    """Remove a remote (its objects are left where they are)."""
    get_remote(project_dir, name)
    edit_config(project_dir, f"remote.{name}", None)
    _, current = _remote_tables(project_dir)
    if current == name:
        edit_config(project_dir, "core", {"remote": None})


def set_default_remote(project_dir: Path, name: str) -> Remote:
    """Make ``name`` the default remote."""
    get_remote(project_dir, name)
    edit_config(project_dir, "core", {"remote": name})
    return get_remote(project_dir, name)


def open_remote(project_root: Path, remote: Remote) -> ObjectStore:
    """Open a remote's object store; a relative folder is taken from the project root."""
    from mltrail.objects import LocalObjectStore, open_object_store, open_s3_store

    url = remote.url
    if url.startswith("s3://"):
        return open_s3_store(url, remote.endpoint_url)
    if "://" not in url:
        path = Path(os.path.expanduser(url))
        path = path if path.is_absolute() else project_root / path
        store: ObjectStore = LocalObjectStore(os.path.normpath(path))
    else:
        store = open_object_store(url)
    own = (project_root / ".mltrail" / "objects").resolve()
    if isinstance(store, LocalObjectStore) and store.root.resolve() == own:
        raise InvalidInput(
            f"remote {remote.name!r} is the project's own cache ({own})",
            hint="Point the remote at another folder.",
        )
    return store


__all__ = [
    "Remote",
    "add_remote",
    "check_remote_name",
    "check_remote_url",
    "get_remote",
    "list_remotes",
    "open_remote",
    "remove_remote",
    "set_default_remote",
]

"""DVC's own files, read-only: ``.dvc`` pointers, ``dvc.lock``, ``.dvc/config``, ``.dir`` listings.

Only the facts of the formats are used (DVC 2.x and 3.x): an out is ``{path, md5, size,
nfiles, hash}``; ``hash: md5`` marks DVC 3 (raw-byte MD5), its absence a 2.x out whose text files
were hashed after CRLF→LF; a folder's md5 ends in ``.dir`` and names a JSON listing of
``{"md5", "relpath"}`` sorted by relpath, whose own md5 is that of
``json.dumps(listing, sort_keys=True)``. Nothing here writes.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidInput
from mltrail.objects.tree import check_tree_path

DVC_DIR = ".dvc"
DVC_SUFFIX = ".dvc"
LOCK_NAME = "dvc.lock"
YAML_NAME = "dvc.yaml"
_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_REMOTE_SECTION = re.compile(r"""^'?remote\s+"(.+)"'?$""")
#: DVC ≤2 took a block as text when it had no NUL byte (its ``istextblock`` on the first 512).
_TEXT_PROBE = 512


@dataclass(frozen=True)
class DvcOut:
    """One out DVC tracks: ``path`` relative to the folder of the file that names it."""

    path: str
    md5: str | None
    size: int | None = None
    nfiles: int | None = None
    #: True for a DVC ≤2 out (no ``hash: md5``): its text files were hashed after CRLF→LF.
    legacy: bool = False
    cache: bool = True
    persist: bool = False
    isexec: bool = False

    @property
    def is_dir(self) -> bool:
        """True when the out is a folder (its md5 names a ``.dir`` listing)."""
        return bool(self.md5 and self.md5.endswith(".dir"))


def load_yaml(data: bytes | str, what: str) -> Any:
    """Parse YAML (DVC writes 1.2, which safe_load reads for everything DVC writes)."""
    import yaml

    from mltrail import safe_yaml

    try:
        return safe_yaml.load(data, what)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidInput(f"{what} is not valid YAML{where}") from None


def parse_out(item: Any, what: str) -> DvcOut:
    """Return the out of one ``outs``/``deps`` item of a ``.dvc`` or ``dvc.lock`` file."""
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        raise InvalidInput(f"{what}: an entry without a path")
    md5 = item.get("md5")
    if md5 is not None and (not isinstance(md5, str) or not _MD5.match(md5)):
        raise InvalidInput(f"{what}: {item['path']} has md5 {md5!r}, not an MD5")
    size = item.get("size")
    nfiles = item.get("nfiles")
    return DvcOut(
        item["path"],
        md5,
        size if type(size) is int else None,
        nfiles if type(nfiles) is int else None,
        legacy=item.get("hash") != "md5",
        cache=item.get("cache", True) is not False,
        persist=item.get("persist") is True,
        isexec=item.get("isexec") is True,
    )


def repo_path(folder: str, wdir: str, path: str, what: str) -> str:
    """Return ``folder/wdir/path`` normalised, relative to the repository; InvalidInput if outside.

    The rule of dvc.yaml's stage paths (:func:`.dvc_yaml._stage`): a ``.dvc`` file is only text,
    and a URL, an absolute path or a ``..`` escape would have the import read data, and write the
    ``.trail`` and ``.gitignore``, outside the repository.
    """
    if not path.strip() or "://" in path or "://" in wdir:
        raise InvalidInput(f"{what}: {path!r} is outside the repository (not a repository path)")
    full = posixpath.normpath(posixpath.join(folder, wdir, path))
    if full in (".", "..") or full.startswith("../") or posixpath.isabs(full):
        raise InvalidInput(f"{what}: {path} is outside the repository")
    return full


@dataclass
class DvcFile:
    """A parsed ``.dvc`` file: its outs, and what makes it more than a plain pointer."""

    outs: list[DvcOut]
    #: ``dvc import``/``import-url`` sources (the link to update from is not converted).
    imported_from: str | None = None
    wdir: str = "."


def parse_dvc_file(data: bytes | str, what: str) -> DvcFile:
    """Parse the text of a ``.dvc`` file."""
    doc = load_yaml(data, what)
    if not isinstance(doc, dict) or not isinstance(doc.get("outs"), list):
        raise InvalidInput(f"{what} has no `outs:` list, so it is not a DVC pointer file")
    outs = [parse_out(o, what) for o in doc["outs"]]
    source = None
    for dep in doc.get("deps") or []:
        if isinstance(dep, dict):
            repo = dep.get("repo")
            source = (repo or {}).get("url") if isinstance(repo, dict) else dep.get("path")
    wdir = doc.get("wdir") if isinstance(doc.get("wdir"), str) else "."
    return DvcFile(outs, source if isinstance(source, str) else None, wdir)


@dataclass
class LockStage:
    """One stage of ``dvc.lock``; paths relative to the stage's wdir."""

    name: str
    cmd: str | list[str]
    deps: list[DvcOut]
    params: dict[str, dict[str, Any]]
    outs: list[DvcOut]


def parse_lock(data: bytes | str, what: str) -> dict[str, LockStage]:
    """Parse ``dvc.lock`` (schema 2.0); the 1.x form (stages at the top level) too."""
    doc = load_yaml(data, what) or {}
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what} is not a mapping")
    stages = doc.get("stages") if "schema" in doc else doc
    if not isinstance(stages, dict):
        raise InvalidInput(f"{what} has no `stages:` mapping")
    out = {}
    for name, body in stages.items():
        if not isinstance(body, dict):
            continue
        params = body.get("params") or {}
        out[str(name)] = LockStage(
            str(name),
            body.get("cmd", ""),
            [parse_out(d, f"{what} stage {name}") for d in body.get("deps") or []],
            {str(f): v for f, v in params.items() if isinstance(v, dict)},
            [parse_out(o, f"{what} stage {name}") for o in body.get("outs") or []],
        )
    return out


# -- config ----------------------------------------------------------------------------------------


@dataclass
class DvcRemote:
    """A ``[remote "name"]`` section of ``.dvc/config`` (with ``config.local`` over it)."""

    name: str
    url: str
    endpoint_url: str | None = None
    #: Credentials from the config files; used to read, never written anywhere.
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    profile: str | None = None


@dataclass
class DvcConfig:
    """What an import needs of DVC's configuration."""

    remotes: dict[str, DvcRemote]
    default_remote: str | None
    cache_dir: Path


def read_config(root: Path) -> DvcConfig:
    """Read ``.dvc/config``, then ``.dvc/config.local`` over it, of the repository at ``root``."""
    dvc_dir = root / DVC_DIR
    merged: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):
        path = dvc_dir / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(encoding="utf-8"), str(path))
        except (configparser.Error, UnicodeDecodeError) as e:
            raise InvalidInput(f"{path} cannot be read as DVC's config: {e}") from None
        for section in parser.sections():
            merged.setdefault(section, {}).update(parser[section])
    remotes = {}
    for section, values in merged.items():
        m = _REMOTE_SECTION.match(section)
        if m is None or "url" not in values:
            continue
        url = values["url"]
        # A relative local remote is taken from the config file's folder, as DVC does.
        if "://" not in url and not os.path.isabs(os.path.expanduser(url)):
            url = os.path.normpath(dvc_dir / url)
        remotes[m.group(1)] = DvcRemote(
            m.group(1),
            url,
            values.get("endpointurl"),
            values.get("access_key_id"),
            values.get("secret_access_key"),
            values.get("region"),
            values.get("profile"),
        )
    core = merged.get("core", {})
    cache = merged.get("cache", {}).get("dir")
    cache_dir = Path(os.path.normpath(dvc_dir / cache)) if cache else dvc_dir / "cache"
    return DvcConfig(remotes, core.get("remote"), cache_dir)


# -- hashes ----------------------------------------------------------------------------------------


def dos2unix_md5(data: bytes) -> str | None:
    """Return DVC ≤2's md5 of text ``data`` (CRLF→LF), or None when DVC took it as binary."""
    if b"\0" in data[:_TEXT_PROBE]:
        return None
    return hashlib.md5(data.replace(b"\r\n", b"\n")).hexdigest()


def parse_dir_listing(data: bytes, md5: str, what: str) -> list[tuple[str, str, bool]]:
    """Return ``[(relpath, md5, isexec)]`` of a ``.dir`` object, checked against its md5."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"{what}: the folder listing {md5} is not JSON") from None
    if not isinstance(doc, list):
        raise InvalidInput(f"{what}: the folder listing {md5} is not a list")
    rows, canon = [], []
    for e in doc:
        if not isinstance(e, dict) or not isinstance(e.get("relpath"), str):
            raise InvalidInput(f"{what}: the folder listing {md5} has an entry without relpath")
        h = e.get("md5")
        if not isinstance(h, str) or not _MD5.match(h) or h.endswith(".dir"):
            raise InvalidInput(f"{what}: {e['relpath']} in listing {md5} has no file md5")
        rel = posixpath.normpath(e["relpath"].replace("\\", "/"))
        try:
            # Before any file is read: a listing is data, and `ws / rel` must stay in the folder.
            check_tree_path(rel)
        except InvalidInput as err:
            raise InvalidInput(f"{what}: the folder listing {md5} has an {err.message}") from None
        rows.append((rel, h, e.get("isexec") is True))
        canon.append({"md5": h, "relpath": e["relpath"]})
    want = md5.removesuffix(".dir")
    canon.sort(key=lambda d: d["relpath"])
    if (
        hashlib.md5(json.dumps(canon, sort_keys=True).encode()).hexdigest() != want
        and hashlib.md5(data).hexdigest() != want
    ):
        raise InvalidInput(f"{what}: the folder listing does not match its MD5 {md5}")
    return rows


def cache_paths(cache_dir: Path, md5: str) -> list[Path]:
    """Where DVC keeps an object in a cache or local remote: the 3.x layout, then the 2.x one."""
    return [cache_dir / "files" / "md5" / md5[:2] / md5[2:], cache_dir / md5[:2] / md5[2:]]


def object_keys(md5: str) -> list[str]:
    """The keys of an object under a remote's prefix, 3.x layout first."""
    return [f"files/md5/{md5[:2]}/{md5[2:]}", f"{md5[:2]}/{md5[2:]}"]


def find_dvc_files(root: Path) -> list[Path]:
    """Return every ``.dvc`` pointer file under ``root`` (not in .dvc/, .git/ or .mltrail/)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in (".dvc", ".git", ".mltrail", "node_modules"))
        found.extend(Path(folder, f) for f in files if f.endswith(DVC_SUFFIX) and f != DVC_SUFFIX)
    return sorted(found)


__all__ = [
    "DVC_DIR",
    "LOCK_NAME",
    "YAML_NAME",
    "DvcConfig",
    "DvcFile",
    "DvcOut",
    "DvcRemote",
    "LockStage",
    "cache_paths",
    "dos2unix_md5",
    "find_dvc_files",
    "load_yaml",
    "object_keys",
    "parse_dir_listing",
    "parse_dvc_file",
    "parse_lock",
    "parse_out",
    "read_config",
    "repo_path",
]

"""DVC objects into mltrail's store: found by MD5, checked against it, stored under their BLAKE3.

Sources, in order: DVC's cache (3.x ``files/md5/xx/…`` and 2.x ``xx/…`` layouts), the workspace
copy (used only when it hashes to the MD5 DVC recorded), then each DVC remote (local folder or
S3, the default remote first). A folder's ``.dir`` listing becomes an mltrail tree of the same
files. Every byte is checked against DVC's MD5 before it is stored, so a damaged cache copy is
passed over for the next source, and an object no source has intact is reported, not stored.

What was converted is remembered in ``.mltrail/cache/dvc-objects.json`` (MD5 → BLAKE3 and size,
machine-local like the stat cache), so a rerun reads nothing it already converted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from mltrail.atomic import write_text_atomic
from mltrail.data.pointer import Pointer
from mltrail.data.workspace import QUIET, Reporter
from mltrail.errors import MltrailError
from mltrail.importers.dvc_files import (
    DvcConfig,
    DvcOut,
    DvcRemote,
    cache_paths,
    dos2unix_md5,
    object_keys,
    parse_dir_listing,
)
from mltrail.objects.hashing import CHUNK_SIZE, default_workers, map_parallel
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.tree import MODE_EXECUTABLE, MODE_FILE, Tree, TreeEntry

STATE_FILE = "cache/dvc-objects.json"


class ObjectProblem(MltrailError):
    """A DVC object that no source has intact: missing everywhere, or damaged where found."""

    code = "DVC_OBJECT"


@dataclass(frozen=True)
class Converted:
    """An object stored in mltrail's store: its BLAKE3 hash and size."""

    hash: str
    size: int


@dataclass
class Want:
    """One file object to convert: its MD5, where the workspace may hold it, what to call it."""

    md5: str
    legacy: bool
    workspace: Path | None
    what: str


@dataclass
class Stats:
    """What the object conversion did."""

    objects: int = 0
    bytes: int = 0
    already: int = 0
    from_cache: int = 0
    from_workspace: int = 0
    from_remote: int = 0
    damaged_copies: list[str] = field(default_factory=list)


def _digest(path: str) -> tuple[str, str, str | None, int]:
    """Return the MD5, BLAKE3, DVC ≤2 text MD5 (None if binary) and size of a file, in one read."""
    md5, b3 = hashlib.md5(), blake3()
    size = 0
    head = b""
    crlf = False
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            if not head:
                head = chunk[:512]
            md5.update(chunk)
            b3.update(chunk)
            crlf = crlf or b"\r" in chunk
            size += len(chunk)
    legacy = md5.hexdigest()
    if crlf and b"\0" not in head:
        with open(path, "rb") as f:
            legacy = dos2unix_md5(f.read()) or legacy
    return md5.hexdigest(), b3.hexdigest(), legacy, size


def _matches(want: Want, digest: tuple[str, str, str | None, int]) -> bool:
    return digest[0] == want.md5 or (want.legacy and digest[2] == want.md5)


class RemoteReader:
    """Reads DVC objects from one remote: a local folder or an S3 bucket and prefix."""

    def __init__(self, remote: DvcRemote, tmp: Path) -> None:
        self.remote = remote
        self.tmp = tmp
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The remote's name in DVC's config."""
        return self.remote.name

    def fetch(self, md5: str) -> str | None:
        """Return a local path holding the remote's copy of ``md5`` (S3: a temp file), or None."""
        url = self.remote.url
        if url.startswith("s3://"):
            return self._fetch_s3(md5)
        if "://" in url and not url.startswith("file://"):
            return None
        folder = Path(url.removeprefix("file://"))
        for p in cache_paths(folder, md5):
            if p.is_file():
                return str(p)
        return None

    def s3(self) -> Any:
        """Return this remote's boto3 client (endpoint and credentials from DVC's config)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                r = self.remote
                session = boto3.session.Session(profile_name=r.profile) if r.profile else boto3
                self._client = session.client(
                    "s3",
                    endpoint_url=r.endpoint_url,
                    aws_access_key_id=r.access_key_id,
                    aws_secret_access_key=r.secret_access_key,
                    region_name=r.region,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}),
                )
            return self._client

    def _fetch_s3(self, md5: str) -> str | None:
        from botocore.exceptions import ClientError

        rest = self.remote.url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        self.tmp.mkdir(parents=True, exist_ok=True)
        dest = self.tmp / f"{md5}.{os.urandom(4).hex()}"
        for key in object_keys(md5):
            full = f"{prefix}/{key}" if prefix else key
            try:
                body = self.s3().get_object(Bucket=bucket, Key=full)["Body"]
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    continue
                raise ObjectProblem(
                    f"cannot read {self.remote.url} (DVC remote {self.name!r}): "
                    f"{e.response.get('Error', {}).get('Message') or e}",
                    hint="Check the remote's credentials and endpoint (.dvc/config, "
                    ".dvc/config.local or the AWS environment).",
                ) from None
            with open(dest, "wb") as out:
                shutil.copyfileobj(body, out, CHUNK_SIZE)
            return str(dest)
        return None


class ObjectImporter:
    """Converts DVC objects into the project's object store, remembering what it converted."""

    def __init__(
        self,
        root: Path,
        project_dir: Path,
        config: DvcConfig,
        store: LocalObjectStore,
        *,
        dry_run: bool = False,
        reporter: Reporter = QUIET,
        tmp: Path | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.store = store
        self.dry_run = dry_run
        self.reporter = reporter
        self.state_path = project_dir / STATE_FILE
        self.tmp = tmp or project_dir / "tmp" / "dvc-import"
        self.known: dict[str, Converted] = self._load_state()
        self._dirty = False
        names = list(config.remotes)
        if config.default_remote in config.remotes:
            names.remove(config.default_remote)
            names.insert(0, config.default_remote)
        self.remotes = [RemoteReader(config.remotes[n], self.tmp) for n in names]
        self.stats = Stats()
        #: Listings of folders: ``.dir`` md5 → rows, read once per import.
        self._listings: dict[str, list[tuple[str, str, bool]]] = {}

    # -- state -----------------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Converted]:
        try:
            doc = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        out = {}
        for md5, item in (doc.get("objects") or {}).items() if isinstance(doc, dict) else ():
            if isinstance(item, list) and len(item) == 2:
                out[md5] = Converted(str(item[0]), int(item[1]))
        return out

    def save(self) -> None:
        """Write what was converted (MD5 → BLAKE3) for the next run."""
        if not self._dirty or self.dry_run:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"objects": {k: [v.hash, v.size] for k, v in sorted(self.known.items())}}
        write_text_atomic(self.state_path, json.dumps(doc, separators=(",", ":")))
        self._dirty = False

    def close(self) -> None:
        """Save the state and remove downloaded temp files."""
        self.save()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def lookup(self, md5: str) -> Converted | None:
        """Return the stored object an MD5 was converted to, if it is in the store."""
        found = self.known.get(md5)
        if found is not None and self.store.exists(found.hash):
            return found
        return None

    # -- files -----------------------------------------------------------------------------------

    def convert_files(self, wants: Iterable[Want]) -> dict[str, Converted | ObjectProblem]:
        """Convert file objects; return md5 → the stored object, or the problem that stopped it."""
        todo: dict[str, Want] = {}
        results: dict[str, Converted | ObjectProblem] = {}
        for w in wants:
            if w.md5 in results or w.md5 in todo:
                continue
            found = self.lookup(w.md5)
            if found is not None:
                results[w.md5] = found
                self.stats.already += 1
            else:
                todo[w.md5] = w
        if not todo:
            return results
        tried: dict[str, list[str]] = {m: [] for m in todo}
        local_cache = self.config.cache_dir
        # Each source gets what the sources before it did not have intact.
        sources: list[tuple[str, Callable[[Want], str | None]]] = [
            ("cache", lambda w: _first_file(cache_paths(local_cache, w.md5))),
            (
                "workspace",
                lambda w: str(w.workspace) if w.workspace and _isfile(w.workspace) else None,
            ),
            *((f"remote {r.name!r}", _remote_locator(r)) for r in self.remotes),
        ]
        for label, locate in sources:
            if not todo:
                break
            self._from_source(label, locate, todo, tried, results)
        for md5, w in todo.items():
            damaged = [t for t in tried[md5] if t.startswith("damaged")]
            head = f"{w.what}: " if w.what else ""
            if damaged:
                msg = (
                    f"{head}object {md5} does not match its MD5 "
                    f"({'; '.join(damaged)}), and no intact copy was found"
                )
            else:
                where = ", ".join(["DVC's cache", *(f"remote {r.name!r}" for r in self.remotes)])
                msg = f"{head}object {md5} is in none of {where}"
            results[md5] = ObjectProblem(msg)
        return results

    def _from_source(
        self,
        label: str,
        locate: Callable[[Want], str | None],
        todo: dict[str, Want],
        tried: dict[str, list[str]],
        results: dict[str, Converted | ObjectProblem],
    ) -> None:
        items = list(todo.values())

        def one(w: Want) -> tuple[str, tuple[str, str, str | None, int]] | None:
            path = locate(w)
            if path is None:
                return None
            return path, _digest(path)

        found = map_parallel(one, items, default_workers())
        good: list[tuple[str, str]] = []
        for w, hit in zip(items, found, strict=True):
            if hit is None:
                continue
            path, digest = hit
            if not _matches(w, digest):
                tried[w.md5].append(f"damaged in {label}: it hashes to {digest[0]}")
                self.stats.damaged_copies.append(f"{w.what}: {label} copy of {w.md5}")
                continue
            good.append((path, digest[1]))
            conv = Converted(digest[1], digest[3])
            results[w.md5] = conv
            self.known[w.md5] = conv
            self._dirty = True
            del todo[w.md5]
            self.stats.objects += 1
            self.stats.bytes += conv.size
            if label == "cache":
                self.stats.from_cache += 1
            elif label == "workspace":
                self.stats.from_workspace += 1
            else:
                self.stats.from_remote += 1
        if good and not self.dry_run:
            self.store.put_files(good, progress=self.reporter.advance)

    # -- outs ------------------------------------------------------------------------------------

    def listing(self, md5: str, what: str, workspace: Path | None) -> list[tuple[str, str, bool]]:
        """Return the rows of a ``.dir`` listing, read from the first source that has it intact."""
        if md5 in self._listings:
            return self._listings[md5]
        problems = []
        paths = [*cache_paths(self.config.cache_dir, md5)]
        for p in paths:
            if p.is_file():
                try:
                    rows = parse_dir_listing(p.read_bytes(), md5, what)
                except MltrailError as e:
                    problems.append(f"in DVC's cache: {e.message}")
                    continue
                self._listings[md5] = rows
                return rows
        for r in self.remotes:
            path = r.fetch(md5)
            if path is None:
                continue
            try:
                rows = parse_dir_listing(Path(path).read_bytes(), md5, what)
            except MltrailError as e:
                problems.append(f"on remote {r.name!r}: {e.message}")
                continue
            self._listings[md5] = rows
            return rows
        if workspace is not None and workspace.is_dir():
            rows = _listing_of_workspace(workspace, md5)
            if rows is not None:
                self._listings[md5] = rows
                return rows
        if problems:
            raise ObjectProblem(f"the folder listing {md5} is damaged ({'; '.join(problems)})")
        where = ", ".join(["DVC's cache", *(f"remote {r.name!r}" for r in self.remotes)])
        raise ObjectProblem(f"the folder listing {md5} is in none of {where}")

    def convert_outs(
        self, outs: list[tuple[DvcOut, Path | None, str]]
    ) -> list[Pointer | ObjectProblem]:
        """Convert ``(out, workspace path, name for messages)`` to pointers, all in one batch."""
        plans: list[Any] = []
        wants: list[Want] = []
        for out, ws, what in outs:
            if out.md5 is None:
                plans.append(ObjectProblem(f"{what}: DVC recorded no md5 for it"))
                continue
            if not out.is_dir:
                wants.append(Want(out.md5, out.legacy, ws, ""))
                plans.append(("file", out))
                continue
            try:
                rows = self.listing(out.md5, what, ws)
            except ObjectProblem as e:
                plans.append(e)
                continue
            for rel, md5, _ in rows:
                wants.append(Want(md5, out.legacy, ws / rel if ws else None, rel))
            plans.append(("dir", out, rows))
        self.reporter.begin(
            "converting DVC objects:", sum(o.size or 0 for o, _, _ in outs), len(wants)
        )
        try:
            converted = self.convert_files(wants)
        finally:
            self.reporter.end()
        result: list[Pointer | ObjectProblem] = []
        for (out, _, what), plan in zip(outs, plans, strict=True):
            if isinstance(plan, ObjectProblem):
                result.append(plan)
                continue
            if plan[0] == "file":
                got = converted[out.md5]  # type: ignore[index]
                if isinstance(got, ObjectProblem):
                    result.append(got)
                else:
                    result.append(Pointer(got.hash, "file", got.size))
                continue
            result.append(self._tree(plan[2], converted, what))
        return result

    def _tree(
        self,
        rows: list[tuple[str, str, bool]],
        converted: dict[str, Converted | ObjectProblem],
        what: str,
    ) -> Pointer | ObjectProblem:
        problems = [
            converted[md5] for _, md5, _ in rows if isinstance(converted[md5], ObjectProblem)
        ]
        if problems:
            first = problems[0]
            assert isinstance(first, ObjectProblem)
            more = f" (and {len(problems) - 1} more files)" if len(problems) > 1 else ""
            return ObjectProblem(first.message + more)
        entries = []
        try:
            for rel, md5, isexec in rows:
                c = converted[md5]
                assert isinstance(c, Converted)
                mode = MODE_EXECUTABLE if isexec else MODE_FILE
                entries.append(TreeEntry(rel, c.hash, c.size, mode))
            tree = Tree.from_entries(entries)
        except MltrailError as e:
            return ObjectProblem(f"its listing cannot be an mltrail folder: {e.message}")
        if not self.dry_run:
            self.store.put_bytes(tree.to_bytes())
        return Pointer(tree.hash, "dir", tree.size, len(tree))


def _isfile(p: Path) -> bool:
    return p.is_file()


def _first_file(paths: list[Path]) -> str | None:
    for p in paths:
        if p.is_file():
            return str(p)
    return None


def _remote_locator(r: RemoteReader) -> Callable[[Want], str | None]:
    return lambda w: r.fetch(w.md5)


def _listing_of_workspace(folder: Path, md5: str) -> list[tuple[str, str, bool]] | None:
    """Rebuild a ``.dir`` listing from the workspace folder; None unless it hashes to ``md5``."""
    rows = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            full = os.path.join(dirpath, f)
            rel = Path(os.path.relpath(full, folder)).as_posix()
            with open(full, "rb") as fh:
                rows.append((rel, hashlib.md5(fh.read()).hexdigest(), os.access(full, os.X_OK)))
    rows.sort()
    canon = [{"md5": h, "relpath": rel} for rel, h, _ in rows]
    got = hashlib.md5(json.dumps(canon, sort_keys=True).encode()).hexdigest()
    return rows if got == md5.removesuffix(".dir") else None


__all__ = ["Converted", "ObjectImporter", "ObjectProblem", "RemoteReader", "Stats", "Want"]

"""The client-side spool: writes to a ``mltrail server`` land on local disk before they are sent.

Every write of an HTTP store (a run created, metric batches, tags, params, artifacts, dataset
uses, the run's end) becomes one record file, written, fsync'd and renamed into place, and is sent
by a background thread in order. A record is removed only once the server acknowledged it; the
server applies each record once (run ids and batch ids are chosen here), so resending after a
crash or a lost reply is harmless. An outage of any length therefore loses nothing: the records
wait, and are sent when the server answers again, by this process, by the next process that uses
the same server, or by ``mltrail sync``.

Layout, under the spool root (``MLTRAIL_SPOOL_DIR``, else the project's ``.mltrail/spool``, else
the user's cache folder)::

    <server key>/server            the server's URL
    <server key>/objects/          artifact bytes not yet uploaded (a local object store)
    <server key>/rejected/         records the server refused, kept for inspection
    <server key>/w-<host>-<pid>-…/  one writer process: ``lock`` (held while it lives) and records

A writer's folder whose ``lock`` is free belongs to a process that is gone; whoever finds it
adopts it and sends its records.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mltrail.entities import (
    DatasetRef,
    Experiment,
    FileInfo,
    LifecycleStage,
    Run,
    RunBatch,
    RunData,
    RunInfo,
    RunStatus,
)
from mltrail.errors import (
    InvalidState,
    MltrailError,
    PermissionDenied,
    StoreError,
    Unauthenticated,
)
from mltrail.objects.base import ObjectInfo, ObjectStore
from mltrail.store import wire
from mltrail.store.http import HttpStore

log = logging.getLogger(__name__)

ENV_SPOOL_DIR = "MLTRAIL_SPOOL_DIR"
ENV_MODE = "MLTRAIL_MODE"
ENV_FLUSH_TIMEOUT = "MLTRAIL_FLUSH_TIMEOUT"
#: Seconds the end of a run (and process exit) waits for the server before leaving writes queued.
DEFAULT_FLUSH_TIMEOUT = 60.0
#: An experiment id standing for "the experiment of this name", resolved when the record is sent.
BY_NAME = "name:"
#: The run tag that says some of a run's writes were refused by the server.
TAG_INCOMPLETE = "mltrail.incomplete"

_RECORD_SUFFIX = ".json"
_OWNER_PREFIX = "w-"


def offline_mode() -> bool:
    """True when ``MLTRAIL_MODE=offline`` asks to log without contacting any server."""
    return os.environ.get(ENV_MODE, "").strip().lower() == "offline"


def flush_timeout() -> float:
    """How long a run's end waits for its writes to reach the server (MLTRAIL_FLUSH_TIMEOUT)."""
    text = os.environ.get(ENV_FLUSH_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_FLUSH_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise StoreError(
            f"{ENV_FLUSH_TIMEOUT}={text!r} is not a number of seconds",
            hint=f"Set it like {ENV_FLUSH_TIMEOUT}=60, or unset it for the default.",
        )
    return value


def spool_root(start: Path | None = None) -> Path:
    """The folder holding spools: MLTRAIL_SPOOL_DIR, else the project's, else the user's cache."""
    env = os.environ.get(ENV_SPOOL_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    from mltrail.config import find_project

    project = find_project(start)
    if project is not None:
        return project / "spool"
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "mltrail" / "spool"


def server_folder(root: Path, uri: str) -> Path:
    """The spool folder of one server (named by its URL, readable and unique)."""
    uri = uri.rstrip("/")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    readable = "".join(c if c.isalnum() else "_" for c in uri.split("://", 1)[-1])[:40]
    return root / f"{readable}-{digest}"


# -- records on disk -----------------------------------------------------------------------------
@dataclass
class Record:
    """One write waiting for the server."""

    path: Path
    op: str
    run_id: str
    args: dict[str, Any]
    upload: list[str] = field(default_factory=list)

    def points(self) -> int:
        """Metric points the record carries."""
        if self.op != "batches":
            return 0
        return sum(len(b.get("metrics") or ()) for b in self.args["batches"])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_record(path: Path) -> Record | None:
    """Load a record file; None when it is unreadable (a write cut short before its rename)."""
    try:
        doc = json.loads(path.read_bytes())
        return Record(path, doc["op"], doc["run_id"], doc["args"], list(doc.get("upload") or ()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def owner_records(folder: Path) -> list[Path]:
    """A writer folder's record files, in the order they were written."""
    try:
        names = [n for n in os.listdir(folder) if n.endswith(_RECORD_SUFFIX) and n[0] != "."]
    except FileNotFoundError:
        return []
    return [folder / n for n in sorted(names)]


def _try_lock(path: Path) -> int | None:
    """Take the lock file's exclusive lock without waiting; its fd, or None if someone holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class Writer:
    """This process's folder in a server's spool: record files numbered in order, under a lock."""

    def __init__(self, server_dir: Path, uri: str) -> None:
        server_dir.mkdir(parents=True, exist_ok=True)
        url_file = server_dir / "server"
        if not url_file.exists():
            url_file.write_text(uri + "\n")  # where `mltrail sync` sends these records
        name = f"{_OWNER_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Made under a dot name and locked before it gets its real name, so nobody adopts a
        # folder whose writer has not locked it yet.
        staging = server_dir / f".{name}"
        staging.mkdir()
        fd = _try_lock(staging / "lock")
        if fd is None:
            raise StoreError(f"cannot lock the spool folder {staging}")
        self.folder = server_dir / name
        os.rename(staging, self.folder)
        self.lock_fd = fd
        self.seq = 0

    def append(self, op: str, run_id: str, args: dict[str, Any], upload: Sequence[str]) -> Record:
        """Write one record durably and return it."""
        self.seq += 1
        path = self.folder / f"{self.seq:012d}{_RECORD_SUFFIX}"
        doc = {"op": op, "run_id": run_id, "args": args, "upload": list(upload)}
        data = json.dumps(doc, separators=(",", ":")).encode()
        tmp = self.folder / f".{self.seq:012d}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            _fsync_dir(self.folder)
        except OSError as exc:
            self.seq -= 1
            tmp.unlink(missing_ok=True)
            raise StoreError(
                f"cannot write to the spool {self.folder}: {exc.strerror or exc}",
                hint="Free space on that disk, or point MLTRAIL_SPOOL_DIR at another folder.",
            ) from None
        return Record(path, op, run_id, args, list(upload))

    def release(self) -> None:
        """Give the folder up: removed when empty, else left (unlocked) for another to adopt."""
        drop_folder(self.folder, self.lock_fd)


def orphans(server_dir: Path) -> Iterator[tuple[Path, int]]:
    """Writer folders whose process is gone, each locked for the caller: (folder, lock fd)."""
    for folder in _writer_folders(server_dir):
        if folder.is_dir():
            fd = _try_lock(folder / "lock")
            if fd is not None:
                yield folder, fd


def _writer_folders(server_dir: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(server_dir))
    except FileNotFoundError:
        return []
    return [server_dir / n for n in names if n.startswith(_OWNER_PREFIX)]


def _is_live(folder: Path) -> bool:
    fd = _try_lock(folder / "lock")
    if fd is None:
        return True
    os.close(fd)
    return False


def live_writers(server_dir: Path) -> list[Path]:
    """Writer folders whose process still runs (their lock is held)."""
    return [f for f in _writer_folders(server_dir) if f.is_dir() and _is_live(f)]


def has_orphans(server_dir: Path) -> bool:
    """True when a writer that is gone left a folder (without taking its lock)."""
    return any(f.is_dir() and not _is_live(f) for f in _writer_folders(server_dir))


def drop_folder(folder: Path, fd: int) -> None:
    """Remove a writer folder if its records are all sent; release its lock either way."""
    if not owner_records(folder):
        for leftover in folder.iterdir():
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()
    os.close(fd)


# -- what "unavailable" means --------------------------------------------------------------------
def is_held(exc: BaseException) -> bool:
    """True for failures a later attempt can get past: the server (or its database) is away, or
    credentials or permissions need fixing. The record is kept; anything else is a refusal."""
    if isinstance(exc, StoreError | Unauthenticated | PermissionDenied):
        return True
    return not isinstance(exc, MltrailError)


# -- sending -------------------------------------------------------------------------------------
class Sender:
    """Sends one server's records, in order, through an HTTP store; keeps what cannot be sent."""

    def __init__(self, store: HttpStore, server_dir: Path) -> None:
        self.store = store
        self.server_dir = server_dir
        self._experiments: dict[str, str] = {}
        self._objects: Any = None
        self.last_failure: BaseException | None = None

    def local_objects(self) -> Any:
        """The spool's own object store, holding bytes not yet uploaded."""
        if self._objects is None:
            from mltrail.objects.local import LocalObjectStore

            self._objects = LocalObjectStore(self.server_dir / "objects")
        return self._objects

    def send(self, record: Record) -> tuple[Any, BaseException | None]:
        """Send a record: (answer, None), or (None, refusal); raises when it must be kept."""
        try:
            return self._apply(record), None
        except BaseException as exc:
            if is_held(exc):
                raise
            return None, exc

    def _apply(self, record: Record) -> Any:
        store, args = self.store, record.args
        if record.upload:
            self._upload(record.upload)
        if record.op == "create_run":
            args = dict(args, experiment_id=self._experiment_id(args["experiment_id"]))
            return HttpStore.create_run(store, **args)
        if record.op == "batches":
            batches = [wire.batch_from_json(b) for b in args["batches"]]
            # Per-run refusals: the other runs' data was applied, so the record is done.
            return HttpStore.write_batches(store, batches, batch_id=args["batch_id"])
        if record.op == "update_run":
            if args.get("status") == RunStatus.FINISHED.value:
                refused = self.refused(record.run_id)
                if refused:
                    # Never FINISHED with data missing: the run says what the server refused.
                    HttpStore.write_batches(
                        store, [RunBatch(record.run_id, tags={TAG_INCOMPLETE: refused})]
                    )
                    args = dict(args, status=RunStatus.FAILED.value)
            return HttpStore.update_run(store, **args)
        if record.op == "add_artifacts":
            files = [wire.file_from_json(f) for f in args["files"]]
            return HttpStore.add_artifacts(store, record.run_id, files)
        if record.op == "run_datasets":
            refs = [DatasetRef(**r) for r in args["refs"]]
            return HttpStore.log_run_datasets(store, record.run_id, args["direction"], refs)
        if record.op == "experiment_tags":
            experiment_id = self._experiment_id(args["experiment_id"])
            for key, value in args["tags"].items():
                HttpStore.set_experiment_tag(store, experiment_id, key, value)
            return None
        raise InvalidState(f"unknown spool record {record.op!r} in {record.path}")

    def _experiment_id(self, experiment_id: str) -> str:
        if not experiment_id.startswith(BY_NAME):
            return experiment_id
        name = experiment_id[len(BY_NAME) :]
        found = self._experiments.get(name)
        if found is None:
            existing = HttpStore.get_experiment_by_name(self.store, name)
            if existing is not None:
                found = existing.experiment_id
            else:
                found = HttpStore.create_experiment(self.store, name)
            self._experiments[name] = found
        return found

    def _upload(self, hashes: Sequence[str]) -> None:
        from mltrail.objects import open_object_store

        local = self.local_objects()
        remote = open_object_store(self.store.uri)
        for h in remote.missing([h for h in hashes if local.exists(h)]):
            remote.put_file(local.path_of(h), expected_hash=h)

    def reject(self, record: Record, exc: BaseException, run_id: str) -> None:
        """Keep a record the server refused (no caller heard of it) in ``rejected/``."""
        folder = self.server_dir / "rejected"
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "op": record.op,
            "run_id": run_id,
            "args": record.args,
            "error": str(exc),
            "error_class": type(exc).__name__,
            "time": int(time.time() * 1000),
        }
        name = f"{run_id}-{uuid.uuid4().hex[:8]}{_RECORD_SUFFIX}"
        (folder / name).write_text(json.dumps(doc))
        log.warning("mltrail: the server refused a write for run %s: %s", run_id, exc)

    def refused(self, run_id: str) -> str:
        """What the server refused of a run's writes ('' when nothing was)."""
        folder = self.server_dir / "rejected"
        try:
            names = [n for n in os.listdir(folder) if n.startswith(run_id + "-")]
        except FileNotFoundError:
            return ""
        if not names:
            return ""
        try:
            first = json.loads((folder / sorted(names)[0]).read_text())["error"]
        except (OSError, ValueError, KeyError):
            first = "unknown"
        return f"{len(names)} write(s) refused by the server; first: {first}"[:5000]


def _backoff(delay: float) -> float:
    return min(delay * 2, 2.0)


# -- the store -----------------------------------------------------------------------------------
_stores: weakref.WeakSet[SpooledStore] = weakref.WeakSet()


class SpooledStore(HttpStore):
    """An HTTP store whose writes go through the spool (see the module docstring).

    Offline (``MLTRAIL_MODE=offline``) it sends nothing; reads that need the server say so, and
    ``mltrail sync`` sends the records later.
    """

    def __init__(self, uri: str, *, offline: bool = False, root: Path | None = None) -> None:
        super().__init__(uri)
        self.offline = offline
        self.server_dir = server_folder(root or spool_root(), self.uri)
        self.sender = Sender(self, self.server_dir)
        self._writer: Writer | None = None
        self._cond = threading.Condition()
        self._queue: list[Record] = []  # this process's records not yet acknowledged
        self._verdicts: dict[Path, tuple[Any, BaseException | None]] = {}
        self._errors: dict[str, list[BaseException]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._unavailable: BaseException | None = None
        self._new_objects: set[str] = set()
        self._created: dict[str, RunInfo] = {}
        self._waiting: set[Path] = set()
        self._closed = False
        _stores.add(self)
        if not offline and has_orphans(self.server_dir):
            self._start()  # a process that died left writes: send them

    def __repr__(self) -> str:
        return f"SpooledStore({self.uri!r}, offline={self.offline})"

    # -- reads that cannot work offline ----------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> Any:
        if self.offline:
            raise StoreError(
                f"offline mode ({ENV_MODE}=offline): {method} {path} needs the server "
                f"at {self.uri}",
                hint="Logging works offline; reading runs and the registry needs the server. "
                "Run `mltrail sync` once it is reachable, then unset MLTRAIL_MODE.",
            )
        if self._queue and threading.current_thread() is not self._thread:
            # Read-your-writes: whatever this process spooled reaches the server first.
            self.drain()
        return super()._call(method, path, **kw)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name; offline, one standing for the name until sync."""
        if not self.offline:
            try:
                return super().get_experiment_by_name(name)
            except StoreError as exc:
                # The server is away: log under the name; the experiment is found when sent.
                self._unavailable = exc
        return Experiment(BY_NAME + name, name, LifecycleStage.ACTIVE.value, 0, 0)

    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> str:
        """Create an experiment; offline, its id stands for its name until sync creates it."""
        if not self.offline:
            try:
                return super().create_experiment(name, tags)
            except StoreError as exc:
                self._unavailable = exc
        if tags:
            # Sent before any run of the experiment is: the sender creates it by name then.
            self._append("experiment_tags", "", {"experiment_id": BY_NAME + name, "tags": tags})
        return BY_NAME + name

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set an experiment tag; kept in the spool while the server is away."""
        args = {"experiment_id": experiment_id, "tags": {key: value}}
        self._answer(self._append("experiment_tags", "", args, wait=True))

    def get_run_info(self, run_id: str) -> RunInfo:
        """Return a run's info (offline, as this process created it)."""
        if self.offline and run_id in self._created:
            return self._created[run_id]
        return super().get_run_info(run_id)

    # -- writes: spooled ---------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str,
        user_id: str,
        start_time: int,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run; its record is sent first among the run's writes."""
        run_id = run_id or uuid.uuid4().hex
        args = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "user_id": user_id,
            "start_time": start_time,
            "parent_run_id": parent_run_id,
            "tags": dict(tags or {}),
            "run_id": run_id,
        }
        record = self._append("create_run", run_id, args, wait=True)
        info = RunInfo(
            run_id,
            experiment_id,
            run_name,
            RunStatus.RUNNING.value,
            user_id,
            start_time,
            None,
            LifecycleStage.ACTIVE.value,
            parent_run_id,
        )
        self._created[run_id] = info
        answer = self._answer(record)
        if isinstance(answer, Run):
            self._created[run_id] = answer.info
            return answer
        return Run(info, RunData(tags=dict(tags or {})))

    def write_batches(
        self, batches: Sequence[RunBatch], batch_id: str | None = None
    ) -> dict[str, Exception]:
        """Spool metrics, params and tags; params wait for the server's verdict while it answers."""
        batches = [b for b in batches if b.metrics or b.params or b.tags]
        if not batches:
            return {}
        args = {"batch_id": batch_id or uuid.uuid4().hex, "batches": []}
        args["batches"] = [wire.batch_to_json(b) for b in batches]
        run_id = batches[0].run_id if len({b.run_id for b in batches}) == 1 else ""
        record = self._append("batches", run_id, args, wait=True)
        answer, refused = self._wait(record, soft=True)
        if refused is not None:
            return {b.run_id: refused for b in batches}  # type: ignore[misc]
        return answer or {}

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name, after every write queued before it."""
        args = {"run_id": run_id, "status": status, "end_time": end_time, "run_name": run_name}
        args = {k: x for k, x in args.items() if x is not None}
        record = self._append("update_run", run_id, args, wait=True)
        ending = status is not None and RunStatus(status).is_terminal
        answer = self._answer(record, soft=not ending, timeout=flush_timeout() if ending else None)
        if isinstance(answer, RunInfo):
            return answer
        if ending and not self.offline:
            self._tell_left(run_id)
        base = self._created.get(run_id) or RunInfo(
            run_id,
            "",
            run_name or "",
            RunStatus.RUNNING.value,
            "",
            0,
            None,
            LifecycleStage.ACTIVE.value,
        )
        return base

    def add_artifacts(self, run_id: str, files: Sequence[FileInfo]) -> None:
        """Record artifact files; bytes not yet on the server go with the record."""
        files_json = [wire.file_to_json(f) for f in files]
        self._answer(self._append("add_artifacts", run_id, {"files": files_json}, wait=True))

    def log_run_datasets(self, run_id: str, direction: str, refs: Sequence[DatasetRef]) -> None:
        """Record dataset versions a run read or wrote."""
        from mltrail import validation as v

        direction = v.check_dataset_direction(direction)
        refs = [v.check_dataset_ref(r) for r in refs]
        args = {"direction": direction, "refs": [_ref_json(r) for r in refs]}
        self._answer(self._append("run_datasets", run_id, args, wait=True))

    # -- what the object wrapper needs -------------------------------------------------------------
    def keep_object(self, data: bytes | None = None, path: str | os.PathLike | None = None) -> Any:
        """Store bytes in the spool's object store, to be uploaded before the next record."""
        local = self.sender.local_objects()
        info = local.put_bytes(data) if data is not None else local.put_file(path)  # type: ignore[arg-type]
        with self._cond:
            self._new_objects.add(info.hash)
        return info

    def spooled_objects(self, remote: ObjectStore) -> ObjectStore:
        """``remote`` wrapped so that artifact bytes wait in the spool while it is away."""
        from mltrail.objects.local import LocalObjectStore

        return remote if isinstance(remote, LocalObjectStore) else SpooledObjects(remote, self)

    def server_unavailable(self) -> bool:
        """True while the last attempt to reach the server failed (or offline)."""
        return self.offline or self._unavailable is not None

    # -- bookkeeping -----------------------------------------------------------------------
    def backlog(self) -> int:
        """Records of this process not yet acknowledged."""
        return len(self._queue)

    def take_errors(self, run_id: str | None = None) -> list[BaseException]:
        """Return and forget writes the server refused (of one run, or all)."""
        with self._cond:
            if run_id is None:
                found = [e for errs in self._errors.values() for e in errs]
                self._errors.clear()
                return found
            return self._errors.pop(run_id, [])

    def drain(self, timeout: float | None = None) -> int:
        """Wait (bounded) until this process's records are sent; return how many remain."""
        if self.offline or not self._queue:
            return len(self._queue)
        limit = flush_timeout() if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._cond:
            while self._queue and time.monotonic() < deadline:
                self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        return len(self._queue)

    def finish(self) -> int:
        """Send what can be sent within the flush timeout; say what is left and where."""
        left = self.drain()
        if left and self.offline:
            print(
                f"mltrail: offline: {left} write(s) kept in {self.server_dir}; "
                "send them with `mltrail sync` once the server is reachable.",
                file=sys.stderr,
            )
        elif left:
            self._tell_left(None)
        return left

    def close(self) -> None:
        """Finish, stop the sending thread and release this process's spool folder."""
        if not self._closed:
            self._closed = True
            self.finish()
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join(10)
            if self._writer is not None:
                self._writer.release()
                self._writer = None
        super().close()

    def _append(self, op: str, run_id: str, args: dict[str, Any], wait: bool = False) -> Record:
        with self._cond:
            if self._writer is None:
                self._writer = Writer(self.server_dir, self.uri)
            upload = sorted(self._new_objects)
            record = self._writer.append(op, run_id, args, upload)
            self._new_objects.clear()
            self._queue.append(record)
            if wait and not self.offline:
                self._waiting.add(record.path)
            self._cond.notify_all()
        if not self.offline:
            self._start()
        return record

    def _wait(
        self, record: Record, *, soft: bool, timeout: float | None = None
    ) -> tuple[Any, BaseException | None]:
        """A record's (answer, refusal), or (None, None) when it is still waiting.

        ``soft`` stops waiting as soon as the server is found away: training goes on, and the
        record is sent when the server is back.
        """
        if self.offline:
            return None, None
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            try:
                while record.path not in self._verdicts:
                    if soft and self._unavailable is not None:
                        return None, None
                    if deadline is not None and time.monotonic() >= deadline:
                        return None, None
                    self._cond.wait(0.5)
                return self._verdicts.pop(record.path)
            finally:
                self._waiting.discard(record.path)
                self._verdicts.pop(record.path, None)

    def _answer(self, record: Record, *, soft: bool = True, timeout: float | None = None) -> Any:
        """Wait for a record like :meth:`_wait`; raise what the server refused."""
        answer, refused = self._wait(record, soft=soft, timeout=timeout)
        if refused is not None:
            raise refused
        return answer

    def _tell_left(self, run_id: str | None) -> None:
        mine = [r for r in self._queue if run_id is None or r.run_id == run_id]
        if not mine:
            return
        reason = self._unavailable or self.sender.last_failure
        what = f"run {run_id}" if run_id else "this process"
        print(
            f"mltrail: {len(mine)} write(s) of {what} are not on the server yet"
            + (f" ({str(reason).splitlines()[0]})" if reason else "")
            + f". They are kept in {self.server_dir} and will be sent by the next mltrail "
            "process that uses this server, or by `mltrail sync`; the run's status is recorded "
            "after them.",
            file=sys.stderr,
        )

    # -- the sending thread ----------------------------------------------------------------
    def _start(self) -> None:
        with self._cond:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._loop, name="mltrail-spool", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        # Writes a dead process left behind go first: they are older than ours.
        for folder, fd in orphans(self.server_dir):
            try:
                for path in owner_records(folder):
                    record = read_record(path)
                    if record is None:
                        path.unlink(missing_ok=True)
                        continue
                    if not self._send_until_done(record, adopted=True):
                        return
            finally:
                drop_folder(folder, fd)
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                record = self._queue[0]
            if not self._send_until_done(record, adopted=False):
                return

    def _send_until_done(self, record: Record, *, adopted: bool) -> bool:
        delay = 0.05
        while True:
            try:
                answer, refused = self.sender.send(record)
                break
            except BaseException as exc:  # held: keep the record and try again
                with self._cond:
                    self._unavailable = exc
                    self.sender.last_failure = exc
                    self._cond.notify_all()
                    if self._stopping:
                        return False
                log.debug("mltrail: server unavailable, retrying in %.2fs: %s", delay, exc)
                with self._cond:
                    self._cond.wait(delay)
                    if self._stopping:
                        return False
                delay = _backoff(delay)
        record.path.unlink(missing_ok=True)
        with self._cond:
            self._unavailable = None
            heard = not adopted and record.path in self._waiting
            if not adopted:
                self._queue.pop(0)
                if heard:
                    self._verdicts[record.path] = (answer, refused)
            if not heard:
                # Nobody waits for this answer any more: keep what was refused and tell the
                # run's next flush or end.
                for run_id, error in _refusals(record, answer, refused).items():
                    self.sender.reject(record, error, run_id)
                    self._errors.setdefault(run_id, []).append(error)
            self._cond.notify_all()
        return True

    def _after_fork(self) -> None:
        # The child starts its own writer folder; the parent's records stay the parent's.
        self._cond = threading.Condition()
        self._queue = []
        self._verdicts = {}
        self._waiting = set()
        self._thread = None
        if self._writer is not None:
            os.close(self._writer.lock_fd)
        self._writer = None


class SpooledObjects(ObjectStore):
    """A server's object store that keeps bytes in the spool when the server cannot take them.

    Online, objects go straight to the server; when it is away (or offline), they wait in the
    spool's object store and go up just before the record that names them.
    """

    def __init__(self, remote: ObjectStore, store: SpooledStore) -> None:
        self.remote = remote
        self.store = store

    @property
    def location(self) -> str:
        """Where the objects end up."""
        return self.remote.location

    def _local(self) -> Any:
        return self.store.sender.local_objects()

    def size_or_none(self, hash: str) -> int | None:
        """An object's size, from the spool first, then the server."""
        size = self._local().size_or_none(hash)
        if size is not None or self.store.offline:
            return size
        return self.remote.size_or_none(hash)

    def missing(self, hashes: Iterable[str]) -> set[str]:
        """The hashes in neither the spool nor the server (asked in bulk)."""
        local = self._local()
        absent = {h for h in set(hashes) if not local.exists(h)}
        if self.store.server_unavailable() or not absent:
            return absent
        try:
            return self.remote.missing(absent)
        except Exception as exc:
            if not is_held(exc):
                raise
            return absent  # stored into the spool, then, and uploaded when the server is back

    def put_file(
        self, path: str | os.PathLike[str], *, expected_hash: str | None = None
    ) -> ObjectInfo:
        """Store a file on the server, or in the spool while the server is away."""
        if not self.store.server_unavailable():
            try:
                return self.remote.put_file(path, expected_hash=expected_hash)
            except Exception as exc:
                if not is_held(exc):
                    raise
        return self.store.keep_object(path=path)

    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store bytes on the server, or in the spool while the server is away."""
        if not self.store.server_unavailable():
            try:
                return self.remote.put_bytes(data)
            except Exception as exc:
                if not is_held(exc):
                    raise
        return self.store.keep_object(data=data)

    def open(self, hash: str) -> BinaryIO:
        """Open an object, from the spool if it is still there."""
        local = self._local()
        if local.exists(hash):
            return local.open(hash)
        return self.remote.open(hash)

    def delete(self, hash: str) -> None:
        """Remove an object from the server."""
        self.remote.delete(hash)

    def iter_hashes(self) -> Iterator[str]:
        """The server's objects."""
        return self.remote.iter_hashes()


def _refusals(record: Record, answer: Any, refused: BaseException | None) -> dict[str, Any]:
    """Run id -> what the server refused of a record (a batch can be refused for some runs)."""
    if refused is not None:
        return {run_id: refused for run_id in _runs_of(record)}
    if record.op == "batches" and answer:
        return dict(answer)
    return {}


def _runs_of(record: Record) -> list[str]:
    if record.op == "batches":
        return sorted({b["run_id"] for b in record.args["batches"]})
    return [record.run_id]


def _ref_json(ref: DatasetRef) -> dict[str, Any]:
    return {
        "path": ref.path,
        "hash": ref.hash,
        "kind": ref.kind,
        "size": ref.size,
        "nfiles": ref.nfiles,
        "context": ref.context,
    }


def _reset_after_fork() -> None:
    for store in list(_stores):
        store._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)


# -- mltrail sync ----------------------------------------------------------------------------------
@dataclass
class SyncReport:
    """What ``mltrail sync`` found and sent, per server."""

    server: str
    records: int = 0
    runs: set[str] = field(default_factory=set)
    points: int = 0
    sent: int = 0
    refused: int = 0
    busy_writers: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "server": self.server,
            "records": self.records,
            "runs": len(self.runs),
            "points": self.points,
            "sent": self.sent,
            "refused": self.refused,
            "busy_writers": self.busy_writers,
            "error": self.error,
        }


def server_folders(root: Path) -> list[tuple[Path, str]]:
    """Each server's spool folder under ``root``, with the URL it sends to."""
    found = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    for name in names:
        url_file = root / name / "server"
        if url_file.is_file():
            found.append((root / name, url_file.read_text().strip()))
    return found


def sync(
    root: Path | None = None,
    *,
    dry_run: bool = False,
    progress: Any = None,
    timeout: float | None = None,
) -> list[SyncReport]:
    """Send every write that dead or offline processes left in the spool; report per server.

    A writer that is still running keeps its own records (counted as busy). Each record is
    removed once the server acknowledged it, so an interrupted sync resumes where it stopped.
    """
    root = root or spool_root()
    reports = []
    for folder, url in server_folders(root):
        report = SyncReport(url, busy_writers=len(live_writers(folder)))
        adopted = list(orphans(folder))
        try:
            records = [r for f, _ in adopted for p in owner_records(f) if (r := read_record(p))]
            report.records = len(records)
            report.points = sum(r.points() for r in records)
            report.runs = {run for r in records for run in _runs_of(r) if run}
            if not dry_run and records:
                _send_all(url, folder, records, report, progress, timeout)
        finally:
            for f, fd in adopted:
                drop_folder(f, fd)
        reports.append(report)
    return reports


def _send_all(
    url: str,
    folder: Path,
    records: list[Record],
    report: SyncReport,
    progress: Any,
    timeout: float | None,
) -> None:
    store = HttpStore(url)
    sender = Sender(store, folder)
    limit = flush_timeout() if timeout is None else timeout
    try:
        for record in records:
            deadline = time.monotonic() + limit
            delay = 0.05
            while True:
                try:
                    answer, refused = sender.send(record)
                    refusals = _refusals(record, answer, refused)
                    for run_id, error in refusals.items():
                        sender.reject(record, error, run_id)
                    break
                except BaseException as exc:
                    if time.monotonic() > deadline:
                        report.error = str(exc).splitlines()[0] if str(exc) else repr(exc)
                        return
                    time.sleep(delay)
                    delay = _backoff(delay)
            record.path.unlink(missing_ok=True)
            report.sent += 1
            report.refused += bool(refusals)
            if progress is not None:
                progress(record)
    finally:
        store.close()

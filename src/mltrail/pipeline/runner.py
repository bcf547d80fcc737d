"""``repro``: run the stale stages of a pipeline in DAG order, each execution recorded as a run.

For each selected stage, in order: compare what it reads now (deps via the stat cache, params
values, its outs) with its ``mltrail.lock`` entry. Unchanged: skipped. Stale: look up the run cache
(same cmd, deps hashes, params values and out paths seen before) and restore the outs from the
object store without executing; else run the command. Every execution and every restore is a run
in the pipeline's experiment. ``-j N`` runs up to N independent stages at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.data.project import Project, ensure_gitignored
from mltrail.errors import InvalidInput, InvalidState, MltrailError, NotFound
from mltrail.pipeline import runcache
from mltrail.pipeline.dag import Dag, build
from mltrail.pipeline.lock import read_lock, write_lock
from mltrail.pipeline.runcache import TAG_RUN_KEY
from mltrail.pipeline.spec import Pipeline, Stage, load
from mltrail.pipeline.stage import Backup, StageState, Workspace, entry_of, flat_params, state_of

if TYPE_CHECKING:
    from mltrail.tracking.client import MltrailClient

TAG_PIPELINE = "mltrail.pipeline"
TAG_STAGE = "mltrail.stage"
#: "true" on a run whose outs were restored from the run cache instead of executing the command.
TAG_RESTORED = "mltrail.stage.restored"
TAG_RESTORED_FROM = "mltrail.stage.restored_from"
TAG_EXIT_CODE = "mltrail.stage.exit_code"
TAG_STDERR = "mltrail.stage.stderr"
TAG_OVERRIDES = "mltrail.pipeline.overrides"
#: Lines of a failed command's stderr kept on its run.
STDERR_TAIL_LINES = 20
_STDERR_TAIL_CHARS = 4000

Progress = Callable[[str, str, str], None]


class StageFailed(InvalidState):
    """A stage's command exited non-zero (or did not write its outs); the pipeline stopped."""

    code = "STAGE_FAILED"

    def __init__(self, stage: str, message: str, run_id: str | None, stderr_tail: str) -> None:
        hint = "Its previous outs were left in place"
        hint += f"; the run {run_id} is marked FAILED." if run_id else "."
        if stderr_tail:
            hint += " Last lines of its stderr:\n" + stderr_tail
        super().__init__(message, hint=hint)
        self.stage = stage
        self.run_id = run_id
        self.stderr_tail = stderr_tail


@dataclass
class StageResult:
    """What repro did with one stage."""

    name: str
    #: ``unchanged``, ``ran``, ``restored``, ``frozen``, ``failed`` or, with dry, ``would run``.
    action: str
    reasons: list[str] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "stage": self.name,
            "action": self.action,
            "reasons": self.reasons,
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ReproResult:
    """The stages of one repro, in the order they were handled."""

    stages: list[StageResult] = field(default_factory=list)
    #: ``-S`` / grid overrides applied for this repro.
    overrides: dict[str, Any] = field(default_factory=dict)

    def count(self, action: str) -> int:
        """Return how many stages ended with ``action``."""
        return sum(1 for s in self.stages if s.action == action)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"overrides": self.overrides, "stages": [s.to_dict() for s in self.stages]}


def _quiet(event: str, stage: str, detail: str) -> None:
    """The default progress callback: says nothing."""


def repro(
    targets: Iterable[str] | None = None,
    *,
    force: bool = False,
    overrides: Iterable[str] = (),
    dry: bool = False,
    jobs: int = 1,
    start: str | os.PathLike[str] | None = None,
    progress: Progress = _quiet,
    client: MltrailClient | None = None,
    tags: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    label: str = "",
) -> ReproResult:
    """Bring the pipeline's outs up to date; return what was done with each stage.

    ``overrides`` are ``[file:]key=value`` strings written into the params file (params.yaml by
    default) before anything runs, as ``dvc exp run -S`` does. Raises :class:`StageFailed` when a
    command fails (its previous outs stay in place), InvalidInput for a bad pipeline. ``env``
    is added to the commands' environment; ``label`` prefixes the stderr lines they print.
    """
    project = Project.find(start)
    pipeline = load(project.root)
    dag = build(pipeline)
    order = dag.order(list(targets) if targets else None)
    docs: dict[str, dict[str, Any]] = {}
    applied = apply_overrides(project.root, pipeline, list(overrides), dry=dry, into=docs)
    extra = dict(tags or {})
    if applied:
        extra[TAG_OVERRIDES] = ", ".join(f"{k}={v}" for k, v in applied.items())
    runner = Runner(project, pipeline, dag, progress, client, extra)
    runner.env, runner.label = dict(env or {}), label
    runner.ws.preload_params(docs)  # --dry: the overridden values, not written to the files
    try:
        stages = runner.run(order, force=force, dry=dry, jobs=max(1, jobs))
    finally:
        runner.close()
    return ReproResult(stages, applied)


def apply_overrides(
    root: Path,
    pipeline: Pipeline,
    overrides: list[str],
    *,
    dry: bool = False,
    into: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write ``[file:]key=value`` overrides into their params files; return ``{label: value}``."""
    from mltrail.pipeline.params import (
        get_key,
        parse_override,
        read_params_file,
        set_key,
        write_params_file,
    )

    by_file: dict[str, list[tuple[str, Any]]] = {}
    applied: dict[str, Any] = {}
    for text in overrides:
        file, key, value = parse_override(text)
        file = file or "params.yaml"
        by_file.setdefault(file, []).append((key, value))
        applied[key if file == "params.yaml" else f"{file}:{key}"] = value
    for file, items in by_file.items():
        path = root / file
        doc = read_params_file(path)
        for key, value in items:
            try:
                get_key(doc, key)
            except KeyError:
                raise InvalidInput(
                    f"cannot override {key}: it is missing from {file}",
                    hint=f"Add {key} to {file} first (overrides only change existing params).",
                ) from None
            set_key(doc, key, value)
        if not dry:
            write_params_file(path, doc)
        if into is not None:
            into[file] = doc
    return applied


class Runner:
    """One repro: schedules stages, executes or restores them, records runs, writes the lock."""

    def __init__(
        self,
        project: Project,
        pipeline: Pipeline,
        dag: Dag,
        progress: Progress,
        client: MltrailClient | None,
        tags: dict[str, str],
    ) -> None:
        self.project = project
        self.pipeline = pipeline
        self.dag = dag
        self.progress = progress
        self._client = client
        self._own_client = False
        self._experiment_id: str | None = None
        self._capture: Any = None
        self.tags = tags
        self.lock = read_lock(project.root)
        self._cache = project.stat_cache()
        self.ws = Workspace(project.root, project.dir, self._cache)
        self._echo_lock = threading.Lock()
        #: Added to the commands' environment, and the prefix of their stderr lines.
        self.env: dict[str, str] = {}
        self.label = ""

    def close(self) -> None:
        """Release the stat cache and, if this runner opened it, the client."""
        self._cache.close()
        if self._own_client and self._client is not None:
            self._client.close()

    # -- scheduling ------------------------------------------------------------------------------

    def run(self, order: list[str], *, force: bool, dry: bool, jobs: int) -> list[StageResult]:
        """Handle the stages of ``order``; raise StageFailed after the running ones finish."""
        selected = set(order)
        pending = list(order)
        done: set[str] = set()
        would_run: set[str] = set()
        results: dict[str, StageResult] = {}
        running: dict[Future, tuple[StageState, str | None, str | None, Backup, float]] = {}
        failure: StageFailed | None = None
        pool = ThreadPoolExecutor(jobs) if jobs > 1 else None
        try:
            while pending or running:
                for name in list(pending):
                    if failure is not None or (pool is not None and len(running) >= jobs):
                        break
                    ups = [u for u in self.dag.upstream[name] if u in selected]
                    if any(u not in done for u in ups):
                        continue
                    pending.remove(name)
                    stage = self.pipeline.stages[name]
                    started = time.monotonic()
                    if dry and any(u in would_run for u in ups):
                        results[name] = StageResult(name, "would run", ["upstream stage runs"])
                        would_run.add(name)
                        done.add(name)
                        continue
                    if stage.frozen:
                        results[name] = StageResult(name, "frozen")
                        self.progress("frozen", name, "")
                        done.add(name)
                        continue
                    st = state_of(stage, self.ws, self.pipeline, self.lock.get(name), force=force)
                    if not st.stale:
                        results[name] = StageResult(name, "unchanged")
                        self.progress("unchanged", name, "")
                        done.add(name)
                        continue
                    if dry:
                        results[name] = StageResult(name, "would run", st.reasons)
                        self.progress("would run", name, "; ".join(st.reasons))
                        would_run.add(name)
                        done.add(name)
                        continue
                    key = self.run_key(st)
                    # --force means "run the command": the run cache is written, not read.
                    restored = self.try_restore(st, key) if key and not force else None
                    if restored is not None:
                        restored.seconds = time.monotonic() - started
                        results[name] = restored
                        done.add(name)
                        continue
                    self.progress("running", name, "; ".join(st.reasons))
                    run_id = self.start_run(st, key, None)
                    backup = Backup(
                        self.project.root,
                        self.project.dir / "tmp" / "repro" / f"{os.getpid()}-{name}",
                        [o.path for o in stage.all_outs() if not o.persist],
                    ).__enter__()
                    if pool is None:
                        prefix = f"[{self.label}] " if self.label else ""
                        outcome = _execute(stage, self.project.root, self._echo, prefix, self.env)
                        failure = self.finish(st, key, run_id, backup, outcome, started, results)
                        done.add(name)
                    else:
                        prefix = f"[{self.label}] [{name}] " if self.label else f"[{name}] "
                        fut = pool.submit(
                            _execute, stage, self.project.root, self._echo, prefix, self.env
                        )
                        running[fut] = (st, key, run_id, backup, started)
                if running:
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        st, key, run_id, backup, started = running.pop(fut)
                        failed = self.finish(
                            st, key, run_id, backup, fut.result(), started, results
                        )
                        failure = failure or failed
                        done.add(st.stage.name)
                elif failure is not None or not pending:
                    break
                elif pending and not any(
                    all(u in done for u in self.dag.upstream[n] if u in selected) for n in pending
                ):
                    break  # nothing can start (cannot happen for an acyclic graph)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        if failure is not None:
            raise failure
        return [results[n] for n in order if n in results]

    def _echo(self, line: str) -> None:
        with self._echo_lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    def run_key(self, st: StageState) -> str | None:
        """Return the stage's run-cache key, or None if its outs cannot be restored."""
        stage = st.stage
        if (
            not stage.all_outs()
            or any(not o.cache for o in stage.outs)
            or any(o.persist for o in stage.all_outs())
            or stage.always_changed
        ):
            # Nothing to restore, an uncached out, an out the command updates in place, or a
            # stage meant to run each time.
            return None
        paths = [o.path for o in stage.all_outs()]
        return runcache.run_key(stage.command, stage.wdir, st.deps, st.params, paths)

    # -- finishing an execution ------------------------------------------------------------------

    def finish(
        self,
        st: StageState,
        key: str | None,
        run_id: str | None,
        backup: Backup,
        outcome: tuple[int, str],
        started: float,
        results: dict[str, StageResult],
    ) -> StageFailed | None:
        """Save the outs of a finished command (or put the old ones back); return any failure."""
        stage = st.stage
        code, tail = outcome
        message = ""
        if code != 0:
            message = f"stage {stage.name!r} failed: its command exited with code {code}"
        else:
            root = self.project.root
            missing = [o.path for o in stage.all_outs() if not (root / o.path).exists()]
            if missing:
                message = (
                    f"stage {stage.name!r} finished but did not write "
                    + ", ".join(missing)
                    + " (listed in its outs)"
                )
                code = -1
        seconds = time.monotonic() - started
        if message:
            backup.restore()
            self.ws.forget([o.path for o in stage.all_outs()])
            self.end_run(run_id, st, ok=False, code=code, tail=tail, message=message)
            results[stage.name] = StageResult(stage.name, "failed", st.reasons, run_id, seconds)
            self.progress("failed", stage.name, message)
            return StageFailed(stage.name, message, run_id, tail)
        backup.drop()
        try:
            self.save_outs(st)
        except MltrailError as e:
            self.end_run(run_id, st, ok=False, code=0, tail="", message=e.message)
            raise
        self.end_run(run_id, st, ok=True, code=0, tail="", message="")
        self.lock[stage.name] = st.lock_entry(key)
        self.write_lock()
        if key:
            runcache.write_entry(self.project.dir, key, stage.name, st.outs, st.metrics, run_id)
        results[stage.name] = StageResult(stage.name, "ran", st.reasons, run_id, seconds)
        self.progress("ran", stage.name, f"{seconds:.1f} s")
        return None

    def write_lock(self) -> None:
        """Write mltrail.lock: entries of the pipeline's stages, in file order."""
        ordered = {n: self.lock[n] for n in self.pipeline.stages if n in self.lock}
        write_lock(self.project.root, ordered)

    def save_outs(self, st: StageState) -> None:
        """Hash the stage's new outs, store the cached ones and write their pointer files."""
        from mltrail.data.lock import data_lock
        from mltrail.data.pointer import Pointer, pointer_path, read_pointer, write_pointer

        stage = st.stage
        paths = [o.path for o in stage.all_outs()]
        self.ws.forget(paths)
        store = self.project.store()
        st.outs, st.metrics = [], []
        with data_lock(self.project.dir):
            for o in stage.all_outs():
                found = self.ws.scan(o.path)
                if found is None:
                    raise InvalidState(f"stage {stage.name!r}: out {o.path} disappeared")
                is_metric = o in stage.metrics
                (st.metrics if is_metric else st.outs).append(entry_of(o.path, found))
                if not (o.cache or is_metric):
                    continue
                if found.kind == "dir":
                    if not store.exists(found.hash):
                        from mltrail.objects.tree import store_tree

                        files = {rel: Path(src) for rel, src in found.files.items()}
                        store_tree(store, found.tree, files)  # type: ignore[arg-type]
                elif not store.exists(found.hash):
                    store.put_files([(self.project.root / o.path, found.hash)])
                if not o.cache:
                    continue  # a metrics file: stored for the run cache, but kept in Git
                full = self.project.root / o.path
                new = Pointer(found.hash, found.kind, found.size, st.outs[-1].get("nfiles"))
                ptr = pointer_path(full)
                try:
                    old = read_pointer(ptr) if ptr.exists() else None
                except InvalidInput:
                    old = None
                if old != new:
                    write_pointer(ptr, new)
                ensure_gitignored(full)

    # -- the run cache ---------------------------------------------------------------------------

    def try_restore(self, st: StageState, key: str) -> StageResult | None:
        """Restore the outs of an earlier execution with the same key; None on a miss."""
        stage = st.stage
        entry = runcache.read_entry(self.project.dir, key)
        if entry is None and self.lock.get(stage.name, {}).get("run_key") == key:
            # The lock itself says which outs these inputs produced (e.g. after a fresh clone).
            locked = self.lock[stage.name]
            entry = {"outs": locked.get("outs", []), "metrics": locked.get("metrics", [])}
        if entry is None:
            entry = self._find_in_store(st, key)
        if entry is None or not self._objects_present(entry):
            return None
        started = time.monotonic()
        from mltrail.pipeline.restore import restore_outs

        try:
            restore_outs(self.project, self.ws, stage, entry)
        except MltrailError as e:
            self.progress("warning", stage.name, f"run cache restore failed ({e.message}); running")
            return None
        st.outs = [dict(o) for o in entry.get("outs", [])]
        st.metrics = [dict(m) for m in entry.get("metrics", [])]
        run_id = self.start_run(st, key, entry.get("run_id"))
        self.end_run(run_id, st, ok=True, code=0, tail="", message="")
        self.lock[stage.name] = st.lock_entry(key)
        self.write_lock()
        self.progress("restored", stage.name, "; ".join(st.reasons))
        return StageResult(stage.name, "restored", st.reasons, run_id, time.monotonic() - started)

    def _find_in_store(self, st: StageState, key: str) -> dict[str, Any] | None:
        try:
            client = self.client()
            return runcache.find_in_store(
                client,
                self.pipeline.name,
                key,
                {o.path for o in st.stage.outs},
                {m.path for m in st.stage.metrics},
            )
        except MltrailError:
            return None  # no reachable metadata store: simply a cache miss

    def _objects_present(self, entry: dict[str, Any]) -> bool:
        from mltrail.objects.tree import read_tree

        store = self.project.store()
        needed: set[str] = set()
        for item in [*entry.get("outs", []), *entry.get("metrics", [])]:
            h = item.get("hash")
            if not isinstance(h, str):
                return False
            if "nfiles" in item:
                try:
                    needed.update(e.hash for e in read_tree(store, h))
                except (NotFound, InvalidInput, MltrailError):
                    return False
            else:
                needed.add(h)
        return not store.missing(needed)

    # -- runs ------------------------------------------------------------------------------------

    def client(self) -> MltrailClient:
        """Return the tracking client, opened on first use (a no-op repro never opens it)."""
        if self._client is None:
            from mltrail.tracking.client import MltrailClient

            self._client = MltrailClient(create=False)
            self._own_client = True
        return self._client

    def experiment_id(self) -> str:
        """Return the pipeline's experiment, created on first use."""
        if self._experiment_id is None:
            client = self.client()
            exp = client.get_experiment_by_name(self.pipeline.name)
            if exp is not None:
                self._experiment_id = exp.experiment_id
            else:
                from mltrail.errors import AlreadyExists

                try:
                    self._experiment_id = client.create_experiment(self.pipeline.name)
                except AlreadyExists:  # a parallel repro created it a moment ago
                    exp = client.get_experiment_by_name(self.pipeline.name)
                    assert exp is not None
                    self._experiment_id = exp.experiment_id
        return self._experiment_id

    def captured(self) -> Any:
        """Return git/environment capture for this repro (once), or None when turned off."""
        if self._capture is None:
            from mltrail.tracking.capture import Capture, capture
            from mltrail.tracking.fluent import ENV_CAPTURE

            if os.environ.get(ENV_CAPTURE, "1") in ("0", "false", "no"):
                self._capture = Capture()
            else:
                self._capture = capture(self.project.root)
        return self._capture

    def start_run(self, st: StageState, key: str | None, restored_from: str | None) -> str:
        """Create the stage's run (RUNNING) with tags, params and input datasets."""
        from mltrail.tracking.capture import TAG_COMMAND, TAG_ENTRY_POINT

        client = self.client()
        cap = self.captured()
        tags = {
            **cap.tags,
            TAG_COMMAND: st.stage.command,
            TAG_ENTRY_POINT: st.stage.name,
            TAG_PIPELINE: self.pipeline.name,
            TAG_STAGE: st.stage.name,
            TAG_RESTORED: "true" if restored_from is not None else "false",
            **self.tags,
        }
        if key:
            tags[TAG_RUN_KEY] = key
        if restored_from:
            tags[TAG_RESTORED_FROM] = restored_from
        run = client.create_run(self.experiment_id(), run_name=st.stage.name, tags=tags)
        run_id = run.info.run_id
        for name, text in cap.files.items():
            client.log_text(run_id, text, name)
        params = flat_params(st.params)
        if params:
            client.log_params(run_id, params)
        refs = [_ref(d, None) for d in st.deps]
        if refs:
            client.flush()
            client.store.log_run_datasets(run_id, "input", refs)
        return run_id

    def end_run(
        self, run_id: str | None, st: StageState, *, ok: bool, code: int, tail: str, message: str
    ) -> None:
        """Record outputs and metrics (success) or the failure, and end the run."""
        if run_id is None:
            return
        client = self.client()
        if ok:
            refs = [_ref(o, None) for o in st.outs] + [_ref(m, "metrics") for m in st.metrics]
            if refs:
                client.flush()
                client.store.log_run_datasets(run_id, "output", refs)
            values: dict[str, float] = {}
            for m in st.stage.metrics:
                values.update(read_metrics(self.project.root / m.path))
            if values:
                client.log_metrics(run_id, values)
            client.set_terminated(run_id, "FINISHED")
            return
        from mltrail.tracking.capture import TAG_NOTE

        tags = {TAG_EXIT_CODE: str(code), TAG_NOTE: message}
        if tail:
            tags[TAG_STDERR] = tail[-_STDERR_TAIL_CHARS:]
            tags[TAG_NOTE] = f"{message}\n\nstderr (last lines):\n{tail[-_STDERR_TAIL_CHARS:]}"
        client.set_tags(run_id, tags)
        client.set_terminated(run_id, "FAILED")


def _ref(item: dict[str, Any], context: str | None) -> Any:
    from mltrail.entities import DatasetRef

    kind = "dir" if "nfiles" in item else "file"
    return DatasetRef(
        item["path"], item["hash"], kind, int(item["size"]), item.get("nfiles"), context
    )


def read_metrics(path: Path) -> dict[str, float]:
    """Return the numbers in a JSON/YAML metrics file, nested keys joined with '.'."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # like a file that does not parse: no metrics to log
        return {}
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            from mltrail import safe_yaml

            doc = safe_yaml.load(text, str(path))
    except Exception:  # a metrics file that does not parse (or is a YAML bomb) has no metrics
        return {}
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and prefix:
            out[prefix] = float(value)

    walk("", doc)
    return out


def _execute(
    stage: Stage,
    root: Path,
    echo: Callable[[str], None],
    prefix: str,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run the stage's command; forward its stderr; return (exit code, stderr tail)."""
    cwd = root / stage.wdir
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {}), "MLTRAIL_STAGE": stage.name}
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            stage.command,
            shell=True,
            cwd=cwd,
            env=env,
            stdout=sys.stdout.fileno() if _has_fileno(sys.stdout) else None,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        return 127, f"cannot start the command: {e}"
    assert proc.stderr is not None
    for raw in iter(proc.stderr.readline, b""):
        line = raw.decode("utf-8", "replace")
        tail.append(line.rstrip("\n"))
        echo(prefix + line if prefix else line)
    proc.stderr.close()
    return proc.wait(), "\n".join(tail)


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    return True


__all__ = [
    "TAG_PIPELINE",
    "TAG_RESTORED",
    "TAG_STAGE",
    "ReproResult",
    "Runner",
    "StageFailed",
    "StageResult",
    "apply_overrides",
    "read_metrics",
    "repro",
]

"""``MltrailClient``: the explicit tracking API. The fluent ``mt.*`` functions call into it."""

from __future__ import annotations

import os
import random
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail import validation as v
from mltrail.config import Location, resolve
from mltrail.entities import (
    DatasetDirection,
    DatasetRef,
    DatasetUse,
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    PagedList,
    Run,
    RunBatch,
    RunDataset,
    RunInfo,
    RunStatus,
    ViewType,
)
from mltrail.errors import InvalidInput, InvalidState, MltrailError, NotFound, StoreError
from mltrail.registry.client import RegistryMixin
from mltrail.store import TrackingStore, open_store
from mltrail.store.spool import TAG_INCOMPLETE
from mltrail.tracking.liveness import Heartbeat, process_tags
from mltrail.tracking.writer import BackgroundWriter

if TYPE_CHECKING:
    from mltrail.objects import ObjectStore

_ADJECTIVES = [
    "amber",
    "agile",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "daring",
    "eager",
    "fierce",
    "gentle",
    "glossy",
    "golden",
    "grand",
    "happy",
    "humble",
    "jolly",
    "keen",
    "lively",
    "lucid",
    "mellow",
    "merry",
    "mighty",
    "nimble",
    "noble",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "regal",
    "rustic",
    "shiny",
    "silent",
    "sleek",
    "smooth",
    "snappy",
    "sturdy",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zesty",
]
_NOUNS = [
    "badger",
    "bat",
    "bear",
    "beaver",
    "bison",
    "boar",
    "cat",
    "crane",
    "crow",
    "deer",
    "dingo",
    "dove",
    "eagle",
    "eel",
    "falcon",
    "fawn",
    "ferret",
    "finch",
    "fox",
    "frog",
    "gecko",
    "goat",
    "hare",
    "hawk",
    "heron",
    "ibis",
    "koala",
    "lark",
    "lemur",
    "lion",
    "lynx",
    "mink",
    "mole",
    "moose",
    "newt",
    "otter",
    "owl",
    "panda",
    "puma",
    "quail",
    "raven",
    "robin",
    "seal",
    "shrew",
    "slug",
    "snail",
    "stork",
    "swan",
    "tiger",
    "toad",
    "trout",
    "wolf",
    "wren",
    "yak",
]


def generate_run_name() -> str:
    """A readable random run name such as ``brave-otter-417``."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _inside(dst: Path, target: Path) -> Path:
    """Return ``target`` if writing it stays inside ``dst``; refuse a way out through a symlink."""
    # realpath resolves the folders that exist (and any symlink among them); what does not exist
    # yet is created by us below dst, as a real folder.
    base = os.path.realpath(dst)
    folder = os.path.realpath(target.parent)
    if os.path.commonpath([base, folder]) == base:
        return target
    via = ""
    here = dst
    for part in target.parent.relative_to(dst).parts:  # name the link below dst, if one is
        here = here / part
        if here.is_symlink():
            via = f": {here} is a symbolic link to {os.path.realpath(here)}"
            break
    raise InvalidInput(
        f"refusing to download {target}: it would be written outside {dst}{via}",
        hint="Download into a folder without symbolic links that lead out of it, "
        "or remove that link.",
    )


class MltrailClient(RegistryMixin):
    """Explicit access to experiments, runs, metrics and artifacts in one store."""

    def __init__(
        self, tracking_uri: str | None = None, objects: str | None = None, *, create: bool = True
    ) -> None:
        # create=False refuses to start a new project or database where none exists yet.
        self.location: Location = resolve(tracking_uri, objects, create=create)
        self.store: TrackingStore = open_store(
            self.location.tracking_uri,
            where=str(self.location.project_dir or "") or self.location.tracking_uri,
        )
        self._objects: ObjectStore | None = None
        self._writer = BackgroundWriter(self.store)
        # Runs this client knows to be RUNNING, so the log hot path needs no database read.
        self._running: set[str] = set()
        # Runs this client started or resumed keep a heartbeat, so a crash shows as KILLED.
        self._heartbeat = Heartbeat(self._writer.put_tag)
        self._logged_params: dict[str, dict[str, str]] = {}

    @property
    def tracking_uri(self) -> str:
        """The metadata store's URI."""
        return self.location.tracking_uri

    @property
    def objects(self) -> ObjectStore:
        """The object store holding artifacts (opened on first use)."""
        if self._objects is None:
            if self.location.objects is None:
                raise StoreError(
                    f"no object store is configured for {self.tracking_uri}",
                    hint="Set MLTRAIL_OBJECTS to a folder (or pass objects=...).",
                )
            from mltrail.objects import open_object_store

            objects = open_object_store(self.location.objects)
            spooled = getattr(self.store, "spooled_objects", None)
            self._objects = spooled(objects) if spooled is not None else objects
        return self._objects

    def close(self) -> None:
        """Write everything queued and release the store."""
        self._heartbeat.stop()
        self._writer.close()
        self.store.close()

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: dict[str, Any] | None = None) -> str:
        """Create an experiment; return its id."""
        name = v.check_experiment_name(name)
        clean = {
            v.check_key(k, "tag"): v.check_tag_value(k, val) for k, val in (tags or {}).items()
        }
        return self.store.create_experiment(name, clean)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id."""
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name, or None."""
        return self.store.get_experiment_by_name(name)

    def resolve_experiment(self, name_or_id: str) -> Experiment:
        """Find an experiment by name, else by id; raise NotFound naming the value."""
        exp = self.store.get_experiment_by_name(name_or_id)
        if exp is not None:
            return exp
        if name_or_id.isdigit():
            try:
                return self.store.get_experiment(name_or_id)
            except NotFound:
                pass
        raise NotFound(
            f"experiment {name_or_id!r} does not exist",
            hint="List experiments with `mltrail exp ls`.",
        )

    def list_experiments(self, view: ViewType | str = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """Return experiments in a view (active, deleted or all)."""
        return self.store.list_experiments(ViewType(view))

    def experiment_summaries(self, experiment_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return (active run count, last run start time) per experiment id."""
        return self.store.experiment_summaries(experiment_ids)

    def delete_experiment(self, experiment_id: str) -> None:
        """Move an experiment and its runs to the bin (restorable)."""
        self.store.set_experiment_lifecycle(str(experiment_id), LifecycleStage.DELETED.value)

    def restore_experiment(self, experiment_id: str) -> None:
        """Bring a deleted experiment and the runs deleted with it back."""
        self.store.set_experiment_lifecycle(str(experiment_id), LifecycleStage.ACTIVE.value)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self.store.rename_experiment(str(experiment_id), v.check_experiment_name(new_name))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self.store.set_experiment_tag(
            str(experiment_id), v.check_key(key, "tag"), v.check_tag_value(key, value)
        )

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str = "0",
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
    ) -> Run:
        """Create a RUNNING run; a name is generated when none is given."""
        name = v.check_run_name(run_name) if run_name is not None else generate_run_name()
        clean = {
            v.check_key(k, "tag"): v.check_tag_value(k, val) for k, val in (tags or {}).items()
        }
        from mltrail.tracking.capture import current_user

        run = self.store.create_run(
            str(experiment_id),
            name,
            current_user(),
            start_time if start_time is not None else _now_ms(),
            parent_run_id=parent_run_id,
            tags={**clean, **process_tags()},
        )
        self._running.add(run.info.run_id)
        self._heartbeat.add(run.info.run_id)
        return run

    def resolve_run_id(self, ref: str) -> str:
        """Expand a unique run id prefix (at least 4 characters, like git) to the full id."""
        ref = ref.strip().lower()
        if len(ref) == 32:
            return ref
        if len(ref) < 4 or any(c not in "0123456789abcdef" for c in ref):
            raise InvalidInput(
                f"{ref!r} is not a run id or a prefix of one (4 to 32 hex characters)",
                hint="List run ids with `mltrail runs ls`.",
            )
        found = self.store.match_run_ids(ref, limit=2)
        if not found:
            raise NotFound(
                f"no run id starts with {ref!r}", hint="List runs with `mltrail runs ls`."
            )
        if len(found) > 1:
            raise InvalidInput(f"run id prefix {ref!r} is ambiguous; give more characters")
        return found[0]

    def get_run(self, run_id: str) -> Run:
        """Return a run with params, latest metrics and tags (queued points flushed first)."""
        if run_id in self._running:
            self._writer.flush()
        return self.store.get_run(run_id)

    def resume_run(self, run_id: str) -> Run:
        """Mark an existing, active run RUNNING again so it takes new data."""
        info = self.store.get_run_info(run_id)
        if info.lifecycle_stage != LifecycleStage.ACTIVE.value:
            raise InvalidState(f"run {run_id!r} is deleted and cannot be resumed")
        self.store.update_run(run_id, status=RunStatus.RUNNING.value)
        # This process runs it now: readers check this process, not the one that started it.
        self._write_now(RunBatch(run_id, tags=process_tags()))
        self._running.add(run_id)
        self._heartbeat.add(run_id)
        return self.store.get_run(run_id)

    def set_terminated(self, run_id: str, status: str | RunStatus = RunStatus.FINISHED) -> RunInfo:
        """Finish a run: drain its queued data, then record status and end time."""
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise InvalidInput(
                f"status {status!r} does not end a run; use FINISHED, FAILED or KILLED"
            )
        status = RunStatus(status)
        self._running.discard(run_id)
        self._heartbeat.discard(run_id)

        def end() -> RunInfo:
            final = status
            failed = self._writer.errors_of(run_id)
            if status is RunStatus.FINISHED and failed:
                # Never FINISHED with data missing: the run says what was not stored.
                final = RunStatus.FAILED
                note = f"{len(failed)} write(s) not stored; first: {failed[0]}"[:5000]
                self.store.write_batches([RunBatch(run_id, tags={TAG_INCOMPLETE: note})])
            return self.store.update_run(run_id, status=final.value, end_time=_now_ms())

        # Queued behind every point logged so far, so the run ends after its data is written.
        info = self._writer.call(end)
        self._raise_write_errors(run_id)
        return info

    def update_run(self, run_id: str, run_name: str) -> RunInfo:
        """Rename a run."""
        return self.store.update_run(run_id, run_name=v.check_run_name(run_name))

    def delete_run(self, run_id: str) -> None:
        """Move a run to the bin (restorable)."""
        self._writer.flush()
        self._running.discard(run_id)
        self.store.set_run_lifecycle(run_id, LifecycleStage.DELETED.value)

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back."""
        self.store.set_run_lifecycle(run_id, LifecycleStage.ACTIVE.value)

    def _check_writable(self, run_id: str) -> None:
        if run_id in self._running:
            return
        info = self.store.get_run_info(run_id)
        v.check_run_writable(run_id, info.lifecycle_stage, info.status)
        self._running.add(run_id)

    # -- logging -----------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one metric point; returns at once (see :meth:`flush`)."""
        if run_id not in self._running:
            self._check_writable(run_id)
        key = v.check_key(key)
        value = v.check_metric_value(key, value)
        step = 0 if step is None else v.check_step(key, step)
        ts = int(time.time() * 1000) if timestamp is None else v.check_timestamp(key, timestamp)
        self._writer.put_metric(run_id, Metric(key, value, ts, step))

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue several metrics at one step; all are checked before any is queued."""
        if run_id not in self._running:
            self._check_writable(run_id)
        ts = int(time.time() * 1000) if timestamp is None else v.check_timestamp("*", timestamp)
        points = []
        for key, value in metrics.items():
            key = v.check_key(key)
            step_ = 0 if step is None else v.check_step(key, step)
            points.append(Metric(key, v.check_metric_value(key, value), ts, step_))
        for point in points:
            self._writer.put_metric(run_id, point)

    def log_param(self, run_id: str, key: str, value: Any) -> str:
        """Record one param; returns its stored string value."""
        return self.log_params(run_id, {key: value})[key]

    def log_params(self, run_id: str, params: dict[str, Any]) -> dict[str, str]:
        """Record params, written before returning; a changed value raises ParamChanged."""
        self._check_writable(run_id)
        clean = {v.check_key(k, "param"): v.check_param_value(k, val) for k, val in params.items()}
        self._write_now(RunBatch(run_id, params=clean))
        return clean

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Queue one tag (tags can change; the last value wins)."""
        self.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        """Queue several tags."""
        if run_id not in self._running:
            self._check_writable(run_id)
        clean = {v.check_key(k, "tag"): v.check_tag_value(k, val) for k, val in tags.items()}
        for key, value in clean.items():
            self._writer.put_tag(run_id, key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        self._writer.flush()
        self.store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        """Write metrics, params and tags at once, before returning."""
        self._check_writable(run_id)
        points = [
            Metric(
                v.check_key(m.key),
                v.check_metric_value(m.key, m.value),
                v.check_timestamp(m.key, m.timestamp),
                v.check_step(m.key, m.step),
            )
            for m in metrics
        ]
        self._write_now(
            RunBatch(
                run_id,
                metrics=points,
                params={
                    v.check_key(k, "param"): v.check_param_value(k, x)
                    for k, x in (params or {}).items()
                },
                tags={
                    v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in (tags or {}).items()
                },
            )
        )

    def _write_now(self, batch: RunBatch) -> None:
        errors = self._writer.call(lambda: self.store.write_batches([batch]))
        if errors:
            raise errors[batch.run_id]

    def flush(self) -> None:
        """Block until every queued point and tag is in the store; raise what failed."""
        self._writer.flush()
        drain = getattr(self.store, "drain", None)  # a spool: wait for the server's answers
        if drain is not None:
            drain()
        self._raise_write_errors(None)

    def _raise_write_errors(self, run_id: str | None) -> None:
        errors: list[BaseException] = list(self._writer.take_errors(run_id))
        refused = getattr(self.store, "take_errors", None)  # what a server refused later
        if refused is not None:
            errors += refused(run_id)
        if errors:
            first = errors[0]
            if isinstance(first, MltrailError):
                raise type(first)(
                    f"{len(errors)} queued write(s) failed; first: {first.message}", hint=first.hint
                )
            raise StoreError(f"{len(errors)} queued write(s) failed; first: {first}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric of a run, ordered by step."""
        if run_id in self._running:
            self._writer.flush()
        return self.store.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    ) -> PagedList:
        """Search runs in experiments with the filter language; returns a page of runs."""
        if self._running:
            self._writer.flush()
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        if isinstance(order_by, str):
            order_by = [order_by]
        return self.store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string,
            order_by,
            max_results,
            page_token,
            ViewType(run_view_type),
        )

    # -- artifacts ---------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None
    ) -> list[FileInfo]:
        """Store a file or a whole folder as artifacts of a run, under ``artifact_path``."""
        self._check_writable(run_id)
        path = Path(local_path)
        if not path.exists():
            raise NotFound(f"cannot log artifact: {path} does not exist")
        prefix = v.check_artifact_path(artifact_path) + "/" if artifact_path else ""
        if path.is_dir():
            files = self._store_folder(path, f"{prefix}{path.name}/")
        else:
            info = self.objects.put_file(path)
            mode = 0o755 if os.stat(path).st_mode & stat.S_IXUSR else 0o644
            files = [FileInfo(f"{prefix}{path.name}", info.hash, info.size, mode)]
        self._writer.call(lambda: self.store.add_artifacts(run_id, files))
        return files

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None
    ) -> list[FileInfo]:
        """Store the contents of a folder (not the folder itself) as artifacts."""
        self._check_writable(run_id)
        path = Path(local_dir)
        if not path.is_dir():
            raise NotFound(f"cannot log artifacts: {path} is not a folder")
        prefix = v.check_artifact_path(artifact_path) + "/" if artifact_path else ""
        files = self._store_folder(path, prefix)
        self._writer.call(lambda: self.store.add_artifacts(run_id, files))
        return files

    def _store_folder(self, path: Path, prefix: str) -> list[FileInfo]:
        # Hash once while scanning; the tree object is stored too, naming this folder version.
        from mltrail.objects import scan_tree, store_tree

        tree, sources = scan_tree(path)
        store_tree(self.objects, tree, sources)
        return [FileInfo(prefix + e.path, e.hash, e.size, e.mode) for e in tree.entries]

    def log_text(self, run_id: str, text: str, artifact_file: str) -> FileInfo:
        """Store a string as an artifact file."""
        self._check_writable(run_id)
        path = v.check_artifact_path(artifact_file)
        info = self.objects.put_bytes(text.encode("utf-8"))
        entry = FileInfo(path, info.hash, info.size, 0o644)
        self._writer.call(lambda: self.store.add_artifacts(run_id, [entry]))
        return entry

    def log_dict(self, run_id: str, dictionary: dict, artifact_file: str) -> FileInfo:
        """Store a dict as a JSON (or YAML, by extension) artifact file."""
        artifact_file = v.check_artifact_path(artifact_file)
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            import json

            text = json.dumps(dictionary, indent=2, default=str)
        return self.log_text(run_id, text, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """List a run's artifact files, optionally under a folder."""
        if run_id in self._running:
            self._writer.flush()
        return self.store.list_artifacts(run_id, v.check_artifact_path(path) if path else None)

    def download_artifacts(self, run_id: str, path: str | None, dst: str | os.PathLike) -> Path:
        """Copy a run's artifact file or folder to ``dst``, verifying every byte."""
        files = self.list_artifacts(run_id, path)
        if not files:
            raise NotFound(
                f"run {run_id} has no artifact {path!r}"
                if path
                else f"run {run_id} has no artifacts"
            )
        dst = Path(dst)
        base = (
            files[0].path if len(files) == 1 and path and files[0].path == path.strip("/") else None
        )
        if base is not None:
            # One file: dst is the file itself, or a folder to put it in.
            target = dst / Path(base).name if dst.is_dir() else dst
            self._fetch(files[0], target)
            return target
        prefix = path.strip("/") + "/" if path else ""
        root = dst / Path(path.strip("/")).name if path else dst
        # Every target is checked before the first byte is written, so a refused download
        # leaves nothing behind outside dst (nor half a folder inside it).
        targets = [_inside(dst, root / v.check_artifact_path(f.path)[len(prefix) :]) for f in files]
        for f, target in zip(files, targets, strict=True):
            self._fetch(f, target)
        return root

    def _fetch(self, f: FileInfo, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.objects.get_file(f.hash, target)
        target.chmod(0o755 if f.mode & 0o111 else 0o644)

    # -- datasets ----------------------------------------------------------------------------
    def log_input(
        self, run_id: str, path: str | os.PathLike, *, context: str | None = None
    ) -> DatasetRef:
        """Record the version of a tracked dataset (``mltrail data add``-ed) as a run input.

        The version is the one the pointer file names when the workspace matches it; if the
        workspace differs, the version on disk is recorded and a DatasetVersionWarning says so.
        Logging the same version again changes nothing. Returns what was recorded.
        """
        return self._log_dataset(run_id, DatasetDirection.INPUT, path, context)

    def log_output(
        self, run_id: str, path: str | os.PathLike, *, context: str | None = None
    ) -> DatasetRef:
        """Record the version of a tracked dataset as an output the run wrote; see log_input."""
        return self._log_dataset(run_id, DatasetDirection.OUTPUT, path, context)

    def _log_dataset(
        self, run_id: str, direction: str, path: str | os.PathLike, context: str | None
    ) -> DatasetRef:
        from mltrail.data.version import version_of, warn_if_unrecorded

        self._check_writable(run_id)
        context = v.check_dataset_context(context)
        version = version_of(path)
        warn_if_unrecorded(version)
        ref = version.ref(context)
        # Through the writer, so the input lands after everything queued before it.
        self._writer.call(lambda: self.store.log_run_datasets(run_id, str(direction), [ref]))
        return ref

    def get_run_datasets(self, run_id: str) -> list[RunDataset]:
        """Return a run's recorded dataset versions: inputs, then outputs."""
        if run_id in self._running:
            self._writer.flush()
        return self.store.get_run_datasets(run_id)

    def find_dataset_uses(
        self,
        path: str | None = None,
        hash: str | None = None,
        view: ViewType | str = ViewType.ACTIVE_ONLY,
    ) -> list[DatasetUse]:
        """Return the runs that read or wrote a dataset path and/or version, newest run first."""
        # path is relative to the project root, as log_input records it; deleted runs are left
        # out unless view asks for them.
        if self._running:
            self._writer.flush()
        return self.store.find_dataset_uses(path, hash, ViewType(view))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """Return the bytes of one artifact file, verified against its hash."""
        for f in self.list_artifacts(run_id, path):
            if f.path == v.check_artifact_path(path):
                return self.objects.read_bytes(f.hash)
        raise NotFound(f"run {run_id} has no artifact file {path!r}")

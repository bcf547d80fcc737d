"""The fluent API (``mt.start_run``, ``mt.log_metric``...): module state over one client."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from mltrail.entities import (
    DatasetRef,
    Experiment,
    FileInfo,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from mltrail.errors import InvalidInput, InvalidState
from mltrail.tracking.client import MltrailClient

ENV_EXPERIMENT_NAME = "MLTRAIL_EXPERIMENT_NAME"
ENV_CAPTURE = "MLTRAIL_CAPTURE"
#: A JSON object of tags every run started here gets (`mltrail reproduce` marks re-runs with it).
ENV_RUN_TAGS = "MLTRAIL_RUN_TAGS"

_lock = threading.RLock()
_client: MltrailClient | None = None
_tracking_uri: str | None = None
_experiment_id: str | None = None
# The stack is process-wide, not per thread: a data-loader thread logging to the run its main
# thread started is normal in training code.
_run_stack: list[ActiveRun] = []


class ActiveRun:
    """The run a ``with mt.start_run()`` block works in; ends it on exit."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def info(self) -> RunInfo:
        """The run's info as of when it started."""
        return self._run.info

    @property
    def data(self) -> RunData:
        """The run's current params, latest metrics and tags."""
        return get_client().get_run(self._run.info.run_id).data

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._run.info.run_id

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id} name={self.info.run_name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        # Only end this run if it is still active; a nested block may have ended it already.
        if any(r.run_id == self.run_id for r in _run_stack):
            while _run_stack and _run_stack[-1].run_id != self.run_id:
                end_run(status)
            end_run(status)


def get_client() -> MltrailClient:
    """The process-wide client behind the fluent API (created on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = MltrailClient(_tracking_uri)
        return _client


def set_tracking_uri(uri: str | os.PathLike | None) -> None:
    """Point the fluent API at another store (a project folder, sqlite:/// or postgresql://)."""
    global _client, _tracking_uri, _experiment_id
    with _lock:
        if _run_stack:
            raise InvalidState("cannot change the tracking URI while a run is active; end it first")
        if _client is not None:
            _client.close()
        _client = None
        _experiment_id = None
        _tracking_uri = os.fspath(uri) if uri is not None else None


def get_tracking_uri() -> str:
    """The URI of the store the fluent API uses."""
    return get_client().tracking_uri


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the active one, creating it by name if needed."""
    global _experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidInput("give exactly one of experiment_name or experiment_id")
    client = get_client()
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        exp = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
        if exp is None:
            from mltrail.errors import AlreadyExists

            # Another process may create it between our look-up and create.
            with contextlib.suppress(AlreadyExists):
                client.create_experiment(experiment_name)  # type: ignore[arg-type]
            exp = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
            assert exp is not None
    if exp.lifecycle_stage != "active":
        raise InvalidState(
            f"experiment {exp.name!r} is deleted",
            hint=f"Restore it with `mltrail exp restore {exp.experiment_id}` or pick another name.",
        )
    _experiment_id = exp.experiment_id
    return exp


def _current_experiment_id() -> str:
    if _experiment_id is not None:
        return _experiment_id
    name = os.environ.get(ENV_EXPERIMENT_NAME)
    if name:
        return set_experiment(name).experiment_id
    return "0"


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    capture: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it active; use it as a context manager.

    ``nested=True`` starts a child of the active run. ``capture`` records the git commit, diff,
    command line and installed packages (default on; ``MLTRAIL_CAPTURE=0`` turns it off).
    """
    client = get_client()
    with _lock:
        if _run_stack and not nested:
            raise InvalidState(
                f"run {_run_stack[-1].run_id} is already active",
                hint="End it with mt.end_run(), or pass nested=True to start a child run.",
            )
        if run_id is not None:
            run = client.resume_run(run_id)
        else:
            all_tags = {**_env_tags(), **(tags or {})}
            if description:
                from mltrail.tracking.capture import TAG_NOTE

                all_tags[TAG_NOTE] = description
            if capture is None:
                capture = os.environ.get(ENV_CAPTURE, "1") not in ("0", "false", "no")
            files: dict[str, str] = {}
            if capture:
                from mltrail.tracking.capture import capture as do_capture

                captured = do_capture()
                all_tags = {**captured.tags, **all_tags}
                files = captured.files
            parent = _run_stack[-1].run_id if _run_stack else None
            run = client.create_run(
                experiment_id if experiment_id is not None else _current_experiment_id(),
                run_name=run_name,
                tags=all_tags,
                parent_run_id=parent,
            )
            for name, text in files.items():
                client.log_text(run.info.run_id, text, name)
        active = ActiveRun(run)
        _run_stack.append(active)
        return active


def _env_tags() -> dict[str, str]:
    """Return the tags MLTRAIL_RUN_TAGS asks for; a malformed value is an error naming it."""
    import json

    text = os.environ.get(ENV_RUN_TAGS, "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(
            f"{ENV_RUN_TAGS} is not a JSON object of string values: {text[:80]!r}",
            hint=f'Set it like {ENV_RUN_TAGS}=\'{{"team": "ml"}}\', or unset it.',
        )
    return value


def end_run(status: str | RunStatus = RunStatus.FINISHED) -> None:
    """End the active run: write its queued data, then record the status."""
    with _lock:
        if not _run_stack:
            return
        run = _run_stack.pop()
    get_client().set_terminated(run.run_id, status)


def active_run() -> ActiveRun | None:
    """The active run, or None."""
    return _run_stack[-1] if _run_stack else None


def _run_id() -> str:
    if _run_stack:
        return _run_stack[-1].run_id
    # Like MLflow: logging with no active run starts one.
    return start_run().run_id


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one metric point to the active run; returns at once."""
    get_client().log_metric(_run_id(), key, value, step, timestamp)


def log_metrics(
    metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metrics at one step to the active run."""
    get_client().log_metrics(_run_id(), metrics, step, timestamp)


def log_param(key: str, value: Any) -> str:
    """Log one param (immutable) to the active run."""
    return get_client().log_param(_run_id(), key, value)


def log_params(params: dict[str, Any]) -> dict[str, str]:
    """Log several params to the active run."""
    return get_client().log_params(_run_id(), params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    get_client().set_tag(_run_id(), key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active run."""
    get_client().set_tags(_run_id(), tags)


def delete_tag(key: str) -> None:
    """Remove a tag from the active run."""
    get_client().delete_tag(_run_id(), key)


def log_artifact(local_path: str | os.PathLike, artifact_path: str | None = None) -> list[FileInfo]:
    """Store a file or folder as an artifact of the active run."""
    return get_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[FileInfo]:
    """Store a folder's contents as artifacts of the active run."""
    return get_client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> FileInfo:
    """Store a string as an artifact file of the active run."""
    return get_client().log_text(_run_id(), text, artifact_file)


def log_dict(dictionary: dict, artifact_file: str) -> FileInfo:
    """Store a dict as a JSON or YAML artifact file of the active run."""
    return get_client().log_dict(_run_id(), dictionary, artifact_file)


def log_input(path: str | os.PathLike, context: str | None = None) -> DatasetRef:
    """Record the version of a tracked dataset as an input of the active run."""
    return get_client().log_input(_run_id(), path, context=context)


def log_output(path: str | os.PathLike, context: str | None = None) -> DatasetRef:
    """Record the version of a tracked dataset as an output of the active run."""
    return get_client().log_output(_run_id(), path, context=context)


def flush() -> None:
    """Block until everything logged so far is in the store."""
    get_client().flush()


def get_run(run_id: str) -> Run:
    """Return a run by id."""
    return get_client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of a run's metric, by step."""
    return get_client().get_metric_history(run_id, key)


def delete_run(run_id: str) -> None:
    """Move a run to the bin (restorable)."""
    get_client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Bring a deleted run back."""
    get_client().restore_run(run_id)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int = 100_000,
    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    experiment_names: Sequence[str] | None = None,
    output_format: str = "rows",
) -> Any:
    """Search runs; returns flat dict rows (``pd.DataFrame(rows)`` works), or a DataFrame/runs.

    ``output_format``: ``"rows"`` (list of dicts), ``"pandas"`` (needs pandas) or ``"runs"``.
    Defaults to the active experiment.
    """
    if output_format not in ("rows", "pandas", "runs"):
        raise InvalidInput(f"output_format {output_format!r}; use 'rows', 'pandas' or 'runs'")
    client = get_client()
    ids = [str(e) for e in experiment_ids or []]
    for name in experiment_names or []:
        ids.append(client.resolve_experiment(name).experiment_id)
    if not ids:
        ids = [_current_experiment_id()]
    runs: list[Run] = []
    token = None
    while len(runs) < max_results:
        page = client.search_runs(
            ids, filter_string, order_by, min(max_results - len(runs), 10_000), token, run_view_type
        )
        runs.extend(page)
        token = page.next_page_token
        if not token:
            break
    if output_format == "runs":
        return runs
    rows = [r.to_row() for r in runs]
    if output_format == "pandas":
        try:
            import pandas as pd
        except ImportError:
            raise InvalidInput(
                "output_format='pandas' needs pandas", hint="pip install pandas"
            ) from None
        return pd.DataFrame(rows)
    return rows


def _end_runs_at_exit() -> None:
    # An uncaught exception leaves its value in sys.last_value by the time atexit runs.
    status = (
        RunStatus.FAILED if getattr(sys, "last_value", None) is not None else RunStatus.FINISHED
    )
    while _run_stack:
        try:
            end_run(status)
        except Exception as exc:  # exit must not turn into a traceback
            print(f"mltrail: could not end run at exit: {exc}", file=sys.stderr)


atexit.register(_end_runs_at_exit)

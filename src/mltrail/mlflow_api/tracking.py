"""MLflow's tracking calls on mltrail's store: experiments, runs, metrics, params, tags, inputs.

Each handler takes the request's :class:`~mltrail.mlflow_api.fields.Fields`, checks the caller's
permission, validates with mltrail's rules (the same limits as MLflow's: keys of 250 characters,
params of 6000, tags of 8000, batches of 1000 metrics, 100 params and 100 tags) and answers with
the JSON body of MLflow's response message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from mltrail import validation as v
from mltrail.entities import Metric, NamedDataset, RunBatch, RunStatus, ViewType
from mltrail.errors import InvalidInput, NotFound
from mltrail.mlflow_api import codec, search
from mltrail.mlflow_api import tags as system
from mltrail.mlflow_api.context import Context
from mltrail.mlflow_api.fields import Fields, bad
from mltrail.store.base import DEFAULT_EXPERIMENT_ID

Body = dict[str, Any]

#: MLflow's limits on one log-batch request (mlflow/utils/validation.py).
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000
#: MLflow's limits on one bulk-interval request: runs, and points per run.
MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 1000

_VIEWS = {
    "ACTIVE_ONLY": ViewType.ACTIVE_ONLY,
    "DELETED_ONLY": ViewType.DELETED_ONLY,
    "ALL": ViewType.ALL,
}


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def view_of(f: Fields, name: str) -> ViewType:
    """A ``ViewType`` field (MLflow's enum names; ACTIVE_ONLY when absent)."""
    raw = f.raw(name)
    if raw in (None, ""):
        return ViewType.ACTIVE_ONLY
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 3:
        return list(_VIEWS.values())[raw - 1]
    if isinstance(raw, str) and raw.upper() in _VIEWS:
        return _VIEWS[raw.upper()]
    raise bad(name, raw, "ACTIVE_ONLY, DELETED_ONLY or ALL")


def _tags(found: dict[str, str]) -> dict[str, str]:
    return {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in found.items()}


# -- experiments ---------------------------------------------------------------------------------


def create_experiment(ctx: Context, f: Fields) -> Body:
    """experiments/create → ``{experiment_id}``."""
    ctx.access.allow("write")
    name = v.check_experiment_name(f.str("name", required=True))
    # mltrail keeps every artifact in its own store; a given artifact_location is not used.
    experiment_id = ctx.store.create_experiment(name, _tags(f.key_values("tags")))
    return {"experiment_id": experiment_id}


def get_experiment(ctx: Context, f: Fields) -> Body:
    """experiments/get → ``{experiment}``."""
    experiment_id = f.str("experiment_id", required=True)
    ctx.access.allow("read", experiment_id=experiment_id)
    return {"experiment": codec.experiment(ctx.store.get_experiment(experiment_id), ctx.uris)}


def get_experiment_by_name(ctx: Context, f: Fields) -> Body:
    """experiments/get-by-name → ``{experiment}``."""
    ctx.access.allow("read")
    name = f.str("experiment_name", required=True)
    found = ctx.store.get_experiment_by_name(name)
    if found is None or not ctx.access.visible_experiment(found.experiment_id):
        raise NotFound(f"Could not find experiment with name '{name}'")
    return {"experiment": codec.experiment(found, ctx.uris)}


def search_experiments(ctx: Context, f: Fields) -> Body:
    """experiments/search → ``{experiments, next_page_token}``."""
    ctx.access.allow("read")
    found = [
        e
        for e in ctx.store.list_experiments(view_of(f, "view_type"))
        if ctx.access.visible_experiment(e.experiment_id)
    ]
    page, token = search.find(
        search.EXPERIMENTS,
        found,
        search.conditions(search.EXPERIMENTS, f.str("filter")),
        f.strings("order_by"),
        f.int("max_results", default=1000, low=1, high=50_000),
        f.str("page_token"),
    )
    body: Body = {"experiments": [codec.experiment(e, ctx.uris) for e in page]}
    if token:
        body["next_page_token"] = token
    return body


def _set_experiment_stage(ctx: Context, f: Fields, stage: str) -> Body:
    experiment_id = f.str("experiment_id", required=True)
    ctx.access.allow("write", experiment_id=experiment_id)
    if ctx.store.get_experiment(experiment_id).lifecycle_stage != stage:
        ctx.store.set_experiment_lifecycle(experiment_id, stage)
    return {}


def delete_experiment(ctx: Context, f: Fields) -> Body:
    """experiments/delete (its runs go to the bin with it)."""
    if f.str("experiment_id") == DEFAULT_EXPERIMENT_ID:
        raise InvalidInput("Cannot delete the default experiment '0'. This is an internal API.")
    return _set_experiment_stage(ctx, f, "deleted")


def restore_experiment(ctx: Context, f: Fields) -> Body:
    """experiments/restore."""
    return _set_experiment_stage(ctx, f, "active")


def update_experiment(ctx: Context, f: Fields) -> Body:
    """experiments/update: a new name."""
    experiment_id = f.str("experiment_id", required=True)
    ctx.access.allow("write", experiment_id=experiment_id)
    new_name = f.str("new_name")
    if new_name is not None:
        ctx.store.rename_experiment(experiment_id, v.check_experiment_name(new_name))
    return {}


def set_experiment_tag(ctx: Context, f: Fields) -> Body:
    """experiments/set-experiment-tag."""
    experiment_id = f.str("experiment_id", required=True)
    ctx.access.allow("write", experiment_id=experiment_id)
    key = v.check_key(f.str("key", required=True), "tag")
    value = f.raw("value")
    ctx.store.set_experiment_tag(experiment_id, key, v.check_tag_value(key, value or ""))
    return {}


def delete_experiment_tag(ctx: Context, f: Fields) -> Body:
    """experiments/delete-experiment-tag."""
    experiment_id = f.str("experiment_id", required=True)
    ctx.access.allow("write", experiment_id=experiment_id)
    key = f.str("key", required=True)
    if key not in ctx.store.get_experiment(experiment_id).tags:
        raise NotFound(f"No tag with name: {key} in experiment with id {experiment_id}")
    ctx.store.delete_experiment_tag(experiment_id, key)
    return {}


# -- runs ----------------------------------------------------------------------------------------


def create_run(ctx: Context, f: Fields) -> Body:
    """runs/create → ``{run}``; name, user and parent may come as MLflow's system tags."""
    from mltrail.tracking.client import generate_run_name

    experiment_id = f.str("experiment_id") or DEFAULT_EXPERIMENT_ID
    ctx.access.allow("write", experiment_id=experiment_id)
    given = f.key_values("tags")
    run_name = f.str("run_name") or given.pop(system.RUN_NAME, None) or generate_run_name()
    given.pop(system.RUN_NAME, None)
    user = f.str("user_id") or given.pop(system.USER, None)
    given.pop(system.USER, None)
    parent = given.pop(system.PARENT_RUN_ID, None)
    if parent:
        ctx.access.allow_run(parent, "write")
    start = f.int("start_time", default=None, low=0)
    run = ctx.store.create_run(
        experiment_id,
        v.check_run_name(run_name),
        ctx.access.actor(user),
        now_ms() if start is None else start,
        parent or None,
        _tags({system.to_mltrail(k): x for k, x in given.items()}),
    )
    return {"run": codec.run(run, ctx.uris)}


def update_run(ctx: Context, f: Fields) -> Body:
    """runs/update → ``{run_info}``: status, end time, name."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    status = f.str("status")
    if status is not None and status.upper() not in RunStatus.__members__:
        raise InvalidInput(
            f"Invalid run status {status!r}; use one of {', '.join(RunStatus.__members__)}"
        )
    name = f.str("run_name")
    info = ctx.store.update_run(
        run_id,
        status=status.upper() if status else None,
        end_time=f.int("end_time", low=0),
        run_name=v.check_run_name(name) if name else None,
    )
    return {"run_info": codec.run_info(info, ctx.uris)}


def _set_run_stage(ctx: Context, f: Fields, stage: str) -> Body:
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    if ctx.store.get_run_info(run_id).lifecycle_stage != stage:
        ctx.store.set_run_lifecycle(run_id, stage)
    return {}


def delete_run(ctx: Context, f: Fields) -> Body:
    """runs/delete: to the bin (restorable)."""
    return _set_run_stage(ctx, f, "deleted")


def restore_run(ctx: Context, f: Fields) -> Body:
    """runs/restore."""
    return _set_run_stage(ctx, f, "active")


def get_run(ctx: Context, f: Fields) -> Body:
    """runs/get → ``{run}`` with inputs and outputs."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "read")
    run = ctx.store.get_run(run_id)
    datasets, models = ctx.store.get_run_links(run_id)
    return {"run": codec.run(run, ctx.uris, datasets, models)}


def search_runs(ctx: Context, f: Fields) -> Body:
    """runs/search → ``{runs, next_page_token}``, MLflow's filter and order-by translated."""
    experiment_ids = f.strings("experiment_ids")
    for experiment_id in experiment_ids:
        ctx.access.allow("read", experiment_id=experiment_id)
    page = ctx.store.search_runs(
        experiment_ids,
        search.runs_filter(f.str("filter")),
        search.runs_order(f.strings("order_by")),
        f.int("max_results", default=1000, low=1, high=50_000),
        f.str("page_token"),
        view_of(f, "run_view_type"),
    )
    body: Body = {"runs": [codec.run(r, ctx.uris) for r in page]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


def _metric(f: Fields, run_id: str) -> Metric:
    key = v.check_key(f.str("key", required=True))
    value = f.float("value", required=True)
    timestamp = f.int("timestamp", required=True)
    return Metric(
        key,
        v.check_metric_value(key, value),
        v.check_timestamp(key, timestamp),
        v.check_step(key, f.int("step", default=0)),
    )


def _new_points(ctx: Context, run_id: str, metrics: list[Fields]) -> list[Metric]:
    """The points to store: all, except repeats of stored points that only add a model id.

    MLflow 3's ``log_model`` logs the run's metrics at the model's step again, each with the
    new model's id, to link them to the model; mltrail keeps metrics on the run, so those
    repeats would only double the points.
    """
    points = [_metric(m, run_id) for m in metrics]
    linked = {p.key for p, m in zip(points, metrics, strict=True) if m.has("model_id")}
    if not linked:
        return points
    stored = {
        (p.key, p.step, p.timestamp, p.value)
        for key in linked
        for p in ctx.store.get_metric_history(run_id, key)
    }
    return [
        p
        for p, m in zip(points, metrics, strict=True)
        if not (m.has("model_id") and (p.key, p.step, p.timestamp, p.value) in stored)
    ]


def _write(ctx: Context, batch: RunBatch) -> None:
    """Write one run's share; MLflow's system tags in it change the run itself."""
    name = batch.tags.pop(system.RUN_NAME, None)
    if name is not None:
        ctx.store.update_run(batch.run_id, run_name=v.check_run_name(name))
    errors = ctx.store.write_batches([batch])
    if batch.run_id in errors:
        raise errors[batch.run_id]


def log_metric(ctx: Context, f: Fields) -> Body:
    """runs/log-metric."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    _write(ctx, RunBatch(run_id, _new_points(ctx, run_id, [f])))
    return {}


def log_param(ctx: Context, f: Fields) -> Body:
    """runs/log-parameter (params are immutable: a different value is refused)."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    key = v.check_key(f.str("key", required=True), "param")
    value = f.raw("value")
    _write(ctx, RunBatch(run_id, params={key: v.check_param_value(key, value or "")}))
    return {}


def set_tag(ctx: Context, f: Fields) -> Body:
    """runs/set-tag (``mlflow.runName`` renames the run, as in MLflow)."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    key = v.check_key(f.str("key", required=True), "tag")
    value = v.check_tag_value(key, f.raw("value") or "")
    _write(ctx, RunBatch(run_id, tags={system.to_mltrail(key): value}))
    return {}


def delete_tag(ctx: Context, f: Fields) -> Body:
    """runs/delete-tag."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    key = f.str("key", required=True)
    try:
        ctx.store.delete_tag(run_id, system.to_mltrail(key))
    except NotFound:
        raise NotFound(f"No tag with name: {key} in run with id {run_id}") from None
    return {}


def log_batch(ctx: Context, f: Fields) -> Body:
    """runs/log-batch: metrics, params and tags in one transaction, within MLflow's limits."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    metrics, params, tags = f.objects("metrics"), f.objects("params"), f.objects("tags")
    for what, items, limit in (
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
    ):
        if len(items) > limit:
            raise InvalidInput(
                f"A batch logging request can contain at most {limit} {what}. Got {len(items)} "
                f"{what}. Please split up {what} across multiple requests and try again."
            )
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_BATCH_ENTITIES:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_BATCH_ENTITIES} metrics, params, "
            f"and tags in total. Got {total} total entities."
        )
    batch = RunBatch(run_id, _new_points(ctx, run_id, metrics))
    for p in params:
        key = v.check_key(p.str("key", required=True), "param")
        value = v.check_param_value(key, p.raw("value") or "")
        if batch.params.get(key, value) != value:
            raise InvalidInput(
                f"Duplicate parameter keys have been submitted: {key!r} with different values"
            )
        batch.params[key] = value
    for t in tags:
        key = v.check_key(t.str("key", required=True), "tag")
        batch.tags[system.to_mltrail(key)] = v.check_tag_value(key, t.raw("value") or "")
    _write(ctx, batch)
    return {}


def log_model(ctx: Context, f: Fields) -> Body:
    """runs/log-model (MLflow 2.x): append the model's description to the run's history tag."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    raw = f.str("model_json", required=True)
    try:
        model = json.loads(raw)
    except ValueError:
        raise InvalidInput("model_json is not valid JSON") from None
    if not isinstance(model, dict):
        raise InvalidInput("model_json must be a JSON object (the MLmodel file's content)")
    tags = ctx.store.get_run(run_id).data.tags
    history = json.loads(tags.get(system.LOG_MODEL_HISTORY) or "[]")
    history.append(model)
    value = json.dumps(history)
    _write(ctx, RunBatch(run_id, tags={system.LOG_MODEL_HISTORY: value[-v.MAX_TAG_VALUE_LENGTH :]}))
    return {}


def log_inputs(ctx: Context, f: Fields) -> Body:
    """runs/log-inputs: datasets by name and digest, and logged models the run used."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    datasets = []
    for item in f.objects("datasets"):
        d = item.object("dataset")
        datasets.append(
            NamedDataset(
                d.str("name", required=True)[:500],
                d.str("digest", required=True)[:36],
                d.str("source_type", default="")[:36],
                d.str("source", default=""),
                d.str("schema"),
                d.str("profile"),
                item.key_values("tags"),
            )
        )
    ctx.store.log_named_datasets(run_id, datasets)
    models = [(m.str("model_id", required=True), 0) for m in f.objects("models")]
    _allow_linked_models(ctx, models)
    if models:
        ctx.store.log_run_models(run_id, "input", models)
    return {}


def _allow_linked_models(ctx: Context, models: list[tuple[str, int]]) -> None:
    """A run may name only logged models the caller may read (their experiments)."""
    for model_id, _ in models:
        found = ctx.store.get_logged_model(model_id)
        ctx.access.allow("read", experiment_id=found.experiment_id)


def log_outputs(ctx: Context, f: Fields) -> Body:
    """runs/outputs: logged models the run produced, at a step."""
    run_id = f.run_id()
    ctx.access.allow_run(run_id, "write")
    models = [
        (m.str("model_id", required=True), m.int("step", default=0)) for m in f.objects("models")
    ]
    _allow_linked_models(ctx, models)
    ctx.store.log_run_models(run_id, "output", models)
    return {}


# -- metric histories ----------------------------------------------------------------------------


def get_metric_history(ctx: Context, f: Fields) -> Body:
    """metrics/get-history → ``{metrics, next_page_token}``, by step then time.

    Without ``max_results`` every point comes in one reply, as from MLflow's server; with it,
    pages of that many points and a token for the next.
    """
    from mltrail.store.sql import decode_page_token, encode_page_token

    run_id = f.run_id()
    ctx.access.allow_run(run_id, "read")
    key = f.str("metric_key", required=True)
    size = f.int("max_results", low=1, high=2**31 - 1)
    if size is None:
        points = ctx.store.get_metric_history(run_id, key)
        return {"metrics": [codec.metric(m, run_id) for m in points]}
    start = decode_page_token(f.str("page_token"))
    # One point more than the page: whether another page follows, without counting them all.
    points = ctx.store.metric_history_page(run_id, key, start, size + 1)
    body: Body = {"metrics": [codec.metric(m, run_id) for m in points[:size]]}
    if len(points) > size:
        body["next_page_token"] = encode_page_token(start + size)
    return body


def get_history_bulk_interval(ctx: Context, f: Fields) -> Body:
    """metrics/get-history-bulk-interval: up to ``max_results`` points of each run, evenly spread.

    The points keep each run's first and last step in the range; the others are spaced evenly
    by position, so a chart shows the whole series' shape.
    """
    run_ids = f.strings("run_ids")
    if not run_ids:
        raise InvalidInput("GetMetricHistoryBulkInterval request must specify at least one run_id.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise InvalidInput(
            f"GetMetricHistoryBulkInterval request cannot specify more than {MAX_BULK_RUNS} "
            f"run_ids. Received {len(run_ids)} run_ids."
        )
    key = f.str("metric_key", required=True)
    low = f.int("start_step")
    high = f.int("end_step")
    if (low is None) != (high is None) or (low is not None and high is not None and low > high):
        raise InvalidInput("start_step and end_step must both be given, with start <= end")
    wanted = f.int("max_results", default=320, low=1, high=MAX_BULK_POINTS)
    found = []
    for run_id in run_ids:
        ctx.access.allow_run(run_id, "read")
        points = ctx.store.get_metric_history(run_id, key)
        if low is not None and high is not None:
            points = [p for p in points if low <= p.step <= high]
        found.extend(codec.metric(p, run_id) for p in _spread(points, wanted))
    return {"metrics": found}


def _spread(points: Sequence[Metric], wanted: int) -> Sequence[Metric]:
    if len(points) <= wanted:
        return points
    if wanted == 1:
        return [points[-1]]
    last = len(points) - 1
    picks = sorted({round(i * last / (wanted - 1)) for i in range(wanted)})
    return [points[i] for i in picks]


def list_artifacts(ctx: Context, f: Fields) -> Body:
    """artifacts/list (the tracking service's listing of a run's artifacts)."""
    from mltrail.mlflow_api import artifacts

    run_id = f.run_id()
    ctx.access.allow_run(run_id, "read")
    info = ctx.store.get_run_info(run_id)
    files = artifacts.list_run(ctx, run_id, f.str("path") or "")
    return {"root_uri": ctx.uris.run(info.experiment_id, run_id), "files": files}

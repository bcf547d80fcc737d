"""MLflow 3's logged models (``/logged-models``): what ``mlflow.<flavor>.log_model`` creates.

The client creates a PENDING model, uploads its files to the model's artifact URI, then marks it
READY. A model logged in a run keeps its files among that run's artifacts, so mltrail's own
commands and ``runs:/<run>/<name>`` see it like a model logged with ``mt.log_model``.
"""

from __future__ import annotations

from typing import Any

from mltrail import validation as v
from mltrail.errors import InvalidInput
from mltrail.mlflow_api import artifacts, codec, search
from mltrail.mlflow_api.context import Context
from mltrail.mlflow_api.fields import Fields, bad

Body = dict[str, Any]
MAX_SEARCH_RESULTS = 100


def _tags(found: dict[str, str]) -> dict[str, str]:
    return {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in found.items()}


def _params(found: dict[str, str]) -> dict[str, str]:
    return {v.check_key(k, "param"): v.check_param_value(k, x) for k, x in found.items()}


def _model(ctx: Context, model_id: str, level: str) -> Any:
    model = ctx.store.get_logged_model(model_id)
    ctx.access.allow(level, experiment_id=model.experiment_id)
    return model


def create(ctx: Context, f: Fields) -> Body:
    """POST logged-models → ``{model}`` (PENDING)."""
    from mltrail.tracking.client import generate_run_name

    experiment_id = f.str("experiment_id", required=True)
    ctx.access.allow("write", experiment_id=experiment_id)
    run_id = f.str("source_run_id")
    if run_id:
        info = ctx.store.get_run_info(run_id)
        ctx.access.allow("write", experiment_id=info.experiment_id)
    name = f.str("name") or generate_run_name()
    if len(name) > 500:
        raise InvalidInput(f"logged model name is {len(name)} characters long; the limit is 500")
    model = ctx.store.create_logged_model(
        experiment_id,
        name,
        run_id or None,
        f.str("model_type"),
        _params(f.key_values("params")),
        _tags(f.key_values("tags")),
    )
    return {"model": codec.logged_model(model, ctx.uris)}


def get(ctx: Context, f: Fields) -> Body:
    """GET logged-models/{model_id} → ``{model}``."""
    return {
        "model": codec.logged_model(_model(ctx, f.str("model_id", required=True), "read"), ctx.uris)
    }


def finalize(ctx: Context, f: Fields) -> Body:
    """PATCH logged-models/{model_id} ``{status}`` → ``{model}``: READY or UPLOAD_FAILED."""
    model_id = f.str("model_id", required=True)
    _model(ctx, model_id, "write")
    status = f.str("status", required=True)
    if status not in codec.LOGGED_MODEL_STATUS_IN or status == "LOGGED_MODEL_PENDING":
        raise bad("status", status, "LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED")
    found = ctx.store.set_logged_model_status(model_id, codec.LOGGED_MODEL_STATUS_IN[status])
    return {"model": codec.logged_model(found, ctx.uris)}


def delete(ctx: Context, f: Fields) -> Body:
    """DELETE logged-models/{model_id}: to the bin; its files and versions stay."""
    model_id = f.str("model_id", required=True)
    _model(ctx, model_id, "write")
    ctx.store.delete_logged_model(model_id)
    return {}


def search_models(ctx: Context, f: Fields) -> Body:
    """POST logged-models/search → ``{models, next_page_token}``."""
    experiment_ids = f.strings("experiment_ids")
    if not experiment_ids:
        raise InvalidInput("search_logged_models needs at least one experiment id")
    for experiment_id in experiment_ids:
        ctx.access.allow("read", experiment_id=experiment_id)
    if f.list("datasets"):
        raise InvalidInput(
            "mltrail does not link logged models to datasets; search without 'datasets'",
            hint="Filter on name, tags, params, status or source_run_id instead.",
        )
    order = []
    for item in f.objects("order_by"):
        name = item.str("field_name", required=True)
        order.append(f"{name} {'ASC' if item.bool('ascending', default=True) else 'DESC'}")
    found = ctx.store.list_logged_models(experiment_ids)
    page, token = search.find(
        search.LOGGED_MODELS,
        found,
        search.conditions(search.LOGGED_MODELS, f.str("filter")),
        order,
        f.int("max_results", default=MAX_SEARCH_RESULTS, low=1, high=50_000),
        f.str("page_token"),
    )
    body: Body = {"models": [codec.logged_model(m, ctx.uris) for m in page]}
    if token:
        body["next_page_token"] = token
    return body


def set_tags(ctx: Context, f: Fields) -> Body:
    """PATCH logged-models/{model_id}/tags ``{tags}``."""
    model_id = f.str("model_id", required=True)
    _model(ctx, model_id, "write")
    ctx.store.set_logged_model_tags(model_id, _tags(f.key_values("tags")))
    return {}


def delete_tag(ctx: Context, f: Fields) -> Body:
    """DELETE logged-models/{model_id}/tags/{tag_key}."""
    model_id = f.str("model_id", required=True)
    _model(ctx, model_id, "write")
    ctx.store.delete_logged_model_tag(model_id, f.str("tag_key", required=True))
    return {}


def log_params(ctx: Context, f: Fields) -> Body:
    """POST logged-models/{model_id}/params ``{params}``."""
    model_id = f.str("model_id", required=True)
    _model(ctx, model_id, "write")
    ctx.store.log_logged_model_params(model_id, _params(f.key_values("params")))
    return {}


def list_files(ctx: Context, f: Fields) -> Body:
    """GET logged-models/{model_id}/artifacts/directories → ``{root_uri, files}``."""
    model = _model(ctx, f.str("model_id", required=True), "read")
    inside = f.str("artifact_directory_path") or ""
    root = f"{model.experiment_id}/models/{model.model_id}/artifacts"
    files = artifacts.list_dir(ctx, f"{root}/{inside}".rstrip("/"))
    return {"root_uri": ctx.uris.logged_model(model.experiment_id, model.model_id), "files": files}

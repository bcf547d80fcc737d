"""MLflow's model registry calls on mltrail's registry: models, versions, stages, aliases, tags.

Every change goes through the store's registry methods, so each one is an audit event in
``mltrail models history`` under the caller's user. A new version freezes the model's files as a
tree, as ``mltrail``'s own ``register_model`` does; MLflow's client then downloads exactly those
files from the version's download URI.
"""

from __future__ import annotations

import json
from typing import Any

from mltrail import validation as v
from mltrail.entities import ModelVersion, RegisteredModel
from mltrail.errors import InvalidInput, NotFound
from mltrail.mlflow_api import codec, search
from mltrail.mlflow_api.context import Context
from mltrail.mlflow_api.fields import Fields
from mltrail.mlflow_api.uris import (
    LOGGED_MODEL,
    MODEL_VERSION,
    RUN,
    ArtifactPath,
    logged_model_id,
)
from mltrail.search.filter import Comparison

Body = dict[str, Any]

#: The logged-model tag in which MLflow lists the registered versions made from the model.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
#: The tag MLflow marks its prompts with: to its registry a prompt is a registered model.
PROMPT_TAG = "mlflow.prompt.is_prompt"

_SOURCE_HINT = (
    "Register a model mltrail holds: a run's artifact folder (runs:/<run_id>/<path> or the "
    "run's artifact URI), a logged model (models:/m-<id>) or a registered version "
    "(models:/<name>/<version>)."
)


def _tags(found: dict[str, str]) -> dict[str, str]:
    return {v.check_key(k, "tag"): v.check_tag_value(k, x) for k, x in found.items()}


def _name(f: Fields, field: str = "name") -> str:
    return v.check_model_name(f.str(field, required=True))


def _version(f: Fields) -> int:
    return v.check_version(f.str("version", required=True))


def _model_body(ctx: Context, model: RegisteredModel) -> dict[str, Any]:
    return codec.registered_model(model, ctx.store.get_latest_versions(model.name))


def _changed(ctx: Context, f: Fields, level: str = "write") -> tuple[str, str]:
    """The existing model a call is about, checked for ``level``, and who makes the change."""
    model, actor = _existing(ctx, f, level)
    return model.name, actor


def _existing(ctx: Context, f: Fields, level: str = "write") -> tuple[RegisteredModel, str]:
    """:func:`_changed` with the model itself."""
    name = _name(f)
    ctx.access.allow(level, model=name)
    return existing_model(ctx, name), ctx.access.actor(None)


def existing_model(ctx: Context, name: str) -> RegisteredModel:
    """The registered model ``name``, or MLflow's RESOURCE_DOES_NOT_EXIST for it.

    Asked first, so a missing model is reported here: the store's own error lists the models
    there are, which may name some the caller has no permission to see.
    """
    try:
        return ctx.store.get_registered_model(name)
    except NotFound:
        raise NotFound(f"Registered Model with name={name} not found") from None


# -- registered models ---------------------------------------------------------------------------


def create_model(ctx: Context, f: Fields) -> Body:
    """registered-models/create → ``{registered_model}``."""
    name = _name(f)
    ctx.access.allow("write", model=name)
    actor = ctx.access.actor(None)
    model = ctx.store.create_registered_model(
        name, v.check_description(f.str("description")), _tags(f.key_values("tags")), actor
    )
    return {"registered_model": _model_body(ctx, model)}


def get_model(ctx: Context, f: Fields) -> Body:
    """registered-models/get → ``{registered_model}``."""
    model, _ = _existing(ctx, f, "read")
    return {"registered_model": _model_body(ctx, model)}


def rename_model(ctx: Context, f: Fields) -> Body:
    """registered-models/rename → ``{registered_model}``."""
    name, actor = _changed(ctx, f)
    new_name = _name(f, "new_name")
    ctx.access.allow("write", model=new_name)
    model = ctx.store.rename_registered_model(name, new_name, actor)
    return {"registered_model": _model_body(ctx, model)}


def update_model(ctx: Context, f: Fields) -> Body:
    """registered-models/update (PATCH) → ``{registered_model}``: the description."""
    name, actor = _changed(ctx, f)
    model = ctx.store.update_registered_model(
        name, v.check_description(f.str("description", default="")), actor
    )
    return {"registered_model": _model_body(ctx, model)}


def delete_model(ctx: Context, f: Fields) -> Body:
    """registered-models/delete: the model and its versions, as MLflow deletes them.

    mltrail's own CLI refuses while aliases or stages hold a version unless forced; an MLflow
    client asks for the deletion outright, so it is forced (and recorded in the history).
    """
    name, actor = _changed(ctx, f)
    ctx.store.delete_registered_model(name, actor, force=True)
    return {}


def _all_models(ctx: Context) -> list[RegisteredModel]:
    found: list[RegisteredModel] = []
    token = None
    while True:
        page = ctx.store.list_registered_models(None, 50_000, token)
        found.extend(m for m in page if ctx.access.visible_model(m.name))
        token = page.next_page_token
        if not token:
            return found


def _apart_from_prompts(where: list[Comparison]) -> tuple[list[Comparison], bool]:
    """(the conditions to search with, whether prompts are asked for), as MLflow's server reads
    a filter.

    The mlflow client adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every search for
    registered models. MLflow's store takes conditions on that tag as a switch, not as a tag
    filter (``_is_querying_prompt`` in mlflow/store/model_registry/sqlalchemy_store.py): the
    first one asks for prompts if it is ``= 'true'`` or ``!= 'false'``, and then the filter
    stays as it is; otherwise they all go, and prompts are left out. Models that lack the tag
    must match, where an ordinary ``!=`` on a missing tag would drop them all.
    """
    on_prompts = [c for c in where if c.entity == "tag" and c.key == PROMPT_TAG]
    if not on_prompts:
        return where, False
    first = on_prompts[0]
    value = str(first.value).lower()
    if (first.op == "=" and value == "true") or (first.op == "!=" and value == "false"):
        return where, True
    return [c for c in where if c not in on_prompts], False


def _is_prompt(tags: dict[str, str]) -> bool:
    return tags.get(PROMPT_TAG) == "true"


def search_models(ctx: Context, f: Fields) -> Body:
    """registered-models/search → ``{registered_models, next_page_token}``; prompts only when
    the filter asks for them, as in MLflow."""
    ctx.access.allow("read")
    where, prompts = _apart_from_prompts(
        search.conditions(search.REGISTERED_MODELS, f.str("filter"))
    )
    page, token = search.find(
        search.REGISTERED_MODELS,
        [m for m in _all_models(ctx) if prompts or not _is_prompt(m.tags)],
        where,
        f.strings("order_by"),
        f.int("max_results", default=100, low=1, high=50_000),
        f.str("page_token"),
    )
    body: Body = {"registered_models": [_model_body(ctx, m) for m in page]}
    if token:
        body["next_page_token"] = token
    return body


def set_model_tag(ctx: Context, f: Fields) -> Body:
    """registered-models/set-tag."""
    name, actor = _changed(ctx, f)
    key = v.check_key(f.str("key", required=True), "tag")
    value = v.check_tag_value(key, f.raw("value") or "")
    ctx.store.set_registered_model_tag(name, key, value, actor)
    return {}


def delete_model_tag(ctx: Context, f: Fields) -> Body:
    """registered-models/delete-tag; a tag the model does not have is no error, as in MLflow."""
    model, actor = _existing(ctx, f)
    key = f.str("key", required=True)
    if key in model.tags:
        ctx.store.delete_registered_model_tag(model.name, key, actor)
    return {}


def get_latest_versions(ctx: Context, f: Fields) -> Body:
    """registered-models/get-latest-versions → ``{model_versions}``."""
    name, _ = _changed(ctx, f, "read")
    stages = [v.check_stage(s) for s in f.strings("stages")] or None
    found = ctx.store.get_latest_versions(name, stages)
    return {"model_versions": [codec.model_version(mv) for mv in found]}


# -- versions ------------------------------------------------------------------------------------


def _source(
    ctx: Context, source: str, model_id: str | None
) -> tuple[str, str | None, str | None, str]:
    """(source to record, run id, artifact path, tree hash) of the files a version names."""
    from mltrail.entities import FileInfo
    from mltrail.registry.client import store_model_tree

    model_id = model_id or logged_model_id(source)
    where = None if model_id else ctx.uris.parse(source)
    if where is not None and where.kind == LOGGED_MODEL:
        model_id = where.model_id
    if model_id:
        model = ctx.store.get_logged_model(model_id)
        ctx.access.allow("read", experiment_id=model.experiment_id)
        if model.status != "READY":
            # Its files may be incomplete: a version would freeze them so.
            raise InvalidInput(
                f"logged model {model_id} is {model.status}, not READY: its upload is not complete",
                hint="Register it once log_model has finished (the client marks it READY), or "
                "log the model again.",
            )
        files = ctx.store.list_logged_model_files(model_id)
        what = f"logged model {model_id} lists its files"
        run_id, path, recorded = model.run_id, model.artifact_path, f"models:/{model_id}"
    elif (where is not None and where.kind == MODEL_VERSION) or (
        where is None and source.startswith("models:/")
    ):
        mv = _registered_source(ctx, source, where)
        return mv.source, mv.run_id, mv.artifact_path, mv.tree_hash
    elif where is not None and where.kind == RUN:
        assert where.run_id is not None
        info = ctx.store.get_run_info(where.run_id)
        ctx.access.allow("read", experiment_id=info.experiment_id)
        path = where.path
        if not path:
            raise InvalidInput(
                f"model source {source!r} is a run's whole artifact root", hint=_SOURCE_HINT
            )
        prefix = path + "/"
        files = [
            FileInfo(x.path[len(prefix) :], x.hash, x.size, x.mode)
            for x in ctx.store.list_artifacts(where.run_id, path)
            if x.path.startswith(prefix)
        ]
        what = f"run {where.run_id} has a model at {path!r}"
        run_id, recorded = where.run_id, f"runs:/{where.run_id}/{path}"
    else:
        raise InvalidInput(f"mltrail cannot register model source {source!r}", hint=_SOURCE_HINT)
    if not any(x.path == "MLmodel" for x in files):
        raise InvalidInput(
            f"{source} holds no model: it has no MLmodel file",
            hint="Log the model with mlflow.<flavor>.log_model (or mt.log_model) first.",
        )
    return recorded, run_id, path, store_model_tree(ctx.objects, files, what)


def _registered_source(ctx: Context, source: str, where: ArtifactPath | None) -> ModelVersion:
    """The registered version a source names: by its download URI (``where``), or as
    ``models:/NAME/VERSION``, ``/STAGE``, ``/latest`` or ``@ALIAS``, as MLflow's server takes
    them (``MlflowClient.copy_model_version`` and ``mlflow.register_model("models:/NAME/1",
    ...)`` send ``models:/NAME/VERSION``)."""
    from mltrail.registry.client import version_named
    from mltrail.registry.uri import parse_model_uri

    if where is not None:
        assert where.name is not None and where.version is not None
        name = where.name
        ctx.access.allow("read", model=name)
        existing_model(ctx, name)
        mv = ctx.store.get_model_version(name, where.version)
    else:
        parsed = parse_model_uri(source)
        name = parsed.name or ""
        ctx.access.allow("read", model=name)
        existing_model(ctx, name)
        mv = version_named(ctx.store, parsed)
    if mv.lifecycle_stage != "active":
        raise NotFound(f"Model Version (name={name}, version={mv.version}) not found")
    return mv


def create_version(ctx: Context, f: Fields) -> Body:
    """model-versions/create → ``{model_version}`` (READY at once: the files are frozen now).

    The model must exist, as in MLflow (mltrail's own register_model creates a missing one).
    """
    name, actor = _changed(ctx, f)
    source = v.check_model_source(f.str("source", required=True))
    recorded, run_id, path, tree_hash = _source(ctx, source, f.str("model_id"))
    given_run = f.str("run_id")
    if given_run and run_id and given_run != run_id:
        raise InvalidInput(f"run_id {given_run} is not the run of model source {source}")
    if given_run:
        # The version will name the run as its source: only one the caller may read.
        ctx.access.allow_run(given_run, "read")
    version = ctx.store.create_model_version(
        name,
        recorded,
        run_id or given_run or None,
        path,
        tree_hash,
        v.check_description(f.str("description")),
        _tags(f.key_values("tags")),
        actor,
    )
    model_id = logged_model_id(recorded)
    if model_id:
        _link_logged_model(ctx, model_id, version)
    return {"model_version": codec.model_version(version)}


def _link_logged_model(ctx: Context, model_id: str, version: ModelVersion) -> None:
    """List ``version`` in its logged model's ``mlflow.modelVersions`` tag, as MLflow's server
    does (``set_model_versions_tags`` in mlflow/store/tracking/abstract_store.py)."""
    entry = {"name": version.name, "version": str(version.version)}
    found = ctx.store.get_logged_model(model_id).tags.get(MODEL_VERSIONS_TAG)
    try:
        listed = json.loads(found) if found else []
    except ValueError:
        listed = []
    if not isinstance(listed, list):
        listed = []
    if entry not in listed:
        value = json.dumps([*listed, entry])
        ctx.store.set_logged_model_tags(model_id, {MODEL_VERSIONS_TAG: value})


def get_version(ctx: Context, f: Fields) -> Body:
    """model-versions/get → ``{model_version}``."""
    name, _ = _changed(ctx, f, "read")
    version = ctx.store.get_model_version(name, _version(f))
    if version.lifecycle_stage != "active":
        raise NotFound(f"Model Version (name={name}, version={version.version}) not found")
    return {"model_version": codec.model_version(version)}


def update_version(ctx: Context, f: Fields) -> Body:
    """model-versions/update (PATCH) → ``{model_version}``: the description."""
    name, actor = _changed(ctx, f)
    found = ctx.store.update_model_version(
        name, _version(f), v.check_description(f.str("description", default="")), actor
    )
    return {"model_version": codec.model_version(found)}


def delete_version(ctx: Context, f: Fields) -> Body:
    """model-versions/delete (forced, as for registered-models/delete)."""
    name, actor = _changed(ctx, f)
    ctx.store.delete_model_version(name, _version(f), actor, force=True)
    return {}


def transition_stage(ctx: Context, f: Fields) -> Body:
    """model-versions/transition-stage → ``{model_version}``."""
    name, actor = _changed(ctx, f)
    found = ctx.store.transition_model_version_stage(
        name,
        _version(f),
        v.check_stage(f.str("stage", required=True)),
        f.bool("archive_existing_versions"),
        actor,
    )
    return {"model_version": codec.model_version(found)}


def _candidates(ctx: Context, where: list[Comparison]) -> list[ModelVersion]:
    """The versions a filter can match: by name or run when it pins one, else all of them."""
    pinned = {
        c.key: c.value
        for c in where
        if c.entity == "attribute" and c.op == "=" and isinstance(c.value, str)
    }
    if "name" in pinned:
        name = str(pinned["name"])
        if not ctx.access.visible_model(name):
            return []
        try:
            return ctx.store.list_model_versions(name)
        except NotFound:
            return []
    if "run_id" in pinned:
        found = ctx.store.find_model_versions(run_id=str(pinned["run_id"]))
        return [mv for mv in found if ctx.access.visible_model(mv.name)]
    return [mv for m in _all_models(ctx) for mv in ctx.store.list_model_versions(m.name)]


def search_versions(ctx: Context, f: Fields) -> Body:
    """model-versions/search → ``{model_versions, next_page_token}``; versions of prompts only
    when the filter asks for them, as in MLflow."""
    ctx.access.allow("read")
    where, prompts = _apart_from_prompts(search.conditions(search.MODEL_VERSIONS, f.str("filter")))
    page, token = search.find(
        search.MODEL_VERSIONS,
        [mv for mv in _candidates(ctx, where) if prompts or not _is_prompt(mv.tags)],
        where,
        f.strings("order_by"),
        f.int("max_results", default=200_000, low=1, high=200_000),
        f.str("page_token"),
    )
    body: Body = {"model_versions": [codec.model_version(mv) for mv in page]}
    if token:
        body["next_page_token"] = token
    return body


def get_download_uri(ctx: Context, f: Fields) -> Body:
    """model-versions/get-download-uri → ``{artifact_uri}``: the version's frozen files."""
    name, _ = _changed(ctx, f, "read")
    version = ctx.store.get_model_version(name, _version(f))
    return {"artifact_uri": ctx.uris.model_version(version.name, version.version)}


def set_version_tag(ctx: Context, f: Fields) -> Body:
    """model-versions/set-tag."""
    name, actor = _changed(ctx, f)
    key = v.check_key(f.str("key", required=True), "tag")
    value = v.check_tag_value(key, f.raw("value") or "")
    ctx.store.set_model_version_tag(name, _version(f), key, value, actor)
    return {}


def delete_version_tag(ctx: Context, f: Fields) -> Body:
    """model-versions/delete-tag; a tag the version does not have is no error, as in MLflow."""
    name, actor = _changed(ctx, f)
    version, key = _version(f), f.str("key", required=True)
    if key in ctx.store.get_model_version(name, version).tags:
        ctx.store.delete_model_version_tag(name, version, key, actor)
    return {}


# -- aliases -------------------------------------------------------------------------------------


def set_alias(ctx: Context, f: Fields) -> Body:
    """registered-models/alias (POST)."""
    name, actor = _changed(ctx, f)
    alias = v.check_alias(f.str("alias", required=True))
    ctx.store.set_model_alias(name, alias, _version(f), actor)
    return {}


def delete_alias(ctx: Context, f: Fields) -> Body:
    """registered-models/alias (DELETE); an alias the model does not have is no error, as in
    MLflow."""
    model, actor = _existing(ctx, f)
    alias = f.str("alias", required=True)
    if alias in model.aliases:
        ctx.store.delete_model_alias(model.name, alias, actor)
    return {}


def get_by_alias(ctx: Context, f: Fields) -> Body:
    """registered-models/alias (GET) → ``{model_version}``, with MLflow's answers: ``latest``
    is the model's newest version, and an alias the model lacks is INVALID_PARAMETER_VALUE
    (RESOURCE_DOES_NOT_EXIST is for a missing model)."""
    model, _ = _existing(ctx, f, "read")
    name, alias = model.name, f.str("alias", required=True)
    if alias.lower() == "latest":
        found = ctx.store.get_latest_versions(name)
        if not found:
            raise NotFound(f"Latest version not found for model {name}.")
        return {"model_version": codec.model_version(max(found, key=lambda mv: mv.version))}
    if alias not in model.aliases:
        raise InvalidInput(
            f"Registered model alias {alias} not found.",
            hint=f"Set it first: MlflowClient().set_registered_model_alias({name!r}, "
            f"{alias!r}, <version>).",
        )
    found = ctx.store.get_model_version_by_alias(name, alias)
    return {"model_version": codec.model_version(found)}

"""The expectations of the permission matrix (test_permission_matrix.py): callers, rules, calls.

Each route's entry names the rule it follows and how to call it against a :class:`World`, the
experiment, run, registered model and logged model (with files, a dataset and grants) that
:func:`make_world` makes for a request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mltrail.entities import DatasetRef, FileInfo, Metric, RunBatch
from mltrail.objects.tree import Tree, TreeEntry
from mltrail.server import auth

V1 = "/api/v1"
ML = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts"

#: name → (role, grant kind, grant level); None: no token at all.
PRINCIPALS: dict[str, tuple[str, str | None, str | None] | None] = {
    "anon": None,
    "read": ("read", None, None),
    "write": ("write", None, None),
    "admin": ("admin", None, None),
    "exp_none": ("write", "exp", "none"),
    "exp_read": ("write", "exp", "read"),
    "exp_write": ("read", "exp", "write"),
    "model_none": ("write", "model", "none"),
    "model_read": ("write", "model", "read"),
    "model_write": ("read", "model", "write"),
}
LEVEL = {"none": 0, "read": 1, "write": 2, "admin": 3}


def expected(rule: str, who: str) -> str:
    """``ok``, ``401`` or ``403``: what ``who`` gets from a route following ``rule``."""
    if rule == "public":
        return "ok"
    if rule.startswith("status:"):
        return rule.split(":", 1)[1]
    p = PRINCIPALS[who]
    if p is None:
        return "401"
    if rule == "admin-off":  # the admin API: admins only (and never with auth off)
        rule = "admin"
    role, kind, granted = p
    for need in rule.split("+"):
        level, _, scope = need.partition(":")
        have = LEVEL[role]
        if role != "admin" and scope and scope == kind:
            have = LEVEL[granted or "none"]
        if have < LEVEL[level]:
            return "403"
    return "ok"


# -- the world a request acts on ------------------------------------------------------------------

_count = itertools.count()


@dataclass
class World:
    exp: str
    exp_name: str
    run: str
    run2: str
    model: str
    lm: str  # a READY logged model in exp
    artifact: str  # hash of the run's model/MLmodel
    data_tree: str
    model_tree: str
    k: int
    token_id: str
    token: str


def make_world(store: Any, objects: Any, state: Any) -> World:
    k = next(_count)
    exp_name = f"exp{k}"
    exp = store.create_experiment(exp_name)
    run = store.create_run(exp, "r", "alice", 1, None, {}).info.run_id
    run2 = store.create_run(exp, "r2", "alice", 1, None, {}).info.run_id
    store.set_experiment_tag(exp, "a", "b")
    mlmodel = objects.put_bytes(f"artifact_path: model {k}\n".encode())
    weights = objects.put_bytes(f"weights {k}".encode())
    store.add_artifacts(
        run,
        [
            FileInfo("model/MLmodel", mlmodel.hash, mlmodel.size, 0o644),
            FileInfo("model/model.pkl", weights.hash, weights.size, 0o644),
        ],
    )
    store.write_batches([RunBatch(run, [Metric("loss", 0.5, 1, 0)], {"p": "1"}, {"t": "1"})])
    rows = objects.put_bytes(f"a,b\n{k},2\n".encode())
    data_tree = objects.put_bytes(
        Tree.from_entries([TreeEntry("rows.csv", rows.hash, rows.size, 0o644)]).to_bytes()
    ).hash
    store.log_run_datasets(run, "input", [DatasetRef(f"data/d{k}", data_tree, "dir", rows.size, 1)])
    model_tree = objects.put_bytes(
        Tree.from_entries(
            [
                TreeEntry("MLmodel", mlmodel.hash, mlmodel.size, 0o644),
                TreeEntry("model.pkl", weights.hash, weights.size, 0o644),
            ]
        ).to_bytes()
    ).hash
    model = f"model{k}"
    store.create_registered_model(model, None, None, "alice")
    store.create_model_version(
        model, f"runs:/{run}/model", run, "model", model_tree, None, None, "alice"
    )
    store.set_model_alias(model, "prod", 1, "alice")
    store.set_registered_model_tag(model, "a", "b", "alice")
    store.set_model_version_tag(model, 1, "a", "b", "alice")
    lm = store.create_logged_model(exp, "lm", run_id=run).model_id
    store.add_logged_model_files(lm, [FileInfo("MLmodel", mlmodel.hash, mlmodel.size, 0o644)])
    store.set_logged_model_status(lm, "READY")
    store.set_logged_model_tags(lm, {"a": "b"})
    info, token = store.create_token(f"user{k}", "read")
    store.set_permission("zed", "experiment", exp, "read")
    for who, p in PRINCIPALS.items():
        if p is not None and p[1] is not None:
            kind, target = ("experiment", exp) if p[1] == "exp" else ("model", model)
            store.set_permission(who, kind, target, p[2])
    auth.forget_tokens(state)
    return World(
        exp,
        exp_name,
        run,
        run2,
        model,
        lm,
        mlmodel.hash,
        data_tree,
        model_tree,
        k,
        info.token_id,
        token,
    )


# -- the expectations ----------------------------------------------------------------------------

#: How to call a route: (path, keyword arguments for httpx) from the world.
Call = Callable[[World], tuple[str, dict[str, Any]]]


def _j(where: str, body: Any = None, **params: Any) -> Call:
    """A call with a JSON body and query parameters; ``{...}`` in them are World fields."""

    def fill(value: Any, w: World) -> Any:
        if isinstance(value, str):
            return value.format(**vars(w))
        if isinstance(value, dict):
            return {key: fill(x, w) for key, x in value.items()}
        if isinstance(value, list):
            return [fill(x, w) for x in value]
        return value

    def call(w: World) -> tuple[str, dict[str, Any]]:
        kw: dict[str, Any] = {}
        if body is not None:
            kw["json"] = fill(body, w)
        if params:
            kw["params"] = fill(params, w)
        return fill(where, w), kw

    return call


def _raw(path: str, content: bytes) -> Call:
    return lambda w: (path.format(**vars(w)), {"content": content})


_FILE = {"path": "extra/f.txt", "hash": "{artifact}", "size": 1, "mode": 420}
_HTML = {"headers": {"Accept": "text/html"}}

REST: dict[tuple[str, str], tuple[str, Call]] = {
    # experiments
    ("POST", "/api/v1/experiments"): ("write", _j(V1 + "/experiments", {"name": "new{k}"})),
    ("GET", "/api/v1/experiments"): ("read", _j(V1 + "/experiments")),
    ("GET", "/api/v1/experiments/by-name"): (
        "read:exp",
        _j(V1 + "/experiments/by-name", name="{exp_name}"),
    ),
    ("POST", "/api/v1/experiments/summaries"): (
        "read",
        _j(V1 + "/experiments/summaries", {"experiment_ids": ["{exp}"]}),
    ),
    ("GET", "/api/v1/experiments/{experiment_id}"): ("read:exp", _j(V1 + "/experiments/{exp}")),
    ("PATCH", "/api/v1/experiments/{experiment_id}"): (
        "write:exp",
        _j(V1 + "/experiments/{exp}", {"name": "renamed{k}"}),
    ),
    ("POST", "/api/v1/experiments/{experiment_id}/tags"): (
        "write:exp",
        _j(V1 + "/experiments/{exp}/tags", {"key": "a", "value": "b"}),
    ),
    ("DELETE", "/api/v1/experiments/{experiment_id}/tags"): (
        "write:exp",
        _j(V1 + "/experiments/{exp}/tags", key="a"),
    ),
    # runs
    ("POST", "/api/v1/runs"): (
        "write:exp",
        _j(
            V1 + "/runs",
            {"experiment_id": "{exp}", "run_name": "c", "start_time": 1, "parent_run_id": "{run}"},
        ),
    ),
    ("POST", "/api/v1/runs/search"): (
        "read:exp",
        _j(V1 + "/runs/search", {"experiment_ids": ["{exp}"]}),
    ),
    ("POST", "/api/v1/runs/batches"): (
        "write:exp",
        _j(V1 + "/runs/batches", {"batches": [{"run_id": "{run}", "metrics": [["m", 1, 1, 0]]}]}),
    ),
    ("GET", "/api/v1/runs/match"): ("read", _j(V1 + "/runs/match", prefix="{run}")),
    ("GET", "/api/v1/runs/{run_id}"): ("read:exp", _j(V1 + "/runs/{run}")),
    ("GET", "/api/v1/runs/{run_id}/info"): ("read:exp", _j(V1 + "/runs/{run}/info")),
    ("PATCH", "/api/v1/runs/{run_id}"): (
        "write:exp",
        _j(V1 + "/runs/{run}", {"status": "FINISHED"}),
    ),
    ("DELETE", "/api/v1/runs/{run_id}/tags"): ("write:exp", _j(V1 + "/runs/{run}/tags", key="t")),
    ("GET", "/api/v1/runs/{run_id}/metrics"): (
        "read:exp",
        _j(V1 + "/runs/{run}/metrics", key="loss"),
    ),
    ("POST", "/api/v1/runs/{run_id}/artifacts"): (
        "write:exp",
        _j(V1 + "/runs/{run}/artifacts", {"files": [_FILE]}),
    ),
    ("GET", "/api/v1/runs/{run_id}/artifacts"): ("read:exp", _j(V1 + "/runs/{run}/artifacts")),
    ("DELETE", "/api/v1/runs/{run_id}/artifacts"): (
        "write:exp",
        _j(V1 + "/runs/{run}/artifacts", path="model"),
    ),
    ("POST", "/api/v1/runs/{run_id}/datasets"): (
        "write:exp",
        _j(
            V1 + "/runs/{run}/datasets",
            {
                "direction": "output",
                "datasets": [
                    {"path": "d/x", "hash": "{data_tree}", "kind": "dir", "size": 1, "nfiles": 1}
                ],
            },
        ),
    ),
    ("GET", "/api/v1/runs/{run_id}/datasets"): ("read:exp", _j(V1 + "/runs/{run}/datasets")),
    ("GET", "/api/v1/datasets/uses"): ("read", _j(V1 + "/datasets/uses", path="data/d{k}")),
    ("GET", "/api/v1/datasets"): ("read", _j(V1 + "/datasets")),
    ("GET", "/api/v1/objects-referenced"): ("read", _j(V1 + "/objects-referenced")),
    # logged models
    ("POST", "/api/v1/logged-models"): (
        "write:exp",
        _j(V1 + "/logged-models", {"experiment_id": "{exp}", "name": "x", "run_id": "{run}"}),
    ),
    ("GET", "/api/v1/logged-models/{model_id}"): ("read:exp", _j(V1 + "/logged-models/{lm}")),
    ("PATCH", "/api/v1/logged-models/{model_id}"): (
        "write:exp",
        _j(V1 + "/logged-models/{lm}", {"status": "READY"}),
    ),
    ("DELETE", "/api/v1/logged-models/{model_id}"): (
        "write:exp",
        _j(V1 + "/logged-models/{lm}"),
    ),
    ("POST", "/api/v1/logged-models/{model_id}/files"): (
        "write:exp",
        _j(V1 + "/logged-models/{lm}/files", {"files": [_FILE]}),
    ),
    ("GET", "/api/v1/logged-models/{model_id}/files"): (
        "read:exp",
        _j(V1 + "/logged-models/{lm}/files"),
    ),
    ("POST", "/api/v1/runs/{run_id}/models"): (
        "write:exp",
        _j(
            V1 + "/runs/{run}/models",
            {"direction": "input", "models": [{"model_id": "{lm}", "step": 0}]},
        ),
    ),
    ("POST", "/api/v1/runs/{run_id}/named-datasets"): (
        "write:exp",
        _j(
            V1 + "/runs/{run}/named-datasets",
            {
                "datasets": [
                    {
                        "name": "d",
                        "digest": "abc",
                        "source_type": "local",
                        "source": "x",
                    }
                ]
            },
        ),
    ),
    ("GET", "/api/v1/runs/{run_id}/links"): ("read:exp", _j(V1 + "/runs/{run}/links")),
    # registry
    ("POST", "/api/v1/models"): ("write", _j(V1 + "/models", {"name": "new{k}"})),
    ("GET", "/api/v1/models"): ("read", _j(V1 + "/models")),
    ("GET", "/api/v1/models/{name}"): ("read:model", _j(V1 + "/models/{model}")),
    ("PATCH", "/api/v1/models/{name}"): (
        "write:model",
        _j(V1 + "/models/{model}", {"description": "d"}),
    ),
    ("POST", "/api/v1/models/{name}/rename"): (
        # The new name has no grant: the role must allow writing there too.
        "write:model+write",
        _j(V1 + "/models/{model}/rename", {"new_name": "renamed{k}"}),
    ),
    ("DELETE", "/api/v1/models/{name}"): ("write:model", _j(V1 + "/models/{model}", force=True)),
    ("POST", "/api/v1/models/{name}/tags"): (
        "write:model",
        _j(V1 + "/models/{model}/tags", {"key": "a", "value": "b"}),
    ),
    ("DELETE", "/api/v1/models/{name}/tags"): (
        "write:model",
        _j(V1 + "/models/{model}/tags", key="a"),
    ),
    ("POST", "/api/v1/models/{name}/versions"): (
        "write:model+read:exp",
        _j(
            V1 + "/models/{model}/versions",
            {"source": "runs:/{run}/model", "run_id": "{run}", "tree_hash": "{model_tree}"},
        ),
    ),
    ("GET", "/api/v1/models/{name}/versions"): ("read:model", _j(V1 + "/models/{model}/versions")),
    ("GET", "/api/v1/models/{name}/versions/{version}"): (
        "read:model",
        _j(V1 + "/models/{model}/versions/1"),
    ),
    ("PATCH", "/api/v1/models/{name}/versions/{version}"): (
        "write:model",
        _j(V1 + "/models/{model}/versions/1", {"description": "d"}),
    ),
    ("POST", "/api/v1/models/{name}/versions/{version}/tags"): (
        "write:model",
        _j(V1 + "/models/{model}/versions/1/tags", {"key": "a", "value": "b"}),
    ),
    ("DELETE", "/api/v1/models/{name}/versions/{version}/tags"): (
        "write:model",
        _j(V1 + "/models/{model}/versions/1/tags", key="a"),
    ),
    ("DELETE", "/api/v1/models/{name}/versions/{version}"): (
        "write:model",
        _j(V1 + "/models/{model}/versions/1", force=True),
    ),
    ("POST", "/api/v1/models/{name}/versions/{version}/stage"): (
        "write:model",
        _j(V1 + "/models/{model}/versions/1/stage", {"stage": "Staging"}),
    ),
    ("GET", "/api/v1/models/{name}/latest"): ("read:model", _j(V1 + "/models/{model}/latest")),
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): (
        "write:model",
        _j(V1 + "/models/{model}/aliases/champion", {"version": 1}),
    ),
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}"): (
        "write:model",
        _j(V1 + "/models/{model}/aliases/prod"),
    ),
    ("GET", "/api/v1/models/{name}/aliases/{alias}"): (
        "read:model",
        _j(V1 + "/models/{model}/aliases/prod"),
    ),
    ("GET", "/api/v1/models/{name}/events"): ("read:model", _j(V1 + "/models/{model}/events")),
    ("GET", "/api/v1/model-versions"): ("read", _j(V1 + "/model-versions", run_id="{run}")),
    ("GET", "/api/v1/model-trees"): ("read", _j(V1 + "/model-trees")),
    # objects: read through a reference (the run in exp, the version of model)
    ("POST", "/api/v1/objects/missing"): (
        "read",
        _j(V1 + "/objects/missing", {"hashes": ["{artifact}"]}),
    ),
    ("GET", "/api/v1/objects"): ("admin", _j(V1 + "/objects")),
    ("HEAD", "/api/v1/objects/{hash}"): ("read:exp", _j(V1 + "/objects/{data_tree}")),
    ("GET", "/api/v1/objects/{hash}"): ("read:exp", _j(V1 + "/objects/{data_tree}")),
    ("PUT", "/api/v1/objects/{hash}"): (
        "write",
        _raw(
            V1 + "/objects/" + "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
            b"",
        ),
    ),
    ("DELETE", "/api/v1/objects/{hash}"): ("admin", _j(V1 + "/objects/{artifact}")),
    ("POST", "/api/v1/objects/presign"): (
        # This server has no S3: a caller who passes the checks hears so (409).
        "read:exp+status409",
        _j(V1 + "/objects/presign", {"hashes": ["{data_tree}"], "method": "GET"}),
    ),
    # admin
    ("POST", "/api/v1/admin/tokens"): (
        "admin-off",
        _j(V1 + "/admin/tokens", {"user": "u{k}", "role": "read"}),
    ),
    ("GET", "/api/v1/admin/tokens"): ("admin-off", _j(V1 + "/admin/tokens")),
    ("DELETE", "/api/v1/admin/tokens/{token_id}"): (
        "admin-off",
        _j(V1 + "/admin/tokens/{token_id}"),
    ),
    ("POST", "/api/v1/admin/tokens/verify"): (
        "admin-off",
        _j(V1 + "/admin/tokens/verify", {"token": "{token}"}),
    ),
    ("PUT", "/api/v1/admin/permissions"): (
        "admin-off",
        _j(
            V1 + "/admin/permissions",
            {"user": "zed", "kind": "experiment", "target": "{exp}", "level": "read"},
        ),
    ),
    ("DELETE", "/api/v1/admin/permissions"): (
        "admin-off",
        _j(V1 + "/admin/permissions", user="zed", kind="experiment", target="{exp}"),
    ),
    ("GET", "/api/v1/admin/permissions"): ("admin-off", _j(V1 + "/admin/permissions")),
    ("GET", "/api/v1/whoami"): ("read", _j(V1 + "/whoami")),
    # operations and documentation
    ("GET", "/health"): ("public", _j("/health")),
    ("GET", "/metrics"): ("public", _j("/metrics")),
    ("GET", "/version"): ("public", _j("/version")),
    ("GET", "/api/v1/openapi.json"): ("public", _j("/api/v1/openapi.json")),
    ("GET", "/docs"): ("public", _j("/docs")),
    ("GET", "/docs/oauth2-redirect"): ("public", _j("/docs/oauth2-redirect")),
}

_VERSION_FIELDS = {"name": "{model}", "version": "1"}

#: MLflow's endpoints (below /api/2.0/mlflow/), by its route table.
MLFLOW: dict[tuple[str, str], tuple[str, Call]] = {
    ("POST", "experiments/create"): ("write", _j(ML + "/experiments/create", {"name": "n{k}"})),
    ("GET", "experiments/get"): ("read:exp", _j(ML + "/experiments/get", experiment_id="{exp}")),
    ("GET", "experiments/get-by-name"): (
        # MLflow's client is told a hidden experiment does not exist, as MLflow would.
        "read:exp404",
        _j(ML + "/experiments/get-by-name", experiment_name="{exp_name}"),
    ),
    ("POST", "experiments/search"): ("read", _j(ML + "/experiments/search", {"max_results": 10})),
    ("GET", "experiments/search"): ("read", _j(ML + "/experiments/search", max_results=10)),
    ("POST", "experiments/delete"): (
        "write:exp",
        _j(ML + "/experiments/delete", {"experiment_id": "{exp}"}),
    ),
    ("POST", "experiments/restore"): (
        "write:exp",
        _j(ML + "/experiments/restore", {"experiment_id": "{exp}"}),
    ),
    ("POST", "experiments/update"): (
        "write:exp",
        _j(ML + "/experiments/update", {"experiment_id": "{exp}", "new_name": "u{k}"}),
    ),
    ("POST", "experiments/set-experiment-tag"): (
        "write:exp",
        _j(
            ML + "/experiments/set-experiment-tag",
            {"experiment_id": "{exp}", "key": "a", "value": "b"},
        ),
    ),
    ("POST", "experiments/delete-experiment-tag"): (
        "write:exp",
        _j(ML + "/experiments/delete-experiment-tag", {"experiment_id": "{exp}", "key": "a"}),
    ),
    ("POST", "runs/create"): (
        # MLflow's client asks for write on the parent too.
        "write:exp",
        _j(
            ML + "/runs/create",
            {
                "experiment_id": "{exp}",
                "tags": [{"key": "mlflow.parentRunId", "value": "{run}"}],
            },
        ),
    ),
    ("POST", "runs/update"): (
        "write:exp",
        _j(ML + "/runs/update", {"run_id": "{run}", "status": "FINISHED"}),
    ),
    ("POST", "runs/delete"): ("write:exp", _j(ML + "/runs/delete", {"run_id": "{run}"})),
    ("POST", "runs/restore"): ("write:exp", _j(ML + "/runs/restore", {"run_id": "{run}"})),
    ("GET", "runs/get"): ("read:exp", _j(ML + "/runs/get", run_id="{run}")),
    ("POST", "runs/search"): ("read:exp", _j(ML + "/runs/search", {"experiment_ids": ["{exp}"]})),
    ("POST", "runs/log-metric"): (
        "write:exp",
        _j(
            ML + "/runs/log-metric",
            {"run_id": "{run}", "key": "m", "value": 1, "timestamp": 1, "step": 0},
        ),
    ),
    ("POST", "runs/log-parameter"): (
        "write:exp",
        _j(ML + "/runs/log-parameter", {"run_id": "{run}", "key": "q", "value": "1"}),
    ),
    ("POST", "runs/set-tag"): (
        "write:exp",
        _j(ML + "/runs/set-tag", {"run_id": "{run}", "key": "a", "value": "b"}),
    ),
    ("POST", "runs/delete-tag"): (
        "write:exp",
        _j(ML + "/runs/delete-tag", {"run_id": "{run}", "key": "t"}),
    ),
    ("POST", "runs/log-batch"): (
        "write:exp",
        _j(ML + "/runs/log-batch", {"run_id": "{run}", "params": [{"key": "z", "value": "1"}]}),
    ),
    ("POST", "runs/log-model"): (
        "write:exp",
        _j(ML + "/runs/log-model", {"run_id": "{run}", "model_json": "{{}}"}),
    ),
    ("POST", "runs/log-inputs"): (
        "write:exp",
        _j(
            ML + "/runs/log-inputs",
            {
                "run_id": "{run}",
                "datasets": [
                    {
                        "dataset": {
                            "name": "d",
                            "digest": "abc",
                            "source_type": "local",
                            "source": "x",
                        }
                    }
                ],
            },
        ),
    ),
    ("POST", "runs/outputs"): (
        "write:exp",
        _j(
            ML + "/runs/outputs",
            {"run_id": "{run}", "models": [{"model_id": "{lm}", "step": 0}]},
        ),
    ),
    ("GET", "metrics/get-history"): (
        "read:exp",
        _j(ML + "/metrics/get-history", run_id="{run}", metric_key="loss"),
    ),
    ("GET", "metrics/get-history-bulk-interval"): (
        "read:exp",
        _j(ML + "/metrics/get-history-bulk-interval", run_ids="{run}", metric_key="loss"),
    ),
    ("GET", "artifacts/list"): ("read:exp", _j(ML + "/artifacts/list", run_id="{run}")),
    ("POST", "logged-models"): (
        "write:exp",
        _j(ML + "/logged-models", {"experiment_id": "{exp}", "name": "x"}),
    ),
    ("POST", "logged-models/search"): (
        "read:exp",
        _j(ML + "/logged-models/search", {"experiment_ids": ["{exp}"]}),
    ),
    ("GET", "logged-models/{model_id}"): ("read:exp", _j(ML + "/logged-models/{lm}")),
    ("PATCH", "logged-models/{model_id}"): (
        "write:exp",
        _j(ML + "/logged-models/{lm}", {"status": "LOGGED_MODEL_READY"}),
    ),
    ("DELETE", "logged-models/{model_id}"): ("write:exp", _j(ML + "/logged-models/{lm}")),
    ("PATCH", "logged-models/{model_id}/tags"): (
        "write:exp",
        _j(ML + "/logged-models/{lm}/tags", {"tags": [{"key": "a", "value": "b"}]}),
    ),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}"): (
        "write:exp",
        _j(ML + "/logged-models/{lm}/tags/a"),
    ),
    ("POST", "logged-models/{model_id}/params"): (
        "write:exp",
        _j(ML + "/logged-models/{lm}/params", {"params": [{"key": "a", "value": "b"}]}),
    ),
    ("GET", "logged-models/{model_id}/artifacts/directories"): (
        "read:exp",
        _j(ML + "/logged-models/{lm}/artifacts/directories"),
    ),
    ("POST", "registered-models/create"): (
        "write",
        _j(ML + "/registered-models/create", {"name": "n{k}"}),
    ),
    ("GET", "registered-models/get"): (
        "read:model",
        _j(ML + "/registered-models/get", name="{model}"),
    ),
    ("POST", "registered-models/rename"): (
        "write:model+write",
        _j(ML + "/registered-models/rename", {"name": "{model}", "new_name": "r{k}"}),
    ),
    ("PATCH", "registered-models/update"): (
        "write:model",
        _j(ML + "/registered-models/update", {"name": "{model}", "description": "d"}),
    ),
    ("DELETE", "registered-models/delete"): (
        "write:model",
        _j(ML + "/registered-models/delete", {"name": "{model}"}),
    ),
    ("GET", "registered-models/search"): ("read", _j(ML + "/registered-models/search")),
    ("POST", "registered-models/set-tag"): (
        "write:model",
        _j(ML + "/registered-models/set-tag", {"name": "{model}", "key": "a", "value": "b"}),
    ),
    ("DELETE", "registered-models/delete-tag"): (
        "write:model",
        _j(ML + "/registered-models/delete-tag", {"name": "{model}", "key": "a"}),
    ),
    ("POST", "registered-models/get-latest-versions"): (
        "read:model",
        _j(ML + "/registered-models/get-latest-versions", {"name": "{model}"}),
    ),
    ("GET", "registered-models/get-latest-versions"): (
        "read:model",
        _j(ML + "/registered-models/get-latest-versions", name="{model}"),
    ),
    ("POST", "registered-models/alias"): (
        "write:model",
        _j(
            ML + "/registered-models/alias",
            {"name": "{model}", "alias": "champion", "version": "1"},
        ),
    ),
    ("DELETE", "registered-models/alias"): (
        "write:model",
        _j(ML + "/registered-models/alias", {"name": "{model}", "alias": "prod"}),
    ),
    ("GET", "registered-models/alias"): (
        "read:model",
        _j(ML + "/registered-models/alias", name="{model}", alias="prod"),
    ),
    ("POST", "model-versions/create"): (
        "write:model+read:exp",
        _j(
            ML + "/model-versions/create",
            {"name": "{model}", "source": "runs:/{run}/model", "run_id": "{run}"},
        ),
    ),
    ("GET", "model-versions/get"): (
        "read:model",
        _j(ML + "/model-versions/get", **_VERSION_FIELDS),
    ),
    ("PATCH", "model-versions/update"): (
        "write:model",
        _j(ML + "/model-versions/update", {**_VERSION_FIELDS, "description": "d"}),
    ),
    ("DELETE", "model-versions/delete"): (
        "write:model",
        _j(ML + "/model-versions/delete", _VERSION_FIELDS),
    ),
    ("POST", "model-versions/transition-stage"): (
        "write:model",
        _j(
            ML + "/model-versions/transition-stage",
            {**_VERSION_FIELDS, "stage": "Staging", "archive_existing_versions": False},
        ),
    ),
    ("GET", "model-versions/search"): (
        "read",
        _j(ML + "/model-versions/search", filter="name='{model}'"),
    ),
    ("GET", "model-versions/get-download-uri"): (
        "read:model",
        _j(ML + "/model-versions/get-download-uri", **_VERSION_FIELDS),
    ),
    ("POST", "model-versions/set-tag"): (
        "write:model",
        _j(ML + "/model-versions/set-tag", {**_VERSION_FIELDS, "key": "a", "value": "b"}),
    ),
    ("DELETE", "model-versions/delete-tag"): (
        "write:model",
        _j(ML + "/model-versions/delete-tag", {**_VERSION_FIELDS, "key": "a"}),
    ),
}

_RUN_ART = "{exp}/{run}/artifacts"

#: MLflow's other routes (artifacts, server info, the 3.0 API), by their route templates.
MLFLOW_ROUTES: dict[tuple[str, str], tuple[str, Call]] = {
    ("GET", "/api/3.0/mlflow/server-info"): ("public", _j("/api/3.0/mlflow/server-info")),
    # Nothing of MLflow 3.0's API is served; the refusal names no data.
    ("GET", "/api/3.0/mlflow/{path:path}"): ("status:501", _j("/api/3.0/mlflow/traces")),
    ("GET", ART + "/artifacts"): ("read:exp", _j(ART + "/artifacts", path=_RUN_ART + "/model")),
    ("GET", ART + "/artifacts/{path:path}"): (
        "read:exp",
        _j(ART + "/artifacts/" + _RUN_ART + "/model/MLmodel"),
    ),
    ("PUT", ART + "/artifacts/{path:path}"): (
        "write:exp",
        _raw(ART + "/artifacts/" + _RUN_ART + "/new.txt", b"new bytes"),
    ),
    ("DELETE", ART + "/artifacts/{path:path}"): (
        "write:exp",
        _j(ART + "/artifacts/" + _RUN_ART + "/model"),
    ),
    ("POST", ART + "/mpu/create/{path:path}"): (
        "write:exp",
        _j(ART + "/mpu/create/" + _RUN_ART, {"path": "big.bin", "num_parts": 1}),
    ),
    ("POST", ART + "/mpu/complete/{path:path}"): (
        # Joining parts named by a hash reads them: the run's object, readable with the run.
        "write:exp",
        _j(
            ART + "/mpu/complete/" + _RUN_ART,
            {
                "path": "big.bin",
                "upload_id": "u",
                "parts": [{"part_number": 1, "etag": "{artifact}"}],
            },
        ),
    ),
    ("POST", ART + "/mpu/abort/{path:path}"): (
        "write:exp",
        _j(ART + "/mpu/abort/" + _RUN_ART, {"path": "big.bin", "upload_id": "u"}),
    ),
    ("PUT", ART + "/mpu/part/{upload_id}/{part_number:int}"): (
        "write",
        _raw(ART + "/mpu/part/u/1", b"part bytes"),
    ),
    # Not offered, to anyone: the answer holds no data.
    ("GET", ART + "/presigned/{path:path}"): (
        "status:501",
        _j(ART + "/presigned/" + _RUN_ART + "/model/MLmodel"),
    ),
}

#: The web UI's pages (HTML; 401/403 come as error pages).
UI: dict[tuple[str, str], tuple[str, Call]] = {
    ("GET", "/static/{version}/{name}"): ("public", _j("/static/x/ui.css")),
    ("GET", "/static/plotly-{version}.min.js"): ("public", _j("/static/plotly-x.min.js")),
    ("GET", "/"): ("status:307", _j("/")),  # a redirect to the experiments, or to sign in
    ("GET", "/login"): ("public", _j("/login")),
    ("POST", "/login"): ("status:401", lambda w: ("/login", {"data": {"token": "mlt_x_y"}})),
    ("POST", "/logout"): ("status:303", lambda w: ("/logout", {"data": {}})),
    ("GET", "/experiments"): ("read", _j("/experiments")),
    ("GET", "/experiments/{experiment_id}"): ("read:exp", _j("/experiments/{exp}")),
    ("GET", "/models"): ("read", _j("/models")),
    ("GET", "/models/{name}"): ("read:model", _j("/models/{model}")),
    ("GET", "/models/{name}/versions/{version}"): ("read:model", _j("/models/{model}/versions/1")),
    ("POST", "/models/{name}/aliases"): (
        "write:model+status303",  # back to the model's page
        lambda w: (f"/models/{w.model}/aliases", {"data": {"alias": "champion", "version": "1"}}),
    ),
    ("GET", "/datasets"): ("read", _j("/datasets")),
    # A path only hidden runs used is no dataset to this caller: 404, as for any unused path.
    ("GET", "/datasets/{path:path}"): ("read:exp404", _j("/datasets/data/d{k}")),
    ("GET", "/lineage"): ("read:exp", _j("/lineage", target="runs:/{run}")),
    ("GET", "/runs/{run_id}"): ("read:exp", _j("/runs/{run}")),
    ("GET", "/runs/{run_id}/artifacts/preview"): (
        "read:exp",
        _j("/runs/{run}/artifacts/preview", path="model/MLmodel"),
    ),
    ("GET", "/runs/{run_id}/artifacts/raw"): (
        "read:exp",
        _j("/runs/{run}/artifacts/raw", path="model/MLmodel"),
    ),
    ("GET", "/compare"): ("read:exp", _j("/compare", runs="{run},{run2}")),
    ("GET", "/ui/data/runs/{run_id}/metrics/{key:path}"): (
        "read:exp",
        _j("/ui/data/runs/{run}/metrics/loss"),
    ),
    ("GET", "/ui/data/metrics/{key:path}"): ("read:exp", _j("/ui/data/metrics/loss", runs="{run}")),
}


def expectations() -> dict[tuple[str, str], tuple[str, Call]]:
    table = {**REST, **MLFLOW_ROUTES, **UI}
    table.update({(m, f"mlflow:{p}"): spec for (m, p), spec in MLFLOW.items()})
    return table

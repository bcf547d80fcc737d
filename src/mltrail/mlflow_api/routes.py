"""MLflow's REST endpoints, each mapped to the handler that serves it.

Paths are those of MLflow's protobuf services (``service.proto``, ``model_registry.proto``),
below ``/api/2.0/mlflow/`` (and ``/ajax-api/2.0/mlflow/`` for its web UI). Both faces use this
table: ``mltrail server`` answers HTTP with it, and the ``mltrail:`` plugin calls it in process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mltrail.errors import InvalidInput
from mltrail.mlflow_api import logged_models as lm
from mltrail.mlflow_api import registry as reg
from mltrail.mlflow_api import tracking as tr
from mltrail.mlflow_api.context import Context
from mltrail.mlflow_api.errors import NoEndpoint, NotServed
from mltrail.mlflow_api.fields import Fields

Handler = Callable[[Context, Fields], dict[str, Any]]

#: (method, path below /mlflow/) → handler; ``{name}`` segments become fields of the request.
ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "experiments/create"): tr.create_experiment,
    ("GET", "experiments/get"): tr.get_experiment,
    ("GET", "experiments/get-by-name"): tr.get_experiment_by_name,
    ("POST", "experiments/search"): tr.search_experiments,
    ("GET", "experiments/search"): tr.search_experiments,
    ("POST", "experiments/delete"): tr.delete_experiment,
    ("POST", "experiments/restore"): tr.restore_experiment,
    ("POST", "experiments/update"): tr.update_experiment,
    ("POST", "experiments/set-experiment-tag"): tr.set_experiment_tag,
    ("POST", "experiments/delete-experiment-tag"): tr.delete_experiment_tag,
    ("POST", "runs/create"): tr.create_run,
    ("POST", "runs/update"): tr.update_run,
    ("POST", "runs/delete"): tr.delete_run,
    ("POST", "runs/restore"): tr.restore_run,
    ("GET", "runs/get"): tr.get_run,
    ("POST", "runs/search"): tr.search_runs,
    ("POST", "runs/log-metric"): tr.log_metric,
    ("POST", "runs/log-parameter"): tr.log_param,
    ("POST", "runs/set-tag"): tr.set_tag,
    ("POST", "runs/delete-tag"): tr.delete_tag,
    ("POST", "runs/log-batch"): tr.log_batch,
    ("POST", "runs/log-model"): tr.log_model,
    ("POST", "runs/log-inputs"): tr.log_inputs,
    ("POST", "runs/outputs"): tr.log_outputs,
    ("GET", "metrics/get-history"): tr.get_metric_history,
    ("GET", "metrics/get-history-bulk-interval"): tr.get_history_bulk_interval,
    ("GET", "artifacts/list"): tr.list_artifacts,
    ("POST", "logged-models"): lm.create,
    ("POST", "logged-models/search"): lm.search_models,
    ("GET", "logged-models/{model_id}"): lm.get,
    ("PATCH", "logged-models/{model_id}"): lm.finalize,
    ("DELETE", "logged-models/{model_id}"): lm.delete,
    ("PATCH", "logged-models/{model_id}/tags"): lm.set_tags,
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}"): lm.delete_tag,
    ("POST", "logged-models/{model_id}/params"): lm.log_params,
    ("GET", "logged-models/{model_id}/artifacts/directories"): lm.list_files,
    ("POST", "registered-models/create"): reg.create_model,
    ("GET", "registered-models/get"): reg.get_model,
    ("POST", "registered-models/rename"): reg.rename_model,
    ("PATCH", "registered-models/update"): reg.update_model,
    ("DELETE", "registered-models/delete"): reg.delete_model,
    ("GET", "registered-models/search"): reg.search_models,
    ("POST", "registered-models/set-tag"): reg.set_model_tag,
    ("DELETE", "registered-models/delete-tag"): reg.delete_model_tag,
    ("POST", "registered-models/get-latest-versions"): reg.get_latest_versions,
    ("GET", "registered-models/get-latest-versions"): reg.get_latest_versions,
    ("POST", "registered-models/alias"): reg.set_alias,
    ("DELETE", "registered-models/alias"): reg.delete_alias,
    ("GET", "registered-models/alias"): reg.get_by_alias,
    ("POST", "model-versions/create"): reg.create_version,
    ("GET", "model-versions/get"): reg.get_version,
    ("PATCH", "model-versions/update"): reg.update_version,
    ("DELETE", "model-versions/delete"): reg.delete_version,
    ("POST", "model-versions/transition-stage"): reg.transition_stage,
    ("GET", "model-versions/search"): reg.search_versions,
    ("GET", "model-versions/get-download-uri"): reg.get_download_uri,
    ("POST", "model-versions/set-tag"): reg.set_version_tag,
    ("DELETE", "model-versions/delete-tag"): reg.delete_version_tag,
}

#: Path prefixes of MLflow's GenAI services, which mltrail does not serve: the feature's name.
NOT_SERVED = {
    "traces": "tracing (traces and spans)",
    "unified-traces": "tracing (traces and spans)",
    "get-online-trace-details": "tracing (traces and spans)",
    "prompt-optimization": "prompt optimization",
    "prompts": "the prompt registry",
    "scorers": "GenAI scorers",
    "gateway": "the AI gateway",
    "datasets": "GenAI evaluation datasets",
    "experiments/search-datasets": "GenAI evaluation datasets",
    "review-queues": "GenAI review queues",
    "label-schemas": "GenAI labeling",
    "issues": "GenAI issue tracking",
    "webhooks": "webhooks",
    "workspaces": "workspaces",
    "users": "MLflow's basic-auth user management (mltrail has tokens: `mltrail server tokens`)",
    "roles": "MLflow's basic-auth user management (mltrail has tokens: `mltrail server tokens`)",
    "permissions": "MLflow's basic-auth permissions (use `mltrail server permissions`)",
}

_PATTERNS = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"), handler)
    for (method, path), handler in ROUTES.items()
]


def find(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler of ``method path`` (path below ``/mlflow/``) and the fields in its path."""
    path = path.strip("/")
    known = False
    for want, pattern, handler in _PATTERNS:
        found = pattern.match(path)
        if found:
            if want == method:
                return handler, found.groupdict()
            known = True
    if known:
        raise InvalidInput(f"{method} is not a method of the MLflow endpoint {path}")
    for prefix, feature in NOT_SERVED.items():
        if path == prefix or path.startswith(prefix + "/"):
            raise NotServed(
                f"mltrail does not implement {feature} (MLflow endpoint {method} {path})",
                hint="mltrail serves MLflow's tracking, logged-model, registry and artifact "
                "APIs; see docs/mlflow.md for the list.",
            )
    raise NoEndpoint(f"no MLflow endpoint {method} {path}")


def call(ctx: Context, method: str, path: str, fields: Fields) -> dict[str, Any]:
    """Serve one request: the handler of ``method path`` with ``fields`` (and the path's)."""
    handler, from_path = find(method, path)
    if from_path:
        fields = fields.with_values(from_path)
    return handler(ctx, fields)

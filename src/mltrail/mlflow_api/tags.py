"""MLflow's system tags and mltrail's own fields and tags: one table, read both ways.

The mlflow client says who ran a run, its name and its parent in tags (``mlflow.user``,
``mlflow.runName``, ``mlflow.parentRunId``); mltrail keeps those as fields of the run, so
``mltrail runs ls`` shows them and its filters reach them. Tags that mltrail records under its own
name (the git commit, the entry point, the note) are stored under that name and shown to the
mlflow client under MLflow's. Every other tag is kept as it is.
"""

from __future__ import annotations

from mltrail.entities import RunInfo

RUN_NAME = "mlflow.runName"
USER = "mlflow.user"
PARENT_RUN_ID = "mlflow.parentRunId"
#: MLflow's tag that lists the models ``log_model`` wrote with MLflow 2.x (a JSON list).
LOG_MODEL_HISTORY = "mlflow.log-model.history"

#: MLflow tag → the mltrail tag that means the same.
TO_MLTRAIL = {
    "mlflow.source.name": "mltrail.source.entry_point",
    "mlflow.source.git.commit": "mltrail.git.commit",
    "mlflow.source.git.branch": "mltrail.git.branch",
    "mlflow.source.git.repoURL": "mltrail.git.repo",
    "mlflow.note.content": "mltrail.note",
    "mlflow.autologging": "mltrail.autologging",
}
TO_MLFLOW = {v: k for k, v in TO_MLTRAIL.items()}

#: MLflow tags that are fields of an mltrail run, by the attribute filters know them as.
FIELDS = {RUN_NAME: "run_name", USER: "user_id", PARENT_RUN_ID: "parent_run_id"}


def to_mltrail(key: str) -> str:
    """The key an MLflow tag is stored under."""
    return TO_MLTRAIL.get(key, key)


def run_tags(info: RunInfo, tags: dict[str, str]) -> dict[str, str]:
    """A run's tags as the mlflow client sees them: MLflow's names, fields as system tags."""
    shown = {TO_MLFLOW.get(k, k): v for k, v in tags.items()}
    shown[RUN_NAME] = info.run_name
    shown[USER] = info.user_id
    if info.parent_run_id:
        shown[PARENT_RUN_ID] = info.parent_run_id
    return shown

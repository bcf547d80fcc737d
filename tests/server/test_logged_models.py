"""Logged models and named datasets through ``mltrail server``: the HTTP store keeps what the
embedded store keeps of an MLflow 3 history."""

from __future__ import annotations

import httpx
import pytest

from mltrail.entities import FileInfo, NamedDataset, RunModel
from mltrail.errors import AlreadyExists, InvalidInput
from mltrail.store import open_store

MODEL_ID = "m-" + "ab" * 16


def test_a_logged_model_and_a_runs_links_round_trip(live_server):
    store = open_store(live_server)
    exp = store.create_experiment("lm")
    run = store.create_run(exp, "r", "alice", 1, None, {})
    run_id = run.info.run_id
    model = store.create_logged_model(
        exp, "model", run_id, "sklearn", {"C": "1"}, {"k": "v"}, model_id=MODEL_ID
    )
    assert (model.model_id, model.status, model.params, model.run_id) == (
        MODEL_ID, "PENDING", {"C": "1"}, run_id,
    )  # fmt: skip
    with pytest.raises(AlreadyExists):
        store.create_logged_model(exp, "model", model_id=MODEL_ID)
    blob = "0" * 64
    store.add_logged_model_files(MODEL_ID, [FileInfo("MLmodel", blob, 3, 0o644)])
    assert [f.path for f in store.list_logged_model_files(MODEL_ID)] == ["MLmodel"]
    # With a run, the files are that run's artifacts under the model's path.
    assert [f.path for f in store.list_artifacts(run_id)] == [f"{model.artifact_path}/MLmodel"]
    assert store.set_logged_model_status(MODEL_ID, "READY").status == "READY"
    store.log_run_models(run_id, "output", [(MODEL_ID, 3)])
    dataset = NamedDataset("train", "abc123", "code", "{}", '{"a": 1}', None, {"ctx": "t"})
    store.log_named_datasets(run_id, [dataset])
    assert store.get_run_links(run_id) == ([dataset], [RunModel("output", MODEL_ID, 3)])
    store.delete_logged_model(MODEL_ID)
    assert store.get_logged_model(MODEL_ID).lifecycle_stage == "deleted"


def test_bad_logged_model_input_is_a_clear_400(live_server):
    store = open_store(live_server)
    exp = store.create_experiment("bad")
    with pytest.raises(InvalidInput, match="not a logged model id: 'model-1'"):
        store.create_logged_model(exp, "model", model_id="model-1")
    reply = httpx.post(
        f"{live_server}/api/v1/logged-models", json={"experiment_id": exp, "name": ""}
    )
    assert reply.status_code == 400 and "name" in reply.text
    reply = httpx.patch(f"{live_server}/api/v1/logged-models/{MODEL_ID}", json={"status": "X"})
    assert reply.status_code == 400
    assert httpx.get(f"{live_server}/api/v1/logged-models/{MODEL_ID}").status_code == 404

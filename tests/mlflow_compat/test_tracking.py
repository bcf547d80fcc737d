"""Experiments, runs, metrics, params, tags and search through the real mlflow client."""

from __future__ import annotations

import json
import math
import time

import pytest

from tests.mlflow_compat.conftest import Served, error_code, raises_code

pytestmark = pytest.mark.filterwarnings("ignore")


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


# -- experiments ---------------------------------------------------------------------------------


def test_experiments_create_get_search_update_delete_restore_tags(tracking: Served, name):
    from mlflow.entities import ViewType

    c = _client()
    exp_id = c.create_experiment(name, tags={"team": "risk"})
    exp = c.get_experiment(exp_id)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == (name, {"team": "risk"}, "active")
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert c.get_experiment_by_name(name).experiment_id == exp_id
    assert c.get_experiment_by_name(name + "-missing") is None
    c.set_experiment_tag(exp_id, "stage", "dev")
    c.delete_experiment_tag(exp_id, "team")
    assert c.get_experiment(exp_id).tags == {"stage": "dev"}
    c.rename_experiment(exp_id, name + "-b")
    assert c.get_experiment(exp_id).name == name + "-b"
    found = c.search_experiments(filter_string=f"name LIKE '{name}%' AND tags.stage = 'dev'")
    assert [e.experiment_id for e in found] == [exp_id]
    c.delete_experiment(exp_id)
    assert c.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in [e.experiment_id for e in c.search_experiments()]
    deleted = c.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert exp_id in [e.experiment_id for e in deleted]
    c.restore_experiment(exp_id)
    assert c.get_experiment(exp_id).lifecycle_stage == "active"


def test_experiment_search_pages_and_orders(tracking: Served, name):
    c = _client()
    ids = [c.create_experiment(f"{name}-{i}") for i in range(5)]
    seen, token = [], None
    while True:
        page = c.search_experiments(
            filter_string=f"name LIKE '{name}-%'",
            order_by=["name DESC"],
            max_results=2,
            page_token=token,
        )
        seen.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            break
    assert seen == list(reversed(ids))


def test_an_existing_experiment_name_is_resource_already_exists(tracking: Served, name):
    from mlflow.exceptions import MlflowException

    c = _client()
    c.create_experiment(name)
    with pytest.raises(MlflowException) as err:
        c.create_experiment(name)
    assert error_code(err.value) == "RESOURCE_ALREADY_EXISTS"


# -- runs ----------------------------------------------------------------------------------------


def test_system_tags_become_mltrail_fields(tracking: Served, name):
    import mlflow

    mlflow.set_experiment(name)
    tags = {"mlflow.source.git.commit": "abc123"}
    with (
        mlflow.start_run(run_name="parent", tags=tags) as p,
        mlflow.start_run(run_name="child", nested=True) as child,
    ):
        mlflow.set_tag("mlflow.runName", "renamed-child")
    mt_client = tracking.mltrail()
    info = mt_client.store.get_run_info(child.info.run_id)
    assert info.parent_run_id == p.info.run_id
    assert info.run_name == "renamed-child"
    assert info.user_id == mlflow.get_run(p.info.run_id).info.user_id
    parent = mt_client.store.get_run(p.info.run_id)
    assert parent.data.tags["mltrail.git.commit"] == "abc123"
    got = mlflow.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == p.info.run_id
    assert got.data.tags["mlflow.runName"] == "renamed-child"
    assert got.info.run_name == "renamed-child"
    assert mlflow.get_run(p.info.run_id).data.tags["mlflow.source.git.commit"] == "abc123"
    found = mlflow.search_runs(
        experiment_names=[name], filter_string=f"tags.mlflow.parentRunId = '{p.info.run_id}'"
    )
    assert list(found["run_id"]) == [child.info.run_id]
    found = mlflow.search_runs(
        experiment_names=[name], filter_string="tags.`mlflow.runName` = 'parent'"
    )
    assert list(found["run_id"]) == [p.info.run_id]
    mt_client.close()


def test_run_lifecycle_update_delete_restore(tracking: Served, name):
    from mlflow.entities import ViewType

    c = _client()
    exp_id = c.create_experiment(name)
    run = c.create_run(exp_id, run_name="r1")
    c.update_run(run.info.run_id, status="KILLED", name="r2")
    got = c.get_run(run.info.run_id)
    assert (got.info.status, got.info.run_name) == ("KILLED", "r2")
    c.delete_run(run.info.run_id)
    assert c.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert c.search_runs([exp_id]) == []
    assert len(c.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    c.restore_run(run.info.run_id)
    assert [r.info.run_id for r in c.search_runs([exp_id])] == [run.info.run_id]


def test_metrics_params_tags_and_histories(tracking: Served, name):
    from mlflow.entities import Metric, Param, RunTag

    c = _client()
    exp_id = c.create_experiment(name)
    run_id = c.create_run(exp_id).info.run_id
    now = int(time.time() * 1000)
    c.log_metric(run_id, "loss", 1.0, timestamp=now, step=0)
    c.log_metric(run_id, "loss", float("nan"), timestamp=now + 1, step=1)
    c.log_batch(
        run_id,
        metrics=[Metric("loss", 0.5 - i / 10_000, now + 2 + i, 2 + i) for i in range(999)],
        params=[Param("lr", "0.1")],
        tags=[RunTag("team", "risk")],
    )
    c.log_param(run_id, "lr", "0.1")  # the same value again is fine
    c.set_tag(run_id, "drop", "me")
    c.delete_tag(run_id, "drop")
    run = c.get_run(run_id)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["team"] == "risk" and "drop" not in run.data.tags
    assert run.data.metrics["loss"] == pytest.approx(0.5 - 998 / 10_000)
    history = c.get_metric_history(run_id, "loss")
    assert len(history) == 1001
    assert [m.step for m in history[:3]] == [0, 1, 2] and math.isnan(history[1].value)
    assert history[-1].timestamp == now + 2 + 998


def test_metric_history_pages_through_the_rest_store(tracking: Served, name):
    from mlflow.entities import Metric

    c = _client()
    run_id = c.create_run(c.create_experiment(name)).info.run_id
    now = int(time.time() * 1000)
    c.log_batch(run_id, metrics=[Metric("m", float(i), now, i) for i in range(30)])
    store = c._tracking_client.store
    first = store.get_metric_history(run_id, "m", max_results=12)
    assert [m.step for m in first] == list(range(12)) and first.token
    second = store.get_metric_history(run_id, "m", max_results=12, page_token=first.token)
    assert [m.step for m in second] == list(range(12, 24))


def test_a_long_metric_history_comes_back_whole(tracking: Served, name):
    from mlflow.entities import Metric

    c = _client()
    run_id = c.create_run(c.create_experiment(name)).info.run_id
    for start in range(0, 26_000, 1000):
        c.log_batch(run_id, metrics=[Metric("m", 0.5, 1, i) for i in range(start, start + 1000)])
    history = c.get_metric_history(run_id, "m")
    assert [m.step for m in history] == list(range(26_000))


def test_bulk_interval_history_spreads_points_over_the_steps(tracking: Served, name):
    import requests
    from mlflow.entities import Metric

    c = _client()
    run_id = c.create_run(c.create_experiment(name)).info.run_id
    c.log_batch(run_id, metrics=[Metric("m", float(i), i, i) for i in range(1000)])
    got = requests.get(
        f"{tracking.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params={"run_ids": [run_id], "metric_key": "m", "max_results": 11},
        timeout=30,
    ).json()
    steps = [m["step"] for m in got["metrics"]]
    assert len(steps) == 11 and steps[0] == 0 and steps[-1] == 999
    assert all(m["run_id"] == run_id for m in got["metrics"])


def test_finished_runs_take_data_as_in_mlflow(tracking: Served, name):
    c = _client()
    run_id = c.create_run(c.create_experiment(name)).info.run_id
    c.set_terminated(run_id)
    c.log_metric(run_id, "test_accuracy", 0.9)
    assert c.get_run(run_id).data.metrics["test_accuracy"] == 0.9
    assert c.get_run(run_id).info.status == "FINISHED"


# -- search --------------------------------------------------------------------------------------


def _make_runs(name: str) -> tuple[str, list[str]]:
    c = _client()
    exp_id = c.create_experiment(name)
    ids = []
    for i, (opt, acc) in enumerate([("adam", 0.91), ("sgd", 0.85), ("adam", 0.97), ("Adam", 0.5)]):
        run = c.create_run(exp_id, run_name=f"run-{i}", start_time=1_000 + i)
        c.log_param(run.info.run_id, "optimizer", opt)
        c.log_metric(run.info.run_id, "accuracy", acc)
        c.log_metric(run.info.run_id, "f1 score", acc - 0.01)
        c.set_tag(run.info.run_id, "team", "risk" if i % 2 else "ops")
        if i == 1:
            c.set_terminated(run.info.run_id, "FAILED")
        ids.append(run.info.run_id)
    return exp_id, ids


_GRAMMAR = [
    ("metrics.accuracy > 0.9", [2, 0]),
    ("metrics.accuracy >= 0.85 and params.optimizer = 'adam'", [2, 0]),
    ("params.optimizer LIKE 'a%'", [2, 0]),
    ("params.optimizer ILIKE 'a%'", [3, 2, 0]),
    ("metrics.`f1 score` < 0.6", [3]),
    ('metrics."f1 score" < 0.6', [3]),
    ("tags.team != 'ops'", [3, 1]),
    ("attributes.status = 'FAILED'", [1]),
    ("attribute.run_name = 'run-2'", [2]),
    ("attributes.start_time > 1001", [3, 2]),
    ("tags.mlflow.runName LIKE 'run-%' and metrics.accuracy < 0.9", [3, 1]),
    ("params.missing IS NULL and metrics.accuracy = 0.97", [2]),
]


def test_search_grammar(tracking: Served, name):
    c = _client()
    exp_id, ids = _make_runs(name)
    for filter_string, expected in _GRAMMAR:
        found = [r.info.run_id for r in c.search_runs([exp_id], filter_string)]
        assert found == [ids[i] for i in expected], filter_string


def test_search_by_run_ids_and_order_by(tracking: Served, name):
    c = _client()
    exp_id, ids = _make_runs(name)
    wanted = f"attributes.run_id IN ('{ids[0]}', '{ids[3]}')"
    assert {r.info.run_id for r in c.search_runs([exp_id], wanted)} == {ids[0], ids[3]}
    ordered = c.search_runs([exp_id], order_by=["metrics.accuracy DESC"])
    assert [r.info.run_id for r in ordered] == [ids[2], ids[0], ids[1], ids[3]]
    by_name = c.search_runs([exp_id], order_by=["tags.mlflow.runName ASC"])
    assert [r.info.run_name for r in by_name] == ["run-0", "run-1", "run-2", "run-3"]


def test_search_pages_with_tokens(tracking: Served, name):
    import mlflow

    c = _client()
    exp_id, ids = _make_runs(name)
    page = c.search_runs([exp_id], max_results=3, order_by=["attributes.start_time ASC"])
    assert [r.info.run_id for r in page] == ids[:3] and page.token
    rest = c.search_runs(
        [exp_id], max_results=3, order_by=["attributes.start_time ASC"], page_token=page.token
    )
    assert [r.info.run_id for r in rest] == ids[3:] and not rest.token
    frame = mlflow.search_runs([exp_id], max_results=2, order_by=["metrics.accuracy ASC"])
    assert list(frame["run_id"]) == [ids[3], ids[1]]


# -- bad requests --------------------------------------------------------------------------------



def test_bad_requests_get_mlflows_error_codes(tracking: Served, name):
    from mlflow.entities import Param

    c = _client()
    run_id = c.create_run(c.create_experiment(name)).info.run_id
    c.log_param(run_id, "lr", "0.1")
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_run, "0" * 32)
    raises_code("RESOURCE_DOES_NOT_EXIST", c.log_metric, "f" * 32, "m", 1.0)
    message = raises_code("INVALID_PARAMETER_VALUE", c.log_param, run_id, "lr", "0.2")
    assert "'0.1'" in message and "immutable" in message
    raises_code("INVALID_PARAMETER_VALUE", c.log_metric, run_id, "k" * 251, 1.0)
    raises_code("INVALID_PARAMETER_VALUE", c.log_param, run_id, "p", "v" * 6001)
    raises_code("INVALID_PARAMETER_VALUE", c.set_tag, run_id, "../escape", "x")
    message = raises_code("INVALID_PARAMETER_VALUE", c.search_runs, ["0"], "metrics.acc >")
    assert "missing value" in message
    raises_code("INVALID_PARAMETER_VALUE", c.search_runs, ["0"], "metrics.acc = 'high'")
    raises_code("INVALID_PARAMETER_VALUE", c.search_runs, ["0"], order_by=["nope.x"])
    too_many = [Param(f"p{i}", "v") for i in range(101)]
    store = c._tracking_client.store
    raises_code("INVALID_PARAMETER_VALUE", store.log_batch, run_id, [], too_many, [])
    raises_code("RESOURCE_DOES_NOT_EXIST", c.get_experiment, "987654")
    raises_code("INVALID_PARAMETER_VALUE", c.delete_experiment, "0")


def test_raw_bad_requests_and_unserved_routes(tracking: Served):
    import requests

    api = f"{tracking.url}/api/2.0/mlflow"
    bad = requests.post(f"{api}/runs/create", data="{not json", timeout=30)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = requests.get(f"{api}/runs/get", timeout=30)
    assert missing.status_code == 400 and "run_id" in missing.json()["message"]
    typed = requests.post(
        f"{api}/runs/log-metric",
        json={"run_id": "a" * 32, "key": "m", "value": "high", "timestamp": 1},
        timeout=30,
    )
    assert typed.status_code == 400 and "'value'" in typed.json()["message"]
    unknown = requests.get(f"{api}/no-such-thing", timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    traces = requests.post(f"{tracking.url}/api/3.0/mlflow/traces", json={}, timeout=30)
    assert traces.status_code == 501
    assert (
        traces.json()["error_code"] == "NOT_IMPLEMENTED" and "tracing" in traces.json()["message"]
    )
    wrong_method = requests.delete(f"{api}/runs/create", timeout=30)
    assert wrong_method.status_code == 400
    info = requests.get(f"{tracking.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["multipart_uploads_enabled"] is True


def test_pages_of_other_sites_change_nothing(tracking: Served, name):
    import requests

    api = f"{tracking.url}/api/2.0/mlflow"
    body = json.dumps({"name": name})
    # A form or fetch() of another site may send text/plain without asking: refused.
    plain = requests.post(
        f"{api}/experiments/create", data=body, headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert plain.status_code == 400 and "application/json" in plain.json()["message"]
    cross = requests.post(
        f"{api}/experiments/create",
        data=body,
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
        timeout=30,
    )
    assert cross.status_code == 403 and cross.json()["error_code"] == "PERMISSION_DENIED"
    assert _client().get_experiment_by_name(name) is None
    same = requests.post(
        f"{api}/experiments/create",
        data=body,
        headers={"Content-Type": "application/json", "Origin": tracking.url},
        timeout=30,
    )
    assert same.status_code == 200

"""MltrailClient on both backends: logging through the background writer, bad input, artifacts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mltrail.entities import Metric
from mltrail.errors import (
    InvalidInput,
    InvalidKey,
    InvalidState,
    InvalidValue,
    NotFound,
    ParamChanged,
)
from mltrail.validation import MAX_PARAM_VALUE_LENGTH
from tests.test_liveness import user_tags


def test_log_and_read_back(client):
    exp = client.create_experiment("wine")
    run = client.create_run(exp, run_name="rf-100", tags={"team": "risk"})
    client.log_params(run.run_id, {"n_estimators": 100, "max_depth": 5})
    for step in range(1000):
        client.log_metric(run.run_id, "loss", 1 / (step + 1), step=step)
    client.log_metrics(run.run_id, {"accuracy": 0.97, "f1": 0.96})
    client.set_tag(run.run_id, "stage", "dev")
    client.set_terminated(run.run_id)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.run_name == "rf-100"
    assert got.data.params == {"n_estimators": "100", "max_depth": "5"}
    assert got.data.metrics == {"loss": 1 / 1000, "accuracy": 0.97, "f1": 0.96}
    assert user_tags(got.data.tags) == {"team": "risk", "stage": "dev"}
    history = client.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(1000))


def test_generated_run_names(client):
    names = {client.create_run().info.run_name for _ in range(5)}
    assert all(len(n.split("-")) == 3 for n in names)


def test_nan_and_inf_are_stored_faithfully(client):
    run = client.create_run()
    client.log_metric(run.run_id, "nan", float("nan"))
    client.log_metric(run.run_id, "inf", float("inf"))
    client.log_metric(run.run_id, "ninf", -math.inf)
    client.flush()
    metrics = client.get_run(run.run_id).data.metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == math.inf
    assert metrics["ninf"] == -math.inf


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a/../b", "normalized"),
        ("/abs", "normalized"),
        ("..", "normalized"),
        ("x" * 251, "251 characters"),
        ("bad$key", "characters outside"),
        (3, "must be a string"),
    ],
)
def test_bad_keys(client, key, match):
    run = client.create_run()
    with pytest.raises(InvalidKey, match=match):
        client.log_metric(run.run_id, key, 1.0)
    with pytest.raises(InvalidKey, match=match):
        client.log_param(run.run_id, key, 1)
    with pytest.raises(InvalidKey, match=match):
        client.set_tag(run.run_id, key, 1)


@pytest.mark.parametrize("value", ["0.5", None, [1], True, object()])
def test_non_numeric_metric_values(client, value):
    run = client.create_run()
    with pytest.raises(InvalidValue, match="metric values must be numbers"):
        client.log_metric(run.run_id, "m", value)


def test_bad_step_and_timestamp(client):
    run = client.create_run()
    with pytest.raises(InvalidValue, match="steps must be integers"):
        client.log_metric(run.run_id, "m", 1.0, step=1.5)
    with pytest.raises(InvalidValue, match="timestamps"):
        client.log_metric(run.run_id, "m", 1.0, timestamp=-1)


def test_long_param_value(client):
    run = client.create_run()
    client.log_param(run.run_id, "ok", "x" * MAX_PARAM_VALUE_LENGTH)
    with pytest.raises(InvalidValue, match="6001 characters"):
        client.log_param(run.run_id, "long", "x" * (MAX_PARAM_VALUE_LENGTH + 1))


def test_param_change_is_refused_and_nothing_is_lost(client):
    run = client.create_run()
    client.log_metric(run.run_id, "m", 1.0)
    client.log_param(run.run_id, "lr", 0.1)
    client.log_param(run.run_id, "lr", 0.1)
    with pytest.raises(ParamChanged, match="immutable"):
        client.log_param(run.run_id, "lr", 0.2)
    got = client.get_run(run.run_id)
    assert got.data.params == {"lr": "0.1"} and got.data.metrics == {"m": 1.0}


def test_bad_values_in_a_dict_write_nothing(client):
    run = client.create_run()
    with pytest.raises(InvalidValue):
        client.log_metrics(run.run_id, {"a": 1.0, "b": "x"})
    client.flush()
    assert client.get_run(run.run_id).data.metrics == {}


def test_logging_to_finished_run(client):
    run = client.create_run()
    client.set_terminated(run.run_id, "FAILED")
    with pytest.raises(InvalidState, match="FAILED"):
        client.log_metric(run.run_id, "m", 1.0)
    with pytest.raises(InvalidState):
        client.log_param(run.run_id, "p", 1)
    # Another client (another process) gets the same answer.
    from mltrail import MltrailClient

    other = MltrailClient(client.tracking_uri, objects=client.location.objects)
    with pytest.raises(InvalidState, match="only RUNNING runs"):
        other.log_metric(run.run_id, "m", 1.0)


def test_logging_to_deleted_run(client):
    run = client.create_run()
    client.delete_run(run.run_id)
    with pytest.raises(InvalidState, match="deleted"):
        client.log_metric(run.run_id, "m", 1.0)
    client.restore_run(run.run_id)
    client.log_metric(run.run_id, "m", 1.0)
    client.flush()


def test_run_finished_elsewhere_reports_at_flush(client):
    from mltrail import MltrailClient

    run = client.create_run()
    client.log_metric(run.run_id, "m", 1.0)
    client.flush()
    MltrailClient(client.tracking_uri).set_terminated(run.run_id)
    client.log_metric(run.run_id, "m", 2.0)  # this client still believes the run is RUNNING
    with pytest.raises(InvalidState, match="queued write"):
        client.flush()


def test_unknown_run_id(client):
    with pytest.raises(NotFound, match="does not exist"):
        client.log_metric("0" * 32, "m", 1.0)
    with pytest.raises(NotFound):
        client.get_run("0" * 32)


def test_resolve_run_id(client):
    run = client.create_run()
    assert client.resolve_run_id(run.run_id[:8].upper()) == run.run_id
    with pytest.raises(InvalidInput, match="4 to 32 hex"):
        client.resolve_run_id("ab")
    with pytest.raises(InvalidInput):
        client.resolve_run_id("zzzzzz")
    with pytest.raises(NotFound, match="no run id starts"):
        client.resolve_run_id("ffffffff" if not run.run_id.startswith("ffffffff") else "00000000")


def test_log_batch(client):
    run = client.create_run()
    client.log_batch(
        run.run_id,
        metrics=[Metric("a", 1.0, 5, 0), Metric("a", 2.0, 6, 1)],
        params={"p": 1},
        tags={"t": "x"},
    )
    got = client.get_run(run.run_id).data
    assert got.metrics == {"a": 2.0} and got.params == {"p": "1"}
    assert user_tags(got.tags) == {"t": "x"}


def test_nested_runs_and_delete_restore_experiment(client):
    exp = client.create_experiment("e")
    parent = client.create_run(exp)
    child = client.create_run(exp, parent_run_id=parent.run_id)
    assert client.get_run(child.run_id).info.parent_run_id == parent.run_id
    client.delete_experiment(exp)
    assert client.search_runs(exp) == []
    assert len(client.search_runs(exp, run_view_type="deleted_only")) == 2
    client.restore_experiment(exp)
    assert len(client.search_runs(exp)) == 2


def test_search_with_filter_and_order(client):
    exp = client.create_experiment("s")
    for depth in (3, 5, 5, 8):
        run = client.create_run(exp)
        client.log_params(run.run_id, {"max_depth": depth})
        client.log_metric(run.run_id, "accuracy", depth / 10)
    rows = client.search_runs(
        exp, "metrics.accuracy > 0.4 and params.max_depth = 5", order_by="-metrics.accuracy"
    )
    assert len(rows) == 2
    rows = client.search_runs(exp, order_by=["metrics.accuracy DESC"])
    assert [r.data.metrics["accuracy"] for r in rows] == [0.8, 0.5, 0.5, 0.3]


def test_artifacts_file_and_folder(client, tmp_path: Path):
    run = client.create_run()
    f = tmp_path / "feature_importance.csv"
    f.write_text("feature,importance\nalcohol,0.3\n")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    client.log_artifact(run.run_id, f)
    client.log_artifact(run.run_id, folder, artifact_path="out")
    client.log_text(run.run_id, "hello", "notes/readme.md")
    client.log_dict(run.run_id, {"a": 1}, "config.yaml")
    paths = [a.path for a in client.list_artifacts(run.run_id)]
    assert paths == [
        "config.yaml",
        "feature_importance.csv",
        "notes/readme.md",
        "out/plots/a.txt",
        "out/plots/sub/b.txt",
    ]
    assert client.read_artifact(run.run_id, "feature_importance.csv") == f.read_bytes()
    dest = client.download_artifacts(run.run_id, "out/plots", tmp_path / "dl")
    assert (dest / "sub" / "b.txt").read_text() == "b"
    single = client.download_artifacts(run.run_id, "config.yaml", tmp_path / "c.yaml")
    assert single.read_text().strip() == "a: 1"
    with pytest.raises(NotFound):
        client.log_artifact(run.run_id, tmp_path / "missing.csv")
    with pytest.raises(NotFound):
        client.download_artifacts(run.run_id, "nope", tmp_path / "x")
    with pytest.raises(InvalidKey):
        client.log_text(run.run_id, "x", "../escape.txt")


def test_identical_artifacts_are_stored_once(client, tmp_path: Path):
    a, b = client.create_run(), client.create_run()
    f = tmp_path / "same.bin"
    f.write_bytes(b"x" * 10_000)
    client.log_artifact(a.run_id, f)
    client.log_artifact(b.run_id, f)
    assert client.list_artifacts(a.run_id)[0].hash == client.list_artifacts(b.run_id)[0].hash
    assert len(list(client.objects.iter_hashes())) == 1


@pytest.mark.parametrize("status", ["DONE", "RUNNING", "finished", None])
def test_bad_terminal_status(client, status):
    run = client.create_run()
    with pytest.raises(InvalidInput, match="does not end a run"):
        client.set_terminated(run.run_id, status)
    client.log_metric(run.run_id, "still", 1.0)  # the run is untouched and still RUNNING
    client.set_terminated(run.run_id)

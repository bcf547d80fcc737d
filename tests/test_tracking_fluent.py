"""The fluent API as a user's training script sees it."""

from __future__ import annotations

import math

import pytest

import mltrail as mt
from mltrail.errors import InvalidInput, InvalidState, NotFound
from tests.test_liveness import user_tags


def test_readme_example(project, tmp_path):
    (tmp_path / "feature_importance.csv").write_text("feature,importance\nalcohol,0.3\n")
    mt.set_experiment("wine")
    with mt.start_run(run_name="rf-100") as run:
        mt.log_params({"n_estimators": 100, "max_depth": 5})
        for step in range(1000):
            mt.log_metric("loss", 1 / (step + 1), step=step)
        mt.log_metrics({"accuracy": 0.97, "f1": 0.96})
        mt.set_tag("team", "risk")
        mt.log_artifact("feature_importance.csv")
        assert mt.active_run().run_id == run.run_id
    assert mt.active_run() is None
    got = mt.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics["accuracy"] == 0.97
    assert len(mt.get_metric_history(run.run_id, "loss")) == 1000
    rows = mt.search_runs(filter_string="metrics.accuracy > 0.9 and params.max_depth = 5")
    assert [r["run_id"] for r in rows] == [run.run_id]
    assert rows[0]["params.max_depth"] == "5" and rows[0]["tags.team"] == "risk"
    assert (project / "mltrail.db").exists()


def test_search_runs_to_pandas(project):
    pd = pytest.importorskip("pandas")
    mt.set_experiment("p")
    for i in range(3):
        with mt.start_run():
            mt.log_metric("acc", i / 10)
    df = pd.DataFrame(mt.search_runs())
    assert len(df) == 3 and "metrics.acc" in df.columns
    df2 = mt.search_runs(output_format="pandas", order_by="metrics.acc")
    assert list(df2["metrics.acc"]) == [0.0, 0.1, 0.2]
    with pytest.raises(InvalidInput, match="output_format"):
        mt.search_runs(output_format="xml")


def test_exception_marks_failed_and_interrupt_killed(project):
    with pytest.raises(ZeroDivisionError), mt.start_run() as run:
        mt.log_metric("m", 1.0)
        1 / 0  # noqa: B018
    assert mt.get_run(run.run_id).info.status == "FAILED"
    assert mt.get_run(run.run_id).data.metrics == {"m": 1.0}
    with pytest.raises(KeyboardInterrupt), mt.start_run() as run2:
        raise KeyboardInterrupt
    assert mt.get_run(run2.run_id).info.status == "KILLED"


def test_nested_runs(project):
    with mt.start_run(run_name="parent") as parent:
        with pytest.raises(InvalidState, match="nested=True"):
            mt.start_run()
        with mt.start_run(run_name="child", nested=True) as child:
            assert mt.active_run().run_id == child.run_id
            mt.log_metric("c", 1)
        assert mt.active_run().run_id == parent.run_id
    assert mt.get_run(child.run_id).info.parent_run_id == parent.run_id
    assert mt.get_run(child.run_id).info.status == "FINISHED"


def test_resume_run(project):
    with mt.start_run() as run:
        mt.log_param("a", 1)
    with mt.start_run(run_id=run.run_id):
        mt.log_metric("later", 2.0)
    assert mt.get_run(run.run_id).data.metrics == {"later": 2.0}


def test_logging_without_active_run_starts_one(project):
    mt.log_metric("m", 1.0)
    run = mt.active_run()
    assert run is not None
    mt.end_run()
    assert mt.get_run(run.run_id).info.status == "FINISHED"


def test_set_experiment_errors(project):
    with pytest.raises(InvalidInput, match="exactly one"):
        mt.set_experiment()
    with pytest.raises(NotFound):
        mt.set_experiment(experiment_id="77")
    exp = mt.set_experiment("gone")
    mt.MltrailClient().delete_experiment(exp.experiment_id)
    with pytest.raises(InvalidState, match="deleted"):
        mt.set_experiment("gone")


def test_experiment_name_from_env(project, monkeypatch):
    monkeypatch.setenv("MLTRAIL_EXPERIMENT_NAME", "from-env")
    with mt.start_run() as run:
        pass
    exp = mt.MltrailClient().get_experiment_by_name("from-env")
    assert run.info.experiment_id == exp.experiment_id


def test_delete_restore_and_tags(project):
    with mt.start_run() as run:
        mt.set_tags({"a": 1, "b": 2})
        mt.delete_tag("a")
        mt.log_text("hi", "notes.txt")
        mt.log_dict({"x": math.pi}, "d.json")
    assert user_tags(mt.get_run(run.run_id).data.tags) == {"b": "2"}
    mt.delete_run(run.run_id)
    assert mt.search_runs() == []
    mt.restore_run(run.run_id)
    assert len(mt.search_runs()) == 1


def test_set_tracking_uri(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    mt.set_tracking_uri(target)
    with mt.start_run():
        mt.log_metric("m", 1)
    assert (target / ".mltrail" / "mltrail.db").exists()
    assert mt.get_tracking_uri().endswith("elsewhere/.mltrail/mltrail.db")
    with mt.start_run(), pytest.raises(InvalidState, match="while a run is active"):
        mt.set_tracking_uri(tmp_path)


def test_first_use_creates_project(tmp_path):
    with mt.start_run():
        pass
    assert (tmp_path / ".mltrail" / "config.toml").exists()

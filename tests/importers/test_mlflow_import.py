"""``mltrail import mlflow`` from a tracking database the real mlflow client wrote."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

if os.environ.get("MLTRAIL_REQUIRE_MLFLOW"):
    import mlflow  # noqa: F401
else:
    pytest.importorskip("mlflow")

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch):
    import mlflow

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An MLflow sqlite store with nested runs, NaN, a long history, artifacts and a dataset,
    made once (MLflow's migrations of a new database take seconds)."""
    import mlflow
    import pandas as pd
    from mlflow.entities import Metric

    tmp_path = tmp_path_factory.mktemp("mlflow-source")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    # An artifact folder of its own: MLflow's default is ./mlruns in the working directory.
    exp_id = mlflow.create_experiment(
        "wine", artifact_location=str(tmp_path / "artifacts"), tags={"team": "risk"}
    )
    mlflow.set_experiment("wine")
    (tmp_path / "report.txt").write_text("accuracy 0.9\n")
    with mlflow.start_run(run_name="parent", tags={"mlflow.source.git.commit": "abc"}) as p:
        mlflow.log_params({"lr": "0.1", "depth": 5})
        points = [Metric("loss", 1 / (s + 1), 1_000 + s, s) for s in range(2500)]
        for start in range(0, 2500, 1000):  # one call per point would take 20 s here
            mlflow.MlflowClient().log_batch(p.info.run_id, metrics=points[start : start + 1000])
        mlflow.log_metric("odd", float("nan"), step=0)
        mlflow.log_artifact(str(tmp_path / "report.txt"), "eval")
        frame = pd.DataFrame({"a": [1, 2]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="train"), context="training")
        with mlflow.start_run(run_name="child", nested=True) as c:
            mlflow.log_metric("acc", 0.5)
    mlflow.set_tracking_uri(None)
    return {"db": db, "exp_id": exp_id, "parent": p.info.run_id, "child": c.info.run_id}


@pytest.fixture
def source(_template: dict, tmp_path: Path) -> dict:
    """A copy of the template store of the test's own (its artifacts stay where they were)."""
    db = tmp_path / "mlflow.db"
    shutil.copy(_template["db"], db)
    return {**_template, "db": db, "uri": f"sqlite:///{db}"}


@pytest.fixture
def target(tmp_path: Path):
    from mltrail import MltrailClient

    client = MltrailClient(str(tmp_path / "target"))
    yield client
    client.close()


def test_a_whole_database_comes_across(source, target, tmp_path):
    from mltrail.importers.mlflow import import_mlflow

    before = _sha(source["db"])
    report = import_mlflow(source["uri"], target)
    assert _sha(source["db"]) == before  # read-only: the source is not touched
    assert report.skipped == []
    assert (report.runs_imported, report.experiments_created) == (2, 1)
    exp = target.store.get_experiment_by_name("wine")
    assert exp.tags == {"team": "risk"}
    parent = target.get_run(source["parent"])
    child = target.get_run(source["child"])
    assert (parent.info.run_name, parent.info.status) == ("parent", "FINISHED")
    assert child.info.parent_run_id == source["parent"]
    assert parent.data.params == {"lr": "0.1", "depth": "5"}
    assert parent.data.tags["mltrail.git.commit"] == "abc"
    assert "mlflow.runName" not in parent.data.tags
    history = target.get_metric_history(source["parent"], "loss")
    assert [(m.step, m.timestamp) for m in history] == [(s, 1_000 + s) for s in range(2500)]
    assert history[1].value == pytest.approx(0.5)
    assert math.isnan(target.get_metric_history(source["parent"], "odd")[0].value)
    out = target.download_artifacts(source["parent"], "eval/report.txt", tmp_path / "dl.txt")
    assert out.read_text() == "accuracy 0.9\n"
    datasets, _ = target.store.get_run_links(source["parent"])
    assert [(d.name, d.tags.get("mlflow.data.context")) for d in datasets] == [
        ("train", "training")
    ]


def test_a_second_import_changes_nothing_and_a_later_one_brings_what_is_new(source, target):
    import mlflow

    from mltrail.importers.mlflow import import_mlflow

    import_mlflow(source["uri"], target)
    again = import_mlflow(source["uri"], target)
    assert (again.runs_unchanged, again.runs_imported, again.metric_points) == (2, 0, 0)
    # The run goes on in MLflow after the first import: only what is new comes in.
    mlflow.set_tracking_uri(source["uri"])
    client = mlflow.MlflowClient()
    client.update_run(source["child"], "RUNNING")
    client.log_metric(source["child"], "acc", 0.7, step=1)
    client.set_terminated(source["child"], "FAILED")
    mlflow.set_tracking_uri(None)
    later = import_mlflow(source["uri"], target)
    assert (later.runs_updated, later.runs_unchanged, later.metric_points) == (1, 1, 1)
    assert [m.value for m in target.get_metric_history(source["child"], "acc")] == [0.5, 0.7]
    assert target.get_run(source["child"]).info.status == "FAILED"


def test_a_killed_import_is_completed_by_the_next_one(source, target, monkeypatch):
    from mltrail.importers import mlflow_db
    from mltrail.importers.mlflow import import_mlflow

    monkeypatch.setattr(mlflow_db, "METRIC_BATCH", 1000)
    real = mlflow_db.MlflowDb.metrics

    def dying(self, run_id, key, skip=0):
        for n, batch in enumerate(real(self, run_id, key, skip)):
            if n == 1:
                raise KeyboardInterrupt  # as if killed half way through a long history
            yield batch

    monkeypatch.setattr(mlflow_db.MlflowDb, "metrics", dying)
    with pytest.raises(KeyboardInterrupt):
        import_mlflow(source["uri"], target)
    assert len(target.get_metric_history(source["parent"], "loss")) == 1000
    monkeypatch.setattr(mlflow_db.MlflowDb, "metrics", real)
    report = import_mlflow(source["uri"], target)
    assert report.runs_updated == 1 and report.skipped == []
    history = target.get_metric_history(source["parent"], "loss")
    assert [m.step for m in history] == list(range(2500))  # none twice, none missing


def test_one_experiment_and_a_dry_run(source, target):
    from mltrail.importers.mlflow import import_mlflow

    dry = import_mlflow(source["uri"], target, experiments=["wine", "absent"], dry_run=True)
    assert (dry.runs_imported, dry.experiments_created) == (2, 1)
    assert [s.what for s in dry.skipped] == ["experiment 'absent'"]
    assert target.store.get_experiment_by_name("wine") is None  # nothing written


def test_server_artifacts_need_their_folder(tmp_path, target):
    import sqlalchemy as sa

    from mltrail.importers.mlflow import import_mlflow

    db = tmp_path / "served.db"
    mlflow_store(db)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        run_id, exp = conn.exec_driver_sql("SELECT run_uuid, experiment_id FROM runs").one()
        exp_id = str(exp)
        conn.exec_driver_sql(
            f"UPDATE runs SET artifact_uri = 'mlflow-artifacts:/{exp_id}/{run_id}/artifacts'"
        )
    engine.dispose()
    report = import_mlflow(f"sqlite:///{db}", target)
    assert [s.what for s in report.skipped] == [f"artifacts of run {run_id}"]
    assert "--artifacts" in report.skipped[0].reason
    root = tmp_path / "mlartifacts"
    (root / exp_id / run_id / "artifacts").mkdir(parents=True)
    (root / exp_id / run_id / "artifacts" / "w.bin").write_bytes(b"w")
    # The run stayed unmarked: the next import, given the folder, brings its artifacts.
    again = import_mlflow(f"sqlite:///{db}", target, artifacts_root=str(root))
    assert (again.runs_updated, again.skipped) == (1, [])
    assert [f.path for f in target.list_artifacts(run_id)] == ["w.bin"]
    assert target.get_run(run_id).info.status == "FINISHED"
    assert import_mlflow(f"sqlite:///{db}", target, artifacts_root=str(root)).runs_unchanged == 1


def mlflow_store(db: Path) -> None:
    """A small MLflow sqlite store with one run."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_experiment("served")
    with mlflow.start_run():
        mlflow.log_metric("m", 1.0)
    mlflow.set_tracking_uri(None)


def test_what_is_not_an_mlflow_database_is_refused(tmp_path, target):
    from mltrail.errors import InvalidInput
    from mltrail.importers.mlflow import import_mlflow

    with pytest.raises(InvalidInput, match="no MLflow database"):
        import_mlflow(f"sqlite:///{tmp_path / 'absent.db'}", target)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE customers (id INTEGER)").connection.commit()
    with pytest.raises(InvalidInput, match="not an MLflow tracking database"):
        import_mlflow(f"sqlite:///{other}", target)
    newer = tmp_path / "newer.db"
    mlflow_store(newer)
    shutil.copy(newer, tmp_path / "copy.db")
    con = sqlite3.connect(tmp_path / "copy.db")
    con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    con.commit()
    con.close()
    with pytest.raises(InvalidInput, match=r"'ffffffffffff'.*not know"):
        import_mlflow(f"sqlite:///{tmp_path / 'copy.db'}", target)
    with pytest.raises(InvalidInput, match="not an MLflow database URI"):
        import_mlflow("mysql://host/db", target)
    with pytest.raises(InvalidInput, match="is a file, not an MLflow file store"):
        import_mlflow(str(newer), target)
    with pytest.raises(InvalidInput, match="no such folder"):
        import_mlflow(str(tmp_path / "mlruns"), target)
    with pytest.raises(InvalidInput, match="is not an MLflow store"):
        import_mlflow(str(tmp_path), target)


def test_what_is_not_an_mlflow_server_is_refused(tmp_path, target):
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from mltrail.errors import InvalidInput, StoreError
    from mltrail.importers.mlflow import import_mlflow

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{other.server_address[1]}"
        with pytest.raises(InvalidInput, match=r"does not answer as an MLflow server.*404"):
            import_mlflow(url, target)
    finally:
        other.shutdown()
        other.server_close()
    with pytest.raises(StoreError, match="cannot reach the MLflow server"):
        import_mlflow(url, target)


def test_the_cli_imports_prints_a_summary_and_exits_1_on_skips(source, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mltrail.cli import cli

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"], prog_name="mltrail").exit_code == 0
    done = runner.invoke(cli, ["import", "mlflow", source["uri"]], prog_name="mltrail")
    assert done.exit_code == 0, done.output
    assert "2 new" in done.output and "metric points" in done.output
    listed = runner.invoke(cli, ["runs", "ls", "--experiment", "wine"], prog_name="mltrail")
    assert "parent" in listed.output and "child" in listed.output
    partly = runner.invoke(
        cli, ["import", "mlflow", source["uri"], "--experiment", "nope"], prog_name="mltrail"
    )
    assert partly.exit_code == 1 and "experiment 'nope': not in the source" in partly.output
    bad = runner.invoke(cli, ["import", "mlflow", "sqlite:///nowhere.db"], prog_name="mltrail")
    assert bad.exit_code == 1 and "no MLflow database" in bad.output
    assert "Traceback" not in bad.output


@pytest.fixture(scope="session")
def _registry_template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An MLflow store with a registered model: a logged model (v1), a run's folder (v2), a
    deleted version (3: a gap), v4 with the alias production, v2 in Staging."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    tmp_path = tmp_path_factory.mktemp("mlflow-registry")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    db = tmp_path / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.create_experiment("reg", artifact_location=str(tmp_path / "artifacts"))
    mlflow.set_experiment("reg")
    X, y = load_wine(return_X_y=True, as_frame=True)
    models = [LogisticRegression(C=c, max_iter=5000).fit(X, y) for c in (0.01, 1.0, 100.0)]
    options = {"serialization_format": "cloudpickle", "pip_requirements": ["scikit-learn"]}
    with mlflow.start_run() as first:
        mlflow.sklearn.log_model(models[0], name="model", registered_model_name="wine", **options)
    with mlflow.start_run() as second:
        mlflow.sklearn.save_model(models[1], str(tmp_path / "saved"), **options)
        mlflow.log_artifacts(str(tmp_path / "saved"), "plain")
    mlflow.register_model(f"runs:/{second.info.run_id}/plain", "wine")
    with mlflow.start_run():
        mlflow.sklearn.log_model(models[2], name="model", registered_model_name="wine", **options)
    client = mlflow.MlflowClient()
    client.delete_model_version("wine", "3")
    with mlflow.start_run() as fourth:
        mlflow.sklearn.log_model(models[2], name="model", registered_model_name="wine", **options)
    client.set_registered_model_alias("wine", "production", "4")
    client.transition_model_version_stage("wine", "2", "Staging")
    client.update_registered_model("wine", description="the wine classifier")
    client.set_model_version_tag("wine", "4", "validated", "yes")
    mlflow.set_tracking_uri(None)
    runs = {"first": first.info.run_id, "second": second.info.run_id}
    return {
        "uri": f"sqlite:///{db}",
        "X": X,
        "models": models,
        "fourth": fourth.info.run_id,
        **runs,
    }


def test_the_registry_comes_across_with_its_numbers_stages_and_aliases(_registry_template, target):
    import mltrail as mt
    from mltrail.importers.mlflow import import_mlflow

    src = _registry_template
    report = import_mlflow(src["uri"], target)
    assert report.skipped == []
    assert (report.models_created, report.versions_imported) == (1, 3)
    model = target.get_registered_model("wine")
    assert (model.description, model.aliases) == ("the wine classifier", {"production": 4})
    versions = {mv.version: mv for mv in target.list_model_versions("wine")}
    assert sorted(versions) == [1, 2, 4]  # MLflow's numbers, its gap included
    assert versions[2].stage == "Staging" and versions[2].run_id == src["second"]
    assert versions[1].run_id == src["first"] and versions[4].tags == {"validated": "yes"}
    X = src["X"]
    for uri, fitted in (
        ("models:/wine/1", src["models"][0]),
        ("models:/wine/2", src["models"][1]),
        ("models:/wine@production", src["models"][2]),
        ("models:/wine/Staging", src["models"][1]),
    ):
        assert list(mt.load_model(uri, client=target).predict(X)) == list(fitted.predict(X)), uri
    history = {e.action for e in target.get_model_history("wine")}
    assert {"create_model", "create_version", "set_alias", "transition_stage"} <= history
    again = import_mlflow(src["uri"], target)
    assert (again.versions_imported, again.versions_existing, again.skipped) == (0, 3, [])


def test_only_the_models_asked_for(_registry_template, target):
    from mltrail.importers.mlflow import import_mlflow

    report = import_mlflow(_registry_template["uri"], target, models=["other"])
    assert report.models_created == 0
    assert target.search_registered_models() == []


_MLFLOW2_SOURCE = """
import sys, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.sklearn
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
db, folder = sys.argv[1:3]
mlflow.set_tracking_uri("sqlite:///" + db)
mlflow.create_experiment("old", artifact_location=folder)
mlflow.set_experiment("old")
X, y = load_wine(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=5000).fit(X, y)
with mlflow.start_run(run_name="v2-run") as run:
    mlflow.log_param("C", 1.0)
    for step in range(30):
        mlflow.log_metric("loss", 1 / (step + 1), step=step)
    mlflow.sklearn.log_model(model, "model", registered_model_name="old-model",
                             pip_requirements=["scikit-learn"])
mlflow.MlflowClient().transition_model_version_stage("old-model", "1", "Production")
print(run.info.run_id)
"""


def test_a_database_written_by_mlflow_2(tmp_path, target):
    import subprocess
    import textwrap

    import mltrail as mt
    from mltrail.importers.mlflow import import_mlflow

    python = os.environ.get("MLTRAIL_MLFLOW2_PYTHON")
    if not python:
        if os.environ.get("MLTRAIL_REQUIRE_MLFLOW2"):
            pytest.fail("MLTRAIL_MLFLOW2_PYTHON is not set (.ci/run makes .venv-mlflow2)")
        pytest.skip("set MLTRAIL_MLFLOW2_PYTHON to a Python with mlflow 2.x and scikit-learn")
    script = tmp_path / "make.py"
    script.write_text(textwrap.dedent(_MLFLOW2_SOURCE))
    db = tmp_path / "old.db"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    made = subprocess.run(
        [python, str(script), str(db), str(tmp_path / "art")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    run_id = made.stdout.strip().splitlines()[-1]
    report = import_mlflow(f"sqlite:///{db}", target)
    assert report.skipped == [] and report.schema_revision != "dc11669786a5"
    run = target.get_run(run_id)
    assert (run.info.run_name, run.data.params) == ("v2-run", {"C": "1.0"})
    assert [m.step for m in target.get_metric_history(run_id, "loss")] == list(range(30))
    [version] = target.list_model_versions("old-model")
    assert (version.version, version.stage, version.run_id) == (1, "Production", run_id)
    from sklearn.datasets import load_wine

    X, _ = load_wine(return_X_y=True, as_frame=True)
    assert len(mt.load_model("models:/old-model/Production", client=target).predict(X)) == len(X)


@pytest.mark.postgres
def test_a_postgresql_source(postgres, target, tmp_path):
    import mlflow

    from mltrail.importers.mlflow import import_mlflow

    uri = postgres.create_database()
    # mlflow's SQLAlchemy store takes the driver in the URI (psycopg 3 is what the tests have).
    mlflow.set_tracking_uri(uri.replace("postgresql://", "postgresql+psycopg://"))
    mlflow.create_experiment("pg", artifact_location=str(tmp_path / "art"))
    mlflow.set_experiment("pg")
    with mlflow.start_run(run_name="on-pg") as run:
        mlflow.log_metric("m", 2.0, step=3)
        mlflow.log_param("p", "x")
    mlflow.set_tracking_uri(None)
    report = import_mlflow(uri, target)
    assert (report.runs_imported, report.skipped) == (1, [])
    got = target.get_run(run.info.run_id)
    assert (got.info.run_name, got.data.params, got.data.metrics) == (
        "on-pg",
        {"p": "x"},
        {"m": 2.0},
    )
    # Read-only: the import's own connection could not have written (a write is refused there).
    from mltrail.importers.mlflow_db import MlflowDb

    db = MlflowDb(uri)
    import sqlalchemy as sa

    with pytest.raises(sa.exc.DBAPIError, match="read-only"), db.engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM runs")
    db.close()


def _log_history(run_id: str) -> None:
    import mlflow
    from mlflow.entities import Metric

    points = [Metric("loss", 1 / (s + 1), 1_000 + s, s) for s in range(2500)]
    for start in range(0, 2500, 1000):  # one call per point would take 20 s here
        mlflow.MlflowClient().log_batch(run_id, metrics=points[start : start + 1000])


def _log_source(tmp_path: Path, artifact_location: str | None = None) -> dict:
    """Through the tracking URI set: nested runs, NaN, a long history, an artifact, a dataset,
    a registered model (logged model) in Staging with an alias, and a deleted experiment."""
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    mlflow.create_experiment("wine", artifact_location=artifact_location, tags={"team": "risk"})
    mlflow.set_experiment("wine")
    (tmp_path / "report.txt").write_text("accuracy 0.9\n")
    X, y = load_wine(return_X_y=True, as_frame=True)
    fitted = LogisticRegression(C=0.5, max_iter=5000).fit(X, y)
    with mlflow.start_run(run_name="parent") as p:
        mlflow.log_params({"lr": "0.1", "depth": 5})
        _log_history(p.info.run_id)
        mlflow.log_metric("odd", float("nan"), step=0)
        mlflow.log_artifact(str(tmp_path / "report.txt"), "eval/deep")
        frame = pd.DataFrame({"a": [1, 2]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="train"), context="training")
        # MLflow 3's default format, skops (the registry template's are cloudpickle).
        info = mlflow.sklearn.log_model(
            fitted, name="model", registered_model_name="wine", pip_requirements=["scikit-learn"]
        )
        with mlflow.start_run(run_name="child", nested=True) as c:
            mlflow.log_metric("acc", 0.5)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("wine", "production", "1")
    client.transition_model_version_stage("wine", "1", "Staging")
    client.set_model_version_tag("wine", "1", "validated", "yes")
    mlflow.delete_experiment(mlflow.create_experiment("old"))
    # As MLflow itself reads it back: its file store repeats a run's last points when a model
    # is logged (linking them to the model), its databases keep one.
    points = client.get_metric_history(p.info.run_id, "loss")
    history = sorted((m.step, m.timestamp) for m in points)
    return {
        "parent": p.info.run_id, "child": c.info.run_id, "X": X, "model": fitted,
        "history": history, "model_id": info.model_id,
    }  # fmt: skip


def _check_imported(target, src: dict, tmp_path: Path) -> None:
    import mltrail as mt

    assert target.store.get_experiment_by_name("wine").tags == {"team": "risk"}
    assert target.store.get_experiment_by_name("old").lifecycle_stage == "deleted"
    parent, child = target.get_run(src["parent"]), target.get_run(src["child"])
    assert (parent.info.run_name, parent.info.status, parent.data.params) == (
        "parent", "FINISHED", {"lr": "0.1", "depth": "5"},
    )  # fmt: skip
    assert child.info.parent_run_id == src["parent"]
    history = target.get_metric_history(src["parent"], "loss")
    assert sorted((m.step, m.timestamp) for m in history) == src["history"]
    assert {(s, 1_000 + s) for s in range(2500)} == set(src["history"])
    assert math.isnan(target.get_metric_history(src["parent"], "odd")[0].value)
    out = target.download_artifacts(src["parent"], "eval/deep/report.txt", tmp_path / "dl.txt")
    assert out.read_text() == "accuracy 0.9\n"
    datasets, _ = target.store.get_run_links(src["parent"])
    assert [(d.name, d.tags.get("mlflow.data.context")) for d in datasets] == [
        ("train", "training")
    ]
    (mv,) = target.list_model_versions("wine")
    assert (mv.version, mv.stage, mv.aliases, mv.tags, mv.run_id) == (
        1, "Staging", ["production"], {"validated": "yes"}, src["parent"],
    )  # fmt: skip
    predicted = mt.load_model("models:/wine@production", client=target).predict(src["X"])
    assert list(predicted) == list(src["model"].predict(src["X"]))
    # The logged model keeps its MLflow id, among its run's artifacts, linked as its output.
    (logged,) = target.store.list_logged_models([parent.info.experiment_id])
    assert (logged.model_id, logged.run_id, logged.status) == (
        src["model_id"], src["parent"], "READY",
    )  # fmt: skip
    assert "MLmodel" in {f.path for f in target.store.list_logged_model_files(logged.model_id)}
    _, outputs = target.store.get_run_links(src["parent"])
    assert [(m.model_id, m.direction) for m in outputs] == [(src["model_id"], "output")]


def test_a_file_store_comes_across(tmp_path, target, monkeypatch):
    import mlflow

    from mltrail.importers.mlflow import import_mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlruns = tmp_path / "mlruns"
    mlflow.set_tracking_uri(mlruns.as_uri())
    try:
        src = _log_source(tmp_path)
    finally:
        mlflow.set_tracking_uri(None)
    files = sorted((p, p.stat().st_mtime_ns) for p in mlruns.rglob("*"))
    report = import_mlflow(str(mlruns), target)
    assert sorted((p, p.stat().st_mtime_ns) for p in mlruns.rglob("*")) == files  # untouched
    assert (report.source_format, report.skipped) == ("file store", [])
    assert (report.runs_imported, report.versions_imported) == (2, 1)
    _check_imported(target, src, tmp_path)
    again = import_mlflow(mlruns.as_uri(), target)
    assert (again.runs_unchanged, again.metric_points, again.versions_existing) == (2, 0, 1)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path, s3_endpoint, bucket, aws_env):
    """A real `mlflow server` on 127.0.0.1 with a SQLite store and its artifacts in S3 (moto)."""
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    db = tmp_path / "server.db"
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{db}",
         "--artifacts-destination", f"s3://{bucket}/mlartifacts"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)
        yield {"url": url, "db": db, "bucket": bucket, "endpoint": s3_endpoint}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.mark.slow
@pytest.mark.long
def test_a_live_server_through_its_rest_api_and_its_s3_artifacts(
    mlflow_server, tmp_path, monkeypatch
):
    import mlflow

    from mltrail import MltrailClient
    from mltrail.importers.mlflow import import_mlflow

    mlflow.set_tracking_uri(mlflow_server["url"])
    try:
        src = _log_source(tmp_path)
    finally:
        mlflow.set_tracking_uri(None)
    # Through the server: its REST API, and its artifact proxy (which reads S3).
    over_http = MltrailClient(str(tmp_path / "one"))
    report = import_mlflow(mlflow_server["url"], over_http)
    assert (report.source_format, report.schema_revision) == ("REST API", mlflow.__version__)
    assert report.skipped == []
    _check_imported(over_http, src, tmp_path)
    again = import_mlflow(mlflow_server["url"], over_http)
    assert (again.runs_unchanged, again.metric_points, again.versions_existing) == (2, 0, 1)
    assert (again.logged_models_imported, again.logged_models_existing) == (0, 1)
    over_http.close()
    # The same store read directly, its mlflow-artifacts: URIs resolved in the bucket.
    monkeypatch.setenv("AWS_ENDPOINT_URL", mlflow_server["endpoint"])
    direct = MltrailClient(str(tmp_path / "two"))
    uri = f"sqlite:///{mlflow_server['db']}"
    without = import_mlflow(uri, direct, dry_run=True)
    assert without.skipped == []  # a dry run reads no artifacts
    report = import_mlflow(uri, direct, artifacts_root=f"s3://{mlflow_server['bucket']}/mlartifacts")
    assert report.skipped == []
    _check_imported(direct, src, tmp_path)
    direct.close()


def test_into_a_team_server_over_http(source, _registry_template, tmp_path):
    import mltrail as mt
    from mltrail import MltrailClient
    from mltrail.importers.mlflow import import_mlflow
    from mltrail.server.app import ServerSettings
    from tests.live import serve

    folder = tmp_path / "server"
    folder.mkdir()
    settings = ServerSettings(
        store_uri=f"sqlite:///{folder / 'mltrail.db'}", objects=str(folder / "objects"),
        access_log=False,
    )  # fmt: skip
    with serve(settings) as url:
        client = MltrailClient(url)
        report = import_mlflow(source["uri"], client)
        assert report.skipped == []
        assert len(client.get_metric_history(source["parent"], "loss")) == 2500
        datasets, _ = client.store.get_run_links(source["parent"])
        assert [d.name for d in datasets] == ["train"]
        src = _registry_template
        report = import_mlflow(src["uri"], client)
        assert report.skipped == []
        assert report.logged_models_imported == 3
        fitted = src["models"][2]
        loaded = mt.load_model("models:/wine@production", client=client)
        assert list(loaded.predict(src["X"])) == list(fitted.predict(src["X"]))
        again = import_mlflow(src["uri"], client)
        assert (again.logged_models_existing, again.versions_existing) == (3, 3)
        client.close()


def _bulk_source(db: Path, runs: int, long: int) -> tuple[int, int]:
    """An MLflow store made by mlflow, filled with plain SQL in its schema (fast): ``runs`` runs
    with 2 params and 3 metrics each, the first with a ``long``-point history too. Returns
    (runs, metric points)."""
    import uuid

    mlflow_store(db)
    con = sqlite3.connect(db)
    exp = con.execute("SELECT experiment_id FROM experiments WHERE name = 'served'").fetchone()[0]
    ids = [uuid.uuid4().hex for _ in range(runs)]
    con.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
        " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
        " experiment_id) VALUES (?, ?, 'LOCAL', '', '', 'u', 'FINISHED', ?, ?, '', 'active', '',"
        " ?)",
        [(r, f"bulk-{i}", 10 + i, 20 + i, exp) for i, r in enumerate(ids)],
    )
    con.executemany(
        "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
        [(f"p{p}", str(i), r) for i, r in enumerate(ids) for p in range(2)],
    )
    points = [(f"m{m}", i / 7, 1_000 + i, r, 0, 0) for i, r in enumerate(ids) for m in range(3)]
    points += [("long", s / 3, 5_000 + s, ids[0], s, 0) for s in range(long)]
    con.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        points,
    )
    con.commit()
    con.close()
    return runs + 1, len(points) + 1  # and mlflow_store's own run and point


@pytest.mark.slow
def test_an_import_killed_with_sigkill_is_completed_by_the_next_one(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    source = tmp_path / "mlflow.db"
    long = 200_000  # 10 batches: the kill lands in the middle of the first run's history
    runs, points = _bulk_source(source, 300, long)
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "MLTRAIL_CAPTURE": "0"}
    env.pop("MLTRAIL_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "mltrail", "import", "mlflow", f"sqlite:///{source}", "--json"]
    subprocess.run([sys.executable, "-m", "mltrail", "init"], cwd=project, env=env, check=True)
    target_db = project / ".mltrail" / "mltrail.db"
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    written = 0
    while written < 2 * 20_000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        try:
            with sqlite3.connect(f"file:{target_db}?mode=ro", uri=True) as con:
                written = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
        except sqlite3.OperationalError:
            continue  # the schema is being created
    assert proc.poll() is None, "the import ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(target_db) as con:
        at_kill = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
    assert 0 < at_kill < long  # half a history, and no run marked yet
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["runs_imported"] + report["runs_updated"] + report["runs_unchanged"] == runs
    with sqlite3.connect(target_db) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == runs
        assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == points
        assert con.execute("SELECT count(*) FROM params").fetchone()[0] == 2 * (runs - 1)
        # Every run is marked complete: nothing is left half imported.
        marked = con.execute(
            "SELECT count(*) FROM tags WHERE key = 'mltrail.import.mlflow'"
        ).fetchone()[0]
        assert marked == runs


def test_an_imported_pyfunc_model_predicts_as_mlflows_did(tmp_path, target, monkeypatch):
    import mlflow
    import pandas as pd

    import mltrail as mt
    from mltrail.importers.mlflow import import_mlflow

    class AddOne(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input["x"] + 1

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlruns = tmp_path / "mlruns"
    mlflow.set_tracking_uri(mlruns.as_uri())
    try:
        mlflow.set_experiment("py")
        with mlflow.start_run():
            mlflow.pyfunc.log_model(
                name="model", python_model=AddOne(), registered_model_name="add-one",
                pip_requirements=["pandas"],
            )  # fmt: skip
    finally:
        mlflow.set_tracking_uri(None)
    assert import_mlflow(str(mlruns), target).skipped == []
    loaded = mt.load_model("models:/add-one/1", client=target)
    assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))) == [2, 3]

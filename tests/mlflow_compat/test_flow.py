"""The whole flow of a team moving in: unchanged mlflow code, then mltrail's own tools on it."""

from __future__ import annotations

import json
import warnings

import pytest

from tests.mlflow_compat.conftest import Served

# mlflow warns about pickle formats and deprecated stages; the calls are the point here.
pytestmark = pytest.mark.filterwarnings("ignore")


def test_the_issue_flow_on_sqlite_and_postgres(server: Served, wine, name, tmp_path, monkeypatch):
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.ensemble import RandomForestClassifier

    import mltrail as mt

    X, y = wine
    monkeypatch.chdir(tmp_path)
    (tmp_path / "feature_importance.csv").write_text("feature,importance\nalcohol,0.2\n")
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment(name)
    mlflow.sklearn.autolog(log_models=False)
    model_name = f"{name}-rf"
    with mlflow.start_run() as run:
        mlflow.log_params({"n_estimators": 20})
        mlflow.log_metric("loss", 0.3, step=1)
        mlflow.log_artifact("feature_importance.csv")
        model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
        mlflow.log_metric("accuracy", float(model.score(X, y)))
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=model_name,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    client = MlflowClient()
    client.set_registered_model_alias(model_name, "production", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage(model_name, "1", "Staging")
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@production")
    assert list(loaded.predict(X)) == list(model.predict(X))
    found = mlflow.search_runs(
        experiment_names=[name],
        filter_string="metrics.accuracy > 0.9",
        order_by=["metrics.accuracy DESC"],
    )
    assert list(found["run_id"]) == [run.info.run_id]
    assert found["params.n_estimators"][0] == "20"

    # The same data through mltrail: an ordinary run, model version, lineage and artifacts.
    mt_client = server.mltrail()
    exp = mt_client.store.get_experiment_by_name(name)
    runs = mt_client.search_runs([exp.experiment_id])
    assert [r.run_id for r in runs] == [run.info.run_id]
    ours = runs[0]
    assert ours.info.status == "FINISHED"
    assert ours.info.run_name == run.info.run_name
    assert ours.data.params["n_estimators"] == "20"
    assert ours.data.metrics["loss"] == 0.3
    assert "mlflow.runName" not in ours.data.tags  # a field of the run, not a tag
    paths = {f.path for f in mt_client.list_artifacts(run.info.run_id)}
    assert "feature_importance.csv" in paths and "model/MLmodel" in paths
    versions = mt_client.list_model_versions(model_name)
    assert [(mv.version, mv.stage, mv.run_id) for mv in versions] == [
        (1, "Staging", run.info.run_id)
    ]
    assert versions[0].aliases == ["production"]
    history = [e.action for e in mt_client.get_model_history(model_name)]
    assert {"create_model", "create_version", "set_alias", "transition_stage"} <= set(history)
    predicted = mt.load_model(f"models:/{model_name}@production", client=mt_client).predict(X)
    assert list(predicted) == list(model.predict(X))

    from mltrail.lineage import graph_from_store

    graph = graph_from_store(mt_client.store, f"models:/{model_name}@production")
    kinds = {n.kind for n in graph.nodes.values()}
    assert {"alias", "model_version", "run"} <= kinds

    # And the web UI's pages.
    import httpx

    html = {"Accept": "text/html"}
    page = httpx.get(f"{server.url}/experiments/{exp.experiment_id}", headers=html)
    assert page.status_code == 200 and run.info.run_name in page.text
    page = httpx.get(f"{server.url}/runs/{run.info.run_id}", headers=html)
    assert page.status_code == 200 and "feature_importance.csv" in page.text
    page = httpx.get(f"{server.url}/models/{model_name}", headers=html)
    assert page.status_code == 200 and "production" in page.text
    mt_client.close()


def test_everything_the_client_logs_is_listed_by_the_mltrail_cli(tracking: Served, name):
    import mlflow
    from click.testing import CliRunner

    from mltrail.cli import cli

    mlflow.set_experiment(name)
    with mlflow.start_run(run_name="from-mlflow"):
        mlflow.log_metric("accuracy", 0.91)
        mlflow.log_param("depth", 5)
    result = CliRunner().invoke(
        cli,
        ["runs", "ls", "--experiment", name, "--json"],
        env={"MLTRAIL_TRACKING_URI": tracking.url},
        prog_name="mltrail",
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert (row["run_name"], row["params.depth"], row["metrics.accuracy"]) == (
        "from-mlflow",
        "5",
        0.91,
    )


def test_a_file_logged_twice_is_stored_once(tracking: Served, name, tmp_path):
    import mlflow

    from mltrail.objects import open_object_store

    data = tmp_path / "weights.bin"
    data.write_bytes(b"\x01" * 100_000)
    mlflow.set_experiment(name)
    for _ in range(2):
        with mlflow.start_run():
            mlflow.log_artifact(str(data))
    objects = open_object_store(tracking.objects)
    mt_client = tracking.mltrail()
    exp = mt_client.store.get_experiment_by_name(name)
    hashes = {
        f.hash for r in mt_client.search_runs([exp.experiment_id]) for f in
        mt_client.list_artifacts(r.run_id)
    }  # fmt: skip
    assert len(hashes) == 1
    assert objects.size(hashes.pop()) == 100_000
    mt_client.close()


@pytest.mark.long  # mlflow autolog of a real fit, then a model load: ~40 s
def test_autolog_logs_a_model_that_mltrail_loads(tracking: Served, name, wine):
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    import mltrail as mt

    X, y = wine
    mlflow.set_experiment(name)
    mlflow.sklearn.autolog()
    model = LogisticRegression(max_iter=5000).fit(X, y)
    run = mlflow.last_active_run()
    assert run is not None and run.info.status == "FINISHED"
    assert run.data.params["max_iter"] == "5000"
    assert "training_accuracy_score" in run.data.metrics
    mt_client = tracking.mltrail()
    loaded = mt.load_model(f"runs:/{run.info.run_id}/model", client=mt_client)
    assert list(loaded.predict(X)) == list(model.predict(X))
    # The training data went in as a named input of the run.
    got = mlflow.get_run(run.info.run_id)
    assert [d.dataset.name for d in got.inputs.dataset_inputs] == ["dataset"]
    mt_client.close()

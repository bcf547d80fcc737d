"""``MLFLOW_TRACKING_URI=mltrail:``: mlflow code writing into an embedded project, no server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")


def test_mlflow_code_writes_into_the_project(tmp_path, monkeypatch, wine):
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    import mltrail as mt

    X, y = wine
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mltrail:")
    mlflow.set_tracking_uri("mltrail:")
    (tmp_path / "notes.txt").write_text("hi")
    mlflow.set_experiment("wine")
    model = LogisticRegression(max_iter=5000).fit(X, y)
    with mlflow.start_run(run_name="lr") as run:
        mlflow.log_params({"C": 1.0})
        for step in range(3):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_artifact("notes.txt")
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="wine-lr",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    mlflow.MlflowClient().set_registered_model_alias("wine-lr", "production", "1")
    loaded = mlflow.pyfunc.load_model("models:/wine-lr@production")
    assert list(loaded.predict(X[:5])) == list(model.predict(X[:5]))
    found = mlflow.search_runs(experiment_names=["wine"], filter_string="params.C = '1.0'")
    assert list(found["run_id"]) == [run.info.run_id]
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes.txt") == "hi"
    assert (tmp_path / ".mltrail" / "mltrail.db").exists()

    # The same project through mltrail's own API.
    client = mt.MltrailClient()
    ours = client.get_run(run.info.run_id)
    assert ours.info.run_name == "lr" and ours.data.metrics["loss"] == pytest.approx(1 / 3)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    [version] = client.list_model_versions("wine-lr")
    assert version.aliases == ["production"] and version.run_id == run.info.run_id
    predicted = mt.load_model("models:/wine-lr@production", client=client).predict(X[:5])
    assert list(predicted) == list(model.predict(X[:5]))
    client.close()


def test_a_project_named_in_the_uri(tmp_path, monkeypatch):
    import mlflow

    import mltrail as mt

    project = tmp_path / "elsewhere"
    project.mkdir()
    mlflow.set_tracking_uri(f"mltrail:{project}")
    mlflow.set_experiment("named")
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
        mlflow.log_text("x", "t.txt")
    client = mt.MltrailClient(str(project))
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["t.txt"]
    client.close()


def test_errors_keep_mlflows_codes(tmp_path, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri("mltrail:")
    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException) as err:
        client.get_run("0" * 32)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name("absent") is None
    exp_id = client.create_experiment("e")
    run_id = client.create_run(exp_id).info.run_id
    client.log_param(run_id, "p", "1")
    with pytest.raises(MlflowException) as err:
        client.log_param(run_id, "p", "2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_uri_that_names_no_project_is_refused_clearly(tmp_path, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{tmp_path / 'loose.db'}")
    mlflow.set_tracking_uri("mltrail:")
    with pytest.raises(MlflowException, match="project"):
        mlflow.MlflowClient().search_experiments()

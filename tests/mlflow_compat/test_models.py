"""Models both ways: MLflow-logged models load and serve in mltrail, mltrail's load in mlflow."""

from __future__ import annotations

import pytest

from tests.mlflow_compat.conftest import Served

pytestmark = pytest.mark.filterwarnings("ignore")


def _log(model, name: str, **options):
    import mlflow.sklearn

    return mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name=name,
        pip_requirements=["scikit-learn"],
        **options,
    )


def test_cloudpickle_and_skops_models_predict_the_same_in_mltrail(tracking: Served, name, wine):
    import mlflow
    from sklearn.ensemble import RandomForestClassifier

    import mltrail as mt

    X, y = wine
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    mlflow.set_experiment(name)
    with mlflow.start_run():
        _log(model, f"{name}-pickle", serialization_format="cloudpickle")
    with mlflow.start_run():
        _log(
            model,
            f"{name}-skops",
            serialization_format="skops",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            input_example=X[:3],
        )
    mt_client = tracking.mltrail()
    for suffix in ("pickle", "skops"):
        loaded = mt.load_model(f"models:/{name}-{suffix}/1", client=mt_client)
        assert list(loaded.predict(X)) == list(model.predict(X)), suffix
    # The skops model's signature came from the input example: mltrail checks input with it.
    loaded = mt.load_model(f"models:/{name}-skops/1", client=mt_client)
    from mltrail.errors import InvalidInput

    with pytest.raises(InvalidInput, match="alcohol"):
        loaded.predict(X.drop(columns=["alcohol"]))
    mt_client.close()


def test_a_skops_file_with_untrusted_types_is_refused(tracking: Served, name, wine, tmp_path):
    import mlflow
    import yaml
    from sklearn.ensemble import RandomForestClassifier

    import mltrail as mt
    from mltrail.errors import InvalidInput
    from mltrail.models.api import fetch_model

    X, y = wine
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        _log(
            RandomForestClassifier(n_estimators=2).fit(X, y),
            name,
            serialization_format="skops",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    folder = fetch_model(f"models:/{name}/1", tmp_path / "m", client=tracking.mltrail())
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"] = []
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(InvalidInput, match="does not trust"):
        mt.load_model(folder)
    assert run.info.run_id


def test_an_mlflow_python_model_loads_through_mlflow(tracking: Served, name):
    import mlflow
    import pandas as pd

    import mltrail as mt

    class AddOne(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input["x"] + 1

    mlflow.set_experiment(name)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=AddOne(),
            registered_model_name=name,
            pip_requirements=["pandas"],
        )
    loaded = mt.load_model(f"models:/{name}/1", client=tracking.mltrail())
    assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))) == [2, 3]


def test_mlflow_loads_what_mltrail_registered(tracking: Served, name, wine):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    import mltrail as mt

    X, y = wine
    model = LogisticRegression(max_iter=5000).fit(X, y)
    client = mt.MltrailClient(tracking.url)
    exp_id = client.create_experiment(name)
    run = client.create_run(exp_id)
    info = mt.log_model(model, "model", registered_name=name, run_id=run.info.run_id, client=client)
    client.set_terminated(run.info.run_id)
    client.set_registered_model_alias(name, "production", info.registered_model_version)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@production")
    assert list(loaded.predict(X)) == list(model.predict(X))
    native = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert list(native.predict(X)) == list(model.predict(X))
    client.close()


def test_an_mlflow_model_serves_with_mltrail(tracking: Served, name, wine):
    import mlflow
    from fastapi.testclient import TestClient
    from sklearn.linear_model import LogisticRegression

    import mltrail as mt
    from mltrail.serving.app import create_app

    X, y = wine
    model = LogisticRegression(max_iter=5000).fit(X, y)
    mlflow.set_experiment(name)
    with mlflow.start_run():
        _log(model, name, serialization_format="cloudpickle", input_example=X[:2])
    loaded = mt.load_model(f"models:/{name}/1", client=tracking.mltrail())
    with TestClient(create_app(loaded)) as http:
        body = {"dataframe_split": X[:4].to_dict(orient="split")}
        body["dataframe_split"].pop("index")
        got = http.post("/invocations", json=body)
    assert got.status_code == 200, got.text
    assert got.json() == {"predictions": [int(v) for v in model.predict(X[:4])]}


def test_a_logged_model_still_uploading_is_not_registered(tracking: Served, name):
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment(name)
    pending = mlflow.initialize_logged_model(name="half")
    assert str(pending.status) in ("LoggedModelStatus.PENDING", "PENDING")
    with pytest.raises(MlflowException) as err:
        mlflow.register_model(f"models:/{pending.model_id}", name)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and "not READY" in str(err.value)
    assert tracking.mltrail().list_model_versions(name) == []  # (the model itself is made first)

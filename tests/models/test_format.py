"""Model folders: save, read back, load for predict, and refuse damaged or foreign ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mltrail.errors import AlreadyExists, InvalidInput, NotFound
from mltrail.models import (
    ModelFormatError,
    get_model_info,
    load_model,
    load_native,
    read_meta,
    save_model,
)


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def fitted(iris):
    X, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


class Doubler:
    """A plain Python model: anything with predict()."""

    def predict(self, model_input):
        return np.asarray(model_input, dtype=float).sum(axis=1) * 2


def test_sklearn_round_trip_keeps_predictions_and_writes_the_files(tmp_path, iris, fitted):
    X, _ = iris
    meta = save_model(fitted, tmp_path / "m", input_example=X[:5])
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == [
        "MLmodel", "input_example.json", "model.pkl", "requirements.txt",
        "serving_input_example.json",
    ]  # fmt: skip
    assert set(meta.flavors) == {"python_function", "sklearn"}
    assert meta.flavors["sklearn"]["sklearn_version"]
    assert meta.signature.inputs.names == list(X.columns)
    assert meta.signature.outputs is not None
    reqs = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in reqs)
    assert any(r.startswith("mltrail==") for r in reqs)
    serving = json.loads((tmp_path / "m" / "serving_input_example.json").read_text())
    assert serving["dataframe_split"]["columns"] == list(X.columns)

    model = load_model(tmp_path / "m")
    assert (model.predict(X) == fitted.predict(X)).all()
    assert load_native(tmp_path / "m", "sklearn").__class__ is fitted.__class__
    assert get_model_info(tmp_path / "m").signature == meta.signature


def test_predict_takes_records_dicts_and_arrays_in_schema_order(tmp_path, iris, fitted):
    X, _ = iris
    model = load_model(save_model(fitted, tmp_path / "m", input_example=X[:5]) and tmp_path / "m")
    expected = fitted.predict(X[:3])
    assert (model.predict(X[:3].to_dict(orient="records")) == expected).all()
    assert (model.predict(X[:3].to_dict(orient="list")) == expected).all()
    assert (model.predict(X[:3].to_numpy()) == expected).all()
    # Columns in another order are put back in the schema's order.
    assert (model.predict(X[:3][list(reversed(X.columns))]) == expected).all()
    # Integers widen to doubles.
    assert len(model.predict(X[:3].round().astype(int))) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["sepal length (cm)"]), "missing column(s) 'sepal length (cm)'"),
        (lambda f: f.assign(extra=1.0), "unexpected column(s) 'extra'"),
        (lambda f: f.astype(object).assign(**{"petal width (cm)": "wide"}), "expects double"),
        (lambda f: f.assign(**{"petal width (cm)": True}), "expects double"),
        (lambda f: f.iloc[:0], "no rows"),
    ],
)
def test_bad_input_names_the_column(tmp_path, iris, fitted, change, message):
    X, _ = iris
    save_model(fitted, tmp_path / "m", input_example=X[:5])
    with pytest.raises(InvalidInput) as err:
        load_model(tmp_path / "m").predict(change(X[:4]))
    assert message in str(err.value)


def test_the_bad_value_and_its_row_are_named(tmp_path, iris, fitted):
    X, _ = iris
    save_model(fitted, tmp_path / "m", input_example=X[:5])
    rows = X[:3].to_dict(orient="records")
    rows[2]["sepal width (cm)"] = "n/a"
    with pytest.raises(InvalidInput, match=r"'sepal width \(cm\)' expects double.*'n/a'.*row 2"):
        load_model(tmp_path / "m").predict(rows)


def test_python_function_flavor_with_a_tensor_signature(tmp_path):
    example = np.array([[1.0, 2.0], [3.0, 4.0]])
    meta = save_model(Doubler(), tmp_path / "m", input_example=example)
    assert list(meta.flavors) == ["python_function"]
    assert meta.signature.inputs.tensor.shape == (-1, 2)
    model = load_model(tmp_path / "m")
    assert model.predict([[1, 1]]).tolist() == [4.0]
    with pytest.raises(InvalidInput, match=r"shape \(-1, 2\); got \(1, 3\)"):
        model.predict([[1, 1, 1]])
    with pytest.raises(InvalidInput, match="array of float64"):
        model.predict([["a", "b"]])


def test_no_example_no_signature_and_input_passes_through(tmp_path, iris, fitted):
    X, _ = iris
    meta = save_model(fitted, tmp_path / "m")
    assert meta.signature is None
    assert not (tmp_path / "m" / "input_example.json").exists()
    assert len(load_model(tmp_path / "m").predict(X[:2])) == 2


def test_explicit_requirements_and_metadata(tmp_path, fitted):
    meta = save_model(
        fitted, tmp_path / "m", pip_requirements=["scikit-learn"], extra_pip_requirements=["x"],
        metadata={"owner": "team-a"},
    )  # fmt: skip
    assert (tmp_path / "m" / "requirements.txt").read_text() == "scikit-learn\nx\n"
    assert read_meta(tmp_path / "m").metadata == {"owner": "team-a"} == meta.metadata


def test_refuses_to_overwrite_and_to_save_what_it_cannot(tmp_path, fitted):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(AlreadyExists, match="not an empty folder"):
        save_model(fitted, tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "x"
    with pytest.raises(InvalidInput, match="no flavor accepts it"):
        save_model(object(), tmp_path / "n")
    with pytest.raises(InvalidInput, match="unknown model flavor 'torch'"):
        save_model(fitted, tmp_path / "n", flavor="torch")
    with pytest.raises(InvalidInput, match="predict_fn 'explode'"):
        save_model(fitted, tmp_path / "n", predict_fn="explode")
    with pytest.raises(InvalidInput, match="serialization_format 'skops'"):
        save_model(fitted, tmp_path / "o", serialization_format="skops")


def test_predict_fn_predict_proba(tmp_path, iris, fitted):
    X, _ = iris
    save_model(fitted, tmp_path / "m", predict_fn="predict_proba", input_example=X[:2])
    assert load_model(tmp_path / "m").predict(X[:2]).shape == (2, 3)


def _write_mlmodel(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavors: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "does not hold a mapping"),
        ("run_id: abc\n", "lists no flavors"),
        ("flavors:\n  sklearn: 3\n", "must be a name with a mapping"),
        ("flavors:\n  sklearn: {pickled_model: model.pkl}\n", "no python_function flavor"),
        (
            "flavors:\n  python_function: {loader_module: evil.module}\n",
            "loaded by 'evil.module', which mltrail does not support",
        ),
        (
            "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"
            "signature: {inputs: 'not json'}\n",
            "not a valid model schema",
        ),
    ],
)
def test_corrupt_or_foreign_mlmodel_files_are_refused(tmp_path, text, message):
    _write_mlmodel(tmp_path / "m", text)
    with pytest.raises(InvalidInput, match=message):
        load_model(tmp_path / "m")


def test_missing_folder_and_missing_mlmodel(tmp_path):
    with pytest.raises(NotFound, match="no model folder at"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="has no MLmodel file"):
        load_model(tmp_path / "empty")


def test_missing_or_damaged_pickle(tmp_path, fitted):
    save_model(fitted, tmp_path / "m")
    (tmp_path / "m" / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InvalidInput, match="cannot load"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.pkl").unlink()
    with pytest.raises(InvalidInput, match=r"model file model\.pkl is missing"):
        load_model(tmp_path / "m")


def test_loads_a_folder_saved_by_mlflow(tmp_path, iris, fitted):
    # The layout MLflow's sklearn flavor writes (cloudpickle), as observed with MLflow 3.17.
    import cloudpickle

    X, _ = iris
    folder = tmp_path / "mlflow-model"
    folder.mkdir()
    with open(folder / "model.pkl", "wb") as f:
        cloudpickle.dump(fitted, f)
    columns = [{"type": "double", "name": c, "required": True} for c in X.columns]
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": "3.11.7",
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": "cloudpickle",
                "sklearn_version": "1.9.1",
            },
        },
        "mlflow_version": "3.17.2",
        "model_id": "m-0123456789abcdef0123456789abcdef",
        "signature": {"inputs": json.dumps(columns), "outputs": None, "params": None},
        "utc_time_created": "2026-11-20 10:00:00.000000",
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    model = load_model(folder)
    assert (model.predict(X[:5]) == fitted.predict(X[:5])).all()
    assert model.metadata.extra["mlflow_version"] == "3.17.2"
    with pytest.raises(InvalidInput, match="missing column"):
        model.predict(X[:5].iloc[:, :2])


def test_source_date_epoch_makes_the_same_model_save_to_the_same_bytes(
    tmp_path, iris, fitted, monkeypatch
):
    X, _ = iris
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")
    save_model(fitted, tmp_path / "a", input_example=X[:5])
    save_model(fitted, tmp_path / "b", input_example=X[:5])
    for name in ("MLmodel", "model.pkl", "input_example.json", "requirements.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert read_meta(tmp_path / "a").utc_time_created == "2000-01-01 00:00:00.000000"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InvalidInput, match="SOURCE_DATE_EPOCH='yesterday' is not a time"):
        save_model(fitted, tmp_path / "c")
    assert not (tmp_path / "c").exists()

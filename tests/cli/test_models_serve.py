"""``mltrail models predict`` on files, and ``mltrail models serve`` refusing bad models."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mltrail.serving.server import model_uri
from tests.cli.conftest import Invoke
from tests.serving import models

X, _ = models.wine()


@pytest.fixture(scope="module")
def wine_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("cli-models") / "wine"
    forest = models.save_wine_model(folder)
    return folder, forest


# -- predict ---------------------------------------------------------------------------------
def test_predict_csv_to_csv(invoke: Invoke, wine_dir, tmp_path: Path):
    folder, forest = wine_dir
    X.to_csv(tmp_path / "in.csv", index=False)
    result = invoke("models", "predict", str(folder), "-i", "in.csv", "-o", "out.csv")
    assert result.stdout == "Wrote 178 predictions to out.csv\n"
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["prediction"].tolist() == forest.predict(X).tolist()


def test_predict_json_to_stdout(invoke: Invoke, wine_dir, tmp_path: Path):
    folder, forest = wine_dir
    rows = X.iloc[:3]
    doc = {"dataframe_split": {"columns": list(X.columns), "data": rows.values.tolist()}}
    (tmp_path / "in.json").write_text(json.dumps(doc))
    result = invoke("models", "predict", str(folder), "-i", "in.json")
    assert json.loads(result.stdout) == {"predictions": forest.predict(rows).tolist()}
    csv = invoke("models", "predict", str(folder), "-i", "in.json", "--format", "csv").stdout
    assert csv.splitlines() == ["prediction", *map(str, forest.predict(rows))]


def test_predict_with_an_explicit_content_type(invoke: Invoke, wine_dir, tmp_path: Path):
    folder, forest = wine_dir
    X.iloc[:2].to_csv(tmp_path / "rows.txt", index=False)
    out = invoke(
        "models", "predict", str(folder), "-i", "rows.txt", "--content-type", "text/csv"
    ).stdout
    assert out.splitlines()[1:] == [str(p) for p in forest.predict(X.iloc[:2])]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("in.txt", ("-i", "in.txt"), "cannot tell the format of in.txt from its extension"),
        ("in.csv", ("-i", "in.csv", "-o", "out.xlsx"), "extension of out.xlsx"),
        ("bad.csv", ("-i", "bad.csv"), "column 'ash' expects double values; got 'x' (str)"),
        ("short.csv", ("-i", "short.csv"), "missing column(s) 'proline'"),
        ("one.json", ("-i", "one.json"), "one.json: missing column(s) 'malic_acid'"),
    ],
)
def test_predict_refuses_bad_inputs(invoke: Invoke, wine_dir, tmp_path: Path, setup, args, message):
    folder, _ = wine_dir
    if setup == "in.txt" or setup == "in.csv":
        X.iloc[:2].to_csv(tmp_path / setup, index=False)
    elif setup == "bad.csv":
        frame = X.iloc[:5].astype(object)
        frame.loc[3, "ash"] = "x"
        frame.to_csv(tmp_path / setup, index=False)
    elif setup == "short.csv":
        X.iloc[:2].drop(columns="proline").to_csv(tmp_path / setup, index=False)
    elif setup == "one.json":
        (tmp_path / setup).write_text(json.dumps({"dataframe_records": [{"alcohol": 13.2}]}))
    result = invoke("models", "predict", str(folder), *args, code=1)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out.xlsx").exists()


def test_predict_refuses_a_missing_input_file(invoke: Invoke, wine_dir):
    folder, _ = wine_dir
    result = invoke("models", "predict", str(folder), "-i", "missing.csv", code=2)
    assert "File 'missing.csv' does not exist" in result.stderr


def test_predict_names_the_row_and_line_of_a_bad_value(invoke: Invoke, wine_dir, tmp_path: Path):
    folder, _ = wine_dir
    frame = X.astype(object)
    frame.loc[150, "hue"] = "?"
    frame.to_csv(tmp_path / "in.csv", index=False)
    err = invoke("models", "predict", str(folder), "-i", "in.csv", "-o", "o.csv", code=1).stderr
    assert "in.csv: column 'hue' expects double values; got '?' (str) in row 150 (line 152)" in err
    assert not (tmp_path / "o.csv").exists()


# -- serve refuses what it cannot load, before listening ------------------------------------
@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("./no-such-folder", "error: no model folder at ./no-such-folder"),
        ("empty", "is not a model folder: it has no MLmodel file"),
        ("wine@production", "cannot look up models:/wine@production"),
    ],
)
def test_serve_refuses_a_bad_model_without_starting(invoke: Invoke, tmp_path: Path, model, message):
    (tmp_path / "empty").mkdir()
    result = invoke("models", "serve", model, "--port", "0", code=1)
    assert message in result.stderr, result.stderr
    assert "Serving" not in result.stdout
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_unknown_registered_model(invoke: Invoke, seeded):
    result = invoke("models", "serve", "models:/nope@production", "--port", "0", code=1)
    assert "nope" in result.stderr
    assert "Serving" not in result.stdout
    assert "Traceback" not in result.stderr


def test_model_references():
    assert model_uri("wine@production") == "models:/wine@production"
    assert model_uri("wine/3") == "models:/wine/3"
    assert model_uri("wine/Production") == "models:/wine/Production"
    assert model_uri("wine") == "models:/wine/latest"
    assert model_uri("runs:/abc/model") == "runs:/abc/model"
    assert model_uri(".") == "."

"""NaN, null and 1e999 into ``/invocations``: 400 naming the column and row, checked against what
the signature records (column types; required columns take a value in every row)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltrail.models import load_model, save_model
from mltrail.models.signature import ColSpec, Schema
from tests.serving import models
from tests.serving.conftest import Client, client_for

X, _ = models.wine()
COLUMNS = list(X.columns)
ROW = [float(v) for v in X.iloc[0]]


def _body(value: str, column: int = 2, row: int = 1, shape: str = "split") -> str:
    """A three-row request with ``value`` (JSON text: NaN, null, 1e999) at (row, column)."""
    rows = [[json.dumps(v) for v in ROW] for _ in range(3)]
    rows[row][column] = value
    if shape == "split":
        data = ",".join("[" + ",".join(r) + "]" for r in rows)
        return f'{{"dataframe_split": {{"columns": {json.dumps(COLUMNS)}, "data": [{data}]}}}}'
    if shape == "inputs":  # the fast path for all-double models
        return '{"inputs": [' + ",".join("[" + ",".join(r) + "]" for r in rows) + "]}"
    records = ",".join(
        "{" + ",".join(f"{json.dumps(c)}: {v}" for c, v in zip(COLUMNS, r, strict=True)) + "}"
        for r in rows
    )
    return f'{{"dataframe_records": [{records}]}}'


def _message(response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert "Traceback" not in body["message"]
    return body["message"]


@pytest.mark.parametrize("shape", ["split", "inputs", "records"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("NaN", "missing value"),
        ("null", "missing value"),
        ("1e999", "Infinity"),
        ("-1e999", "-Infinity"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_non_finite_values_are_a_400_naming_column_and_row(
    wine: Client, value: str, says: str, shape: str
) -> None:
    message = _message(wine.post(_body(value, shape=shape), "application/json"))
    assert "column 'ash'" in message and "row 1" in message, message
    assert says in message


@pytest.mark.parametrize("value", ["", "inf", "nan"])
def test_csv_gaps_and_infinities_are_a_400(wine: Client, value: str) -> None:
    lines = [",".join(COLUMNS)] + [",".join(str(v) for v in ROW)] * 3
    cells = lines[2].split(",")
    cells[0] = value
    lines[2] = ",".join(cells)
    message = _message(wine.post("\n".join(lines) + "\n", "text/csv"))
    assert "column 'alcohol'" in message and "row 1" in message, message


def test_valid_input_is_still_200(wine: Client, wine_model) -> None:
    for shape in ("split", "inputs", "records"):
        response = wine.post(_body(json.dumps(ROW[2]), shape=shape), "application/json")
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 3


def test_a_float_column_refuses_numbers_past_float32(tmp_path: Path) -> None:
    class Echo:
        def predict(self, model_input):
            return model_input["x"].to_numpy()

    save_model(Echo(), tmp_path / "m", input_example=pd.DataFrame({"x": np.float32([1.0])}))
    client = client_for(tmp_path / "m")
    message = _message(client.post_json({"dataframe_split": {"columns": ["x"], "data": [[1e39]]}}))
    assert "column 'x'" in message and "row 0" in message
    assert client.post_json({"inputs": [[1.5]]}).status_code == 200


def test_optional_columns_take_missing_values(tmp_path: Path) -> None:
    class Count:
        def predict(self, model_input):
            return model_input["x"].isna().astype(int).to_numpy()

    example = pd.DataFrame({"x": [1.0, np.nan], "name": ["a", None]})
    save_model(Count(), tmp_path / "m", input_example=example)
    model = load_model(tmp_path / "m")
    assert model.signature.inputs.columns == (
        ColSpec("x", "double", False),
        ColSpec("name", "string", False),
    )
    client = client_for(tmp_path / "m")
    response = client.post(
        '{"dataframe_split": {"columns": ["x", "name"], '
        '"data": [[NaN, null], [null, "b"], [2.0, "c"]]}}',
        "application/json",
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [1, 1, 0]
    # Infinity is never a missing value.
    message = _message(
        client.post('{"dataframe_records": [{"x": 1e999, "name": "a"}]}', "application/json")
    )
    assert "column 'x'" in message


def test_required_flag_round_trips_in_the_mlflow_form() -> None:
    schema = Schema(columns=(ColSpec("a", "double"), ColSpec("b", "string", False)))
    assert json.loads(schema.to_json()) == [
        {"type": "double", "name": "a", "required": True},
        {"type": "string", "name": "b", "required": False},
    ]
    assert Schema.from_json(schema.to_json()) == schema
    # MLflow's files without the flag: required, as MLflow reads them.
    assert Schema.from_json('[{"type": "double", "name": "a"}]').columns[0].required


def test_a_tensor_model_refuses_infinity(model_dirs) -> None:
    client = client_for(model_dirs["tensor"])
    message = _message(client.post('{"instances": [[0.5, 0.5], [1e999, 1]]}', "application/json"))
    assert "Infinity" in message and "row 1" in message

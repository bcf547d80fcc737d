"""The scoring server in-process: every request shape, CSV, and every kind of bad request."""

from __future__ import annotations

import json
import logging
import math

import pytest

from mltrail._version import __version__
from tests.serving import models
from tests.serving.conftest import Client, client_for

X, _ = models.wine()
COLUMNS = list(X.columns)
ROWS = X.iloc[[0, 60, 130]]


def _expected(wine_model) -> list[int]:
    return wine_model.unwrap().predict(ROWS).tolist()


def _split(rows=ROWS, columns=None) -> dict:
    columns = columns or list(rows.columns)
    return {"dataframe_split": {"columns": columns, "data": rows[columns].to_numpy().tolist()}}


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert "Traceback" not in body["message"]
    return body["message"]


# -- health and version ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_ping_and_health_answer_200(wine: Client, path: str):
    response = wine.get(path)
    assert response.status_code == 200
    assert response.text == "\n"


def test_version_is_the_mltrail_version_as_plain_text(wine: Client):
    response = wine.get("/version")
    assert response.status_code == 200
    assert response.text == __version__


def test_unknown_route_and_wrong_method_use_the_error_shape(wine: Client):
    assert _error(wine.get("/nope"), 404) == "Not Found"
    assert wine.get("/nope").json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert wine.get("/invocations").json()["error_code"] == "METHOD_NOT_ALLOWED"


# -- the JSON shapes -------------------------------------------------------------------------
def test_dataframe_split_predicts_what_the_model_predicts(wine: Client, wine_model):
    response = wine.post_json(_split())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": _expected(wine_model)}


def test_dataframe_split_with_columns_in_another_order_and_an_index(wine: Client, wine_model):
    doc = _split(columns=list(reversed(COLUMNS)))
    assert wine.post_json(doc).json()["predictions"] == _expected(wine_model)
    doc["dataframe_split"]["index"] = [10, 11, 12]
    assert wine.post_json(doc).json()["predictions"] == _expected(wine_model)


def test_integers_widen_to_doubles(wine: Client, wine_model):
    doc = _split()
    doc["dataframe_split"]["data"] = [[int(v) for v in row] for row in ROWS.to_numpy()]
    response = wine.post_json(doc)
    assert response.status_code == 200, response.text
    rounded = ROWS.to_numpy().astype(int).astype(float)
    assert (
        response.json()["predictions"]
        == wine_model.unwrap().predict(ROWS.__class__(rounded, columns=COLUMNS)).tolist()
    )


def test_dataframe_records(wine: Client, wine_model):
    response = wine.post_json({"dataframe_records": ROWS.to_dict(orient="records")})
    assert response.json() == {"predictions": _expected(wine_model)}


@pytest.mark.parametrize(
    "doc",
    [
        {"instances": ROWS.to_dict(orient="records")},
        {"inputs": ROWS.to_dict(orient="records")},
        {"inputs": ROWS.to_dict(orient="list")},
        {"inputs": ROWS.to_numpy().tolist()},
        {"instances": ROWS.to_numpy().tolist()},
    ],
    ids=["instances-records", "inputs-records", "inputs-columns", "inputs-array", "instances-2d"],
)
def test_instances_and_inputs(wine: Client, wine_model, doc: dict):
    response = wine.post_json(doc)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": _expected(wine_model)}


def test_one_flat_row_of_inputs(wine: Client, wine_model):
    response = wine.post_json({"inputs": ROWS.iloc[0].tolist()})
    assert response.json() == {"predictions": _expected(wine_model)[:1]}


def test_params_are_accepted_and_ignored(wine: Client, wine_model):
    doc = {**_split(), "params": {"temperature": 0.5}}
    assert wine.post_json(doc).json() == {"predictions": _expected(wine_model)}


def test_charset_utf8_is_the_one_accepted_parameter(wine: Client, wine_model):
    body = json.dumps(_split())
    for content_type in ("application/json; charset=utf-8", "Application/JSON;charset=UTF-8"):
        response = wine.post(body, content_type)
        assert response.json() == {"predictions": _expected(wine_model)}, content_type


def test_a_thousand_rows(wine: Client, wine_model):
    rows = X.sample(1000, replace=True, random_state=1)
    response = wine.post_json(_split(rows))
    assert response.json()["predictions"] == wine_model.unwrap().predict(rows).tolist()


# -- CSV -------------------------------------------------------------------------------------
def test_csv_with_a_header_row(wine: Client, wine_model):
    response = wine.post(ROWS.to_csv(index=False), "text/csv")
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": _expected(wine_model)}
    response = wine.post(ROWS.to_csv(index=False), "text/csv; charset=utf-8")
    assert response.json() == {"predictions": _expected(wine_model)}


def test_csv_without_a_header_row_is_refused(wine: Client):
    message = _error(wine.post(ROWS.to_csv(index=False, header=False), "text/csv"), 400)
    assert "no header row" in message
    assert "alcohol,malic_acid" in message


def test_csv_with_a_bad_value_names_column_and_row(wine: Client):
    frame = ROWS.astype(object)
    frame.iloc[1, 0] = "abc"
    message = _error(wine.post(frame.to_csv(index=False), "text/csv"), 400)
    assert message == "column 'alcohol' expects double values; got 'abc' (str) in row 1"


def test_empty_csv_is_refused(wine: Client):
    assert "empty" in _error(wine.post(b"  \n", "text/csv"), 400)


# -- bad JSON requests -----------------------------------------------------------------------
def test_missing_column_is_named(wine: Client):
    doc = _split(columns=COLUMNS[1:])
    message = _error(wine.post_json(doc), 400)
    assert message.startswith("missing column(s) 'alcohol'")
    assert wine.post_json(doc).json()["error_code"] == "BAD_REQUEST"


def test_unexpected_column_is_named(wine: Client):
    rows = ROWS.assign(colour=1.0)
    message = _error(wine.post_json(_split(rows)), 400)
    assert message.startswith("unexpected column(s) 'colour'")


def test_wrong_type_names_column_value_and_row(wine: Client):
    doc = _split()
    doc["dataframe_split"]["data"][0][0] = "abc"
    message = _error(wine.post_json(doc), 400)
    assert message == "column 'alcohol' expects double values; got 'abc' (str) in row 0"


def test_a_boolean_among_numbers_is_not_taken_for_one(wine: Client):
    doc = _split()
    doc["dataframe_split"]["data"][2][3] = True
    message = _error(wine.post_json(doc), 400)
    assert message == "column 'alcalinity_of_ash' expects double values; got True (bool) in row 2"


def test_null_is_a_missing_value_for_a_double_column(wine: Client):
    doc = _split()
    doc["dataframe_split"]["data"][0][0] = None
    # Random forests take NaN, but the signature (from an example with no gaps) requires a value;
    # test_missing_and_infinite.py has the optional columns that take one.
    message = _error(wine.post_json(doc), 400)
    assert message.startswith("column 'alcohol' has a missing value (null or NaN) in row 0")


def test_ragged_rows_are_named(wine: Client):
    doc = _split()
    doc["dataframe_split"]["data"][1] = doc["dataframe_split"]["data"][1][:-1]
    message = _error(wine.post_json(doc), 400)
    assert message.startswith("row 1 of dataframe_split.data has 12 values; expected a list of 13")


def test_no_rows(wine: Client):
    doc = {"dataframe_split": {"columns": COLUMNS, "data": []}}
    assert "no rows" in _error(wine.post_json(doc), 400)
    assert "no rows" in _error(wine.post_json({"dataframe_records": []}), 400)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "the request body is empty"),
        (b"   \n", "the request body is empty"),
        (b'{"dataframe_split": ', "the body is not valid JSON"),
        (b"\xff\xfe{", "the body is not valid JSON"),
        (b"[1, 2]", "expected a JSON object with one of dataframe_split"),
        (b"{}", "the request has none of the keys dataframe_split"),
        (b'{"inputs": [[1]], "instances": [[1]]}', "the request has instances and inputs; send"),
        (b'{"dataframe_split": {}, "inputs": []}', "send exactly one of them"),
        (b'{"inputs": [[1]], "input": 2}', "unexpected key(s) 'input'"),
        (b'{"inputs": [[1]], "params": [1]}', "params must be a JSON object"),
        (b'{"inputs": null}', "inputs is null"),
        (b'{"dataframe_split": [1, 2]}', "dataframe_split must be an object"),
        (b'{"dataframe_records": {"a": 1}}', "dataframe_records must be a list of objects"),
        (b'{"inputs": [[1, 2], [3]]}', "cannot read inputs"),
        (b'{"inputs": [[1, 2]]}', "expected 13 columns"),
    ],
)
def test_bad_bodies_get_400_with_a_message(wine: Client, body: bytes, expected: str):
    message = _error(wine.post(body, "application/json"), 400)
    assert expected in message


# -- content types ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/plain", "unsupported content type 'text/plain'"),
        ("application/xml", "Send Content-Type: application/json or text/csv"),
        ("application/json; charset=latin-1", "unsupported content type parameter"),
        ("application/json; format=pandas-split", "'format=pandas-split'"),
        (None, "the request has no Content-Type header"),
    ],
)
def test_unsupported_content_types_get_415(wine: Client, content_type, expected: str):
    response = wine.post(json.dumps(_split()), content_type)
    assert expected in _error(response, 415)
    assert response.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


# -- body limit ------------------------------------------------------------------------------
class Counted:
    """A request body of ``total`` bytes in 1 MiB chunks that counts how much was read."""

    CHUNK = b"x" * (1 << 20)

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def __iter__(self):
        while self.sent < self.total:
            self.sent += len(self.CHUNK)
            yield self.CHUNK


def test_a_100_mb_body_with_a_length_is_refused_before_it_is_read(wine: Client):
    body = Counted(100 << 20)
    headers = {"Content-Type": "application/json", "Content-Length": str(body.total)}
    response = wine.request("POST", "/invocations", content=body, headers=headers)
    message = _error(response, 413)
    assert "larger than the server's limit of 50 MB" in message
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert body.sent <= 1 << 20


def test_a_chunked_100_mb_body_is_cut_off_at_the_limit(wine: Client):
    body = Counted(100 << 20)
    response = wine.request(
        "POST", "/invocations", content=body, headers={"Content-Type": "application/json"}
    )
    assert _error(response, 413)
    assert 50 << 20 < body.sent <= (50 << 20) + 2 * len(Counted.CHUNK)


def test_the_limit_is_configurable(model_dirs):
    small = client_for(model_dirs["wine"], max_body_bytes=1000)
    assert _error(small.post(json.dumps(_split(X.iloc[:20])), "application/json"), 413)
    assert "1000 bytes" in small.post(b"x" * 1001, "application/json").json()["message"]
    assert small.post(json.dumps(_split(X.iloc[:1])), "application/json").status_code == 200


# -- failures inside the model ---------------------------------------------------------------
def test_a_model_that_raises_gets_500_without_details(model_dirs, caplog):
    client = client_for(model_dirs["exploding"])
    with caplog.at_level(logging.ERROR, logger="mltrail.serving"):
        response = client.post_json(_split())
    message = _error(response, 500)
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "secret detail" not in response.text
    assert "server log" in message
    # The details are in the server's log, traceback included.
    record = next(r for r in caplog.records if r.name == "mltrail.serving")
    assert record.exc_info is not None
    assert "secret detail" in str(record.exc_info[1])


# -- other models ----------------------------------------------------------------------------
def test_a_dataframe_output_comes_back_as_records(model_dirs):
    client = client_for(model_dirs["mixed"])
    doc = {"dataframe_records": [{"name": "a", "x": 1.5, "n": 2}, {"name": "b", "x": 2.0, "n": 3}]}
    response = client.post_json(doc)
    assert response.json() == {
        "predictions": [{"name": "a", "score": 3.0}, {"name": "b", "score": 6.0}]
    }


def test_mixed_columns_are_checked_by_type(model_dirs):
    client = client_for(model_dirs["mixed"])
    doc = {"dataframe_split": {"columns": ["name", "x", "n"], "data": [["a", 1.0, 1.5]]}}
    assert _error(client.post_json(doc), 400) == (
        "column 'n' expects long values; got 1.5 (float) in row 0"
    )
    doc = {"dataframe_split": {"columns": ["name", "x", "n"], "data": [[7, 1.0, 1]]}}
    assert "column 'name' expects string values; got 7 (int)" in _error(client.post_json(doc), 400)
    csv = "name,x,n\nc,0.5,4\n"
    assert client.post(csv, "text/csv").json() == {"predictions": [{"name": "c", "score": 2.0}]}


def test_a_tensor_model_takes_arrays_and_nan_comes_back_as_null(model_dirs):
    client = client_for(model_dirs["tensor"])
    response = client.post_json({"inputs": [[1.0, 2.0], [-1.0, 5.0]]})
    assert response.json() == {"predictions": [3.0, None]}
    message = _error(client.post_json({"inputs": [[1.0, 2.0, 3.0]]}), 400)
    assert "shape (-1, 2)" in message
    assert not math.isnan(client.post_json({"instances": [[0.5, 0.5]]}).json()["predictions"][0])

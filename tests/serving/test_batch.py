"""Batch prediction of files: chunked CSV, JSON, atomic outputs, errors that name file rows."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from mltrail.errors import InvalidInput, NotFound
from mltrail.models import load_model
from mltrail.serving.batch import input_kind, predict_file
from tests.serving import models

X, _ = models.wine()


def _expected(wine_model, rows: pd.DataFrame = X) -> list[int]:
    return wine_model.unwrap().predict(rows).tolist()


def test_csv_in_csv_out_in_chunks_matches_the_model(tmp_path: Path, wine_model):
    source = tmp_path / "in.csv"
    X.to_csv(source, index=False)
    seen: list[tuple[int, int]] = []
    result = predict_file(
        wine_model,
        source,
        tmp_path / "out.csv",
        chunk_rows=50,
        progress=lambda done, rows: seen.append((done, rows)),
    )
    assert result.rows == len(X) == 178
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["prediction"]
    assert out["prediction"].tolist() == _expected(wine_model)
    assert [rows for _, rows in seen] == [50, 100, 150, 178]
    assert seen[-1][0] == source.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_json_in_json_out(tmp_path: Path, wine_model):
    source = tmp_path / "in.json"
    rows = X.iloc[:7]
    source.write_text(json.dumps({"dataframe_records": rows.to_dict(orient="records")}))
    predict_file(wine_model, source, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc == {"predictions": _expected(wine_model, rows)}


def test_csv_to_a_json_stream_in_chunks(tmp_path: Path, wine_model):
    source = tmp_path / "in.csv"
    X.to_csv(source, index=False)
    stream = io.BytesIO()
    result = predict_file(wine_model, source, stream, output_format="json", chunk_rows=64)
    assert result.output_format == "json"
    assert json.loads(stream.getvalue()) == {"predictions": _expected(wine_model)}


def test_stdout_format_follows_the_input(tmp_path: Path, wine_model):
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"inputs": X.iloc[:2].to_numpy().tolist()}))
    stream = io.BytesIO()
    assert predict_file(wine_model, source, stream).output_format == "json"
    assert json.loads(stream.getvalue())["predictions"] == _expected(wine_model, X.iloc[:2])


def test_a_dataframe_output_keeps_its_columns(tmp_path: Path, model_dirs):
    source = tmp_path / "in.csv"
    source.write_text("name,x,n\na,1.5,2\nb,2.0,3\n")
    predict_file(load_model(model_dirs["mixed"]), source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "name,score\na,3.0\nb,6.0\n"


def test_a_2d_output_gets_numbered_columns(tmp_path: Path, model_dirs):
    # predict_proba-like outputs: one column per class.
    from mltrail.models import save_model

    folder = tmp_path / "proba"
    forest = models.save_wine_model(tmp_path / "unused")
    save_model(forest, folder, input_example=X[:3], predict_fn="predict_proba")
    source = tmp_path / "in.csv"
    X.iloc[:4].to_csv(source, index=False)
    predict_file(load_model(folder), source, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["prediction_0", "prediction_1", "prediction_2"]
    assert out.to_numpy().tolist() == forest.predict_proba(X.iloc[:4]).tolist()


def test_a_bad_value_is_named_by_file_row_and_line(tmp_path: Path, wine_model):
    frame = X.astype(object)
    frame.loc[120, "hue"] = "n/a?"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(InvalidInput) as e:
        predict_file(wine_model, source, tmp_path / "out.csv", chunk_rows=50)
    assert e.value.message == (
        f"{source}: column 'hue' expects double values; got 'n/a?' (str) in row 120 (line 122)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_missing_columns_are_named(tmp_path: Path, wine_model):
    source = tmp_path / "in.csv"
    X.drop(columns=["proline"]).to_csv(source, index=False)
    with pytest.raises(InvalidInput, match=r"in.csv: missing column\(s\) 'proline'"):
        predict_file(wine_model, source, tmp_path / "out.csv")


def test_a_failed_run_leaves_an_existing_output_untouched(tmp_path: Path, wine_model):
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    source = tmp_path / "in.csv"
    source.write_text("alcohol\n1.0\n")
    with pytest.raises(InvalidInput):
        predict_file(wine_model, source, out)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("missing.csv", None, NotFound, "no input file"),
        ("in.txt", "a\n", InvalidInput, "cannot tell the format of .*in.txt"),
        ("empty.csv", "", InvalidInput, "empty.csv is empty"),
        ("blank.csv", "\n\n", InvalidInput, "blank.csv has no header row"),
        ("bad.json", "{", InvalidInput, "bad.json: the body is not valid JSON"),
        ("keys.json", '{"rows": []}', InvalidInput, r"unexpected key\(s\) 'rows'"),
        ("noheader.csv", "1.0,2.0\n3.0,4.0\n", InvalidInput, "has no header row"),
    ],
)
def test_bad_inputs(tmp_path: Path, wine_model, name, content, error, match):
    source = tmp_path / name
    if content is not None:
        source.write_text(content)
    with pytest.raises(error, match=match):
        predict_file(wine_model, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_output_names(tmp_path: Path, wine_model):
    source = tmp_path / "in.csv"
    X.iloc[:2].to_csv(source, index=False)
    with pytest.raises(InvalidInput, match=r"extension of .*out\.txt"):
        predict_file(wine_model, source, tmp_path / "out.txt")
    with pytest.raises(NotFound, match="there is no folder"):
        predict_file(wine_model, source, tmp_path / "nope" / "out.csv")
    predict_file(wine_model, source, tmp_path / "out.txt", output_format="csv")
    assert (tmp_path / "out.txt").read_text().startswith("prediction\n")


def test_input_kinds():
    assert input_kind(Path("a.CSV")) == "csv"
    assert input_kind(Path("a.csv.gz")) == "csv"
    assert input_kind(Path("a.json")) == "json"
    assert input_kind(Path("a.parquet")) == "parquet"


def test_gzipped_csv(tmp_path: Path, wine_model):
    source = tmp_path / "in.csv.gz"
    X.iloc[:10].to_csv(source, index=False)
    predict_file(wine_model, source, tmp_path / "out.csv", chunk_rows=4)
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == _expected(
        wine_model, X.iloc[:10]
    )


def test_parquet(tmp_path: Path, wine_model):
    # No importorskip: pyarrow is in the test extra, so a missing one fails instead of hiding.
    source = tmp_path / "in.parquet"
    X.to_parquet(source)
    predict_file(wine_model, source, tmp_path / "out.csv", chunk_rows=100)
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == _expected(wine_model)

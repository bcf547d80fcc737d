"""``mltrail runs diff``."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke


def _rows(out: str) -> dict[str, list[str]]:
    """key → the cells after it, for every data row of the table."""
    rows = {}
    for line in out.splitlines():
        cells = line.replace("≠", " ").split()
        if len(cells) == 3 and cells[1:] != ["keys", "differ"]:
            rows[cells[0]] = cells[1:]
    return rows


def test_diff_side_by_side(invoke: Invoke, seeded):
    out = invoke("runs", "diff", seeded["depth-3"][:6], seeded["baseline"][:6]).stdout
    assert f"A = {seeded['depth-3']}  depth-3" in out
    assert f"B = {seeded['baseline']}  baseline" in out
    rows = _rows(out)
    assert rows["max_depth"] == ["3", "3"]
    assert rows["optimizer"] == ["adam", "—"]
    assert rows["only_a"] == ["—", "x"]
    assert rows["accuracy"] == [repr(0.5 + 3 / 10 + 2 / 100), "NaN"]  # every digit
    assert rows["loss"][1] == "inf"
    marked = {line.split()[1] for line in out.splitlines() if line.startswith("≠")}
    assert marked == {"optimizer", "only_a", "accuracy", "loss"}
    assert "4 of 5 keys differ" in out


def test_only_diff(invoke: Invoke, seeded):
    out = invoke("runs", "diff", seeded["depth-3"], seeded["baseline"], "--only-diff").stdout
    assert "max_depth" not in out
    assert set(_rows(out)) == {"optimizer", "only_a", "accuracy", "loss"}


def test_identical_runs_only_diff(invoke: Invoke, seeded):
    out = invoke("runs", "diff", seeded["depth-3"], seeded["depth-3"], "--only-diff").stdout
    assert out.strip() == "No differences."


def test_nan_equals_nan(invoke: Invoke, seeded):
    data = json.loads(
        invoke("runs", "diff", seeded["baseline"], seeded["baseline"], "--json").stdout
    )
    assert not any(row["differs"] for row in data["metrics"])


def test_diff_json(invoke: Invoke, seeded):
    data = json.loads(
        invoke("runs", "diff", seeded["depth-1"], seeded["baseline"], "--json").stdout
    )
    assert data["a"] == {"run_id": seeded["depth-1"], "run_name": "depth-1"}
    by_key = {row["key"]: row for row in data["params"] + data["metrics"]}
    assert by_key["only_a"] == {"key": "only_a", "a": None, "b": "x", "differs": True}
    assert by_key["loss"]["b"] == "Infinity"
    assert by_key["accuracy"]["b"] == "NaN"


def test_diff_unknown_run(invoke: Invoke, seeded):
    result = invoke("runs", "diff", seeded["depth-1"], "deadbeef", code=1)
    assert "no run id starts with 'deadbeef'" in result.stderr

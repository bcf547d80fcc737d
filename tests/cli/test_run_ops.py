"""``mltrail runs history``, ``runs delete``, ``runs restore``."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke


def test_history_table(invoke: Invoke, seeded):
    out = invoke("runs", "history", seeded["depth-2"][:5], "accuracy").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["step", "accuracy", "time"]
    assert [line.split()[:2] for line in lines[2:]] == [["0", "0.7"], ["1", "0.71"], ["2", "0.72"]]


def test_history_json_and_limit(invoke: Invoke, seeded):
    points = json.loads(
        invoke("runs", "history", seeded["depth-2"], "accuracy", "--json", "-n", "2").stdout
    )
    assert [p["step"] for p in points] == [1, 2]
    assert set(points[0]) == {"step", "value", "timestamp"}
    out = invoke("runs", "history", seeded["depth-2"], "accuracy", "--limit", "1").stdout
    assert "last 1 of 3 points shown" in out


def test_history_nan_in_json(invoke: Invoke, seeded):
    points = json.loads(invoke("runs", "history", seeded["baseline"], "accuracy", "--json").stdout)
    assert points[0]["value"] == "NaN"


def test_history_unknown_metric_lists_the_known_ones(invoke: Invoke, seeded):
    result = invoke("runs", "history", seeded["depth-2"], "acc", code=1)
    assert result.stderr.splitlines() == [
        f"error: run {seeded['depth-2'][:8]} has no metric 'acc'",
        "hint: Its metrics: accuracy, loss",
    ]


def test_delete_and_restore(invoke: Invoke, seeded):
    a, b = seeded["depth-1"], seeded["depth-2"]
    out = invoke("runs", "delete", a[:6], b).stdout
    assert f"Deleted run {a[:8]} (depth-1)" in out
    assert f"Deleted run {b[:8]} (depth-2)" in out
    assert f"Undo with: mltrail runs restore {a[:8]} {b[:8]}" in out
    deleted = [r["run_id"] for r in json.loads(invoke("runs", "ls", "--deleted", "--json").stdout)]
    assert set(deleted) == {a, b, seeded["gone"]}

    out = invoke("runs", "restore", a, b[:4]).stdout
    assert f"Restored run {a[:8]} (depth-1)" in out
    assert len(json.loads(invoke("runs", "ls", "--json").stdout)) == 6


def test_a_typo_changes_nothing(invoke: Invoke, seeded):
    result = invoke("runs", "delete", seeded["depth-1"], "ffffffff", code=1)
    assert "no run id starts with 'ffffffff'" in result.stderr
    assert len(json.loads(invoke("runs", "ls", "--json").stdout)) == 6


def test_partial_failure_reports_each_and_exits_1(invoke: Invoke, seeded):
    result = invoke("runs", "delete", seeded["gone"], seeded["depth-1"], code=1)
    assert "is already deleted" in result.stderr
    assert f"Deleted run {seeded['depth-1'][:8]}" in result.stdout


def test_restore_needs_a_run(invoke: Invoke, seeded):
    result = invoke("runs", "restore", code=2)
    assert "Missing argument 'RUN...'" in result.stderr


def test_restoring_a_run_of_a_deleted_experiment(invoke: Invoke, seeded):
    invoke("runs", "delete", seeded["depth-1"])
    invoke("exp", "delete", "sweep")
    result = invoke("runs", "restore", seeded["depth-1"], code=1)
    assert "deleted experiment" in result.stderr
    assert "hint: Restore the experiment first" in result.stderr

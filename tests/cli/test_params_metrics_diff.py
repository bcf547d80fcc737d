"""`mltrail params diff` and `mltrail metrics diff` between Git revisions and the working tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrail.config import init_project
from tests.cli.conftest import Invoke
from tests.data import git, write

PIPELINE = """\
params: [extra.json]
stages:
  train:
    cmd: python train.py
    params: [train.max_depth, train.n_estimators]
    metrics: [metrics.json]
  evaluate:
    cmd: python evaluate.py
    params: [{eval.yaml: [threshold]}]
    metrics: [reports/eval.yaml]
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two commits: v1 and the next, which changes params and metrics."""
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q", "-b", "main")
    init_project(tmp_path)
    write(tmp_path / "mltrail.yaml", PIPELINE)
    write(tmp_path / "params.yaml", "train:\n  max_depth: 4\n  n_estimators: 100\nseed: 1\n")
    write(tmp_path / "eval.yaml", "threshold: 0.5\n")
    write(tmp_path / "metrics.json", json.dumps({"accuracy": 0.81, "loss": 0.5, "n": 10}))
    write(tmp_path / "reports" / "eval.yaml", "auc: 0.9\nclasses:\n  a: {f1: 0.7}\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "v1")
    git(tmp_path, "tag", "v1")
    write(tmp_path / "params.yaml", "train:\n  max_depth: 8\n  n_estimators: 100\nseed: 1\n")
    write(tmp_path / "metrics.json", json.dumps({"accuracy": 0.85, "loss": 0.45, "n": 10}))
    write(tmp_path / "extra.json", json.dumps({"batch": {"size": 32}}))  # new in this commit
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "deeper")
    return tmp_path


def test_params_between_two_commits(repo: Path, invoke: Invoke):
    out = invoke("params", "diff", "v1", "HEAD").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["Path", "Param", "v1", "HEAD"]
    assert ["params.yaml", "train.max_depth", "4", "8"] in [line.split() for line in lines]
    assert ["extra.json", "batch.size", "—", "32"] in [line.split() for line in lines]
    assert "n_estimators" not in out and "seed" not in out  # unchanged: hidden
    assert all(len(line) <= 80 for line in lines)
    out = invoke("params", "diff", "v1", "HEAD", "--all").stdout
    assert "train.n_estimators" in out and "seed" in out and "threshold" in out


def test_head_against_the_working_tree_is_the_default(repo: Path, invoke: Invoke):
    out = invoke("params", "diff").stdout
    assert out == "No params changed between HEAD and the working tree.\n"
    write(repo / "eval.yaml", "threshold: 0.6\n")
    out = invoke("params", "diff").stdout
    assert out.splitlines()[0].split() == ["Path", "Param", "HEAD", "workspace"]
    assert ["eval.yaml", "threshold", "0.5", "0.6"] in [line.split() for line in out.splitlines()]


def test_metrics_diff_with_change_column(repo: Path, invoke: Invoke):
    out = invoke("metrics", "diff", "v1", "HEAD").stdout
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["Path", "Metric", "v1", "HEAD", "Change"]
    assert ["metrics.json", "accuracy", "0.81", "0.85", "+0.04"] in rows
    assert ["metrics.json", "loss", "0.5", "0.45", "-0.05"] in rows
    assert not any(r[1] == "n" for r in rows[2:])
    write(repo / "reports" / "eval.yaml", "auc: 0.95\nclasses:\n  a: {f1: 0.75}\n")
    rows = [line.split() for line in invoke("metrics", "diff").stdout.splitlines()]
    assert ["reports/eval.yaml", "classes.a.f1", "0.7", "0.75", "+0.05"] in rows


def test_json_and_markdown(repo: Path, invoke: Invoke):
    data = json.loads(invoke("metrics", "diff", "v1", "HEAD", "--json").stdout)
    assert data["a_rev"] == "v1" and data["b_rev"] == "HEAD"
    assert data["files"] == ["metrics.json", "reports/eval.yaml"]
    by_key = {c["key"]: c for c in data["changes"]}
    assert by_key["accuracy"] == {
        "path": "metrics.json",
        "key": "accuracy",
        "old": 0.81,
        "new": 0.85,
        "state": "modified",
        "change": 0.04,
    }
    assert "n" not in by_key
    data = json.loads(invoke("params", "diff", "v1", "HEAD", "--json", "--all").stdout)
    states = {(c["path"], c["key"]): c["state"] for c in data["changes"]}
    assert states[("params.yaml", "seed")] == "unchanged"
    assert states[("extra.json", "batch.size")] == "added"
    assert data["b_rev"] == "HEAD"
    md = invoke("metrics", "diff", "v1", "HEAD", "--md").stdout.splitlines()
    assert md[0] == "| Path | Metric | v1 | HEAD | Change |"
    assert md[1] == "|---|---|---|---|---|"
    assert "| metrics.json | accuracy | 0.81 | 0.85 | +0.04 |" in md


def test_a_file_missing_on_one_side(repo: Path, invoke: Invoke):
    (repo / "metrics.json").unlink()
    data = json.loads(invoke("metrics", "diff", "--json").stdout)
    gone = [c for c in data["changes"] if c["path"] == "metrics.json"]
    assert {c["key"] for c in gone} == {"accuracy", "loss", "n"}
    assert all(c["state"] == "deleted" and c["new"] is None for c in gone)
    rows = [line.split() for line in invoke("metrics", "diff").stdout.splitlines()]
    assert ["metrics.json", "accuracy", "0.85", "—", "—"] in rows


def test_bad_revision_and_bad_files_are_clear_errors(repo: Path, invoke: Invoke):
    result = invoke("params", "diff", "nope", code=1)
    assert result.stdout == ""
    assert "error: unknown Git revision 'nope'" in result.stderr and "hint:" in result.stderr
    result = invoke("metrics", "diff", "HEAD", "also-nope", code=1)
    assert "unknown Git revision 'also-nope'" in result.stderr
    write(repo / "params.yaml", "train: [unclosed\n")
    result = invoke("params", "diff", code=1)
    assert "params.yaml (in the working tree) cannot be parsed" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_pipeline_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invoke: Invoke):
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    init_project(tmp_path)
    write(tmp_path / "params.yaml", "lr: 0.1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    write(tmp_path / "params.yaml", "lr: 0.2\n")
    rows = [line.split() for line in invoke("params", "diff").stdout.splitlines()]
    assert ["params.yaml", "lr", "0.1", "0.2"] in rows
    out = invoke("metrics", "diff").stdout
    assert out.startswith("No metrics files: list them under a stage's `metrics:` in mltrail.yaml")

"""``mltrail data log``: a dataset's versions with the runs that used them."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.config import init_project
from mltrail.tracking.client import MltrailClient
from tests.cli.conftest import Invoke
from tests.data import git

CSV = "data/customers.csv"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _add(root: Path, text: str) -> str:
    path = root / CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    then = time.time() - 10
    os.utime(path, (then, then))
    return data.add([CSV])[0].hash


def _runs(names: list[str], direction: str = "input") -> list[str]:
    client = MltrailClient()
    ids = []
    for name in names:
        run = client.create_run("0", run_name=name).run_id
        (client.log_input if direction == "input" else client.log_output)(run, CSV)
        client.set_terminated(run)
        ids.append(run)
    client.close()
    return ids


def test_log_table_and_json(project: Path, invoke: Invoke):
    git(project, "init", "-q")
    v1 = _add(project, "id\n1\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "data v1", date="2026-01-05T10:00:00+00:00")
    c1 = git(project, "rev-parse", "HEAD")
    trained = _runs(["train-a", "train-b", "train-c", "train-d"])
    v2 = _add(project, "id\n1\n2\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "data v2", date="2026-02-05T10:00:00+00:00")
    _runs(["prep"], "output")
    (project / CSV).write_text("never added\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _runs(["sloppy"])

    out = invoke("data", "log", CSV).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["date", "commit", "hash", "size", "files", "runs"]
    rows = [" ".join(line.split()) for line in lines[2:5]]
    assert rows[0].endswith("ago — " + rows[0].split()[3] + " 12 B 1 1: sloppy")
    assert rows[1].startswith("* 2026-02-05 ")
    assert f" {v2[:12]} 7 B 1 1: prep (output)" in rows[1]
    assert rows[2] == f"2026-01-05 {c1[:7]} {v1[:12]} 5 B 1 4: train-d, train-c, …"
    assert lines[5:] == [
        "3 versions of data/customers.csv",
        "* = the version its pointer names now",
        "— = never committed, seen in runs only",
    ]

    got = json.loads(invoke("data", "log", f"{CSV}.trail", "--json").stdout)
    assert (got["path"], got["in_git"]) == (CSV, True)
    assert [v["hash"][:12] for v in got["versions"]][1:] == [v2[:12], v1[:12]]
    oldest = got["versions"][2]
    assert (oldest["commit"], oldest["current"], oldest["size"], oldest["nfiles"]) == (
        c1,
        False,
        5,
        None,
    )
    assert [r["run_id"] for r in oldest["runs"]] == trained[::-1]
    assert oldest["commits"][0]["subject"] == "data v1"


def test_without_git(project: Path, invoke: Invoke):
    _add(project, "one\n")
    out = invoke("data", "log", CSV).stdout
    assert " — " in out.splitlines()[2]
    assert "no Git history (not a Git repository, or no commits yet)" in out
    assert json.loads(invoke("data", "log", CSV, "--json").stdout)["in_git"] is False


def test_untracked_and_outside(project: Path, invoke: Invoke):
    (project / "notes.txt").write_text("x")
    result = invoke("data", "log", "notes.txt", code=1)
    assert result.stderr.splitlines() == [
        "error: notes.txt is not tracked (no notes.txt.trail)",
        "hint: Track it first: mltrail data add notes.txt",
    ]
    result = invoke("data", "log", "../elsewhere.csv", code=1)
    assert "is outside the project" in result.stderr
    assert "Traceback" not in result.output

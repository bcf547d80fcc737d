"""A project with Git and a two-stage pipeline whose commands count their executions."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from mltrail.config import init_project
from tests.data import settle, write

TRAIN = """
import json, sys
import yaml
p = yaml.safe_load(open("params.yaml"))["train"]
open("counter.txt", "a").write("train\\n")
if p.get("fail"):
    sys.stderr.write("line one\\nboom: training diverged\\n")
    sys.exit(3)
open("model.txt", "w").write(f"depth={p['max_depth']}")
json.dump({"acc": p["max_depth"] / 10, "nested": {"loss": 0.25}}, open("metrics.json", "w"))
"""
PREPARE = """
import os, shutil
os.makedirs("data/prepared", exist_ok=True)
shutil.copy("data/raw.csv", "data/prepared/a.csv")
open("data/prepared/b.csv", "w").write(open("data/raw.csv").read().upper())
open("counter.txt", "a").write("prepare\\n")
"""
PIPELINE = """
pipeline: demo
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, data/raw.csv]
    outs: [data/prepared]
  train:
    cmd: python train.py
    deps: [train.py, data/prepared]
    params: [train.max_depth, train.fail]
    outs: [model.txt]
    metrics: [metrics.json]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project (and Git repository) that is the working directory."""
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLTRAIL_OBJECTS", raising=False)
    monkeypatch.setenv("MLTRAIL_CAPTURE", "0")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def pipeline(project: Path) -> Path:
    """The project with prepare -> train (params.yaml, metrics.json, a counter file)."""
    write(project / "prepare.py", PREPARE)
    write(project / "train.py", TRAIN)
    write(project / "data" / "raw.csv", "a,b\n1,2\n")
    write(project / "params.yaml", "train:\n  max_depth: 5\n  fail: 0\n")
    write(project / "mltrail.yaml", textwrap.dedent(PIPELINE))
    settle(project / "prepare.py", project / "train.py", project / "data", project / "params.yaml")
    return project


def runs(project: Path) -> list[str]:
    """Return the lines of the counter file: one per stage command executed."""
    path = project / "counter.txt"
    return path.read_text().split() if path.exists() else []

"""``repro --grid … -j N``: points at the same time, each in a temporary workspace."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mltrail.cli import cli
from mltrail.pipeline.runner import repro
from mltrail.pipeline.sweep import TAG_GRID_POINT, sweep
from mltrail.tracking.client import MltrailClient
from tests.data import write

# Writes when it started and ended to $GRID_LOG (outside the workspace); x=3 fails.
STEP = """
import json, os, sys, time
import yaml
x = yaml.safe_load(open("params.yaml"))["x"]
log = os.environ["GRID_LOG"]
open(log, "a").write(f"start {x} {time.time()}\\n")
time.sleep(0.4)
open("out.txt", "w").write(f"x={x}")
json.dump({"score": x * 10}, open("metrics.json", "w"))
open(log, "a").write(f"end {x} {time.time()}\\n")
if x == 3:
    sys.stderr.write("boom: x=3 is not allowed\\n")
    sys.exit(2)
"""
PIPELINE = """
pipeline: demo
stages:
  step:
    cmd: python step.py
    deps: [step.py]
    params: [x]
    outs: [out.txt]
    metrics: [metrics.json]
"""


@pytest.fixture
def grid_project(project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """A one-stage project, run once with x=1; GRID_LOG names a log file outside it."""
    write(project / "step.py", STEP)
    write(project / "params.yaml", "x: 1  # a comment the sweep must keep\n")
    write(project / "mltrail.yaml", textwrap.dedent(PIPELINE))
    monkeypatch.setenv("GRID_LOG", str(tmp_path_factory.mktemp("log") / "times.log"))
    repro()
    Path(_log()).unlink()
    return project


def _log() -> str:
    import os

    return os.environ["GRID_LOG"]


def _intervals() -> dict[int, tuple[float, float]]:
    times: dict[int, dict[str, float]] = {}
    for line in Path(_log()).read_text().splitlines():
        what, x, t = line.split()
        times.setdefault(int(x), {})[what] = float(t)
    return {x: (t["start"], t["end"]) for x, t in times.items()}


def _snapshot(root: Path) -> dict[str, bytes]:
    names = ["params.yaml", "mltrail.lock", "out.txt", "out.txt.trail", "metrics.json"]
    return {n: (root / n).read_bytes() for n in names}


def test_points_run_at_once_in_temp_workspaces_and_the_workspace_is_untouched(grid_project: Path):
    before = _snapshot(grid_project)
    points = sweep(["x=2,3,4,5"], jobs=2)
    spans = sorted(_intervals().values())
    assert len(spans) == 4
    # Two points overlapped: one started before another ended.
    assert any(spans[i + 1][0] < spans[i][1] for i in range(3)), spans
    assert [p.overrides for p in points] == [["x=2"], ["x=3"], ["x=4"], ["x=5"]]
    assert [p.error for p in points if p.error] == [
        "stage 'step' failed: its command exited with code 2"
    ]
    assert [p.metrics.get("score") for p in points if not p.error] == [20.0, 40.0, 50.0]
    assert all(p.result and p.result.count("ran") == 1 for p in points if not p.error)
    assert _snapshot(grid_project) == before
    assert not (grid_project / ".mltrail" / "tmp" / "grid").exists() or not any(
        (grid_project / ".mltrail" / "tmp" / "grid").iterdir()
    )
    client = MltrailClient(str(grid_project), create=False)
    try:
        exp = client.get_experiment_by_name("demo")
        assert exp is not None
        found = [
            r for r in client.search_runs([exp.experiment_id]) if TAG_GRID_POINT in r.data.tags
        ]
        by_point = {r.data.tags[TAG_GRID_POINT]: r for r in found}
        assert sorted(by_point) == ["x=2", "x=3", "x=4", "x=5"] and len(found) == 4
        assert {p: r.data.params["x"] for p, r in by_point.items()} == {
            "x=2": "2",
            "x=3": "3",
            "x=4": "4",
            "x=5": "5",
        }
        assert by_point["x=3"].info.status == "FAILED"
        ok = by_point["x=4"]
        assert ok.info.status == "FINISHED" and ok.data.metrics["score"] == 40.0
        datasets = client.get_run_datasets(ok.info.run_id)
        assert {d.dataset.path for d in datasets if d.direction == "output"} == {
            "out.txt", "metrics.json"
        }  # fmt: skip
        assert {d.dataset.path for d in datasets if d.direction == "input"} == {"step.py"}
    finally:
        client.close()
    # Each point's outs are in the run cache: setting a swept value restores without running.
    result = repro(overrides=["x=4"])
    assert [s.action for s in result.stages] == ["restored"]
    assert (grid_project / "out.txt").read_text() == "x=4"


def test_cli_prefixes_lines_with_the_point_and_exits_1_when_one_fails(grid_project: Path):
    before = _snapshot(grid_project)
    result = CliRunner().invoke(cli, ["repro", "--grid", "x=2,3", "-j", "2"], prog_name="mltrail")
    assert result.exit_code == 1, result.output
    assert "[x=2] Running stage 'step' (params changed: x)" in result.stdout
    assert "[x=3] Stage 'step' failed" in result.stdout
    assert "== grid point done: x=2 (1 ran, 0 restored)" in result.stdout
    assert "[x=3] boom: x=3 is not allowed" in result.stderr
    assert "1 grid point(s) failed: x=3: stage 'step' failed" in result.stderr
    assert _snapshot(grid_project) == before

"""End to end: ``python -m mltrail`` in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli

pytestmark = pytest.mark.slow


def test_init_log_list_show_diff(tmp_path: Path):
    out = run_cli("init", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Initialized mltrail project" in out.stdout

    from mltrail.tracking.client import MltrailClient

    client = MltrailClient(str(tmp_path / ".mltrail"))
    ids = []
    for depth in (2, 4):
        run = client.create_run("0", run_name=f"d{depth}")
        client.log_params(run.run_id, {"max_depth": depth})
        client.log_metric(run.run_id, "accuracy", depth / 5)
        client.log_text(run.run_id, f"model {depth}", "model.txt")
        client.set_terminated(run.run_id)
        ids.append(run.run_id)
    client.close()

    out = run_cli("runs", "ls", "-f", "metrics.accuracy > 0.5", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [r["run_id"] for r in json.loads(out.stdout)] == [ids[1]]

    out = run_cli("runs", "ls", "-s", "-metrics.accuracy", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].startswith(ids[1][:8]) and lines[3].startswith(ids[0][:8])
    assert max(map(len, lines)) <= 80

    out = run_cli("runs", "show", ids[0][:5], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "max_depth  2" in out.stdout and "model.txt" in out.stdout

    out = run_cli("runs", "diff", ids[0][:5], ids[1][:5], "--only-diff", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "max_depth" in out.stdout and "2 keys differ" in out.stdout

    out = run_cli("runs", "download", ids[1][:5], "model.txt", "-o", "m.txt", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.txt").read_text() == "model 4"

    out = run_cli("doctor", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✗" not in out.stdout


def test_errors_in_a_real_process(tmp_path: Path):
    out = run_cli("runs", "ls", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.startswith("error: no .mltrail folder")
    assert not (tmp_path / ".mltrail").exists()

    assert run_cli("init", cwd=tmp_path).returncode == 0
    out = run_cli("runs", "ls", "--json", "-f", "metrics.a >> 1", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines()[1:] == ["  metrics.a >> 1", "             ^"]
    assert "Traceback" not in out.stderr

    out = run_cli("runs", "ls", "--limit", "0", cwd=tmp_path)
    assert out.returncode == 2

    garbage = b"not a database" * 100
    (tmp_path / ".mltrail" / "mltrail.db").unlink()
    (tmp_path / ".mltrail" / "mltrail.db").write_bytes(garbage)
    out = run_cli("exp", "ls", cwd=tmp_path)
    assert out.returncode == 1
    assert "is not a usable mltrail store" in out.stderr
    assert (tmp_path / ".mltrail" / "mltrail.db").read_bytes() == garbage


@pytest.mark.postgres
def test_team_store_on_postgresql(tmp_path: Path, postgres):
    """The same commands against a PostgreSQL store, objects in a folder, via the environment."""
    uri = postgres.create_database()
    env = {"MLTRAIL_TRACKING_URI": uri, "MLTRAIL_OBJECTS": str(tmp_path / "objects")}
    script = tmp_path / "train.py"
    script.write_text(
        "import mltrail as mt\n"
        "mt.set_experiment('pg')\n"
        "for depth in (3, 5):\n"
        "    with mt.start_run(run_name=f'd{depth}'):\n"
        "        mt.log_params({'max_depth': depth})\n"
        "        for step in range(100):\n"
        "            mt.log_metric('loss', 1 / (step + 1), step=step)\n"
        "        mt.log_metrics({'accuracy': depth / 10})\n"
        "        mt.log_text('report', 'report.txt')\n"
    )
    train = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), **env},
        capture_output=True,
        text=True,
    )
    assert train.returncode == 0, train.stderr
    assert not (tmp_path / ".mltrail").exists()

    out = run_cli("exp", "ls", "--json", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "pg" in [e["name"] for e in json.loads(out.stdout)]
    out = run_cli(
        "runs", "ls", "-e", "pg", "-f", "params.max_depth = 5", "--json", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["metrics.accuracy"] == 0.5
    out = run_cli("runs", "history", row["run_id"], "loss", "--json", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 100
    out = run_cli("runs", "show", row["run_id"][:8], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "report.txt" in out.stdout

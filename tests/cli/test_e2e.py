"""End to end: ``python -m mltrail`` in a subprocess, as a user runs it."""

from __future__ import annotations

import json
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

"""Interpreter exit drains the logging queue and ends active runs with the right status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mltrail import MltrailClient

NO_END = """
import mltrail as mt
mt.start_run()
for i in range(20000):
    mt.log_metric("x", i, step=i)
print(mt.active_run().run_id)
"""

CRASH = """
import mltrail as mt
run = mt.start_run()
print(run.run_id, flush=True)
mt.log_metric("x", 1.0)
raise SystemError("boom")
"""


def _run(tmp_path: Path, code: str) -> tuple[str, subprocess.CompletedProcess]:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    return proc.stdout.split()[0], proc


def test_exit_drains_queue_and_finishes_run(tmp_path: Path):
    run_id, proc = _run(tmp_path, NO_END)
    assert proc.returncode == 0, proc.stderr
    client = MltrailClient(str(tmp_path))
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(client.get_metric_history(run_id, "x")) == 20000


def test_uncaught_exception_marks_failed(tmp_path: Path):
    run_id, proc = _run(tmp_path, CRASH)
    assert proc.returncode == 1 and "boom" in proc.stderr
    run = MltrailClient(str(tmp_path)).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"x": 1.0}

"""Several processes on one embedded store; a process killed mid-logging."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mltrail import MltrailClient

WORKER = """
import sys
import mltrail as mt
mt.set_tracking_uri(sys.argv[1])
mt.set_experiment("concurrent")
n = int(sys.argv[2])
with mt.start_run(run_name=sys.argv[3]) as run:
    mt.log_params({"worker": sys.argv[3]})
    for i in range(n):
        mt.log_metric("x", float(i), step=i)
        if i % 500 == 0:
            mt.set_tag("progress", str(i))
print(run.run_id)
"""

KILLED = """
import sys, time
import mltrail as mt
mt.set_tracking_uri(sys.argv[1])
with mt.start_run():
    i = 0
    while True:
        mt.log_metric("x", float(i), step=i)
        i += 1
        if i % 2000 == 0:
            mt.flush()
            print(i, flush=True)
"""


@pytest.mark.slow
def test_eight_processes_lose_nothing(tmp_path: Path):
    store = tmp_path / "proj"
    store.mkdir()
    n = 5000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store), str(n), f"w{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    run_ids = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        assert "locked" not in err
        run_ids.append(out.strip())
    client = MltrailClient(str(store))
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run_id, "x")
        assert [m.step for m in history] == list(range(n))
    assert len(client.search_runs(client.get_experiment_by_name("concurrent").experiment_id)) == 8


@pytest.mark.slow
def test_sigkill_mid_logging_leaves_a_sound_store(tmp_path: Path):
    store = tmp_path / "proj"
    store.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(store)], stdout=subprocess.PIPE, text=True
    )
    # Wait for some flushed batches, then kill while more are being written.
    assert proc.stdout is not None
    for _ in range(3):
        assert proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    db = store / ".mltrail" / "mltrail.db"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    client = MltrailClient(str(store))
    (run,) = client.search_runs("0")
    assert run.info.status == "RUNNING"  # it never ended; the store says so honestly
    steps = [m.step for m in client.get_metric_history(run.run_id, "x")]
    assert len(steps) >= 6000 and steps == list(range(len(steps)))
    # The store takes new writes after the crash.
    new = client.create_run()
    client.log_metric(new.run_id, "y", 1.0)
    client.set_terminated(new.run_id)

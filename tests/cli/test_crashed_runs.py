"""A crashed run in the CLI: `runs ls` and `runs show` say KILLED, and why."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_liveness import killed_run, posix_only


@posix_only
def test_runs_ls_and_runs_show_show_a_crashed_run_killed(tmp_path: Path, invoke) -> None:
    client, run_id = killed_run(tmp_path)
    client.close()
    store = ["--store", f"sqlite:///{tmp_path / 'mltrail.db'}"]
    listed = invoke(*store, "runs", "ls", "-e", "crash")
    assert "KILLED" in listed.stdout and "RUNNING" not in listed.stdout
    rows = json.loads(invoke(*store, "runs", "ls", "-e", "crash", "--json").stdout)
    assert rows[0]["status"] == "KILLED" and "pid" in rows[0]["status_reason"]
    text = invoke(*store, "runs", "show", run_id).stdout
    assert "KILLED (its process" in text and "last heard of" in text and "so far" not in text
    doc = json.loads(invoke(*store, "runs", "show", run_id, "--json").stdout)
    assert doc["status"] == "KILLED" and doc["status_reason"]

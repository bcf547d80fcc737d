"""Crashed runs: a run whose process died is shown KILLED, by pid on its host, else by heartbeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mltrail import MltrailClient
from mltrail.entities import RunBatch
from mltrail.tracking import liveness
from mltrail.tracking.liveness import TAG_HEARTBEAT, TAG_HOST, TAG_PROCESS, shown
from tests.live import wait_for


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """A run's tags without the liveness ones every run of this library carries."""
    return {k: v for k, v in tags.items() if k not in liveness.TAGS}


posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")

_KILLED_CLIENT = """
    import os, signal, sys
    from mltrail import MltrailClient
    client = MltrailClient(sys.argv[1], objects=sys.argv[2])
    run = client.create_run(client.create_experiment("crash"), run_name="doomed")
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.flush()
    print(run.info.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_run(tmp_path: Path) -> tuple[MltrailClient, str]:
    """A SQLite store holding a run whose process was SIGKILLed while it ran."""
    uri, objects = f"sqlite:///{tmp_path / 'mltrail.db'}", str(tmp_path / "objects")
    env = {**os.environ, "PYTHONPATH": str(Path(liveness.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_CLIENT), uri, objects],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return MltrailClient(uri, objects=objects), done.stdout.strip()


@posix_only
def test_a_run_whose_process_was_killed_is_shown_killed_with_the_reason(tmp_path: Path) -> None:
    client, run_id = killed_run(tmp_path)
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # what the store holds: nobody ended it
    seen = shown(run)
    assert seen.status == "KILLED" and not seen.running
    assert "ended without ending the run" in seen.reason and "pid" in seen.reason
    assert seen.end_time is not None and seen.end_time >= run.info.start_time
    client.close()


def test_a_live_run_of_this_process_stays_running_whatever_its_heartbeat(
    tmp_path: Path,
) -> None:
    client = MltrailClient(f"sqlite:///{tmp_path / 'db'}", objects=str(tmp_path / "o"))
    run = client.create_run(client.create_experiment("e"))
    assert set(run.data.tags) >= {TAG_PROCESS, TAG_HOST, TAG_HEARTBEAT}
    long_ago = str(int(time.time() * 1000) - 86_400_000)
    client.set_tag(run.info.run_id, TAG_HEARTBEAT, long_ago)
    assert shown(client.get_run(run.info.run_id)) == liveness.Shown("RUNNING")
    client.set_terminated(run.info.run_id)
    assert shown(client.get_run(run.info.run_id)).status == "FINISHED"
    client.close()


def test_a_run_of_another_host_is_judged_by_its_heartbeat(tmp_path: Path, monkeypatch) -> None:
    client = MltrailClient(f"sqlite:///{tmp_path / 'db'}", objects=str(tmp_path / "o"))
    run = client.create_run(client.create_experiment("e"))
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    # Written by a process on another machine: only its heartbeat tells whether it lives.
    elsewhere = {TAG_PROCESS: "0a0a0a0a-0b0b0b0b-4242-777", TAG_HOST: "gpu-node-7"}
    client.store.write_batches([RunBatch(run_id, tags={**elsewhere, TAG_HEARTBEAT: str(now)})])
    assert shown(client.get_run(run_id)).status == "RUNNING"
    seen = shown(client.get_run(run_id), now_ms=now + 301_000)
    assert seen.status == "KILLED" and seen.end_time == now
    assert seen.reason == "no heartbeat from gpu-node-7 for 5 min"
    monkeypatch.setenv("MLTRAIL_HEARTBEAT_TIMEOUT", "3600")
    assert shown(client.get_run(run_id), now_ms=now + 301_000).status == "RUNNING"
    monkeypatch.setenv("MLTRAIL_HEARTBEAT_TIMEOUT", "soon")  # a typo: the default, not chaos
    assert shown(client.get_run(run_id), now_ms=now + 301_000).status == "KILLED"
    client.close()


def test_runs_without_liveness_tags_are_shown_as_stored(tmp_path: Path) -> None:
    client = MltrailClient(f"sqlite:///{tmp_path / 'db'}", objects=str(tmp_path / "o"))
    # Created as an importer or the mlflow client's routes do: straight in the store.
    run = client.store.create_run(client.create_experiment("e"), "old", "ann", 1_000)
    assert shown(run, now_ms=10**13).status == "RUNNING"
    client.close()


def test_the_heartbeat_is_refreshed_while_the_run_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(liveness, "HEARTBEAT_SECONDS", 0.05)
    client = MltrailClient(f"sqlite:///{tmp_path / 'db'}", objects=str(tmp_path / "o"))
    run = client.create_run(client.create_experiment("e"))
    run_id, first = run.info.run_id, run.data.tags[TAG_HEARTBEAT]
    wait_for(lambda: client.get_run(run_id).data.tags[TAG_HEARTBEAT] != first)
    client.set_terminated(run_id)
    client.close()


def test_a_resumed_run_belongs_to_the_process_that_resumed_it(tmp_path: Path) -> None:
    client, run_id = killed_run(tmp_path)
    client.resume_run(run_id)
    assert shown(client.get_run(run_id)).status == "RUNNING"
    client.set_terminated(run_id)
    client.close()

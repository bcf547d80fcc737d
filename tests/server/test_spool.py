"""The client spool: nothing logged to a server is lost while it is down, killed, or offline."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mltrail.cli import cli
from tests.live import serve, wait_for
from tests.server.conftest import default_settings

pytest.importorskip("fastapi")

# Logs POINTS points of "loss", a param, a tag and an artifact; waits for GO (if set) before
# ending the run, and for ever (until killed) when END=0.
SCRIPT = """
import os, sys, time
from pathlib import Path
import mltrail as mt

mt.set_experiment("spooled")
with open("note.txt", "w") as f:
    f.write("hello")
run = mt.start_run(run_name="r", capture=False)
from mltrail.tracking.fluent import get_client
get_client().set_experiment_tag(run.info.experiment_id, "team", "vision")
mt.log_param("lr", "0.1")
for i in range(int(os.environ["POINTS"])):
    mt.log_metric("loss", i / 10, step=i)
mt.set_tag("phase", "done")
mt.log_artifact("note.txt")
mt.flush() if os.environ.get("FLUSH") == "1" else None
print(run.info.run_id, flush=True)
go = os.environ.get("GO")
if os.environ.get("END") == "0":
    time.sleep(600)
while go and not Path(go).exists():
    time.sleep(0.05)
mt.end_run()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLTRAIL_MODE", None)
    env.update(
        MLTRAIL_TRACKING_URI=url,
        MLTRAIL_SPOOL_DIR=str(tmp_path / "spool"),
        MLTRAIL_CAPTURE="0",
        HOME=str(tmp_path / "home"),
        **extra,
    )
    return env


def _start(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "train.py").write_text(textwrap.dedent(SCRIPT))
    return subprocess.Popen(
        [sys.executable, "train.py"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(url: str, run_id: str) -> dict:
    with httpx.Client(base_url=url, timeout=30) as c:
        run = c.get(f"/api/v1/runs/{run_id}").json()
        points = c.get(f"/api/v1/runs/{run_id}/metrics", params={"key": "loss"}).json()
        files = c.get(f"/api/v1/runs/{run_id}/artifacts").json()["files"]
    run["points"] = sorted(p["step"] for p in points["metrics"])
    run["files"] = [f["path"] for f in files]
    return run


def _records(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "spool").rglob("*.json") if "rejected" not in p.parts]


def test_a_server_down_while_logging_loses_nothing_and_the_run_ends_after_its_data(
    tmp_path: Path,
):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    go = tmp_path / "go"
    proc = _start(tmp_path, _env(tmp_path, url, POINTS="3000", GO=str(go)))
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    assert len(run_id) == 32, proc.stderr.read()  # type: ignore[union-attr]
    # Everything it logged is on disk while no server answers.
    wait_for(lambda: len(_records(tmp_path)) >= 4)
    with serve(default_settings(tmp_path), port=port):
        go.touch()
        assert proc.wait(120) == 0, proc.stderr.read()  # type: ignore[union-attr]
        run = _run(url, run_id)
    assert run["info"]["status"] == "FINISHED"
    assert run["points"] == list(range(3000))
    assert run["data"]["params"] == {"lr": "0.1"}
    assert run["data"]["tags"]["phase"] == "done"
    assert run["files"] == ["note.txt"]
    assert _records(tmp_path) == []


def _killed_with_writes(tmp_path: Path, points: int) -> tuple[int, str]:
    """A client that logged ``points`` with no server up, SIGKILLed: (the port, its run id)."""
    port = _free_port()
    proc = _start(tmp_path, _env(tmp_path, f"http://127.0.0.1:{port}", POINTS=str(points), END="0"))
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    assert len(run_id) == 32, proc.stderr.read()  # type: ignore[union-attr]
    wait_for(lambda: len(_records(tmp_path)) >= 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return port, run_id


def test_a_killed_client_leaves_its_writes_for_mltrail_sync(tmp_path: Path):
    port, run_id = _killed_with_writes(tmp_path, 500)
    url = f"http://127.0.0.1:{port}"
    env = {"MLTRAIL_SPOOL_DIR": str(tmp_path / "spool"), "MLTRAIL_FLUSH_TIMEOUT": "1"}
    waiting = CliRunner().invoke(cli, ["sync", "--dry-run", "--json"], env=env)
    assert waiting.exit_code == 0, waiting.output
    (server,) = json.loads(waiting.output)["servers"]
    assert server["server"] == url and server["runs"] == 1 and server["points"] == 500

    # No server yet: sync says so, exits 1 and keeps everything.
    down = CliRunner().invoke(cli, ["sync"], env=env)
    assert down.exit_code == 1 and "run `mltrail sync` again" in down.output
    assert len(_records(tmp_path)) >= 4

    with serve(default_settings(tmp_path), port=port):
        done = CliRunner().invoke(cli, ["sync"], env=env)
        assert done.exit_code == 0, done.output
        run = _run(url, run_id)
    assert run["points"] == list(range(500)) and run["files"] == ["note.txt"]
    assert run["info"]["status"] == "RUNNING"  # it never ended; nothing claims it FINISHED
    assert _records(tmp_path) == []
    again = CliRunner().invoke(cli, ["sync"], env=env)
    assert again.exit_code == 0 and "Nothing to sync" in again.output


def test_offline_runs_appear_after_sync_as_if_logged_live(tmp_path: Path):
    with serve(default_settings(tmp_path)) as url:
        proc = _start(tmp_path, _env(tmp_path, url, POINTS="200", MLTRAIL_MODE="offline"))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        run_id = out.strip()
        assert "mltrail sync" in err  # it says where the writes wait
        with httpx.Client(base_url=url) as c:
            assert c.get(f"/api/v1/runs/{run_id}").status_code == 404  # nothing was sent

        env = {"MLTRAIL_SPOOL_DIR": str(tmp_path / "spool")}
        result = CliRunner().invoke(cli, ["sync"], env=env)
        assert result.exit_code == 0, result.output
        assert "1 run(s)" in result.output
        run = _run(url, run_id)
        with httpx.Client(base_url=url) as c:
            exp = c.get("/api/v1/experiments/by-name", params={"name": "spooled"}).json()
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["experiment_id"] == exp["experiment_id"]
    assert exp["tags"] == {"team": "vision"}
    assert run["points"] == list(range(200))
    assert run["data"]["params"] == {"lr": "0.1"}
    assert run["files"] == ["note.txt"]


def test_offline_reads_say_they_need_the_server(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_MODE", "offline")
    monkeypatch.setenv("MLTRAIL_SPOOL_DIR", str(tmp_path / "spool"))
    from mltrail import MltrailClient
    from mltrail.errors import StoreError

    client = MltrailClient("http://127.0.0.1:9")
    with pytest.raises(StoreError, match="offline mode") as err:
        client.search_runs(["0"])
    assert "mltrail sync" in (err.value.hint or "")
    client.close()


def test_a_write_the_server_refuses_is_raised_at_flush(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_SPOOL_DIR", str(tmp_path / "spool"))
    from mltrail import MltrailClient
    from mltrail.errors import InvalidState

    with serve(default_settings(tmp_path)) as url:
        client = MltrailClient(url)
        run = client.create_run()
        client.log_metric(run.run_id, "m", 1.0)
        client.flush()
        other = MltrailClient(url)
        other.set_terminated(run.run_id, "KILLED")
        client.log_metric(run.run_id, "m", 2.0)  # refused: the run ended elsewhere
        with pytest.raises(InvalidState, match="queued write"):
            client.flush()
        other.close()
        client.close()


def test_the_next_process_sends_what_a_killed_one_left(tmp_path: Path, monkeypatch):
    port, run_id = _killed_with_writes(tmp_path, 300)
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLTRAIL_SPOOL_DIR", str(tmp_path / "spool"))
    from mltrail import MltrailClient

    with serve(default_settings(tmp_path), port=port):
        client = MltrailClient(url)  # any mltrail process using that server adopts the writes
        wait_for(lambda: _records(tmp_path) == [])
        assert _run(url, run_id)["points"] == list(range(300))
        client.close()

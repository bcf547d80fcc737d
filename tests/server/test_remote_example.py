"""The team set-up end to end: `mltrail server` on PostgreSQL + S3, the example run remotely.

The example script is the same one that runs embedded; only MLTRAIL_TRACKING_URI and
MLTRAIL_TOKEN differ. The CLI then reads what it logged through the same server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import spawn

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _mltrail(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def team_server(
    tmp_path: Path, postgres: object, s3_endpoint: str, bucket: str, aws_env: dict[str, str]
) -> Iterator[tuple[str, dict[str, str]]]:
    """`mltrail server` with auth on PostgreSQL and S3; yields its URL and a client env."""
    db = postgres.create_database()  # type: ignore[attr-defined]
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "MLTRAIL_CAPTURE": "0",
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
    }
    env.pop("MLTRAIL_TRACKING_URI", None)
    assert _mltrail(["server", "migrate", "--store", db], env, tmp_path).returncode == 0
    created = _mltrail(
        ["server", "tokens", "create", "--store", db, "--user", "alice", "--role", "write"],
        env,
        tmp_path,
    )
    assert created.returncode == 0, created.stderr
    token = next(w for w in created.stdout.split() if w.startswith("mlt_"))
    serve = ["server", "--store", db, "--objects", f"s3://{bucket}/team", "--port", "0", "--auth"]
    with spawn(serve, tmp_path, env) as (line, proc):
        assert " on http://127.0.0.1:" in line, line + proc.stderr.read()  # type: ignore[attr-defined]
        url = line.split(" on ", 1)[1].split()[0]
        client_env = {**env, "MLTRAIL_TRACKING_URI": url, "MLTRAIL_TOKEN": token}
        # The client needs no S3 settings: objects travel through the server.
        client_env.pop("AWS_ENDPOINT_URL_S3")
        yield url, client_env


def test_the_example_runs_against_a_team_server(
    team_server: tuple[str, dict[str, str]], tmp_path: Path
):
    url, env = team_server
    work = tmp_path / "work"
    work.mkdir()
    # The workspace is still a project: dataset versions are cached and pointed to locally.
    assert _mltrail(["init"], env, work).returncode == 0
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "wine" / "train.py")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"store:      {url}" in out.stdout
    assert "served:     POST /invocations -> [" in out.stdout

    runs = _mltrail(["runs", "ls", "-e", "wine", "--json"], env, work)
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.count('"run_id"') == 6
    # Every run is alice's: the server records the token's user, not the OS user.
    assert '"user_id": "alice"' in runs.stdout
    history = _mltrail(["models", "history", "wine-rf"], env, work)
    assert history.returncode == 0, history.stderr
    assert "alice" in history.stdout

    # Without the token the server refuses, and says what to do.
    anonymous = {k: v for k, v in env.items() if k != "MLTRAIL_TOKEN"}
    refused = _mltrail(["runs", "ls", "-e", "wine"], anonymous, work)
    assert refused.returncode == 1
    assert "token" in refused.stderr
    assert "Traceback" not in refused.stderr

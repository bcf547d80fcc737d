"""``kill -9`` in the middle of log_artifact, data add, push and pull, then the same command again.

The rerun must complete, leave no temp file (locally and on the remote) and keep the killed
command's progress: objects that arrived whole are not copied again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import child_env, mltrail_cmd, python_cmd, run, temp_files
from tests.s3server import FAKE_AWS_ENV, aws_env, bucket, s3_client, s3_endpoint  # noqa: F401

pytestmark = pytest.mark.faults

KB = 1 << 10
MB = 1 << 20


def objects_in(root: Path) -> list[Path]:
    """The published objects of a folder object store (its temp folder left out)."""
    if not root.exists():
        return []
    return [p for p in root.glob("??/*") if p.is_file()]


def kill_when(
    cmd: list[str], cwd: Path, env: dict[str, str], condition: Callable[[], bool]
) -> None:
    """Start ``cmd``; SIGKILL it as soon as ``condition()`` holds (failing if it ends first)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not condition():
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"it ended before the kill (exit {proc.returncode}): {err.decode()}")
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    """An initialized project in a Git repository."""
    root = tmp_path / "proj"
    root.mkdir()
    ok(run(mltrail_cmd("init"), root, env))
    ok(run(["git", "init", "-q"], root, env))
    return root


def many_files(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:05}.bin").write_bytes(os.urandom(size))
    then = time.time() - 10  # settled: not mistaken for files still being written
    for f in folder.iterdir():
        os.utime(f, (then, then))


def commit(root: Path, env: dict[str, str]) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    ok(run(["git", "add", "-A"], root, env))
    ok(run([*git, "commit", "-qm", "data"], root, env))


# -- log_artifact --------------------------------------------------------------------------------

LOG_ARTIFACT = """
    import sys
    import mltrail as mt

    with mt.start_run(capture=False) as run:
        mt.log_artifact(sys.argv[1])
    print(run.info.run_id)
"""


def test_a_killed_log_artifact_leaves_no_temp_file_after_the_next_one(
    project: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    big = tmp_path / "model.bin"
    with big.open("wb") as f:
        block = os.urandom(MB)
        for _ in range(400):
            f.write(block)
    tmp = project / ".mltrail" / "objects" / "tmp"
    cmd = python_cmd(LOG_ARTIFACT, str(big))
    kill_when(cmd, project, env, lambda: any(p.stat().st_size > 0 for p in temp_files(tmp)))
    assert temp_files(tmp), "the killed write left no temp file: nothing was tested"

    run_id = ok(run(cmd, project, env)).strip()
    assert temp_files(tmp) == []
    listed = ok(run(mltrail_cmd("runs", "artifacts", run_id, "--json"), project, env))
    assert [(f["path"], f["size"]) for f in json.loads(listed)] == [("model.bin", 400 * MB)]
    ok(run(mltrail_cmd("doctor"), project, env))


# -- data add ------------------------------------------------------------------------------------


def test_a_killed_data_add_is_completed_by_the_next_one(project: Path, env: dict[str, str]) -> None:
    many_files(project / "data" / "many", 3000, 4 * KB)
    tmp = project / ".mltrail" / "objects" / "tmp"
    cmd = mltrail_cmd("data", "add", "data/many")
    kill_when(cmd, project, env, lambda: len(temp_files(tmp)) >= 100)
    assert not (project / "data" / "many.trail").exists()

    assert "Added data/many (3000 files" in ok(run(cmd, project, env))
    assert temp_files(tmp) == []
    assert len(objects_in(project / ".mltrail" / "objects")) == 3001  # and the listing
    assert "up to date" in ok(run(mltrail_cmd("data", "status"), project, env))
    ok(run(mltrail_cmd("doctor"), project, env))


# -- push and pull -------------------------------------------------------------------------------


def _pushable(project: Path, env: dict[str, str], remote: str, count: int, size: int) -> None:
    many_files(project / "data" / "many", count, size)
    ok(run(mltrail_cmd("data", "add", "data/many"), project, env))
    ok(run(mltrail_cmd("remote", "add", "origin", remote), project, env))
    commit(project, env)


def _push_json(project: Path, env: dict[str, str]) -> dict[str, Any]:
    return json.loads(ok(run(mltrail_cmd("data", "push", "--json"), project, env)))


def test_a_killed_push_to_a_folder_is_finished_by_the_next_one(
    project: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    # 140 MiB: push publishes in batches of at most 64 MiB, so the kill lands after the first
    # batch and before the last (with 4 KiB files all would arrive in one batch, at the end).
    _pushable(project, env, str(remote), 3000, 48 * KB)
    kill_when(mltrail_cmd("data", "push"), project, env, lambda: len(objects_in(remote)) >= 300)
    arrived = len(objects_in(remote))

    again = _push_json(project, env)
    assert (again["copied"], again["present"]) == (3001 - arrived, arrived)
    assert temp_files(remote / "tmp") == []
    assert len(objects_in(remote)) == 3001
    assert _push_json(project, env)["copied"] == 0


def test_a_killed_push_to_s3_is_finished_by_the_next_one(
    project: Path,
    env: dict[str, str],
    s3_endpoint: str,  # noqa: F811
    bucket: str,  # noqa: F811
    s3_client: Any,  # noqa: F811
) -> None:
    env = {**env, **FAKE_AWS_ENV}
    many_files(project / "data" / "many", 600, 2 * KB)
    ok(run(mltrail_cmd("data", "add", "data/many"), project, env))
    url = f"s3://{bucket}/team"
    ok(
        run(
            mltrail_cmd("remote", "add", "origin", url, "--endpoint-url", s3_endpoint), project, env
        )
    )

    def stored() -> int:
        return s3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)

    kill_when(mltrail_cmd("data", "push"), project, env, lambda: stored() >= 60)
    arrived = stored()
    again = _push_json(project, {**env})
    assert again["copied"] + again["present"] == 601
    assert again["present"] >= arrived
    assert stored() == 601
    uploads = s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == []


def test_a_killed_pull_keeps_the_finished_batches(
    project: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    # 150 MB: fetch publishes in batches of at most 64 MiB, so a late kill keeps one or two.
    count = 1200
    _pushable(project, env, str(remote), count, 128 * KB)
    ok(run(mltrail_cmd("data", "push"), project, env))
    clone = tmp_path / "clone"
    ok(run(["git", "clone", "-q", str(project), str(clone)], tmp_path, env))
    cache = clone / ".mltrail" / "objects"

    # Late: once the first batch (512 objects of 128 KiB) has its names, and the listing.
    late = 1 + 64 * MB // (128 * KB) + 1
    kill_when(mltrail_cmd("data", "pull"), clone, env, lambda: len(objects_in(cache)) >= late)
    kept = len(objects_in(cache))
    assert late <= kept < count + 1
    assert temp_files(cache / "tmp")  # the killed batch's copies

    out = ok(run(mltrail_cmd("data", "pull"), clone, env))
    fetched = re.search(r"Fetched (\d+) objects? .*; (\d+) already there", out)
    assert fetched, out
    copied, present = int(fetched[1]), int(fetched[2])
    # The files and the folder's listing, counted alike by push and pull.
    assert copied + present == count + 1
    assert present == kept  # nothing that arrived whole came again
    assert temp_files(cache / "tmp") == []
    assert temp_files(remote / "tmp") == []
    for f in (project / "data" / "many").iterdir():
        assert (clone / "data" / "many" / f.name).read_bytes() == f.read_bytes()

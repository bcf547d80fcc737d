"""A 20 MB disk filling up under logging, ``log_artifact`` and ``data add``.

The project's ``.mltrail`` (SQLite database and object cache) is a real 20 MB tmpfs; the data
and the files logged live beside it on the ordinary disk. Each command must fail at once with
a clear error and hint, leave no temp file, and leave the store sound for when there is room.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import (
    child_env,
    fill,
    mltrail_cmd,
    python_cmd,
    run,
    temp_files,
)

pytestmark = pytest.mark.faults

#: Generous, yet short of the 120 s a full disk once hung for: such a hang fails the test.
TIMEOUT = 100
MB = 1 << 20
#: Driver and library text that must never reach the user.
RAW = ("sqlalche", "OperationalError", "sqlite3", "Errno", "Traceback")


@pytest.fixture
def project(tmp_path: Path, tmpfs: Callable[[Path], Path]) -> Path:
    """A project whose ``.mltrail`` folder is a 20 MB tmpfs."""
    root = tmp_path / "proj"
    tmpfs(root / ".mltrail")
    done = run(mltrail_cmd("init"), root, child_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    return root


def _env(project: Path) -> dict[str, str]:
    return child_env(project.parent / "home")


def _clean(text: str) -> None:
    for raw in RAW:
        assert raw not in text, text


def _doctor(project: Path) -> None:
    done = run(mltrail_cmd("doctor"), project, _env(project))
    assert done.returncode == 0, done.stdout + done.stderr


# Starts a run, waits for GO, then logs until told to stop by the store (at most POINTS points).
LOGGING = """
    import os, sys, time
    from pathlib import Path
    import mltrail as mt

    run = mt.start_run(run_name="full", capture=False)
    mt.log_metric("loss", 0.0, step=0)
    mt.flush()
    print(run.info.run_id, flush=True)
    while not Path(os.environ["GO"]).exists():
        time.sleep(0.05)
    with run:
        for i in range(1, 400_000):
            mt.log_metric("loss", i / 1000, step=i)
"""


def _log_into_a_full_disk(project: Path, tmp_path: Path) -> tuple[str, str]:
    """Run LOGGING with the disk filled once it started; (its run id, its stderr)."""
    go = tmp_path / "go"
    env = {**_env(project), "GO": str(go)}
    pipe = subprocess.PIPE
    proc = subprocess.Popen(
        python_cmd(LOGGING), cwd=project, env=env, stdout=pipe, stderr=pipe, text=True
    )
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    assert len(run_id) == 32, proc.communicate()[1]
    filler = fill(project / ".mltrail")
    go.touch()
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("logging into a full disk hung instead of failing")
    assert proc.returncode != 0, err
    filler.unlink()
    return run_id, err


def test_logging_into_a_full_disk_fails_at_once_in_words(project: Path, tmp_path: Path) -> None:
    _, err = _log_into_a_full_disk(project, tmp_path)
    # A Python script: the exception ends it, its message and hint in words.
    assert "Traceback" in err
    error = err[err.index("mltrail.errors.StoreError: ") :]
    assert "is full" in error and "Free space" in error, err
    _clean(error)
    # The background writer warned once, not once for every batch that failed after it.
    assert err.count("was not stored:") == 1, err
    _clean(err.split("Traceback")[0])
    _doctor(project)


def test_a_run_whose_end_a_full_disk_took_is_not_left_running(
    project: Path, tmp_path: Path
) -> None:
    run_id, _ = _log_into_a_full_disk(project, tmp_path)
    show = run(mltrail_cmd("runs", "show", run_id, "--json"), project, _env(project))
    assert show.returncode == 0, show.stderr
    # Nothing could record the end, so the store still says RUNNING; its process is gone, so
    # it is shown KILLED, with the reason.
    shown = json.loads(show.stdout)
    assert shown["status"] in ("FAILED", "KILLED"), show.stdout
    assert shown["status"] == "FAILED" or "ended without ending the run" in shown["status_reason"]


LOG_ARTIFACT = """
    import sys
    import mltrail as mt
    from mltrail.errors import MltrailError

    with mt.start_run(capture=False) as run:
        print(run.info.run_id, flush=True)
        try:
            mt.log_artifact(sys.argv[1])
        except MltrailError as e:
            print(f"error: {e.message}\\nhint: {e.hint}", file=sys.stderr)
            sys.exit(1)
"""


def test_an_artifact_larger_than_the_free_space_fails_cleanly(
    project: Path, tmp_path: Path
) -> None:
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(12 * MB))
    filler = fill(project / ".mltrail", leave=4 * MB)
    done = run(python_cmd(LOG_ARTIFACT, str(big)), project, _env(project), timeout=TIMEOUT)
    assert done.returncode == 1, done.stderr
    assert "error: " in done.stderr and "the disk is full" in done.stderr
    assert "hint: Free space on that disk" in done.stderr
    _clean(done.stderr)
    assert temp_files(project / ".mltrail" / "objects" / "tmp") == []

    filler.unlink()
    _doctor(project)
    again = run(python_cmd(LOG_ARTIFACT, str(big)), project, _env(project), timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    listed = run(mltrail_cmd("runs", "artifacts", again.stdout.strip()), project, _env(project))
    assert "model.bin" in listed.stdout, listed.stdout + listed.stderr


def test_data_add_larger_than_the_free_space_fails_cleanly_and_the_cache_stays_sound(
    project: Path,
) -> None:
    images = project / "data" / "images"
    images.mkdir(parents=True)
    for i in range(40):
        (images / f"{i:02}.bin").write_bytes(os.urandom(MB // 4 * 3))  # 30 MB in all
    filler = fill(project / ".mltrail", leave=8 * MB)
    done = run(mltrail_cmd("data", "add", "data/images"), project, _env(project), timeout=TIMEOUT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and "the disk is full" in done.stderr, done.stderr
    assert "hint: Free space on that disk" in done.stderr
    _clean(done.stderr)
    assert temp_files(project / ".mltrail" / "objects" / "tmp") == []
    assert not (project / "data" / "images.trail").exists()

    filler.unlink()
    _doctor(project)
    for f in sorted(images.iterdir())[20:]:
        f.unlink()  # now it fits
    again = run(mltrail_cmd("data", "add", "data/images"), project, _env(project), timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert (project / "data" / "images.trail").exists()
    _doctor(project)

"""The data lock: one data command at a time, a clear message, and no lock outlives its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mltrail
import mltrail.data as data
from mltrail.data.lock import data_lock, holder_pid
from mltrail.data.pointer import read_pointer
from mltrail.errors import InvalidState
from mltrail.objects import LocalObjectStore, read_tree
from tests.data import project, settle, write

__all__ = ["project"]

SRC = str(Path(mltrail.__file__).resolve().parent.parent)


def _hold(project_dir: Path) -> subprocess.Popen:
    """Start a process that takes the lock, says so, and sleeps."""
    code = (
        "import sys, time\n"
        "from mltrail.data.lock import data_lock\n"
        f"with data_lock({str(project_dir)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_waiter_names_the_holder_and_a_killed_holder_releases(project: Path):
    pdir = project / ".mltrail"
    holder = _hold(pdir)
    try:
        assert holder_pid(pdir / "data.lock") == holder.pid
        start = time.monotonic()
        with (
            pytest.raises(InvalidState, match=f"process {holder.pid}") as err,
            data_lock(pdir, timeout=0.3),
        ):
            pass
        assert time.monotonic() - start >= 0.3
        assert f"kill {holder.pid}" in (err.value.hint or "")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with data_lock(pdir, timeout=5):
        assert holder_pid(pdir / "data.lock") == os.getpid()
    assert holder_pid(pdir / "data.lock") is None


def test_lock_is_reentrant_across_sequential_uses(project: Path):
    for _ in range(3):
        with data_lock(project / ".mltrail", timeout=0):
            pass


def test_add_waits_for_the_lock(project: Path, monkeypatch: pytest.MonkeyPatch):
    write(project / "a.txt", "a")
    holder = _hold(project / ".mltrail")
    monkeypatch.setenv("MLTRAIL_LOCK_TIMEOUT", "0.2")
    try:
        with pytest.raises(InvalidState, match="another mltrail data command"):
            data.add(["a.txt"])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert data.add(["a.txt"])[0].changed


@pytest.mark.slow
def test_two_adds_at_once_corrupt_nothing(project: Path):
    images = project / "images"
    for i in range(300):
        write(images / f"{i % 7}" / f"{i}.bin", os.urandom(2000 + i))
    write(project / "one.bin", os.urandom(5000))
    settle(images)
    env = {**os.environ, "PYTHONPATH": SRC, "MLTRAIL_CAPTURE": "0"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mltrail", "data", "add", "images", "one.bin"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = LocalObjectStore(project / ".mltrail" / "objects")
    ptr = read_pointer(project / "images.trail")
    tree = read_tree(store, ptr.hash)
    assert ptr.nfiles == len(tree) == 300
    one = read_pointer(project / "one.bin.trail")
    for h in [ptr.hash, one.hash, *(e.hash for e in tree)]:
        assert store.verify(h)
    assert not list((project / ".mltrail" / "objects" / "tmp").iterdir())
    assert (project / ".gitignore").read_text().splitlines() == ["/images", "/one.bin"]
    assert {s.state for s in data.status()} == {"unchanged"}

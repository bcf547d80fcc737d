"""Temp files named for their writer: a killed writer's are removed by the next write, at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mltrail.objects import LocalObjectStore, hash_bytes
from mltrail.objects.tempfiles import owner_of, temp_filename
from tests.live import wait_for

posix_only = pytest.mark.skipif(os.name == "nt", reason="FIFOs and SIGKILL")


def _dead_name() -> str:
    """A temp file name of a process that has exited."""
    script = "from mltrail.objects.tempfiles import temp_filename; print(temp_filename())"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_owner_is_known_by_host_boot_pid_and_start_time() -> None:
    name = temp_filename()
    assert owner_of(name) == "alive"
    host, boot, pid, start, rand = name.split("-")
    # The same pid with another start time is a later process that reused it.
    assert owner_of("-".join([host, boot, pid, str(int(start) + 1), rand])) == "dead"
    assert owner_of("-".join([host, "0badb007", pid, start, rand])) == "dead"  # before a reboot
    assert owner_of("-".join(["0a0a0a0a", boot, pid, start, rand])) == "unknown"  # another host
    assert owner_of("1f2e3d4c5b6a7988.tmp") == "unknown"  # an older version's name
    assert owner_of(_dead_name()) == "dead"


@posix_only
def test_a_killed_fetch_leaves_temp_files_that_the_next_write_removes(tmp_path: Path) -> None:
    source = LocalObjectStore(tmp_path / "remote")
    blobs = sorted((os.urandom(32 * 1024) for _ in range(12)), key=hash_bytes)
    for blob in blobs[:-1]:
        source.put_bytes(blob)
    # The last object in fetch order is a FIFO: reading it blocks, so the fetch is caught in the
    # middle of its last batch, with a finished copy and a started one in temp files.
    last = hash_bytes(blobs[-1])
    source.path_of(last).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(source.path_of(last))
    hashes = [hash_bytes(b) for b in blobs]
    cache = LocalObjectStore(tmp_path / "cache")
    script = (
        "import sys; from mltrail.objects import local, LocalObjectStore as S\n"
        "local._BATCH_BYTES = 64 * 1024  # two objects a batch\n"
        "S(sys.argv[2]).fetch_from(S(sys.argv[1]), sys.argv[3:])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, source.root, cache.root, *hashes])
    try:
        tmp = cache.root / "tmp"
        wait_for(
            lambda: (
                len(list(cache.iter_hashes())) == 10
                and sorted(p.stat().st_size for p in tmp.iterdir()) == [0, 32 * 1024]
            )
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert cache.temp_files().stale == 2 and cache.temp_files().stale_bytes == 32 * 1024
    mine = tmp / temp_filename()  # a writer that is still running: never touched
    mine.write_bytes(b"in progress")

    os.unlink(source.path_of(last))
    source.put_bytes(blobs[-1])
    assert cache.fetch_from(source, hashes) == 2  # the finished batches were kept
    assert [p.name for p in tmp.iterdir()] == [mine.name]
    assert all(cache.verify(h) for h in hashes)

"""A throwaway PostgreSQL server started from the machine's binaries, bound to 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PG_BIN_DIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (15, 16, 17, 14)]


def find_pg_bin() -> Path | None:
    """The first PostgreSQL bin folder holding initdb and pg_ctl, or None."""
    env = os.environ.get("MLTRAIL_PG_BIN")
    candidates = [Path(env)] if env else PG_BIN_DIRS
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb into a temp folder, pg_ctl start; as root the server runs as user postgres."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="mltrail-pg-"))
        self.data = self.base / "data"
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Create the cluster and start the server."""
        self.base.chmod(0o755)
        self.data.mkdir()
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start_server()

    def start_server(self) -> None:
        """Start the initialized cluster (again), on the same port."""
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data} -F "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "log"),
            "-w",
            "start",
        )

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server but keep its files, so that :meth:`start_server` brings it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        """Stop the server and remove its files."""
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def uri(self, dbname: str = "postgres") -> str:
        """Connection URI for a database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """Create an empty database with a unique name; return its URI."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.uri(), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return self.uri(name)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

"""``mltrail server``: start-up checks, migrate, tokens and permissions (on a store, a server)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mltrail.store import open_store
from mltrail.store.auth_base import parse_token
from tests.cli.conftest import SRC, Invoke
from tests.live import spawn


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store URI (SQLite, schema created) outside any project."""
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    open_store(uri).close()
    return uri


def _token_of(output: str) -> str:
    return next(w for w in output.split() if w.startswith("mlt_"))


# -- tokens ------------------------------------------------------------------------------------


def test_tokens_create_prints_the_token_once_with_the_export_line(invoke: Invoke, db: str):
    out = invoke("server", "tokens", "create", "--user", "alice", "--role", "write", "--store", db)
    token = _token_of(out.stdout)
    assert f"export MLTRAIL_TOKEN={token}" in out.stdout
    assert "not shown again" in out.stdout
    store = open_store(db)
    assert store.verify_token(token).user == "alice"
    store.close()
    listed = invoke("server", "tokens", "ls", "--store", db).stdout
    assert "alice" in listed and "write" in listed and "active" in listed
    # The secret is everything after the id; it may hold "_" itself (URL-safe base64).
    assert parse_token(token)[1] not in listed


def test_tokens_ls_fits_80_columns_and_revoke_hides_a_token(invoke: Invoke, db: str):
    long_description = "the nightly training job on the shared GPU box, owned by the ML team"
    made = invoke(
        *("server", "tokens", "create", "--user", "a-rather-long-user-name@example.com"),
        *("--role", "admin", "--expires", "30d", "--description", long_description),
        *("--store", db, "--json"),
    )
    info = json.loads(made.stdout)
    assert info["token"].startswith(f"mlt_{info['token_id']}_") and info["expires_at"]
    invoke("server", "tokens", "create", "--user", "bob", "--role", "read", "--store", db)
    listed = invoke("server", "tokens", "ls", "--store", db).stdout
    assert all(len(line) <= 80 for line in listed.splitlines()), listed
    assert listed.splitlines()[0].split() == [
        *("id", "user", "role", "state", "created", "expires", "description"),
    ]
    revoked = invoke("server", "tokens", "revoke", info["token_id"], "--store", db).stdout
    assert f"Revoked token {info['token_id']}" in revoked and "30 seconds" in revoked
    again = invoke("server", "tokens", "revoke", info["token_id"], "--store", db).stdout
    assert "was already revoked on" in again
    assert info["token_id"] not in invoke("server", "tokens", "ls", "--store", db).stdout
    everything = invoke("server", "tokens", "ls", "--all", "--store", db, "--json").stdout
    assert {t["user"] for t in json.loads(everything)} == {
        "a-rather-long-user-name@example.com",
        "bob",
    }


def test_tokens_ls_on_an_empty_store_says_how_to_create_one(invoke: Invoke, db: str):
    out = invoke("server", "tokens", "ls", "--store", db).stdout
    assert "mltrail server tokens create" in out


def test_token_errors_are_messages_with_hints(invoke: Invoke, db: str):
    bad = invoke("server", "tokens", "revoke", "0123456789ab", "--store", db, code=1)
    assert "error: token 0123456789ab does not exist" in bad.stderr
    assert "hint: `mltrail server tokens ls`" in bad.stderr
    bad = invoke(
        *("server", "tokens", "create", "--user", "x", "--role", "read"),
        *("--expires", "soon", "--store", db),
        code=1,
    )
    assert "--expires 'soon' is not a duration or a date" in bad.stderr and "30d" in bad.stderr
    bad = invoke(
        *("server", "tokens", "create", "--user", "x", "--role", "read"),
        *("--expires", "2001-01-01", "--store", db),
        code=1,
    )
    assert "is in the past" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_project_store_is_the_default(invoke: Invoke, project: Path):
    invoke("server", "tokens", "create", "--user", "alice", "--role", "read")
    assert "alice" in invoke("server", "tokens", "ls").stdout
    # `mltrail server --store` reaches the subcommands too.
    other = f"sqlite:///{project.parent / 'other.db'}"
    open_store(other).close()
    assert "No tokens" in invoke("server", "--store", other, "tokens", "ls").stdout


def test_serving_options_do_not_go_with_a_subcommand(invoke: Invoke, db: str):
    out = invoke("server", "--port", "6000", "tokens", "ls", "--store", db, code=2)
    assert "--port starts the server; it does not apply to `tokens`" in out.stderr


# -- permissions -------------------------------------------------------------------------------


def test_permissions_set_ls_rm(invoke: Invoke, db: str):
    store = open_store(db)
    exp = store.create_experiment("secret")
    store.close()
    out = invoke(
        *("server", "permissions", "set", "--user", "bob", "--experiment", "secret"),
        *("--level", "none", "--store", db),
    ).stdout
    assert f"bob: none on experiment {exp} (secret)" in out
    invoke(
        *("server", "permissions", "set", "--user", "bob", "--experiment", exp),
        *("--level", "read", "--store", db),
    )
    invoke(
        *("server", "permissions", "set", "--user", "alice", "--model", "wine"),
        *("--level", "write", "--store", db),
    )
    listed = invoke("server", "permissions", "ls", "--store", db).stdout
    rows = [line.split() for line in listed.splitlines()[2:]]
    assert rows == [
        ["alice", "model", "wine", "write"],
        ["bob", "experiment", exp, "(secret)", "read"],
    ]
    as_json = json.loads(
        invoke("server", "permissions", "ls", "--user", "bob", "--json", "--store", db).stdout
    )
    assert as_json == [{"user": "bob", "kind": "experiment", "target": exp, "level": "read"}]
    out = invoke(
        "server", "permissions", "rm", "--user", "alice", "--model", "wine", "--store", db
    ).stdout
    assert "alice: no permission on model 'wine' any more." in out
    gone = invoke(
        *("server", "permissions", "rm", "--user", "alice", "--model", "wine", "--store", db),
        code=1,
    )
    assert "error: user 'alice' has no permission on model 'wine'" in gone.stderr


def test_permission_errors(invoke: Invoke, db: str):
    both = invoke(
        *("server", "permissions", "set", "--user", "bob", "--experiment", "0"),
        *("--model", "m", "--level", "read", "--store", db),
        code=2,
    )
    assert "exactly one of --experiment and --model" in both.stderr
    missing = invoke(
        *("server", "permissions", "set", "--user", "bob", "--experiment", "nope"),
        *("--level", "read", "--store", db),
        code=1,
    )
    assert "error: experiment 'nope' does not exist" in missing.stderr
    assert "mltrail exp ls" in missing.stderr
    level = invoke(
        *("server", "permissions", "set", "--user", "bob", "--model", "m"),
        *("--level", "admin", "--store", db),
        code=2,
    )
    assert "'admin' is not one of" in level.stderr


# -- migrate -----------------------------------------------------------------------------------


def test_migrate_reports_from_and_to(invoke: Invoke, tmp_path: Path):
    from mltrail.store import migrate
    from mltrail.store.engine import make_engine

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(uri)
    with engine.connect() as conn, conn.begin():
        migrate._upgrade(conn, "0003")
    engine.dispose()
    out = invoke("server", "migrate", "--store", uri).stdout
    assert out == f"Migrated {uri} from schema 0003 to {migrate.HEAD}.\n"
    out = invoke("server", "migrate", "--store", uri).stdout
    assert out == f"{uri} is up to date (schema {migrate.HEAD}).\n"
    fresh = f"sqlite:///{tmp_path / 'new.db'}"
    out = invoke("server", "migrate", "--store", fresh).stdout
    assert out == f"Created the schema of {fresh} (schema {migrate.HEAD}).\n"


def test_migrate_a_postgresql_store(invoke: Invoke, postgres: object):
    from mltrail.store.migrate import HEAD

    uri = postgres.create_database()  # type: ignore[attr-defined]
    assert "Created the schema" in invoke("server", "migrate", "--store", uri).stdout
    assert f"is up to date (schema {HEAD})" in invoke("server", "migrate", "--store", uri).stdout


def test_migrate_refuses_what_it_cannot_migrate(invoke: Invoke, tmp_path: Path):
    out = invoke("server", "migrate", "--store", "http://127.0.0.1:9", code=1)
    assert "is a server; migrations run on its database" in out.stderr
    newer = tmp_path / "newer.db"
    import sqlite3

    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999')")
    out = invoke("server", "migrate", "--store", f"sqlite:///{newer}", code=1)
    assert "newer than this mltrail knows" in out.stderr


# -- starting the server -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "sqlite:////nowhere/team.db"], "no mltrail store at /nowhere/team.db"),
        (["--store", "mysql://db/x"], "unsupported tracking URI 'mysql://db/x'"),
        (["--store", "http://127.0.0.1:9"], "is a server; `mltrail server` serves a database"),
        (["--host", "0.0.0.0", "--no-auth"], "--no-auth on 0.0.0.0 would let anyone"),
        (["--presign"], "--presign needs S3 objects"),
    ],
)
def test_server_refuses_to_start(invoke: Invoke, project: Path, args: list[str], message: str):
    out = invoke("server", *args, code=1)
    assert message in out.stderr
    assert "hint:" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_a_missing_sqlite_store_points_at_migrate(invoke: Invoke, tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    out = invoke("server", "--store", uri, code=1)
    assert f"hint: Create it with `mltrail server migrate --store {uri}`" in out.stderr


def test_an_unreachable_database_fails_before_listening(invoke: Invoke, tmp_path: Path):
    out = invoke("server", "--store", "postgresql://nobody@127.0.0.1:9/x", code=1)
    assert "error: " in out.stderr and "127.0.0.1" in out.stderr
    assert "Serving" not in out.stdout


def test_a_port_in_use_is_a_clear_error(invoke: Invoke, db: str):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        out = invoke("server", "--store", db, "--port", port, code=1)
    finally:
        taken.close()
    assert f"error: cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "hint: Pick another --port" in out.stderr


@pytest.fixture
def served(tmp_path: Path, db: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``mltrail server --port 0 --auth`` in a subprocess; yields its URL once it answers."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLTRAIL_CAPTURE": "0"}
    env.pop("MLTRAIL_TRACKING_URI", None)
    with spawn(["server", "--store", db, "--port", "0", "--auth"], tmp_path, env) as (line, proc):
        assert line.startswith(f"Serving {db} on http://127.0.0.1:"), (
            line + proc.stderr.read()  # type: ignore[attr-defined]
        )
        assert "(auth on, Ctrl+C to stop)" in line
        yield line.split(" on ", 1)[1].split()[0], proc  # type: ignore[misc]


def test_several_workers_serve_one_port(tmp_path: Path, db: str):
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLTRAIL_CAPTURE": "0"}
    args = ["server", "--store", db, "--port", "0", "--workers", "2"]
    with spawn(args, tmp_path, env) as (line, proc):
        assert "2 workers" in line, line + proc.stderr.read()  # type: ignore[attr-defined]
        url = line.split(" on ", 1)[1].split()[0]
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                text = httpx.get(f"{url}/metrics", timeout=5).text
            except httpx.TransportError:
                continue
            pids.update(re.findall(r'worker="(\d+)"', text))
        assert len(pids) == 2, pids  # both processes answered on the one port
        made = httpx.post(f"{url}/api/v1/experiments", json={"name": "shared"}, timeout=5)
        assert made.status_code == 201
        names = {e["name"] for e in httpx.get(f"{url}/api/v1/experiments").json()["experiments"]}
        assert "shared" in names


def test_the_server_starts_and_wants_a_token(served: tuple[str, subprocess.Popen[str]], db: str):
    import httpx

    url, proc = served
    store = open_store(db)
    _, token = store.create_token("alice", "read")
    store.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            anonymous = httpx.get(f"{url}/api/v1/experiments", timeout=5)
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.02)
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "this server needs a token"
    headers = {"Authorization": f"Bearer {token}"}
    with_token = httpx.get(f"{url}/api/v1/experiments", headers=headers, timeout=5)
    assert with_token.status_code == 200
    assert [e["name"] for e in with_token.json()["experiments"]] == ["Default"]
    assert httpx.get(f"{url}/api/v1/whoami", headers=headers, timeout=5).json()["user"] == "alice"
    # SIGTERM is a normal stop.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_tokens_and_permissions_through_a_running_server(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("uvicorn")
    from mltrail.server.app import ServerSettings
    from tests.live import serve

    uri = f"sqlite:///{tmp_path / 'served.db'}"
    store = open_store(uri)
    _, admin = store.create_token("root", "admin")
    _, reader = store.create_token("bob", "read")
    exp = store.create_experiment("secret")
    with serve(ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False)) as url:
        monkeypatch.setenv("MLTRAIL_TOKEN", admin)
        made = invoke(
            "server", "tokens", "create", "--user", "carol", "--role", "write", "--store", url
        )
        assert store.verify_token(_token_of(made.stdout)).user == "carol"
        listed = invoke("server", "tokens", "ls", "--store", url).stdout
        assert {"root", "bob", "carol"} <= set(listed.split())
        invoke(
            *("server", "permissions", "set", "--user", "bob", "--experiment", "secret"),
            *("--level", "none", "--store", url),
        )
        assert store.permissions_of("bob") == {("experiment", exp): "none"}
        monkeypatch.setenv("MLTRAIL_TOKEN", reader)
        denied = invoke("server", "tokens", "ls", "--store", url, code=1)
        assert "error: user 'bob' (role read) may not administer the server" in denied.stderr
    store.close()


def test_pending_migrations_are_refused_with_the_command_that_applies_them(
    invoke: Invoke, tmp_path: Path
):
    import sqlalchemy as sa

    from mltrail.store.migrate import _upgrade

    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        _upgrade(conn, "0003")  # a store written by the previous release
    engine.dispose()
    uri = f"sqlite:///{path}"
    out = invoke("server", "--store", uri, code=1)
    assert "has schema revision 0003; this mltrail needs revision" in out.stderr
    assert f"hint: Apply the migrations first: mltrail server migrate --store {uri}" in out.stderr
    assert "Serving" not in out.stdout
    assert invoke("server", "migrate", "--store", uri).exit_code == 0

"""A server or UI without auth is local and harmless (issue 21, item 3).

It answers only to loopback ``Host`` names (and configured ones), so a web page cannot reach it
by DNS rebinding; it never hands out tokens or permissions (a token made there would work against
an auth-on server on the same store); and it says at start-up what it exposes.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import httpx

from mltrail.server import hosts
from tests.live import serve, spawn
from tests.server.conftest import default_settings

SRC = Path(__file__).resolve().parents[2] / "src"
FOREIGN = ("rebind.evil.example", "rebind.evil.example:5000", "192.168.1.20:5000", "0.0.0.0")


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def test_foreign_host_headers_are_refused_without_auth(tmp_path: Path):
    with serve(default_settings(tmp_path)) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/api/v1/models", json={"name": "wine"}).status_code == 201
        assert (
            c.post("/api/v1/models/wine/versions", json={"source": "s", "tree_hash": "ab" * 32})
        ).status_code == 201
        for host in FOREIGN:
            for method, path, body in (
                ("GET", "/api/v1/experiments", None),
                ("PUT", "/api/v1/models/wine/aliases/prod", {"version": 1}),
                ("POST", "/api/2.0/mlflow/experiments/create", {"name": "x"}),
                ("GET", "/", None),
            ):
                got = c.request(method, path, json=body, headers={"Host": host})
                assert got.status_code == 421, (host, path, got.text)
                error = got.json()
                assert error["error_code"] == "HOST_NOT_ALLOWED"
                assert repr(host) in error["message"] and "--allowed-host" in error["hint"]
        # The rebinding request set no alias.
        assert c.get("/api/v1/models/wine").json()["aliases"] == {}
        port = _port(url)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
            got = c.get("/api/v1/experiments", headers={"Host": host})
            assert got.status_code == 200, (host, got.text)


def test_configured_hosts_are_answered_too(tmp_path: Path):
    settings = dataclasses.replace(default_settings(tmp_path), allowed_hosts=("mltrail.lan",))
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as c:
        for host in ("mltrail.lan", "mltrail.lan:8080", "MLTRAIL.LAN"):
            assert c.get("/api/v1/experiments", headers={"Host": host}).status_code == 200
        got = c.get("/api/v1/experiments", headers={"Host": "other.lan"})
        assert got.status_code == 421 and "mltrail.lan" in got.json()["message"]


def test_with_auth_on_any_host_name_reaches_the_token_check(tmp_path: Path):
    # Behind a proxy the Host is the team's name; tokens guard the server then.
    settings = dataclasses.replace(default_settings(tmp_path), auth=True)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as c:
        got = c.get("/api/v1/experiments", headers={"Host": "mltrail.example.com"})
        assert got.status_code == 401


def test_the_admin_api_is_off_without_auth(tmp_path: Path):
    with serve(default_settings(tmp_path)) as url, httpx.Client(base_url=url, timeout=30) as c:
        calls = [
            ("POST", "/api/v1/admin/tokens", {"user": "eve", "role": "admin"}),
            ("GET", "/api/v1/admin/tokens", None),
            ("DELETE", "/api/v1/admin/tokens/abc", None),
            ("POST", "/api/v1/admin/tokens/verify", {"token": "mlt_x_y"}),
            (
                "PUT",
                "/api/v1/admin/permissions",
                {"user": "eve", "kind": "model", "target": "m", "level": "write"},
            ),
            ("GET", "/api/v1/admin/permissions", None),
            ("DELETE", "/api/v1/admin/permissions?user=eve&kind=model&target=m", None),
        ]
        for method, path, body in calls:
            for headers in ({}, {"X-Mltrail-User": "root"}):
                got = c.request(method, path, json=body, headers=headers)
                assert got.status_code == 403, (path, got.text)
                error = got.json()
                assert "runs without auth" in error["message"]
                assert "mltrail server tokens create" in error["hint"]
        # Nothing was made: the store has no token an auth-on server would accept.
        from mltrail.store import open_store

        store = open_store(default_settings(tmp_path).store_uri)  # type: ignore[attr-defined]
        try:
            assert store.list_tokens() == []
        finally:
            store.close()
        # The rest of the API stays open to the local user.
        assert c.get("/api/v1/whoami").json()["authenticated"] is False
        assert c.post("/api/v1/experiments", json={"name": "e"}).status_code == 201


def test_host_names_are_parsed_with_ports_and_brackets():
    assert hosts.name_of("[::1]:5000") == "::1"
    assert hosts.name_of("LocalHost:80") == "localhost"
    assert hosts.name_of("::1") == "::1"
    assert hosts.is_allowed("app.localhost:5000")
    assert not hosts.is_allowed("localhost.evil.example")
    assert not hosts.is_allowed("127.0.0.1.evil.example:5000")
    assert hosts.is_allowed("box:5000", ("box",)) and hosts.is_allowed("box", ("box:5000",))


def test_the_server_says_at_start_what_it_exposes(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLTRAIL_CAPTURE": "0"}
    env.pop("MLTRAIL_TRACKING_URI", None)
    env["MLTRAIL_ALLOWED_HOSTS"] = "box.lan"
    from mltrail.store import open_store

    open_store(db).close()
    args = ["server", "--store", db, "--port", "0", "--allowed-host", "Mine.Lan"]
    with spawn(args, tmp_path, env) as (line, proc):
        assert "(auth off, Ctrl+C to stop)" in line, line + proc.stderr.read()  # type: ignore[attr-defined]
        note = proc.stdout.readline()  # type: ignore[attr-defined]
        url = line.split(" on ", 1)[1].split()[0]
        where = url.split("://", 1)[1]
        assert note.startswith(
            f"auth is off: anyone who can reach {where} can read and write everything; "
            "admin API (tokens, permissions) disabled; answering only to Host localhost, "
            "127.0.0.1, [::1], mine.lan, box.lan"
        ), note
        got = httpx.get(f"{url}/api/v1/experiments", headers={"Host": "box.lan"}, timeout=30)
        assert got.status_code == 200
        got = httpx.get(f"{url}/api/v1/experiments", headers={"Host": "evil.lan"}, timeout=30)
        assert got.status_code == 421


def test_allowed_hosts_reach_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mltrail.server.app import ENV_SETTINGS, ServerSettings

    settings = dataclasses.replace(default_settings(tmp_path), allowed_hosts=("a.lan", "b.lan"))
    monkeypatch.setenv(ENV_SETTINGS, settings.to_env())  # type: ignore[attr-defined]
    assert ServerSettings.from_env() == settings

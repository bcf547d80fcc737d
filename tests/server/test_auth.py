"""Auth on the server: tokens, roles, per-experiment and per-model permissions, the admin API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mltrail.store.auth_base import parse_token

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from mltrail import access
from mltrail.server import auth
from mltrail.server.app import ServerSettings, create_app
from mltrail.store import TrackingStore, open_store

TREE = "ab" * 32


@dataclass
class Server:
    store: TrackingStore
    http: TestClient
    state: object

    def token(self, role: str, user: str | None = None, **kw: object) -> dict[str, str]:
        """Headers carrying a new token of ``role`` (user: the role's name)."""
        _, token = self.store.create_token(user or role, role, **kw)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    store = open_store(uri)
    settings = ServerSettings(uri, str(tmp_path / "objects"), auth=True, access_log=False)
    app = create_app(settings)
    with TestClient(app) as http:
        yield Server(store, http, app.state.mltrail)
    store.close()
    app.state.mltrail.close()


def _error(response: object, status: int) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert "Traceback" not in response.text  # type: ignore[attr-defined]
    return body


# -- who may come in ---------------------------------------------------------------------------


def test_auth_is_on_by_default_off_loopback():
    assert not ServerSettings("sqlite://", None).auth_enabled
    assert not ServerSettings("sqlite://", None, host="::1").auth_enabled
    assert ServerSettings("sqlite://", None, host="0.0.0.0").auth_enabled
    assert ServerSettings("sqlite://", None, auth=True).auth_enabled


def test_no_token_is_401_saying_how_to_get_one(server: Server):
    response = server.http.get("/api/v1/experiments")
    body = _error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body["error_code"] == "UNAUTHENTICATED"
    assert body["message"] == "this server needs a token"
    assert "MLTRAIL_TOKEN" in body["hint"] and "mltrail server tokens create" in body["hint"]


def test_a_wrong_token_is_401(server: Server):
    good = server.token("read")["Authorization"]
    for header in (good[:-3] + "xyz", "Bearer mlt_0123456789ab_secret", "Bearer nonsense"):
        body = _error(
            server.http.get("/api/v1/experiments", headers={"Authorization": header}), 401
        )
        assert "not valid" in body["message"] or "not an mltrail token" in body["message"]
    body = _error(server.http.get("/api/v1/experiments", headers={"Authorization": "Token x"}), 401)
    assert "Bearer <token>" in body["message"]
    body = _error(server.http.get("/api/v1/experiments", headers={"Authorization": "Basic x"}), 401)
    assert "not base64 of 'user:password'" in body["message"]


def test_an_expired_token_is_401_naming_its_expiry_even_when_cached(server: Server):
    # 2 s of validity: the first request must land before expiry even on a loaded machine.
    expires_at = int(time.time() * 1000) + 2000
    headers = server.token("read", expires_at=expires_at)
    assert server.http.get("/api/v1/experiments", headers=headers).status_code == 200
    time.sleep(max(0.0, expires_at / 1000 - time.time()) + 0.1)
    body = _error(server.http.get("/api/v1/experiments", headers=headers), 401)
    assert " expired on 20" in body["message"] and "UTC" in body["message"]


def test_a_token_revoked_through_the_api_is_refused_at_once(server: Server):
    admin = server.token("admin", "root")
    info, token = server.store.create_token("bob", "write")
    headers = {"Authorization": f"Bearer {token}"}
    assert server.http.get("/api/v1/experiments", headers=headers).status_code == 200
    revoked = server.http.delete(f"/api/v1/admin/tokens/{info.token_id}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    body = _error(server.http.get("/api/v1/experiments", headers=headers), 401)
    assert body["message"].startswith(f"token {info.token_id} was revoked on ")


def test_verified_tokens_are_cached_for_a_while(server: Server, monkeypatch: pytest.MonkeyPatch):
    store = server.state.store  # type: ignore[attr-defined]
    calls: list[str] = []
    verify = store.verify_token

    def counting(token: str) -> object:
        calls.append(token)
        return verify(token)

    monkeypatch.setattr(store, "verify_token", counting)
    info, token = server.store.create_token("bob", "read")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        assert server.http.get("/api/v1/experiments", headers=headers).status_code == 200
    assert len(calls) == 1
    # Revoked behind this process's back: accepted until the cache lets go of it.
    server.store.revoke_token(info.token_id)
    assert server.http.get("/api/v1/experiments", headers=headers).status_code == 200
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.05)
    auth.forget_tokens(server.state)  # type: ignore[arg-type]
    _error(server.http.get("/api/v1/experiments", headers=headers), 401)


def test_the_cache_lets_go_after_its_time(server: Server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.05)
    info, token = server.store.create_token("bob", "read")
    headers = {"Authorization": f"Bearer {token}"}
    assert server.http.get("/api/v1/experiments", headers=headers).status_code == 200
    server.store.revoke_token(info.token_id)
    time.sleep(0.1)
    _error(server.http.get("/api/v1/experiments", headers=headers), 401)


# -- roles -------------------------------------------------------------------------------------


def test_a_read_token_writing_is_403_with_a_clear_message(server: Server):
    reader = server.token("read", "bob")
    body = _error(server.http.post("/api/v1/experiments", json={"name": "x"}, headers=reader), 403)
    assert body["error_code"] == "PERMISSION_DENIED"
    assert body["message"] == "user 'bob' (role read) may not write"
    assert "mltrail server permissions set" in body["hint"]


def test_a_write_token_logs_runs_as_its_user(server: Server):
    writer = server.token("write", "alice")
    exp = server.http.post("/api/v1/experiments", json={"name": "e"}, headers=writer)
    assert exp.status_code == 201, exp.text
    created = server.http.post(
        "/api/v1/runs",
        json={
            "experiment_id": exp.json()["experiment_id"],
            "run_name": "r",
            "user_id": "mallory",
            "start_time": 1,
        },
        headers=writer,
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["info"]["run_id"]
    batch = {
        "batches": [{"run_id": run_id, "metrics": [["loss", 0.5, 1, 0]], "params": {"a": "1"}}]
    }
    written = server.http.post("/api/v1/runs/batches", json=batch, headers=writer)
    assert written.status_code == 200 and written.json()["errors"] == {}
    run = server.store.get_run(run_id)
    assert run.info.user_id == "alice"
    assert run.data.params == {"a": "1"}


def test_only_admins_manage_tokens_and_the_secret_is_shown_once(server: Server):
    admin = server.token("admin", "root")
    writer = server.token("write", "alice")
    made = server.http.post(
        "/api/v1/admin/tokens", json={"user": "carol", "role": "read"}, headers=admin
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("mlt_" + made.json()["info"]["token_id"])
    listed = server.http.get("/api/v1/admin/tokens", headers=admin)
    assert {t["user"] for t in listed.json()["tokens"]} == {"root", "alice", "carol"}
    # The secret is everything after the id; it may hold "_" itself (URL-safe base64).
    assert parse_token(token)[1] not in listed.text
    assert "secret" not in listed.text
    for method, path in [
        ("GET", "/api/v1/admin/tokens"),
        ("POST", "/api/v1/admin/tokens"),
        ("GET", "/api/v1/admin/permissions"),
        ("PUT", "/api/v1/admin/permissions"),
    ]:
        body = {"user": "x", "role": "admin"} if path.endswith("tokens") else None
        if path.endswith("permissions") and method == "PUT":
            body = {"user": "x", "kind": "model", "target": "m", "level": "write"}
        response = server.http.request(method, path, json=body, headers=writer)
        assert _error(response, 403)["message"].startswith("user 'alice' (role write) may not ")
    who = server.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert who.json()["user"] == "carol" and who.json()["role"] == "read"


def test_admin_api_checks_values_like_the_store(server: Server):
    admin = server.token("admin", "root")
    bad = server.http.post("/api/v1/admin/tokens", json={"user": "x", "role": "god"}, headers=admin)
    assert "role 'god' is not one of read, write, admin" in _error(bad, 400)["message"]
    bad = server.http.put(
        "/api/v1/admin/permissions",
        json={"user": "x", "kind": "model", "target": "m", "level": "admin"},
        headers=admin,
    )
    assert "permission level 'admin'" in _error(bad, 400)["message"]


# -- permissions -------------------------------------------------------------------------------


def test_permission_none_hides_an_experiment_and_denies_reading_it(server: Server):
    secret = server.store.create_experiment("secret")
    open_exp = server.store.create_experiment("open")
    run = server.store.create_run(secret, "r", "root", 1)
    server.store.set_permission("bob", "experiment", secret, "none")
    bob = server.token("read", "bob")
    carol = server.token("read", "carol")

    def names(headers: dict[str, str]) -> set[str]:
        found = server.http.get("/api/v1/experiments", headers=headers).json()["experiments"]
        return {e["name"] for e in found}

    assert names(bob) == {"Default", "open"}
    assert names(carol) == {"Default", "open", "secret"}
    for path in (
        f"/api/v1/experiments/{secret}",
        f"/api/v1/runs/{run.info.run_id}",
        "/api/v1/experiments/by-name?name=secret",
    ):
        body = _error(server.http.get(path, headers=bob), 403)
        assert (
            body["message"]
            == f"user 'bob' (permission none there) may not read on experiment {secret}"
        )
    search = server.http.post("/api/v1/runs/search", json={"experiment_ids": [secret]}, headers=bob)
    _error(search, 403)
    assert server.http.get(f"/api/v1/experiments/{open_exp}", headers=bob).status_code == 200
    who = server.http.get("/api/v1/whoami", headers=bob).json()
    assert who["grants"] == [{"kind": "experiment", "target": secret, "level": "none"}]


def test_an_experiment_write_grant_lets_a_reader_log_there_only(server: Server):
    mine = server.store.create_experiment("mine")
    other = server.store.create_experiment("other")
    server.store.set_permission("bob", "experiment", mine, "write")
    bob = server.token("read", "bob")
    for exp, status in ((mine, 201), (other, 403)):
        made = server.http.post(
            "/api/v1/runs",
            json={"experiment_id": exp, "run_name": "r", "start_time": 1},
            headers=bob,
        )
        assert made.status_code == status, made.text


def test_a_model_write_grant_lets_a_reader_set_an_alias(server: Server):
    for name in ("wine", "beer"):
        server.store.create_model_version(
            name, "runs:/x/model", None, None, TREE, None, None, "root"
        )
    server.store.set_permission("bob", "model", "wine", "write")
    server.store.set_permission("bob", "model", "beer", "none")
    bob = server.token("read", "bob")
    ok = server.http.put("/api/v1/models/wine/aliases/production", json={"version": 1}, headers=bob)
    assert ok.status_code == 204, ok.text
    assert server.store.get_model_version_by_alias("wine", "production").version == 1
    denied = server.http.put(
        "/api/v1/models/beer/aliases/production", json={"version": 1}, headers=bob
    )
    assert "may not write on model 'beer'" in _error(denied, 403)["message"]
    models = server.http.get("/api/v1/models", headers=bob).json()["models"]
    assert [m["name"] for m in models] == ["wine"]
    _error(server.http.get("/api/v1/models/beer", headers=bob), 403)


def test_admins_are_not_limited_by_permissions(server: Server):
    secret = server.store.create_experiment("secret")
    server.store.set_permission("root", "experiment", secret, "none")
    admin = server.token("admin", "root")
    assert server.http.get(f"/api/v1/experiments/{secret}", headers=admin).status_code == 200


def test_permission_changes_through_the_api_apply_at_once(server: Server):
    admin = server.token("admin", "root")
    secret = server.store.create_experiment("secret")
    bob = server.token("read", "bob")
    path = f"/api/v1/experiments/{secret}"
    assert server.http.get(path, headers=bob).status_code == 200
    grant = {"user": "bob", "kind": "experiment", "target": secret, "level": "none"}
    assert server.http.put("/api/v1/admin/permissions", json=grant, headers=admin).json() == grant
    _error(server.http.get(path, headers=bob), 403)
    listed = server.http.get("/api/v1/admin/permissions?user=bob", headers=admin).json()
    assert listed == {"permissions": [grant]}
    removed = server.http.delete(
        "/api/v1/admin/permissions",
        params={"user": "bob", "kind": "experiment", "target": secret},
        headers=admin,
    )
    assert removed.status_code == 204
    assert server.http.get(path, headers=bob).status_code == 200


# -- who did it --------------------------------------------------------------------------------


def test_registry_events_record_the_tokens_user_not_the_claimed_one(server: Server):
    writer = server.token("write", "alice")
    headers = {**writer, "X-Mltrail-User": "mallory"}
    made = server.http.post(
        "/api/v1/models", json={"name": "wine", "actor": "mallory"}, headers=headers
    )
    assert made.status_code == 201, made.text
    events = server.store.get_registry_events("wine")
    assert [(e.action, e.actor) for e in events] == [("create_model", "alice")]


def test_visible_experiment_ids_lists_only_without_hidden_ones(server: Server):
    secret = server.store.create_experiment("secret")
    shown = server.store.create_experiment("shown")
    reader = access.Principal("bob", "read")
    # No per-experiment grant hides anything: None, and the store is not asked for a listing.
    assert access.visible_experiment_ids(reader, server.store) is None
    hiding = access.Principal("bob", "read", grants={("experiment", secret): "none"})
    found = access.visible_experiment_ids(hiding, server.store)
    assert found is not None and set(found) == {"0", shown}

"""Tokens and permissions in every store: SQLite, PostgreSQL, and HTTP (through the admin API)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mltrail.entities import Permission
from mltrail.errors import InvalidInput, NotFound, Unauthenticated
from mltrail.store import TrackingStore, open_store
from mltrail.store.auth_base import hash_secret, parse_token

#: The admin whose token the HTTP store uses: a server serves its admin API only with auth on.
HARNESS = "harness"


@pytest.fixture
def store(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not store_uri.startswith("http"):
        s = open_store(store_uri)
        yield s
        s.close()
        return
    from mltrail.server.app import ServerSettings
    from tests.live import serve

    # The shared http store serves without auth; the admin API needs a server with auth on.
    served = tmp_path / "auth-on"
    served.mkdir()
    uri = f"sqlite:///{served / 'mltrail.db'}"
    direct = open_store(uri)
    _, token = direct.create_token(HARNESS, "admin")
    direct.close()
    monkeypatch.setenv("MLTRAIL_TOKEN", token)
    settings = ServerSettings(uri, str(served / "objects"), auth=True, access_log=False)
    with serve(settings) as url:
        s = open_store(url)
        yield _WithoutHarness(s)
        s.close()


class _WithoutHarness:
    """The HTTP store, its token listings leaving out the harness's own admin token."""

    def __init__(self, store: TrackingStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list_tokens(self, *args: Any, **kw: Any) -> list[Any]:
        return [t for t in self._store.list_tokens(*args, **kw) if t.user != HARNESS]


def _now() -> int:
    return int(time.time() * 1000)


def test_a_token_string_names_its_id_and_verifies(store: TrackingStore):
    info, token = store.create_token("alice", "write", "laptop")
    assert re.fullmatch(r"mlt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    assert token.startswith(f"mlt_{info.token_id}_")
    assert (info.user, info.role, info.description) == ("alice", "write", "laptop")
    assert info.expires_at is None and info.revoked_at is None
    assert store.verify_token(token) == info
    # Surrounding space (a copied line) does not matter.
    assert store.verify_token(f" {token}\n") == info


def test_only_the_hash_of_the_secret_is_stored(store_uri: str, store: TrackingStore):
    if store_uri.startswith("http"):
        pytest.skip("the HTTP store keeps nothing")
    import sqlalchemy as sa

    from mltrail.store import schema as t

    _, token = store.create_token("alice", "read")
    _, secret = parse_token(token)
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = [tuple(r) for r in conn.execute(sa.select(t.auth_tokens))]
    assert len(rows) == 1
    assert hash_secret(secret) in rows[0]
    assert not any(secret in str(cell) for cell in rows[0])


def test_wrong_unknown_and_malformed_tokens_are_refused_alike(store: TrackingStore):
    info, token = store.create_token("alice", "write")
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown = f"mlt_{'0' * 12}_{token.rsplit('_', 1)[-1]}"
    messages = set()
    for bad in (wrong, unknown):
        with pytest.raises(Unauthenticated) as caught:
            store.verify_token(bad)
        messages.add(caught.value.message)
        assert "MLTRAIL_TOKEN" in (caught.value.hint or "")
    # The same answer: it reveals neither whether the id exists nor whose it is.
    assert messages == {"the token is not valid on this server"}
    for bad in ("", "Bearer x", "mlt_xyz_secret", f"mlt_{info.token_id}_"):
        with pytest.raises(Unauthenticated, match="not an mltrail token"):
            store.verify_token(bad)


def test_an_expired_token_says_when_it_expired(store: TrackingStore):
    # A margin for a loaded machine: the HTTP store's round trips come before the first check.
    info, token = store.create_token("alice", "write", expires_at=_now() + 2000)
    assert store.verify_token(token).expires_at == info.expires_at
    time.sleep(max(0.0, (info.expires_at - _now()) / 1000) + 0.1)
    with pytest.raises(Unauthenticated) as caught:
        store.verify_token(token)
    day = time.strftime("%Y-%m-%d", time.gmtime(info.expires_at / 1000))
    assert caught.value.message.startswith(f"token {info.token_id} expired on {day} ")
    assert "mltrail server tokens create" in (caught.value.hint or "")
    # A wrong secret for an expired token still says nothing about it.
    with pytest.raises(Unauthenticated, match="not valid on this server"):
        store.verify_token(token[:-4] + "AAAA" if not token.endswith("AAAA") else token[:-4])


def test_an_expiry_in_the_past_is_refused(store: TrackingStore):
    with pytest.raises(InvalidInput, match="not in the future"):
        store.create_token("alice", "read", expires_at=_now() - 1000)


def test_revoked_tokens_are_refused_and_hidden_from_the_listing(store: TrackingStore):
    keep, _ = store.create_token("alice", "read")
    gone, token = store.create_token("bob", "write")
    revoked = store.revoke_token(gone.token_id)
    assert revoked.revoked_at is not None and revoked.token_id == gone.token_id
    with pytest.raises(Unauthenticated, match=f"token {gone.token_id} was revoked on "):
        store.verify_token(token)
    # Again: no change, the first revocation time stays.
    assert store.revoke_token(gone.token_id).revoked_at == revoked.revoked_at
    assert [t.token_id for t in store.list_tokens()] == [keep.token_id]
    assert {t.token_id for t in store.list_tokens(include_revoked=True)} == {
        keep.token_id,
        gone.token_id,
    }


def test_revoking_a_token_that_does_not_exist(store: TrackingStore):
    with pytest.raises(NotFound, match="token 0123456789ab does not exist"):
        store.revoke_token("0123456789ab")
    with pytest.raises(InvalidInput, match="is not a token id"):
        store.revoke_token("../etc")


def test_tokens_are_listed_newest_first_and_by_user(store: TrackingStore):
    first, _ = store.create_token("alice", "read")
    time.sleep(0.005)
    second, _ = store.create_token("bob", "admin")
    time.sleep(0.005)
    third, _ = store.create_token("alice", "write", "ci")
    assert [t.token_id for t in store.list_tokens()] == [
        third.token_id,
        second.token_id,
        first.token_id,
    ]
    assert [t.token_id for t in store.list_tokens("alice")] == [third.token_id, first.token_id]
    assert store.list_tokens("nobody") == []


@pytest.mark.parametrize(
    ("user", "role", "match"),
    [
        ("", "read", "user name"),
        (" alice", "read", "user name"),
        ("a" * 257, "read", "user name"),
        ("alice", "owner", "owner"),
    ],
)
def test_bad_users_and_roles_are_refused(store: TrackingStore, user: str, role: str, match: str):
    with pytest.raises(InvalidInput, match=match):
        store.create_token(user, role)


def test_permissions_are_set_replaced_listed_and_removed(store: TrackingStore):
    exp = store.create_experiment("secret")
    assert store.set_permission("bob", "experiment", exp, "none") == Permission(
        "bob", "experiment", exp, "none"
    )
    store.set_permission("bob", "model", "wine", "read")
    store.set_permission("bob", "model", "wine", "write")  # replaces, no duplicate
    store.set_permission("alice", "model", "wine", "read")
    assert store.list_permissions() == [
        Permission("alice", "model", "wine", "read"),
        Permission("bob", "experiment", exp, "none"),
        Permission("bob", "model", "wine", "write"),
    ]
    assert store.permissions_of("bob") == {("experiment", exp): "none", ("model", "wine"): "write"}
    assert store.permissions_of("carol") == {}
    store.delete_permission("bob", "model", "wine")
    assert store.list_permissions("bob") == [Permission("bob", "experiment", exp, "none")]
    with pytest.raises(NotFound, match="user 'bob' has no permission on model 'wine'"):
        store.delete_permission("bob", "model", "wine")


def test_bad_permissions_are_refused(store: TrackingStore):
    with pytest.raises(NotFound, match="experiment"):
        store.set_permission("bob", "experiment", "424242", "read")
    with pytest.raises(InvalidInput, match="admin"):
        store.set_permission("bob", "model", "wine", "admin")
    with pytest.raises(InvalidInput, match="run"):
        store.set_permission("bob", "run", "abc", "read")

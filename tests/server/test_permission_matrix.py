"""Every route, for every kind of caller, answers the status its access rule says.

The routes come from the app itself (its route table, checked against its OpenAPI document) and
MLflow's endpoint table, so a route added without an entry in permission_table.py fails
:func:`test_every_route_has_an_expectation`: a new route cannot be missed.

Each entry names the rule the route follows and how to call it. A rule is what the caller needs:
``read`` (the role, unscoped: listings, which then filter), ``read:exp`` (read on the experiment
the request names), ``write:model`` (write on the registered model), ``admin``, joined with ``+``
when a request needs several (``write:model+read:exp``: register a version from a run). The
expected status follows from the caller: 401 without a token, 403 without the level, success
(2xx) otherwise; the UI sends a browser without a token to sign in (303). Writes run against a
world made for that one request, so a delete by one caller leaves the next caller's target.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from mltrail.mlflow_api import routes as mlflow_routes
from mltrail.server.app import ServerSettings, create_app
from mltrail.store import open_store
from tests.server.permission_table import (
    ART,
    PRINCIPALS,
    UI,
    World,
    expectations,
    expected,
    make_world,
)

# -- discovering the routes ----------------------------------------------------------------------


def _walk(routes: Any) -> Iterator[Any]:
    for r in routes:
        inner = getattr(r, "original_router", None) or getattr(r, "app", None)
        if hasattr(r, "methods") and getattr(r, "path", None):
            yield r
        elif inner is not None and hasattr(inner, "routes"):
            yield from _walk(inner.routes)


def discovered(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, MLflow's endpoints by their table."""
    found: set[tuple[str, str]] = set()
    for route in _walk(app.router.routes):
        if route.path.startswith(("/ajax-api/", "/api/2.0/mlflow/{")):
            continue  # the ajax roots mirror the api ones; /api/2.0/mlflow/ is MLflow's table
        for method in route.methods or ():
            if (
                method == "HEAD"
                and "GET" in route.methods
                and route.path != "/api/v1/objects/{hash}"
            ):
                continue
            if route.path.startswith("/api/3.0/mlflow/{") and method != "GET":
                continue  # one catch-all, whatever the method
            found.add((method, route.path))
    for method, path in mlflow_routes.ROUTES:
        found.add((method, f"mlflow:{path}"))
    return found


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any, dict]]:
    tmp = tmp_path_factory.mktemp("matrix")
    uri = f"sqlite:///{tmp / 'matrix.db'}"
    store = open_store(uri)
    settings = ServerSettings(uri, str(tmp / "objects"), auth=True, access_log=False)
    app = create_app(settings)
    tokens: dict[str, dict[str, str]] = {}
    for who, p in PRINCIPALS.items():
        if p is None:
            tokens[who] = {}
        else:
            _, token = store.create_token(who, p[0])
            tokens[who] = {"Authorization": f"Bearer {token}"}
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as http:
        yield app, store, http, tokens
    store.close()
    app.state.mltrail.close()


def test_every_route_has_an_expectation(served: tuple[Any, Any, Any, dict]):
    app = served[0]
    routes = discovered(app)
    table = set(expectations())
    assert routes - table == set(), "routes with no expected statuses: add them to EXPECT"
    assert table - routes == set(), "expectations of routes that are gone"
    # Everything the OpenAPI document describes is among them.
    spec = app.openapi()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented - routes == set()


def _outcome(status: int) -> str:
    return "ok" if status < 300 else str(status)


def _is_ui(template: str) -> bool:
    return template in {t for _, t in UI}


def _want(template: str, rule: str, who: str) -> str:
    """The outcome ``who`` should see: ``ok`` (2xx), else the status."""
    # ``+statusNNN``: what a caller who passes the checks gets (no S3 to presign with, say);
    # ``404`` after a scope: a caller the grant hides it from is told it does not exist.
    if rule.startswith("status:"):
        return rule[len("status:") :]
    passed, hidden = "ok", "403"
    needs = []
    for part in rule.split("+"):
        if part.startswith("status") and part[6:].isdigit():
            passed = part[6:]
        elif part.endswith("404"):
            hidden = "404"
            needs.append(part[:-3])
        else:
            needs.append(part)
    got = expected("+".join(needs), who)
    if got == "ok":
        return passed
    if got == "401" and _is_ui(template) and not template.startswith("/ui/data/"):
        return "303"  # the UI sends a browser to sign in (its chart data answers 401)
    role_only = "+".join(n.split(":")[0] for n in needs)
    if got == "403" and hidden == "404" and expected(role_only, who) == "ok":
        return "404"
    return got


MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
READ_ONLY_POSTS = {
    ("POST", "/api/v1/experiments/summaries"),
    ("POST", "/api/v1/runs/search"),
    ("POST", "/api/v1/objects/missing"),
    ("POST", "/api/v1/objects/presign"),
    ("POST", "mlflow:experiments/search"),
    ("POST", "mlflow:runs/search"),
    ("POST", "mlflow:logged-models/search"),
    ("POST", "mlflow:registered-models/get-latest-versions"),
    ("POST", "/login"),
    ("POST", "/logout"),
}


#: Writes a second caller could not repeat on the same target (it is gone, or renamed).
DESTRUCTIVE = {
    ("PATCH", "/api/v1/experiments/{experiment_id}"),
    ("DELETE", "/api/v1/runs/{run_id}/artifacts"),
    ("DELETE", "/api/v1/logged-models/{model_id}"),
    ("POST", "/api/v1/models/{name}/rename"),
    ("DELETE", "/api/v1/models/{name}"),
    ("DELETE", "/api/v1/models/{name}/versions/{version}"),
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}"),
    ("DELETE", "/api/v1/objects/{hash}"),
    ("POST", "mlflow:experiments/delete"),
    ("POST", "mlflow:experiments/update"),
    ("POST", "mlflow:runs/delete"),
    ("DELETE", "mlflow:logged-models/{model_id}"),
    ("POST", "mlflow:registered-models/rename"),
    ("DELETE", "mlflow:registered-models/delete"),
    ("DELETE", "mlflow:registered-models/alias"),
    ("DELETE", "mlflow:model-versions/delete"),
    ("DELETE", ART + "/artifacts/{path:path}"),
    # tags removed, names taken, tokens revoked and permissions dropped by the first caller
    ("DELETE", "/api/v1/experiments/{experiment_id}/tags"),
    ("DELETE", "/api/v1/runs/{run_id}/tags"),
    ("DELETE", "/api/v1/models/{name}/tags"),
    ("DELETE", "/api/v1/models/{name}/versions/{version}/tags"),
    ("POST", "mlflow:experiments/delete-experiment-tag"),
    ("POST", "mlflow:runs/delete-tag"),
    ("DELETE", "mlflow:registered-models/delete-tag"),
    ("DELETE", "mlflow:model-versions/delete-tag"),
    ("DELETE", "mlflow:logged-models/{model_id}/tags/{tag_key}"),
    ("POST", "/api/v1/experiments"),
    ("POST", "/api/v1/models"),
    ("POST", "mlflow:experiments/create"),
    ("POST", "mlflow:registered-models/create"),
    ("DELETE", "/api/v1/admin/tokens/{token_id}"),
    ("DELETE", "/api/v1/admin/permissions"),
}

_worlds: dict[int, World] = {}


@pytest.mark.parametrize("route", sorted(expectations()), ids=" ".join)
def test_the_permission_matrix(served: tuple[Any, Any, Any, dict], route: tuple[str, str]):
    app, store, http, tokens = served
    state = app.state.mltrail
    objects = state.objects
    method, template = route
    rule, call = expectations()[route]
    if method not in MUTATING or route in READ_ONLY_POSTS:
        # Reads share one world.
        if not _worlds:
            _worlds[0] = make_world(store, objects, state)
        shared = _worlds[0]
    else:
        shared = make_world(store, objects, state)
    wrong: list[str] = []
    checked = 0
    if True:
        for who in PRINCIPALS:
            world = make_world(store, objects, state) if route in DESTRUCTIVE else shared
            path, kw = call(world)
            headers = {**tokens[who], **kw.pop("headers", {})}
            if _is_ui(template):
                headers.setdefault("Accept", "text/html")
            got = http.request(method, path, headers=headers, **kw)
            want = _want(template, rule, who)
            checked += 1
            if _outcome(got.status_code) != want:
                wrong.append(
                    f"as {who}: {got.status_code}, expected {want} ({rule}): {got.text[:160]}"
                )
    assert not wrong, f"{len(wrong)} of {checked} calls:\n" + "\n".join(wrong)

"""The UI's plumbing: templates and filters, static files, sign-in, and HTML error pages.

Page modules (``ui/pages/``) call :func:`render` with a template and its values; Jinja2
escapes every value (autoescape is on for all templates), so user text such as run names, tags,
params and artifact names can never become markup. Pages find the store with
:func:`mltrail.server.app.state_of` and the caller with the server's ``principal`` dependency,
so a page sees exactly what the same user sees through the REST API.

A browser cannot send a Bearer header, so with auth on the UI signs users in with their token
(``/login``) and keeps it in an HttpOnly, SameSite=Strict cookie; the auth dependency accepts
the cookie for reads, and for writes only when the request comes from the UI's own origin.
"""

from __future__ import annotations

import functools
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends
from starlette.requests import Request  # FastAPI resolves dependency signatures at runtime
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from mltrail._version import __version__
from mltrail.access import Principal
from mltrail.errors import Unauthenticated
from mltrail.server.app import ServerState, state_of
from mltrail.server.auth import UI_COOKIE as COOKIE
from mltrail.server.auth import principal
from mltrail.tracking.liveness import shown

if TYPE_CHECKING:
    import jinja2

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


#: The dependencies of a page: who is asking, and the store and object store being served.
Who = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]

#: Static files are named with the version in their URL, so browsers may keep them for good.
_FOREVER = "public, max-age=31536000, immutable"


# -- templates -----------------------------------------------------------------------------------


@functools.cache
def templates() -> jinja2.Environment:
    """The UI's Jinja2 environment (autoescaping every template, undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        ago=ago,
        num=num,
        duration=duration,
        short=short,
        url=quote,
        run_status=lambda run: shown(run).status,
    )
    env.globals.update(
        version=__version__,
        static=static_url,
        plotly_js=plotly_url,
        can=can,
    )
    return env


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page ``template`` filled with ``values`` (plus ``request`` and the signed-in user)."""
    values.setdefault("who", getattr(request.state, "principal", None))
    values.setdefault("auth_on", _auth_on(request))
    html = templates().get_template(template).render(request=request, **values)
    return HTMLResponse(html, status_code=status)


def _auth_on(request: Request) -> bool:
    return state_of(request).settings.auth_enabled


def can(
    who: Principal | None, level: str, *, experiment_id: str | None = None, model: str | None = None
) -> bool:
    """Whether ``who`` holds ``level`` (on an experiment or model): pages hide what it cannot."""
    from mltrail.access import LEVELS, level_of

    if who is None:
        return False
    return level_of(who, experiment_id=experiment_id, model=model) >= LEVELS[level]


# -- filters -------------------------------------------------------------------------------------


def when(ms: int | None) -> str:
    """A time in ms since the epoch as local ``YYYY-MM-DD HH:MM:SS``; empty for none."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def ago(ms: int | None, now: float | None = None) -> str:
    """A time in ms since the epoch relative to now: ``just now``, ``5 min ago``, ``3 days ago``."""
    if not ms:
        return ""
    seconds = (now if now is not None else time.time()) - ms / 1000
    if seconds < 0:
        return when(ms)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "min")):
        if seconds >= size:
            n = int(seconds // size)
            plural = "s" if n > 1 and unit != "min" else ""
            return f"{n} {unit}{plural} ago"
    return "just now"


def num(value: Any) -> str:
    """A metric or number compactly: 6 significant digits, ints as they are, NaN and ±inf named."""
    if value is None:
        return ""
    if isinstance(value, int):  # bools too
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def duration(ms: int | None) -> str:
    """A length of time in ms as ``850 ms``, ``12.3 s``, ``4 min 5 s`` or ``2 h 3 min``."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def short(run_id: str | None) -> str:
    """The first 8 characters of an id, as the CLI shows them."""
    return (run_id or "")[:8]


# -- static files --------------------------------------------------------------------------------


def static_url(name: str) -> str:
    """The URL of a file in ``ui/static`` (versioned, so it can be cached for good)."""
    return f"/static/{__version__}/{name}"


def plotly_url() -> str:
    """The URL of plotly.js, served from the installed ``plotly`` package."""
    return f"/static/plotly-{_plotly()[1]}.min.js"


@functools.cache
def _plotly() -> tuple[Path, str]:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js", plotly.__version__


@functools.cache
def _static_names() -> frozenset[str]:
    return frozenset(p.name for p in STATIC.iterdir() if p.is_file())


_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


# -- routes --------------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/static/{version}/{name}")
def static_file(version: str, name: str) -> Response:
    """A file of ``ui/static`` (only names that exist there: no paths)."""
    if name not in _static_names():
        return Response("not found", status_code=404, media_type="text/plain")
    media = _TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": _FOREVER})


@router.get("/static/plotly-{version}.min.js")
def plotly_js(version: str) -> Response:
    """plotly.js from the installed ``plotly`` package."""
    path, _ = _plotly()
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": _FOREVER})


@router.get("/")
def home() -> Response:
    """The experiments list is the front page."""
    return RedirectResponse("/experiments", status_code=307)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """The sign-in form (only useful when the server has auth on)."""
    return render(request, "login.html", next=_local(next), error=None, who=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check a pasted token; on success keep it in a cookie and go where the user was heading."""
    from mltrail.server.auth import authenticate

    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _local((form.get("next") or ["/"])[0])
    try:
        authenticate(state_of(request), f"Bearer {token}")
    except Unauthenticated as exc:
        return render(request, "login.html", 401, next=target, error=exc.message, who=None)
    reply = RedirectResponse(target, status_code=303)
    reply.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=30 * 86400,
    )
    return reply


@router.post("/logout")
def logout() -> Response:
    """Forget the signed-in token."""
    reply = RedirectResponse("/login", status_code=303)
    reply.delete_cookie(COOKIE)
    return reply


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirects)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- errors as pages -----------------------------------------------------------------------------


def wants_html(request: Request) -> bool:
    """Whether an error on this request should be a page (a browser asking for a UI page)."""
    path = request.url.path
    if path.startswith(("/api/", "/ui/data/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(
    request: Request, status: int, code: str, message: str, hint: str | None = None
) -> Response:
    """An error as a page; a missing sign-in goes to the sign-in form instead."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return render(request, "error.html", status, code=code, message=message, hint=hint)


def pages() -> list[APIRouter]:
    """This module's router and every page router."""
    from mltrail.ui.pages import PAGES

    return [router, *PAGES()]

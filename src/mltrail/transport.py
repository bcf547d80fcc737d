"""The HTTP connection to ``mltrail server``, shared by the HTTP metadata store and object store.

One keep-alive connection pool per server, the token from ``MLTRAIL_TOKEN``, and retries with
exponential backoff. A request is retried when the server could not have acted on it (the
connection was refused, or the reply is 429/502/503/504), and, for requests marked idempotent,
also after a 500 or a connection dropped mid-reply. Writes that are not naturally idempotent are
made so by the caller (a batch id, a client-chosen run id) before they are marked idempotent.

Errors come back as the server sent them: ``{"error_code", "message", "hint"}`` becomes the same
:class:`~mltrail.errors.MltrailError` subclass the embedded store would have raised.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from mltrail._version import __version__
from mltrail.errors import MltrailError, StoreError, error_from_code

if TYPE_CHECKING:
    import httpx

ENV_TOKEN = "MLTRAIL_TOKEN"
#: The REST API's prefix; a later MLflow-compatible API lives under /api/2.0/mlflow/.
API_PREFIX = "/api/v1"

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_RETRY_ALWAYS = frozenset({429, 502, 503, 504})
_DEFAULT_RETRIES = 6
_BACKOFF_BASE = 0.1
_BACKOFF_MAX = 5.0

_pools: dict[tuple[str, str | None], HttpTransport] = {}
_pools_lock = threading.Lock()


def transport_for(base_url: str, token: str | None = None) -> HttpTransport:
    """Return the shared transport of a server URL (one pool per URL and token per process)."""
    base = base_url.rstrip("/")
    token = token if token is not None else (os.environ.get(ENV_TOKEN) or None)
    key = (base, token)
    with _pools_lock:
        found = _pools.get(key)
        if found is None or found.closed:
            found = _pools[key] = HttpTransport(base, token)
        return found


def encode_float(value: float) -> float | str:
    """JSON has no NaN or infinity: send them as the strings ``"NaN"``, ``"Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: float | int | str | None) -> float | None:
    """The inverse of :func:`encode_float`."""
    if value is None:
        return None
    return float(value)


class HttpTransport:
    """A keep-alive HTTP client for one server, with retries and error translation."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        retries: int = _DEFAULT_RETRIES,
        timeout: float = 60.0,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.retries = retries
        headers = {"User-Agent": f"mltrail/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            follow_redirects=False,
        )
        self.closed = False

    def __repr__(self) -> str:
        return f"HttpTransport({self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self.closed = True
        self.client.close()

    # -- requests ----------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send a JSON request to ``API_PREFIX + path``; return the decoded JSON reply (or None)."""
        content = None
        headers = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json"}
        response = self.send(
            method,
            API_PREFIX + path,
            content=content,
            params=_clean(params),
            headers=headers,
            idempotent=method in ("GET", "HEAD", "PUT", "DELETE")
            if idempotent is None
            else idempotent,
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def send(
        self,
        method: str,
        path: str,
        *,
        content: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = False,
        stream: bool = False,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request with retries; raise the server's error for a non-2xx reply.

        ``content`` may be bytes or a callable returning a fresh iterable of chunks (so that a
        retried upload starts again from the beginning). Statuses in ``ok`` are returned, not
        raised. With ``stream``, the caller must close the response.
        """
        import httpx

        attempt = 0
        while True:
            body = content() if callable(content) else content
            try:
                request = self.client.build_request(
                    method, path, content=body, params=params, headers=headers
                )
                response = self.client.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, None)
                    continue
                raise StoreError(
                    f"cannot reach the mltrail server at {self.base_url}: {_reason(exc)}",
                    hint="Check that `mltrail server` is running there, and the URL in "
                    "MLTRAIL_TRACKING_URI / --store.",
                ) from None
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
                if idempotent and attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, None)
                    continue
                raise StoreError(
                    f"the connection to {self.base_url} broke during {method} {path}: "
                    f"{_reason(exc)}",
                    hint="Try again; if it keeps happening, check the server's log.",
                ) from None
            except httpx.TimeoutException:
                raise StoreError(
                    f"the mltrail server at {self.base_url} did not answer {method} {path} in time",
                    hint="The server may be overloaded; try again later.",
                ) from None
            status = response.status_code
            if status < 300 or status in ok:
                return response
            retry = status in _RETRY_ALWAYS or (idempotent and status == 500)
            if retry and attempt < self.retries:
                attempt += 1
                response.close()
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if stream:
                response.read()
                response.close()
            raise self.error_of(response)

    @contextmanager
    def download(self, path: str, params: dict[str, Any] | None = None) -> Iterator[httpx.Response]:
        """Stream a GET reply; the response is closed on exit."""
        response = self.send("GET", path, params=params, idempotent=True, stream=True)
        try:
            yield response
        finally:
            response.close()

    def error_of(self, response: httpx.Response) -> MltrailError:
        """The MltrailError a non-2xx reply stands for."""
        try:
            body = response.json()
            code, message = body["error_code"], body["message"]
        except (ValueError, KeyError, TypeError):
            text = response.text.strip()[:200] or response.reason_phrase
            return StoreError(
                f"the mltrail server at {self.base_url} answered "
                f"{response.request.method} {response.request.url.path} with HTTP "
                f"{response.status_code}: {text}",
                hint="Check that the URL points at `mltrail server` and that both run the same "
                "mltrail version.",
            )
        return error_from_code(code, message, body.get("hint"), body.get("kind"))

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** (attempt - 1))
        if retry_after:
            with suppress(ValueError):
                delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(delay * (0.5 + random.random() / 2))


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__

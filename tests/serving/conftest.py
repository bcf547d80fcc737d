"""Serving fixtures: real models saved once per test process, and an in-process HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mltrail.models import PyFuncModel, load_model
from mltrail.serving import create_app
from tests.serving import models


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved model folders: wine (sklearn), mixed, exploding, tensor."""
    root = tmp_path_factory.mktemp("models")
    models.save_wine_model(root / "wine")
    models.save_mixed_model(root / "mixed")
    models.save_exploding_model(root / "exploding")
    models.save_tensor_model(root / "tensor")
    return {name: root / name for name in ("wine", "mixed", "exploding", "tensor")}


@pytest.fixture(scope="session")
def wine_model(model_dirs: dict[str, Path]) -> PyFuncModel:
    """The wine random forest, loaded."""
    return load_model(model_dirs["wine"])


class Client:
    """Calls an app in-process through httpx's ASGI transport (the body streams lazily)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | str | Iterable[bytes] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                body: Any = content
                if content is not None and not isinstance(content, bytes | str):
                    body = _aiter(content)
                return await client.request(method, path, content=body, json=json, headers=headers)

        return asyncio.run(call())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post_json(self, doc: Any) -> httpx.Response:
        return self.request("POST", "/invocations", json=doc)

    def post(self, body: bytes | str, content_type: str | None) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return self.request("POST", "/invocations", content=body, headers=headers)


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.fixture(scope="session")
def wine(wine_model: PyFuncModel) -> Client:
    """A client of the wine model's app."""
    return Client(create_app(wine_model))


def client_for(folder: Path, **options: Any) -> Client:
    """A client of the app serving the model in ``folder``."""
    return Client(create_app(load_model(folder), **options))

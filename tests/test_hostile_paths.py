"""One path rule for artifacts, datasets and model files: a hostile-path corpus against every
function and route that takes a path, and legitimate paths that must keep working.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mltrail import MltrailClient
from mltrail.entities import DatasetRef
from mltrail.errors import InvalidInput
from mltrail.validation import (
    MAX_PATH_LENGTH,
    check_artifact_path,
    check_dataset_path,
    check_path,
)

HASH = "a" * 64

HOSTILE: list[object] = [
    # empty, absolute, drives, UNC
    "", "/", "//", "/etc/passwd", "\\x", "\\\\server\\share\\x", "//server/share/x",
    "C:\\Windows\\x", "C:/x", "c:x", "Z:", "C:",
    # dot segments in every spelling
    "../x", "a/../../x", "..\\x", "a\\..\\..\\x", ".. /x", "..  /x", ". /x", "... /x", "./x",
    "./../x", "a/./b", "a//b", "x/..", "x/.", "..", ".", "....", " ", "x/ /y", "x/. . /y",
    # URL-encoded traversal
    "%2e%2e/x", "a/%2E%2E/x", "..%2fx", "..%5cx", "%252e%252e/x", "%2fetc/passwd", "%2e/x",
    "%5c%5cserver%5cshare", "C%3a/x",
    # control characters
    "a\x00b", "a\nb", "a\rb", "a\tb", "a\x1b[31mred", "\x1b]8;;http://evil\x07x", "a\x07b",
    "a\x7fb", "a\x9bb", "a%00b", "a%0ab", "a%1bb",
    # bidirectional and invisible controls
    "x\u202egnp.exe", "\u202ex", "a\u202ab", "a\u202bb", "a\u202cb", "a\u202db", "\u2066x",
    "\u2067x", "\u2068x", "x\u2069", "a\u200eb", "a\u200fb", "a\u061cb", "a\u2028b", "a\u2029b",
    "\ufeffx", "a%E2%80%AEb",
    # too long
    "a" * (MAX_PATH_LENGTH + 1), "a/" + "b" * 256, "é" * 128, "d/" * 600,
    # not strings
    None, 5, b"x", ["a"],
]  # fmt: skip

LEGIT = [
    "model/weights.bin",
    "données/é.csv",
    "my data/file name.csv",
    "日本語/ファイル.txt",
    "family 👨\u200d👩\u200d👧.png",  # joiners inside emoji are letters' business, not controls
    "x..y/..z/z..",
    "100%.txt",
    "a%2fb",
    "notes: v1.txt",
    "a" * 255,
    "é" * 127,
    "/".join(["d"] * 500),
    ".hidden/file",
    "a b/c d",
]


def _id(p: object) -> str:
    return ascii(p)[:40]


def test_corpus_is_large() -> None:
    assert len(HOSTILE) >= 57


@pytest.mark.parametrize("path", HOSTILE, ids=_id)
@pytest.mark.parametrize("check", [check_path, check_artifact_path, check_dataset_path])
def test_validators_refuse_hostile_paths(check, path: object) -> None:
    with pytest.raises(InvalidInput) as info:
        check(path)
    assert info.value.hint


@pytest.mark.parametrize("path", LEGIT, ids=_id)
def test_legitimate_paths_pass(path: str) -> None:
    assert check_path(path) == path
    assert check_dataset_path(path) == path


def test_artifact_and_dataset_rules_are_one() -> None:
    for path in HOSTILE + LEGIT:
        outcomes = []
        for check in (check_artifact_path, check_dataset_path):
            try:
                check(path)
                outcomes.append("ok")
            except InvalidInput:
                outcomes.append("refused")
        assert outcomes[0] == outcomes[1], path


def test_dataset_paths_take_no_backslash_spelling() -> None:
    with pytest.raises(InvalidInput, match="'/' separators"):
        check_dataset_path("data\\train.csv")
    assert check_artifact_path("data\\train.csv") == "data/train.csv"


# -- every API function that takes a path ---------------------------------------------------------


@pytest.fixture
def run(client: MltrailClient) -> Iterator[tuple[MltrailClient, str]]:
    exp = client.create_experiment("hostile")
    run = client.create_run(exp)
    client.log_text(run.info.run_id, "ok", "ok.txt")
    yield client, run.info.run_id


def _refused(call) -> list[object]:
    """The corpus entries ``call`` accepted (or failed on with something else than a refusal)."""
    wrong = []
    for path in HOSTILE:
        try:
            call(path)
        except InvalidInput:
            continue
        except Exception as e:  # anything but a clear refusal is a failure
            wrong.append((path, type(e).__name__))
        else:
            wrong.append(path)
    return wrong


def test_api_functions_refuse_hostile_paths(run, tmp_path: Path) -> None:
    client, run_id = run
    local = tmp_path / "f.txt"
    local.write_text("x")
    dst = tmp_path / "dst"
    dst.mkdir()
    calls = {
        "log_text": lambda p: client.log_text(run_id, "x", p),
        "log_dict": lambda p: client.log_dict(run_id, {"a": 1}, p),
        "log_artifact": lambda p: client.log_artifact(run_id, local, p) if p else _refuse(),
        "log_artifacts": lambda p: client.log_artifacts(run_id, tmp_path, p) if p else _refuse(),
        "list_artifacts": lambda p: client.list_artifacts(run_id, p) if p else _refuse(),
        "download_artifacts": lambda p: (
            client.download_artifacts(run_id, p, dst) if p else _refuse()
        ),
        "read_artifact": lambda p: client.read_artifact(run_id, p),
        "log_run_datasets": lambda p: client.store.log_run_datasets(
            run_id, "input", [DatasetRef(p, HASH, "file", 1, None, None)]
        ),
    }
    wrong = {name: found for name, call in calls.items() if (found := _refused(call))}
    assert wrong == {}
    assert [f.path for f in client.list_artifacts(run_id)] == ["ok.txt"]


def _refuse() -> None:
    # No path means "the run's root" to log, list and download, which is fine.
    raise InvalidInput("empty path means the root here")


def test_log_model_refuses_hostile_names(project: Path) -> None:
    import mltrail as mt
    from mltrail.models.api import log_model

    with mt.start_run():
        assert _refused(lambda p: log_model(object(), p)) == []


@pytest.mark.parametrize("path", LEGIT[:6], ids=_id)
def test_legitimate_artifact_and_dataset_paths_work(run, path: str) -> None:
    client, run_id = run
    client.log_text(run_id, "hello", f"{path}/f.txt")
    assert client.read_artifact(run_id, f"{path}/f.txt") == b"hello"
    client.store.log_run_datasets(run_id, "input", [DatasetRef(path, HASH, "file", 1, None, None)])
    assert path in [d.dataset.path for d in client.get_run_datasets(run_id)]


# -- data add with hostile names on disk ---------------------------------------------------------


ON_DISK = ["a\nb.csv", "a\x1b[31m.csv", "x\u202egnp.csv", "\u2066x.csv", "a\\b.csv", "a\rb"]


@pytest.mark.parametrize("name", ON_DISK, ids=_id)
def test_data_add_refuses_hostile_file_names(project: Path, name: str) -> None:
    import mltrail.data

    project = project.parent  # the folder holding .mltrail/
    (project / name).write_text("x")
    with pytest.raises(InvalidInput, match="dataset path"):
        mltrail.data.add([str(project / name)])
    assert not (project / f"{name}.trail").exists()


def test_data_add_keeps_unicode_and_spaces(project: Path) -> None:
    import mltrail.data

    folder = project.parent / "données d'entrée"
    folder.mkdir()
    (folder / "é t é.csv").write_text("x")
    added = mltrail.data.add([str(folder / "é t é.csv")])
    assert added[0].path == "données d'entrée/é t é.csv" or os.fspath(added[0].path).endswith(
        "é t é.csv"
    )


# -- the REST routes that take paths -------------------------------------------------------------


def test_rest_routes_refuse_hostile_paths(store_uri: str) -> None:
    if not store_uri.startswith("http"):
        pytest.skip("the REST routes")
    client = MltrailClient(store_uri)
    exp = client.create_experiment("hostile")
    run_id = client.create_run(exp).info.run_id
    api = f"{store_uri}/api/v1/runs/{run_id}"
    wrong = []
    with httpx.Client(timeout=30) as http:
        for path in HOSTILE:
            if isinstance(path, bytes):
                continue  # JSON has no bytes
            replies = [
                http.post(
                    f"{api}/artifacts", json={"files": [{"path": path, "hash": HASH, "size": 1}]}
                ),
                http.post(
                    f"{api}/datasets",
                    json={
                        "direction": "input",
                        "datasets": [{"path": path, "hash": HASH, "kind": "file", "size": 1}],
                    },
                ),
            ]
            if isinstance(path, str) and path:
                replies.append(http.get(f"{api}/artifacts", params={"prefix": path}))
                replies.append(http.delete(f"{api}/artifacts", params={"path": path}))
            for reply in replies:
                if reply.status_code not in (400, 422):
                    wrong.append((path, reply.request.method, reply.status_code, reply.text[:80]))
    client.close()
    assert wrong == []

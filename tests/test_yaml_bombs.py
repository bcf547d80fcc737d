"""YAML bombs: a few hundred bytes of anchors, or a small ``matrix:``, under a 1 GiB memory cap.

Each bomb is read by the real command in a child process whose address space is capped, so a
regression shows as this test failing (MemoryError, a traceback, a kill), not as the test run
eating the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from mltrail import safe_yaml
from mltrail.errors import InvalidInput

SRC = Path(mltrail.__file__).resolve().parent.parent
GIB = 1 << 30


def _laughs(levels: int = 9, width: int = 9) -> str:
    """A flow sequence whose aliases expand to ``width ** levels`` strings."""
    text = "[&a [" + ",".join(['"lol"'] * width) + "]"
    prev = "a"
    for i in range(1, levels):
        name = chr(ord("a") + i)
        text += f", &{name} [" + ",".join([f"*{prev}"] * width) + "]"
        prev = name
    return text + "]"


TRAIL_BOMB = "version: 1\nkind: file\nsize: 1\nhash: " + _laughs() + "\n"
MATRIX_BOMB = "stages:\n  train:\n    cmd: echo ${item.a}\n    matrix:\n" + "".join(
    f"      {k}: [0,1,2,3,4,5,6,7,8,9]\n" for k in "abcdefg"
)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (GIB, GIB))


def _mltrail(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(SRC), "MLTRAIL_CAPTURE": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_capped,
    )


def _assert_clear_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_bombs_are_small() -> None:
    assert len(TRAIL_BOMB) < 600
    assert len(MATRIX_BOMB) < 300


def test_trail_bomb_is_refused_by_data_status(tmp_path: Path) -> None:
    from mltrail.config import init_project

    init_project(tmp_path)
    (tmp_path / "train.csv").write_text("a,b\n")
    (tmp_path / "train.csv.trail").write_text(TRAIL_BOMB)
    done = _mltrail("data", "status", cwd=tmp_path)
    _assert_clear_error(done, "train.csv.trail", "YAML alias")


def test_matrix_bomb_is_refused_by_dag(tmp_path: Path) -> None:
    from mltrail.config import init_project

    init_project(tmp_path)
    (tmp_path / "mltrail.yaml").write_text(MATRIX_BOMB)
    done = _mltrail("dag", cwd=tmp_path)
    _assert_clear_error(done, "mltrail.yaml", "10,000,000 stages", "limit of 1,000")
    assert "MLTRAIL_MATRIX_MAX" in done.stderr


def test_alias_bomb_in_pipeline_is_refused_by_dag(tmp_path: Path) -> None:
    from mltrail.config import init_project

    init_project(tmp_path)
    (tmp_path / "mltrail.yaml").write_text(
        "vars:\n  - big: " + _laughs() + "\nstages:\n  s:\n    cmd: echo ${big}\n"
    )
    done = _mltrail("dag", cwd=tmp_path)
    _assert_clear_error(done, "mltrail.yaml", "aliases expand")


def test_matrix_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.pipeline.spec import parse

    text = "stages:\n  t:\n    cmd: echo ${item.a}${item.b}\n    matrix:\n      a: [1,2,3]\n"
    text += "      b: [1,2,3,4]\n"
    assert len(parse(text, tmp_path, tmp_path / "mltrail.yaml").stages) == 12
    monkeypatch.setenv("MLTRAIL_MATRIX_MAX", "11")
    with pytest.raises(InvalidInput, match=r"12 stages \(3 x 4\), more than the limit of 11"):
        parse(text, tmp_path, tmp_path / "mltrail.yaml")
    monkeypatch.setenv("MLTRAIL_MATRIX_MAX", "lots")
    with pytest.raises(InvalidInput, match="MLTRAIL_MATRIX_MAX='lots'"):
        parse(text, tmp_path, tmp_path / "mltrail.yaml")


def test_pointer_files_take_no_aliases() -> None:
    from mltrail.data.pointer import parse_pointer

    text = f"version: 1\nkind: file\nsize: &s 1\nhash: {'a' * 64}\nnfiles: *s\n"
    with pytest.raises(InvalidInput, match=r"x.trail.*YAML alias"):
        parse_pointer(text, "x.trail")


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, *x]",  # recursive
        "a: &x {b: *x}",
        "a: " + _laughs(),
        "a: &a [1,2,3,4,5,6,7,8,9,0]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
    ],
)
def test_bombs_and_loops_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"f\.yaml:.*refused YAML"):
        safe_yaml.load(text, "f.yaml")


def test_modest_aliases_still_load() -> None:
    text = "base: &base {lr: 0.1, depth: [1, 2, 3]}\na: *base\nb: {<<: *base, lr: 0.2}\n"
    doc = safe_yaml.load(text, "f.yaml")
    assert doc["a"] == {"lr": 0.1, "depth": [1, 2, 3]}
    assert doc["b"] == {"lr": 0.2, "depth": [1, 2, 3]}
    assert safe_yaml.load("", "f.yaml") is None


@pytest.mark.parametrize(
    "reader",
    ["lock", "params", "mlmodel", "dvc"],
)
def test_every_reader_refuses_the_bomb(tmp_path: Path, reader: str) -> None:
    bomb = "a: " + _laughs() + "\n"
    with pytest.raises(InvalidInput, match="refused YAML"):
        if reader == "lock":
            from mltrail.pipeline.lock import LOCK_FILE, read_lock

            (tmp_path / LOCK_FILE).write_text(bomb)
            read_lock(tmp_path)
        elif reader == "params":
            from mltrail.pipeline.params import read_params_file

            (tmp_path / "params.yaml").write_text(bomb)
            read_params_file(tmp_path / "params.yaml")
        elif reader == "mlmodel":
            from mltrail.models.mlmodel import parse_meta

            parse_meta(bomb, "MLmodel")
        else:
            from mltrail.importers.dvc_files import load_yaml

            load_yaml(bomb, "dvc.lock")

"""Parsing and validating mltrail.yaml: every field, expansion, and errors with line numbers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mltrail.errors import InvalidInput
from mltrail.pipeline.spec import Output, ParamRef, parse


def _parse(text: str, root: Path | None = None):
    root = root or Path("/nonexistent/proj")
    return parse(textwrap.dedent(text), root, root / "mltrail.yaml")


def _error(text: str, root: Path | None = None) -> str:
    with pytest.raises(InvalidInput) as info:
        _parse(text, root)
    return info.value.message + "\n" + (info.value.hint or "")


def test_all_fields():
    p = _parse(
        """
        pipeline: wine
        params: [extra.yaml]
        metrics: [reports/summary.json]
        stages:
          train:
            cmd: [python a.py, python b.py]
            wdir: src
            deps: [a.py, ../data/raw.csv]
            params: [train.lr, {other.yaml: [x.y]}, whole.json, {all.yaml: }]
            outs: [model.pkl, {logs: {cache: false}}]
            metrics: [m.json]
            always_changed: true
            frozen: false
            desc: trains
            meta: {anything: [1, 2]}
        """
    )
    assert p.name == "wine"
    s = p.stages["train"]
    assert s.cmd == ("python a.py", "python b.py")
    assert s.command == "python a.py && python b.py"
    assert s.wdir == "src"
    assert [d.path for d in s.deps] == ["src/a.py", "data/raw.csv"]
    assert [(x.file, x.key) for x in s.params] == [
        ("src/params.yaml", "train.lr"),
        ("src/other.yaml", "x.y"),
        ("src/whole.json", None),
        ("src/all.yaml", None),
    ]
    assert s.outs == (Output("src/model.pkl", True, 11), Output("src/logs", False, 11))
    assert s.metrics == (Output("src/m.json", False, 12),)
    assert s.always_changed and not s.frozen and s.desc == "trains" and s.line == 6
    assert p.params_files() == ["src/params.yaml", "src/other.yaml", "src/whole.json",
                                "src/all.yaml", "extra.yaml"]  # fmt: skip
    assert p.metrics_files() == ["src/m.json", "reports/summary.json"]
    assert ParamRef("params.yaml", "a.b").label == "a.b"


def test_default_name_is_the_folder(tmp_path: Path):
    p = _parse("stages:\n  a:\n    cmd: echo\n", tmp_path)
    assert p.name == tmp_path.name


def test_foreach_list_dict_and_matrix(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("base: 7\n")
    p = _parse(
        """
        vars: {ext: csv}
        stages:
          copy:
            foreach: [a, b]
            do:
              cmd: cp ${item}.${ext} out/${item}.${ext}
              outs:
                - out/${item}.${ext}
          fit:
            foreach: {small: 1, big: 9}
            do:
              cmd: fit --n ${item} --name ${key} --base ${base}
          grid:
            matrix: {model: [cnn, rf], k: [1, 2]}
            cmd: run ${item.model} ${item.k}
        """,
        tmp_path,
    )
    assert list(p.stages) == [
        "copy@a", "copy@b", "fit@small", "fit@big",
        "grid@cnn-1", "grid@cnn-2", "grid@rf-1", "grid@rf-2",
    ]  # fmt: skip
    assert p.stages["copy@b"].outs[0].path == "out/b.csv"
    assert p.stages["fit@big"].cmd == ("fit --n 9 --name big --base 7",)
    assert p.stages["grid@rf-2"].cmd == ("run rf 2",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stages:\n  a:\n    deps: [x]\n", "mltrail.yaml:3: stage 'a' has no cmd"),
        ("stages:\n  a:\n    cmd: x\n    dep: [y]\n", "mltrail.yaml:4: unknown key 'dep'"),
        ("stagez: {}\n", "mltrail.yaml:1: unknown key 'stagez' in the top level"),
        (
            "stages:\n  a:\n    cmd: x\n    deps: y\n",
            "mltrail.yaml:4: stage 'a' deps must be a list",
        ),
        ("stages:\n  a:\n    cmd: {x: 1}\n", "mltrail.yaml:3: stage 'a' cmd must be a string"),
        (
            "stages:\n  a:\n    cmd: x\n    frozen: maybe\n",
            "mltrail.yaml:4: stage 'a' frozen must be",
        ),
        ("stages:\n  a: [1]\n", "mltrail.yaml:2: stage 'a' must be a mapping"),
        (
            "stages:\n  a:\n    cmd: x\n  a:\n    cmd: y\n",
            "mltrail.yaml:4: stages: 'a' appears twice",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [../up]\n",
            "mltrail.yaml:4: stage 'a' out '../up' is outside",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [/abs]\n",
            "mltrail.yaml:4: stage 'a' out '/abs' is absolute",
        ),
        ("stages:\n  a:\n    cmd: echo ${nope}\n", "mltrail.yaml:3: ${nope} names nothing"),
        ("stages:\n  a:\n    cmd: [x\n", "mltrail.yaml:4: not valid YAML"),
        ("stages:\n  'a b':\n    cmd: x\n", "mltrail.yaml:2: stage name 'a b' is not allowed"),
        ("", "mltrail.yaml: the file is empty"),
        (
            "stages:\n  a:\n    foreach: [1]\n    cmd: x\n",
            "mltrail.yaml:3: stage 'a': foreach needs",
        ),
        ("stages:\n  a:\n    cmd: x\n    deps: [o]\n    outs: [o]\n", "lists o both as a dep and"),
    ],
)
def test_malformed(text: str, expected: str):
    assert expected in _error(text)


def test_missing_cmd_hint_says_what_was_expected():
    assert "Expected cmd: a command" in _error("stages:\n  a:\n    deps: [x]\n")


def test_two_stages_writing_the_same_out():
    msg = _error(
        """
        stages:
          a:
            cmd: x
            outs: [model.pkl]
          b:
            cmd: y
            outs: [model.pkl]
        """
    )
    assert "mltrail.yaml:8: stages 'a' and 'b' both write model.pkl" in msg


def test_overlapping_outs():
    msg = _error(
        """
        stages:
          a:
            cmd: x
            outs: [data]
          b:
            cmd: y
            outs: [data-2, data/sub/file.csv]
        """
    )
    assert (
        "mltrail.yaml:8: out data/sub/file.csv of stage 'b' is inside out data of stage 'a'" in msg
    )
    assert "(mltrail.yaml:5)" in msg


def test_duplicate_param():
    msg = _error("stages:\n  a:\n    cmd: x\n    params: [a.b, a.b]\n")
    assert "lists param a.b twice" in msg

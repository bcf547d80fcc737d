"""The stage graph (order, cycles, drawings) and mltrail.lock round-trips."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mltrail.errors import InvalidInput
from mltrail.pipeline.dag import build
from mltrail.pipeline.lock import dump_lock, read_lock, stage_entry, write_lock
from mltrail.pipeline.spec import parse

ROOT = Path("/nonexistent/proj")


def _dag(text: str):
    return build(parse(textwrap.dedent(text), ROOT, ROOT / "mltrail.yaml"))


DIAMOND = """
stages:
  report:
    cmd: r
    deps: [models/a, models/b]
  train_a:
    cmd: a
    deps: [data/prepared/x.csv]
    outs: [models/a]
  prepare:
    cmd: p
    deps: [raw]
    outs: [data/prepared]
  train_b:
    cmd: b
    deps: [data]
    outs: [models/b]
"""


def test_order_follows_data_not_file_order():
    dag = _dag(DIAMOND)
    assert dag.order() == ["prepare", "train_a", "train_b", "report"]
    assert dag.upstream["train_a"] == ["prepare"]  # a dep inside an out
    assert dag.upstream["train_b"] == ["prepare"]  # an out inside a dep folder
    assert sorted(dag.upstream["report"]) == ["train_a", "train_b"]
    assert dag.order(["train_a"]) == ["prepare", "train_a"]
    assert dag.with_downstream(["train_b"]) == {"train_b", "report"}


def test_cycle_is_named():
    with pytest.raises(InvalidInput) as info:
        _dag(
            """
            stages:
              a:
                cmd: a
                deps: [c.txt]
                outs: [a.txt]
              b:
                cmd: b
                deps: [a.txt]
                outs: [b.txt]
              c:
                cmd: c
                deps: [b.txt]
                outs: [c.txt]
            """
        )
    assert "the stages form a cycle: a -> b -> c -> a" in info.value.message
    assert info.value.message.startswith("mltrail.yaml:3:")


def test_unknown_target_lists_stages():
    dag = _dag(DIAMOND)
    with pytest.raises(InvalidInput) as info:
        dag.order(["nope"])
    assert "no stage named 'nope'" in info.value.message
    assert "prepare" in (info.value.hint or "")


def test_foreach_group_as_target():
    dag = _dag("stages:\n  s:\n    foreach: [x, y]\n    do:\n      cmd: echo ${item}\n")
    assert dag.order(["s"]) == ["s@x", "s@y"]


def test_drawings():
    dag = _dag(DIAMOND)
    assert dag.ascii() == "\n".join(
        ["prepare", "├── train_a", "│   └── report", "└── train_b", "    └── report  (above)"]
    )
    mermaid = dag.mermaid()
    assert mermaid.startswith("flowchart TD\n") and 's2["prepare"]' in mermaid
    assert "s2 --> s1" in mermaid
    dot = dag.dot({"prepare", "train_a"})
    assert '"prepare" -> "train_a";' in dot and "report" not in dot


def test_lock_round_trip_is_deterministic(tmp_path: Path):
    h = "ab" * 32
    entry = stage_entry(
        "python t.py",
        ".",
        [{"path": "z.py", "hash": h, "size": 1}, {"path": "a", "hash": h, "size": 2, "nfiles": 2}],
        {"params.yaml": {"b": 2, "a": {"x": [1, 2]}}},
        [{"path": "m", "hash": h, "size": 3}],
        [],
        "cd" * 32,
    )
    write_lock(tmp_path, {"train": entry})
    text = (tmp_path / "mltrail.lock").read_text()
    assert text == dump_lock(read_lock(tmp_path))
    assert read_lock(tmp_path) == {"train": entry}
    assert [d["path"] for d in entry["deps"]] == ["a", "z.py"]
    assert list(entry) == ["cmd", "deps", "params", "outs", "run_key"]
    assert text.index("cmd:") < text.index("deps:") < text.index("params:") < text.index("outs:")


def test_bad_lock(tmp_path: Path):
    (tmp_path / "mltrail.lock").write_text("schema: 9\nstages: {}\n")
    with pytest.raises(InvalidInput, match="schema 9"):
        read_lock(tmp_path)
    (tmp_path / "mltrail.lock").write_text("stages: [\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_lock(tmp_path)


def test_params_diff_keys_are_run_param_keys():
    from mltrail.pipeline import compare, params, stage

    doc = {
        "train": {"max_depth": 5, "opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "empty": {}},
        "seed": 1,
        "flag": True,
    }
    # One walker: params diff (compare) and run params (stage) cannot drift apart.
    assert compare.flatten is params.flatten
    keys = list(params.flatten(doc))
    assert keys == [
        "train.max_depth",
        "train.opt.lr",
        "train.opt.betas",
        "train.empty",
        "seed",
        "flag",
    ]
    run = stage.flat_params({"params.yaml": doc})
    assert list(run) == keys
    assert list(stage.flat_params({"other.yaml": doc})) == [f"other.yaml:{k}" for k in keys]
    assert run["train.empty"] == "{}" and run["flag"] == "true" and run["train.max_depth"] == "5"
    assert run["train.opt.betas"] == "[0.9,0.99]"


def test_deps_find_their_producers_by_lookup_not_a_scan(monkeypatch: pytest.MonkeyPatch):
    import mltrail.pipeline.dag as dag_module
    from mltrail.pipeline.spec import overlaps

    # Outs and deps that are equal, inside one another, or only share a name prefix
    # ("data/a" vs "data/a-b", "data/a.csv"), in many stages.
    outs = [f"data/s{i}" for i in range(60)] + [f"data/s{i}-x/f" for i in range(60)]
    outs += [f"models/m{i}.pkl" for i in range(60)]
    deps = ["data", "data/s1", "data/s1/f.csv", "data/s1-x", "data/s1-x/f", "models"]
    deps += [f"data/s{i}/part/{i}" for i in range(60)] + ["data/s", "models/m1.pkl.bak"]
    lines = ["stages:"]
    for i, out in enumerate(outs):
        lines += [f"  p{i}:", "    cmd: x", f"    outs: [{out}]"]
    lines += ["  user:", "    cmd: x", f"    deps: [{', '.join(deps)}]"]
    calls = []
    # Not called any more; with a pairwise scan it would run len(deps) * len(outs) times.
    monkeypatch.setattr(dag_module, "overlaps", lambda *a: calls.append(a), raising=False)
    dag = _dag("\n".join(lines) + "\n")
    # The reference: every dep against every out, outs in path order.
    want: list[str] = []
    for d in deps:
        for o, name in sorted((o, f"p{i}") for i, o in enumerate(outs)):
            if overlaps(d, o) and name not in want:
                want.append(name)
    assert dag.upstream["user"] == want and len(want) > 60
    assert calls == []

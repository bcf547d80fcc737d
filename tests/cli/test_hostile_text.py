"""Hostile text in every stored field, through every CLI listing: shown, never obeyed.

A project is built once with a token in every text field a command prints (experiment, run
name, param key and value, tag key and value, note, metric key, artifact path, dataset path
and context, model name, description, tags, alias); then, per hostile string, a copy of its
database gets the token replaced by that string, straight in SQL, so fields whose validator
refuses such text (keys, model names, aliases) hold it too, as an older version, an import
or another client could have written it. Each command's output must hold no character a
terminal would act on (ESC, C1, DEL, CR, BS, bidi controls...), must show the escaped form,
and must print rich markup as text.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mltrail.cli.format import visible
from mltrail.entities import DatasetRef
from mltrail.tracking import capture as cap
from tests.cli.conftest import Invoke

TOKEN = "QzQ"

HOSTILE = {
    "csi": "\x1b[2J\x1b[31mred",
    "osc8": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "osc52": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "title": "\x1b]0;pwned\x07",
    "cr": "safe\rEVIL",
    "bs": "abc\b\b\bxyz",
    "rlo": "\u202egnp.exe",
    "isolate": "\u2066iso\u2069",
    "c1": "\x9b31mC1",
    "del": "a\x7fb",
    "nul": "a\x00b",
    "newline": "one\ntwo",
    "tab": "a\tb",
    "markup": "[bold red]x[/]",
    "link": "[link=file:///etc/passwd]x[/link]",
}
MARKUP = ("markup", "link")

HASH_IN = "a1" * 32
HASH_OUT = "b2" * 32


def _names(payload: str) -> dict[str, str]:
    """What each stored field holds once the token is replaced."""
    return {
        "experiment": f"e{payload}",
        "run": f"r{payload}",
        "other_run": f"o{payload}",
        "param": f"p{payload}",
        "param_value": f"v{payload}",
        "tag": f"t{payload}",
        "tag_value": f"u{payload}",
        "metric": f"m{payload}",
        "artifact": f"plots/f{payload}.txt",
        "dataset": f"data/d{payload}.csv",
        "model": f"M{payload}",
        "description": f"desc {payload}",
        "alias": f"a{payload}",
    }


def _build(root: Path) -> dict[str, str]:
    from mltrail.config import init_project
    from mltrail.tracking.client import MltrailClient

    n = _names(TOKEN)
    client = MltrailClient(str(init_project(root)))
    exp = client.create_experiment(n["experiment"])
    ids = {}
    for which, value in (("run", n["param_value"]), ("other_run", "plain")):
        run = client.create_run(
            exp,
            run_name=n[which],
            tags={n["tag"]: n["tag_value"], cap.TAG_NOTE: f"note {TOKEN}\nline two"},
        ).run_id
        client.log_params(run, {n["param"]: value, "seed": 1})
        client.log_metrics(run, {n["metric"]: 0.5 if which == "run" else 0.25})
        ids[f"{which}_id"] = run
    run = ids["run_id"]
    client.log_text(run, "x", n["artifact"])
    folder = root / "model-folder"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    client.log_artifacts(run, folder, "model")
    client.flush()
    client.store.log_run_datasets(
        run, "input", [DatasetRef(n["dataset"], HASH_IN, "file", 10, None, f"ctx{TOKEN}")]
    )
    client.store.log_run_datasets(
        run, "output", [DatasetRef(f"data/out{TOKEN}", HASH_OUT, "dir", 20, 2)]
    )
    version = client.register_model(f"runs:/{run}/model", n["model"]).version
    client.update_model_version(n["model"], version, description=n["description"])
    client.update_registered_model(n["model"], description=n["description"])
    client.set_registered_model_tag(n["model"], n["tag"], n["tag_value"])
    client.set_registered_model_alias(n["model"], n["alias"], version)
    for run_id in ids.values():
        client.set_terminated(run_id)
    client.close()
    return ids


@pytest.fixture(scope="session")
def _hostile_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("hostile")
    return root / ".mltrail", _build(root)


def _replace(value: Any, payload: str) -> Any:
    if isinstance(value, str):
        return value.replace(TOKEN, payload)
    if isinstance(value, dict):
        return {_replace(k, payload): _replace(v, payload) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, payload) for v in value]
    return value


def _inject(db: Path, payload: str) -> int:
    """Replace the token by ``payload`` in every text column of every table; count the cells."""
    changed = 0
    conn = sqlite3.connect(db)
    with conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]:
                rows = conn.execute(
                    f'SELECT DISTINCT "{column}" FROM "{table}" '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (TOKEN,),
                ).fetchall()
                for (old,) in rows:
                    try:
                        # JSON columns (dataset tags, event details) stay valid JSON.
                        new = json.dumps(_replace(json.loads(old), payload))
                    except ValueError:
                        new = old.replace(TOKEN, payload)
                    conn.execute(
                        f'UPDATE "{table}" SET "{column}" = ? WHERE "{column}" = ?', (new, old)
                    )
                    changed += 1
    conn.close()
    return changed


@pytest.fixture(params=sorted(HOSTILE))
def hostile(
    request: pytest.FixtureRequest, _hostile_template: tuple[Path, dict[str, str]], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """A copy of the project with one hostile string in every field; ids and names."""
    source, ids = _hostile_template
    shutil.copytree(source, tmp_path / ".mltrail")
    payload = HOSTILE[request.param]
    assert _inject(tmp_path / ".mltrail" / "mltrail.db", payload) > 10
    yield {"case": request.param, "payload": payload, **_names(payload), **ids}


# -- what output may hold -------------------------------------------------------------------

#: Colour and style sequences rich and click write on a colour terminal; nothing else.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _assert_safe(text: str, color: bool = False) -> None:
    """No character a terminal would act on, apart from line breaks (and SGR when colour)."""
    if color:
        assert "\x1b]" not in text, "an OSC sequence (hyperlink, title, clipboard) got out"
        text = _SGR.sub("", text)
    bad = sorted({ch for ch in text if visible(ch, multiline=True) != ch})
    assert not bad, f"raw {bad!r} in output:\n{text}"


def _check(result: Any, color: bool = False) -> str:
    _assert_safe(result.stdout, color)
    _assert_safe(result.stderr, color)
    return result.stdout + result.stderr


def _strings(obj: Any) -> Iterator[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def _shown(value: str) -> str:
    """How a one-line stored value reads on the terminal."""
    return visible(value)


# Every command that prints stored data, with the arguments it needs (from the names).
COMMANDS: dict[str, Any] = {
    "exp ls": lambda h: ["exp", "ls"],
    "exp ls --all": lambda h: ["exp", "ls", "--all"],
    "runs ls": lambda h: ["runs", "ls"],
    "runs ls -e": lambda h: ["runs", "ls", "-e", h["experiment"], "--all"],
    "runs ls --columns": lambda h: ["runs", "ls", "-c", f"params.{h['param']}"],
    "runs show": lambda h: ["runs", "show", h["run_id"]],
    "runs diff": lambda h: ["runs", "diff", h["run_id"], h["other_run_id"]],
    "runs history": lambda h: ["runs", "history", h["run_id"], h["metric"]],
    "runs artifacts": lambda h: ["runs", "artifacts", h["run_id"]],
    "models ls": lambda h: ["models", "ls"],
    "models show": lambda h: ["models", "show", h["model"]],
    "models versions": lambda h: ["models", "versions", h["model"]],
    "models history": lambda h: ["models", "history", h["model"]],
    "lineage run": lambda h: ["lineage", h["run_id"]],
    "lineage dataset": lambda h: ["lineage", h["dataset"], "--down"],
    "lineage mermaid": lambda h: ["lineage", h["run_id"], "--format", "mermaid"],
    "lineage dot": lambda h: ["lineage", h["run_id"], "--format", "dot"],
    "data log": lambda h: ["data", "log", h["dataset"]],
}
#: Commands whose output must show the run name whole (others may ellipsize it).
SHOWS_RUN_NAME = ("runs show", "runs diff")
#: Commands that take the dataset path as an argument, and what a path cannot hold to be named
#: there (it is normalised or refused, with an error line that must be safe too).
TAKES_DATASET = {"data log": ("//", "\x00"), "lineage dataset": ("//",)}
#: Tables that must fit an 80-column terminal.
TABLES = (
    "exp ls",
    "runs ls",
    "runs ls --columns",
    "runs diff",
    "runs artifacts",
    "models ls",
    "models versions",
    "models history",
    "data log",
    "lineage run",
)


def _refused_dataset(command: str, path: str) -> bool:
    """True when ``command`` refuses ``path`` as its argument (a usage error, shown safely)."""
    if command not in TAKES_DATASET:
        return False
    if any(bad in path for bad in TAKES_DATASET[command]):
        return True
    if command != "data log":
        return False
    from mltrail.errors import InvalidInput
    from mltrail.validation import check_dataset_path

    try:
        check_dataset_path(path)  # the one path rule: control and bidi characters are refused
    except InvalidInput:
        return True
    return False


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_listing_shows_hostile_text(invoke: Invoke, hostile, command):
    if _refused_dataset(command, hostile["dataset"]):
        result = invoke(*COMMANDS[command](hostile), code=None)
        assert result.exit_code in (1, 2)
        assert "error" in _check(result).lower()
        return
    out = _check(invoke(*COMMANDS[command](hostile)))
    assert out.strip()
    if command in SHOWS_RUN_NAME:
        assert _shown(hostile["run"]) in out
    if command in TABLES:
        too_long = [line for line in out.splitlines() if len(line) > 80]
        assert not too_long, too_long


def test_runs_show_shows_every_field(invoke: Invoke, hostile):
    out = _check(invoke("runs", "show", hostile["run_id"]))
    lines = [line.rstrip() for line in out.splitlines()]
    for field in ("experiment", "run"):
        assert _shown(hostile[field]) in out, field
    # Keys, paths and contexts are cut to their column, values folded: their start is there.
    for field in ("param", "param_value", "tag", "tag_value", "metric", "artifact", "dataset"):
        assert _shown(hostile[field])[:24] in out, field
    # The note keeps its own line break; a newline or other control character in it is shown.
    note = visible(f"note {hostile['payload']}", multiline=True).expandtabs(8).splitlines()
    at = lines.index(f"  note        {note[0]}")
    assert lines[at + len(note)].strip() == "line two"


def test_model_fields_are_shown(invoke: Invoke, hostile):
    out = _check(invoke("models", "show", hostile["model"]))
    for field in ("model", "description"):
        assert _shown(hostile[field]) in out, field
    for field in ("alias", "tag", "tag_value"):  # keys cut at 32, values folded
        assert _shown(hostile[field])[:24] in out, field
    versions = _check(invoke("models", "versions", hostile["model"]))
    # The first line of the description, in a column 30 wide: its start is there.
    assert _shown(hostile["description"].split("\n")[0])[:20] in versions
    assert _shown(hostile["alias"])[:10] in versions


@pytest.mark.parametrize("hostile", MARKUP, indirect=True)
def test_markup_is_text(invoke: Invoke, hostile):
    payload = hostile["payload"]
    for args in (["runs", "show", hostile["run_id"]], ["models", "show", hostile["model"]]):
        out = _check(invoke(*args))
        assert payload in out
    assert payload in _check(invoke("lineage", hostile["run_id"]))


@pytest.mark.parametrize(
    "command", ["runs ls", "runs show", "runs diff", "models show", "lineage run", "exp ls"]
)
def test_colour_terminal_gets_styles_only(invoke: Invoke, hostile, command, monkeypatch):
    """With colour on, only SGR styles are written: no hyperlink, title or clipboard write."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = invoke(*COMMANDS[command](hostile))
    out = _check(result, color=True)
    assert "\x1b[" in result.stdout, "colour was not on"
    if hostile["case"] in MARKUP and command in ("runs show", "models show"):
        assert hostile["payload"] in _SGR.sub("", out)


def test_messages_and_errors_show_stored_names(invoke: Invoke, hostile):
    # Messages that name a stored run, and an error quoting a stored experiment name.
    deleted = _check(invoke("runs", "delete", hostile["run_id"]))
    assert _shown(hostile["run"]) in deleted or repr(hostile["run"]) in deleted
    _check(invoke("runs", "restore", hostile["run_id"]))
    taken = _check(invoke("exp", "create", hostile["experiment"], code=1))
    assert "error:" in taken
    _check(invoke("exp", "delete", hostile["experiment"]))
    warned = _check(invoke("runs", "ls", "-e", hostile["experiment"]))
    assert "warning:" in warned
    alias = _check(invoke("models", "unalias", hostile["model"], hostile["alias"]))
    assert _shown(hostile["alias"]) in alias


def test_json_keeps_values_exact_and_escaped(invoke: Invoke, hostile):
    """--json is for programs: the real value, with every control character JSON-escaped."""
    for args in (
        ["runs", "show", hostile["run_id"], "--json"],
        ["runs", "ls", "--json"],
        ["exp", "ls", "--json"],
        ["models", "show", hostile["model"], "--json"],
        ["lineage", hostile["run_id"], "--json"],
    ):
        result = invoke(*args)
        assert result.stdout.isascii()
        _check(result)
        assert any(hostile["payload"] in text for text in _strings(json.loads(result.stdout)))
    shown = json.loads(invoke("runs", "show", hostile["run_id"], "--json").stdout)
    assert shown["run_name"] == hostile["run"]
    assert shown["params"][hostile["param"]] == hostile["param_value"]


# -- text from the workspace: params and metrics files, data file names, stage names ---------


@pytest.fixture(params=sorted(HOSTILE))
def hostile_repo(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """A Git repository whose params, metrics and pipeline hold the hostile string."""
    from mltrail.config import init_project
    from tests.data import git, write

    payload = HOSTILE[request.param]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLTRAIL_OBJECTS", raising=False)
    git(tmp_path, "init", "-q", "-b", "main")
    init_project(tmp_path)
    pipeline = {"stages": {"train": {"cmd": "true", "params": ["lr"], "metrics": ["m.json"]}}}
    write(tmp_path / "mltrail.yaml", json.dumps(pipeline))
    for i, name in enumerate(("params.yaml", "m.json")):
        write(tmp_path / name, json.dumps({"lr": i, f"k{payload}": f"v{payload}"}))
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "v1")
    for i, name in enumerate(("params.yaml", "m.json")):
        write(tmp_path / name, json.dumps({"lr": i + 1, f"k{payload}": f"w{payload}"}))
    return {"case": request.param, "payload": payload, "root": tmp_path}


@pytest.mark.parametrize("kind", ["params", "metrics"])
@pytest.mark.parametrize("md", [False, True])
def test_params_and_metrics_diff_show_hostile_keys_and_values(
    invoke: Invoke, hostile_repo, kind, md
):
    payload = hostile_repo["payload"]
    args = [kind, "diff", "HEAD", "--all", *(["--md"] if md else [])]
    out = _check(invoke(*args))
    assert "lr" in out
    assert _shown(f"k{payload}")[:8].replace("|", "\\|") in out
    if not md:
        assert all(len(line) <= 80 for line in out.splitlines())


def test_data_file_names_are_shown(invoke: Invoke, hostile_repo):
    payload = hostile_repo["payload"]
    if "\x00" in payload or "/" in payload:
        pytest.skip("not a file name")
    data = hostile_repo["root"] / "data"
    data.mkdir()
    (data / f"f{payload}.csv").write_text("a,b\n1,2\n")
    added = _check(invoke("data", "add", "data"))
    assert "Added data" in added
    (data / f"f{payload}.csv").write_text("a,b\n1,3\n")
    status = _check(invoke("data", "status"))
    assert _shown(f"f{payload}.csv") in status
    _check(invoke("data", "log", "data"))

"""``mltrail runs ls``: filters, sorting, limits, columns, JSON, and fitting in 80 columns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke


def _names(invoke: Invoke, *args: str) -> list[str]:
    return [r["run_name"] for r in json.loads(invoke("runs", "ls", "--json", *args).stdout)]


def test_default_lists_active_runs_of_all_active_experiments(invoke: Invoke, seeded):
    names = _names(invoke)
    assert sorted(names) == ["baseline", "depth-1", "depth-2", "depth-3", "depth-4", "depth-5"]
    assert names[0] == "baseline"  # newest first


def test_table_has_the_fixed_columns_and_short_ids(invoke: Invoke, seeded):
    lines = invoke("runs", "ls").stdout.splitlines()
    header = lines[0].split()
    assert header[:6] == ["id", "name", "experiment", "status", "started", "duration"]
    assert "accuracy" in header
    row = next(line for line in lines if "depth-3" in line)
    assert row.split()[0] == seeded["depth-3"][:8]
    assert seeded["depth-3"] not in row
    assert "FINISHED" in row and "2023-11-14" in row


def test_filter_and_sort(invoke: Invoke, seeded):
    names = _names(invoke, "-f", "metrics.accuracy > 0.75", "-s", "-metrics.accuracy")
    assert names == ["depth-5", "depth-4", "depth-3"]
    names = _names(invoke, "--filter", "params.max_depth = 3", "--sort", "metrics.loss ASC")
    assert names == ["depth-3", "baseline"]


def test_multiple_sort_keys(invoke: Invoke, seeded):
    names = _names(invoke, "-e", "sweep", "-s", "params.optimizer", "-s", "metrics.loss")
    assert names == ["depth-5", "depth-4", "depth-3", "depth-2", "depth-1"]


def test_filtered_and_sorted_keys_become_columns(invoke: Invoke, seeded):
    out = invoke("runs", "ls", "-e", "sweep", "-s", "-metrics.loss").stdout
    assert out.splitlines()[0].split()[5] == "loss"


def test_limit_and_more_note(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "-n", "2", "-s", "-metrics.accuracy", "-e", "sweep")
    assert "depth-5" in result.stdout and "depth-4" in result.stdout
    assert "depth-3" not in result.stdout
    assert "first 2 runs shown; more match" in result.stdout
    assert len(_names(invoke, "-n", "2")) == 2


def test_limit_beyond_one_page_follows_page_tokens(invoke: Invoke, seeded, monkeypatch):
    from mltrail.cli import runs_ls

    monkeypatch.setattr(runs_ls, "PAGE_SIZE", 2)
    all_names = _names(invoke, "-s", "attributes.run_name")
    assert len(all_names) == 6
    assert _names(invoke, "-s", "attributes.run_name", "-n", "5") == all_names[:5]


def test_limit_zero_is_a_usage_error(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "--limit", "0", code=2)
    assert "0 is not in the range x>=1" in result.stderr


def test_experiment_option_by_name_and_id_repeatable(invoke: Invoke, seeded):
    assert len(_names(invoke, "-e", "sweep")) == 5
    assert len(_names(invoke, "-e", "1", "-e", "Default")) == 6
    assert _names(invoke, "-e", "empty") == []
    assert invoke("runs", "ls", "-e", "empty").stdout == "No runs found.\n"


def test_unknown_experiment(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "-e", "nope", "--json", code=1)
    assert result.stdout == ""
    assert "error: experiment 'nope' does not exist" in result.stderr


def test_json_rows_are_full_and_valid(invoke: Invoke, seeded):
    rows = json.loads(invoke("runs", "ls", "--json", "-f", "attributes.name = 'baseline'").stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["run_id"] == seeded["baseline"]
    assert row["metrics.accuracy"] == "NaN"
    assert row["metrics.loss"] == "Infinity"
    assert row["params.only_a"] == "x"
    assert row["tags.team"] == "ml"
    assert row["tags.mltrail.git.branch"] == "main"


def test_table_shows_nan_and_inf(invoke: Invoke, seeded):
    out = invoke("runs", "ls", "-c", "metrics.accuracy,metrics.loss", "-e", "0").stdout
    row = next(line for line in out.splitlines() if "baseline" in line)
    assert row.split()[-2:] == ["NaN", "inf"]


def test_deleted_and_all_views(invoke: Invoke, seeded):
    assert _names(invoke, "--deleted") == ["gone"]
    assert "gone" in _names(invoke, "--all")
    out = invoke("runs", "ls", "--deleted").stdout
    assert "DELETED" in out


def test_explicit_columns(invoke: Invoke, seeded):
    out = invoke("runs", "ls", "-e", "sweep", "-c", "params.max_depth", "-c", "loss").stdout
    header = out.splitlines()[0].split()
    assert header[-2:] == ["max_depth", "loss"]
    assert "accuracy" not in header


def test_same_key_as_metric_and_param_gets_full_headers(invoke: Invoke, seeded, tmp_path):
    from mltrail.tracking.client import MltrailClient

    client = MltrailClient(str(tmp_path / ".mltrail"))
    run = client.create_run("0", run_name="clash")
    client.log_params(run.run_id, {"lr": 0.1})
    client.log_metric(run.run_id, "lr", 0.05)
    client.set_terminated(run.run_id)
    client.close()
    out = invoke(
        "runs", "ls", "-f", "attributes.name = 'clash'", "-c", "metrics.lr,params.lr"
    ).stdout
    assert out.splitlines()[0].split()[-2:] == ["metrics.lr", "params.lr"]


def test_unknown_bare_column(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "-c", "nonesuch", code=1)
    assert "unknown column 'nonesuch'" in result.stderr
    assert "metrics.KEY" in result.stderr


def test_malformed_filter_shows_a_caret_and_no_traceback(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "--json", "-f", "metrics.accuracy >> 0.9", code=1)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert lines[1] == "  metrics.accuracy >> 0.9"
    assert lines[2].strip() == "^"
    assert lines[2].index("^") == lines[1].index(">>") + 1
    assert "Traceback" not in result.output


def test_malformed_sort(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "-s", "metrics.", code=1)
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_no_project_folder(invoke: Invoke, tmp_path: Path):
    result = invoke("runs", "ls", code=1)
    assert result.stderr.startswith("error: no .mltrail folder in")
    assert "mltrail init" in result.stderr
    assert not (tmp_path / ".mltrail").exists()


def test_store_option_and_variable(invoke: Invoke, seeded, tmp_path: Path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".mltrail").rename(elsewhere / ".mltrail")
    invoke("runs", "ls", code=1)  # nothing here any more
    rows = json.loads(invoke("--store", str(elsewhere), "runs", "ls", "--json").stdout)
    assert len(rows) == 6
    db = elsewhere / ".mltrail" / "mltrail.db"
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{db}")
    assert len(_names(invoke)) == 6


def test_missing_store_is_not_created(invoke: Invoke, tmp_path: Path, monkeypatch):
    missing = tmp_path / "missing.db"
    for args in (["--store", str(missing)], ["--store", f"sqlite:///{missing}"]):
        result = invoke(*args, "runs", "ls", code=1)
        assert f"no mltrail store at {missing}" in result.stderr
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", str(tmp_path))
    result = invoke("runs", "ls", code=1)
    assert "has no .mltrail folder" in result.stderr
    assert not missing.exists()
    assert not (tmp_path / ".mltrail").exists()


@pytest.mark.parametrize("width", [80, 120])
def test_wide_data_fits_the_terminal(invoke: Invoke, tmp_path: Path, monkeypatch, width: int):
    from mltrail.config import init_project
    from mltrail.tracking.client import MltrailClient

    client = MltrailClient(str(init_project(tmp_path)))
    exp = client.create_experiment("an-experiment-with-a-very-long-name-indeed")
    for i in range(4):
        run = client.create_run(exp if i % 2 else "0", run_name=f"run-{'x' * 40}-{i}")
        client.log_params(run.run_id, {f"param_with_long_name_{k}": "v" * 60 for k in range(6)})
        client.log_metrics(
            run.run_id, {f"metric_with_long_name_{k}": math.pi * 10**k for k in range(6)}
        )
        client.set_terminated(run.run_id)
    client.close()
    if width != 80:
        monkeypatch.setenv("COLUMNS", str(width))
    for args in ([], ["-c", "param_with_long_name_1,metric_with_long_name_5,user_id,tags.x"]):
        result = invoke("runs", "ls", *args)
        lines = result.stdout.splitlines()
        assert len(lines) >= 6  # header, rule, four rows: no row wrapped onto two lines
        assert max(len(line) for line in lines) <= width, result.stdout
        assert all("run-xxx" in line for line in lines[2:6])


def test_listing_a_deleted_experiment_warns(invoke: Invoke, seeded):
    invoke("exp", "delete", "sweep")
    result = invoke("runs", "ls", "-e", "sweep")
    assert result.stdout == "No runs found.\n"
    assert "warning: experiment 'sweep' is deleted; its runs show with --deleted" in result.stderr
    assert len(_names(invoke, "-e", "sweep", "--deleted")) == 5


def test_a_typo_in_a_filter_key_names_the_nearest_key(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "-f", "metrics.acuracy > 0.9", code=1)
    assert result.stdout == ""  # not "No runs found."
    assert "error: no run in the searched experiments has metrics.acuracy" in result.stderr
    assert "hint: Did you mean metrics.accuracy?" in result.stderr
    # A param written as a metric: the same key under its real prefix.
    result = invoke("runs", "ls", "--json", "-f", "metrics.max_depth = 3", code=1)
    assert "hint: Did you mean params.max_depth?" in result.stderr
    # A key some run has, with no match, is just an empty result.
    assert invoke("runs", "ls", "-f", "metrics.accuracy > 2").stdout == "No runs found.\n"


def test_a_typo_in_a_sort_key_names_the_nearest_key(invoke: Invoke, seeded):
    result = invoke("runs", "ls", "-e", "sweep", "-s", "-metrics.los", code=1)
    assert "error: no run in the searched experiments has metrics.los" in result.stderr
    assert "hint: Did you mean metrics.loss?" in result.stderr
    # A key only some runs have sorts as before.
    assert _names(invoke, "-s", "params.only_a")[0] == "baseline"


def test_unknown_key_in_an_empty_experiment_is_not_an_error(invoke: Invoke, seeded):
    assert invoke("runs", "ls", "-e", "empty", "-f", "metrics.acuracy > 1").stdout == (
        "No runs found.\n"
    )


def test_a_metric_column_has_one_number_format(invoke: Invoke, seeded):
    lines = invoke("runs", "ls", "-e", "sweep", "-c", "metrics.loss").stdout.splitlines()
    cells = [line.split()[-1] for line in lines[2:]]
    assert sorted(cells) == ["0.200000", "0.250000", "0.333333", "0.500000", "1.000000"]

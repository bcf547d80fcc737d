"""Moving in from MLflow: ``mltrail import mlflow`` of an MLflow SQLite store, through the CLI.

Run by ``bash benchmarks/run.sh --only import`` (see README.md). The sources are MLflow 3.17
SQLite databases whose schema MLflow itself creates (``mlflow.create_experiment``); the runs are
then inserted with plain SQL in that schema (logging 10,000 runs through MLflow's client would
take the best part of an hour), latest_metrics included, as MLflow's own store fills it:

- ``big``: 10,000 runs x 5 params x 5 metrics, plus one run with a 100,000-point history (the
  issue's figure: under a minute). Timed: the first import, and a rerun (nothing changed: every
  run is checked and skipped). Peak memory (max RSS of the import process) is reported: it must
  stay flat, whatever the history's length.
- ``peer``: 1,000 runs of the same shape (no long history), imported by mltrail and exported
  by MLflow's own tool for moving stores, ``export-experiment`` of ``mlflow-export-import``
  (installed into the benchmark venv by this script). Its other half, ``import-experiment``,
  fails against MLflow 3.17 (UNIQUE constraint on the workspace column it does not know), so
  only the export is timed: the peer's figure is a lower bound on its move.

Every figure is checked: the target holds the source's run count, params and metric points
(a wrong import is not reported). Wall-clock time of the CLI process, interpreter start included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "import-mlflow"
BIN = Path(sys.executable).parent
EXPORT_TOOL = "mlflow-export-import==1.2.0"

FULL = {"runs": 10_000, "long": 100_000, "peer_runs": 1_000}
QUICK = {"runs": 1_000, "long": 10_000, "peer_runs": 200}
#: The issue's bound for the 10,000-run store.
TARGET_SECONDS = 60.0


def progress(msg: str) -> None:
    print(f"[import-mlflow] {msg}", file=sys.stderr, flush=True)


def env() -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRAIL_"))}
    found.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", NO_COLOR="1")
    return found


def make_source(folder: Path, runs: int, long: int) -> dict:
    """An MLflow SQLite store of ``runs`` runs x 5 params x 5 metrics (+ a ``long`` history)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db = folder / "mlflow.db"
    script = (
        f"import mlflow; mlflow.set_tracking_uri({f'sqlite:///{db}'!r}); "
        f"print(mlflow.create_experiment('big', artifact_location={str(folder / 'artifacts')!r}))"
    )
    exp = subprocess.run(
        [sys.executable, "-c", script], env=env(), check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    rng = random.Random(1)
    rows, params, metrics, latest = [], [], [], []
    for i in range(runs):
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        artifacts = str(folder / "artifacts" / rid)
        rows.append((rid, f"run-{i}", "LOCAL", "train.py", "", "bench", "FINISHED", 1_000 + i,
                     2_000 + i, "", "active", artifacts, int(exp)))  # fmt: skip
        params += [(f"p{p}", str(rng.random()), rid) for p in range(5)]
        for m in range(5):
            value = rng.random()
            metrics.append((f"m{m}", value, 1_000 + i, rid, 0, 0))
            latest.append((f"m{m}", value, 1_000 + i, 0, 0, rid))
    first = rows[0][0]
    metrics += [("long", s / 3, 5_000 + s, first, s, 0) for s in range(long)]
    if long:
        latest.append(("long", (long - 1) / 3, 5_000 + long - 1, long - 1, 0, first))
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
        " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
        " experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
    con.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
        metrics,
    )
    con.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
        " VALUES (?,?,?,?,?,?)",
        latest,
    )
    con.commit()
    con.close()
    return {"db": db, "runs": runs, "params": len(params), "points": len(metrics)}


def run_import(src: dict, target: Path) -> dict:
    """``mltrail import mlflow`` into a fresh project: first import and rerun, both checked."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run([str(BIN / "mltrail"), "init"], cwd=target, env=env(), check=True,
                   capture_output=True)  # fmt: skip
    cmd = [str(BIN / "mltrail"), "import", "mlflow", f"sqlite:///{src['db']}", "--json"]
    first = _measured(cmd, target)
    report = json.loads(first["result"].stdout)
    expected = (src["runs"], src["params"], src["points"])
    got = (report["runs_imported"], report["params"], report["metric_points"])
    if got != expected or report["skipped"]:
        raise SystemExit(f"import checked wrong: {got} != {expected}, {report['skipped'][:3]}")
    again = _measured(cmd, target)
    rerun = json.loads(again["result"].stdout)
    if (rerun["runs_unchanged"], rerun["metric_points"]) != (src["runs"], 0):
        raise SystemExit(f"rerun checked wrong: {rerun}")
    return {"first_s": first["wall"], "first_rss": first["rss"], "rerun_s": again["wall"]}


def _measured(cmd: list[str], cwd: Path) -> dict:
    # Popen + wait4 gives this process's own peak RSS, not the benchmark's.
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    out_file, err_file = proc.stdout, proc.stderr
    assert out_file is not None and err_file is not None
    out = out_file.read()
    err = err_file.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{err[-2000:]}")
    result = subprocess.CompletedProcess(cmd, code, out, err)
    return {"wall": wall, "rss": usage.ru_maxrss * 1024, "result": result}


def run_export(src: dict, out: Path) -> float | None:
    """MLflow's ``export-experiment`` of the source (installed on first use), checked."""
    tool = BIN / "export-experiment"
    if not tool.exists():
        progress(f"installing {EXPORT_TOOL} into {BIN.parent}")
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", EXPORT_TOOL], capture_output=True
        )
        if installed.returncode != 0:
            progress(f"cannot install {EXPORT_TOOL}: {installed.stderr.decode()[-500:]}")
            return None
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(tool), "--experiment", "big", "--output-dir", str(out)]
    environ = {**env(), "MLFLOW_TRACKING_URI": f"sqlite:///{src['db']}"}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=environ, capture_output=True, text=True)
    wall = time.perf_counter() - start
    exported = len([p for p in out.glob("*") if p.is_dir()]) if out.is_dir() else 0
    if done.returncode != 0 or exported != src["runs"]:
        progress(f"export-experiment failed ({exported} runs): {done.stderr[-800:]}")
        return None
    return wall


def table(res: dict, cfg: dict) -> str:
    mib = res["big"]["first_rss"] / 2**20
    lines = [
        f"mltrail import mlflow, {cfg['runs']:,} runs x 5 params x 5 metrics "
        f"+ a {cfg['long']:,}-point history",
        f"{'':38}{'time':>10}{'runs/s':>12}{'peak RSS':>12}",
        f"{'first import':38}{res['big']['first_s']:>9.1f}s"
        f"{cfg['runs'] / res['big']['first_s']:>12,.0f}{mib:>9.0f} MB",
        f"{'rerun (nothing changed)':38}{res['big']['rerun_s']:>9.1f}s"
        f"{cfg['runs'] / res['big']['rerun_s']:>12,.0f}",
        f"target: first import of the 10,000-run store <= {TARGET_SECONDS:.0f} s: "
        + ("PASS" if cfg["runs"] >= 10_000 and res["big"]["first_s"] <= TARGET_SECONDS else
           "FAIL" if cfg["runs"] >= 10_000 else "n/a (--quick)"),
        "",
        f"Side by side, {cfg['peer_runs']:,} runs x 5 params x 5 metrics",
        f"{'':38}{'time':>10}{'runs/s':>12}",
        f"{'mltrail import mlflow (whole move)':38}{res['peer']['mltrail_s']:>9.1f}s"
        f"{cfg['peer_runs'] / res['peer']['mltrail_s']:>12,.0f}",
    ]  # fmt: skip
    export = res["peer"]["export_s"]
    if export is None:
        lines.append(f"{'export-experiment (export only)':38}{'failed':>10}")
    else:
        lines += [
            f"{'export-experiment (export only)':38}{export:>9.1f}s"
            f"{cfg['peer_runs'] / export:>12,.0f}",
            f"mltrail's whole move is {export / res['peer']['mltrail_s']:.1f}x faster than "
            "MLflow's export alone",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller stores (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    WORK.mkdir(parents=True, exist_ok=True)
    progress(f"building the {cfg['runs']:,}-run MLflow store")
    big = make_source(WORK / "big", cfg["runs"], cfg["long"])
    progress("mltrail import mlflow (first import, then a rerun)")
    res: dict = {"big": run_import(big, WORK / "big-target")}
    progress(f"side by side on {cfg['peer_runs']:,} runs")
    peer = make_source(WORK / "peer", cfg["peer_runs"], 0)
    res["peer"] = {
        "mltrail_s": run_import(peer, WORK / "peer-target")["first_s"],
        "export_s": run_export(peer, WORK / "peer-export"),
    }
    print(table(res, cfg))
    if args.json:
        meta = {
            "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "config": cfg,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**meta, "results": res}, indent=2))
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

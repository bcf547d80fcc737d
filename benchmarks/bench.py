"""mltrail vs MLflow benchmark suite. Run it with ``bash benchmarks/run.sh`` (see README.md).

Every measurement runs in a fresh interpreter (``workers.py``) against a fresh store in a temp
folder under ``benchmarks/.work/``; the two tools run one after the other on the same machine in
the same invocation. Tables go to stdout, progress to stderr, raw figures to
``benchmarks/.work/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import data_bench  # the data-versioning benchmark: mltrail vs DVC
import workers  # stdlib only; shares the query text with the workers

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
PY = sys.executable
BIN = Path(PY).parent
LOG_N = 100_000  # the logging benchmark's nominal size: every figure is reported for 100k calls

FULL = {
    "log_n": LOG_N,
    "log_reps": 5,
    "mlflow_sync_n": 5_000,
    "mlflow_async_n": 5_000,
    "mlflow_log_reps": 3,
    "search_runs": 10_000,
    "history_points": 100_000,
    "query_reps": 5,
    "history_reps": 3,
    "startup_reps": 5,
}
QUICK = {
    "log_n": 5_000,
    "log_reps": 1,
    "mlflow_sync_n": 100,
    "mlflow_async_n": 100,
    "mlflow_log_reps": 1,
    "search_runs": 300,
    "history_points": 5_000,
    "query_reps": 2,
    "history_reps": 1,
    "startup_reps": 2,
}
TARGETS = {
    "log_loop_ratio": 100.0,  # MLflow sync loop time / mltrail loop time
    "log_durable_ratio": 10.0,  # fastest MLflow durable time / mltrail durable time
    "search_ratio": 10.0,
    "history_ratio": 10.0,
    "cli_version_s": 0.10,
    "import_s": 0.15,
}


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def worker_env(tool: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLTRAIL_", "MLFLOW_")) and k != "PYTHONPATH"
    }
    if tool == "mltrail":
        env["MLTRAIL_CAPTURE"] = "0"  # no git/pip capture at start_run (outside the loop anyway)
    else:
        # Telemetry only adds background network attempts; keep it out of MLflow's figures.
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["DO_NOT_TRACK"] = "true"
    return env


KEEP = False  # --keep: leave the stores under benchmarks/.work for inspection


def discard(store: str) -> None:
    if not KEEP:
        shutil.rmtree(store, ignore_errors=True)


class WorkerError(RuntimeError):
    pass


def run_worker(task: str, args: dict, tool: str, timeout: float = 3600) -> dict:
    cwd = tempfile.mkdtemp(prefix="cwd-", dir=WORK)
    proc = subprocess.run(
        [PY, str(HERE / "workers.py"), task, json.dumps(args)],
        cwd=cwd,
        env=worker_env(tool),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    shutil.rmtree(cwd, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise WorkerError(f"{task} exited {proc.returncode}: {tail}")


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------
def fmt_s(s: float | None) -> str:
    if s is None:
        return "n/a"
    if s >= 100:
        return f"{s:,.0f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.001:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} µs"


def fmt_us(s: float | None) -> str:
    return "n/a" if s is None else f"{s * 1e6:,.1f} µs"


def fmt_ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or theirs is None:
        return "n/a"
    r = theirs / ours
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if not ours or theirs is None:
        return None
    return theirs / ours


def table(title: str, rows: list[tuple[str, str, str, str]], notes: list[str] = ()) -> str:
    head = ("", "mltrail", "MLflow", "MLflow/mt")
    w = [34, 12, 16, 11]
    out = ["", title, "=" * min(len(title), 78)]
    out.append(f"{head[0]:<{w[0]}}{head[1]:>{w[1]}}{head[2]:>{w[2]}}{head[3]:>{w[3]}}")
    out.append("-" * sum(w))
    for label, a, b, c in rows:
        out.append(f"{label:<{w[0]}}{a:>{w[1]}}{b:>{w[2]}}{c:>{w[3]}}")
    out.append("MLflow/mt: MLflow's time / mltrail's time (how many times faster mltrail is)")
    for note in notes:
        out.extend(textwrap.wrap(note, 78, subsequent_indent="  "))
    return "\n".join(line.rstrip() for line in out)


# --------------------------------------------------------------------------------------------
# 1. logging
# --------------------------------------------------------------------------------------------
def median_of(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def bench_logging(cfg: dict, results: dict) -> str:
    n = cfg["log_n"]
    res: dict = {"nominal_calls": LOG_N}
    results["logging"] = res

    mt_runs = []
    for rep in range(cfg["log_reps"]):
        progress(f"logging: mltrail {n:,} log_metric calls (rep {rep + 1}/{cfg['log_reps']})")
        store = tempfile.mkdtemp(prefix="mt-log-", dir=WORK)
        r = run_worker("log_mltrail", {"n": n, "store": store}, "mltrail")
        discard(store)
        if r["stored"] != n or r["status"] != "FINISHED":
            raise WorkerError(f"mltrail stored {r['stored']} of {n} points, status {r['status']}")
        mt_runs.append(r)
    mt_loop = median_of(mt_runs, "loop_s") * LOG_N / n
    mt_durable = median_of(mt_runs, "durable_s") * LOG_N / n
    res["mltrail"] = {
        "n": n,
        "reps": mt_runs,
        "loop_s": mt_loop,
        "durable_s": mt_durable,
        "per_call_s": mt_loop / LOG_N,
        "scaled": n != LOG_N,
    }

    mf: dict = {}
    for mode, key in ((True, "sync"), (False, "async")):
        mn = cfg[f"mlflow_{key}_n"]
        reps = []
        for rep in range(cfg["mlflow_log_reps"]):
            progress(
                f"logging: MLflow {mn:,} log_metric(synchronous={mode}) calls "
                f"(rep {rep + 1}/{cfg['mlflow_log_reps']})"
            )
            store = tempfile.mkdtemp(prefix="mf-log-", dir=WORK)
            r = run_worker("log_mlflow", {"n": mn, "store": store, "synchronous": mode}, "mlflow")
            discard(store)
            if r["stored"] != mn:
                raise WorkerError(f"MLflow stored {r['stored']} of {mn} points")
            reps.append(r)
        scale = LOG_N / mn
        mf[key] = {
            "n": mn,
            "reps": reps,
            "per_call_s": median_of(reps, "loop_s") / mn,
            # Linear extrapolation to 100k calls, loop and drain alike.
            "loop_s": median_of(reps, "loop_s") * scale,
            "durable_s": median_of(reps, "durable_s") * scale,
            "extrapolated_from": mn if mn != LOG_N else None,
        }
    res["mlflow"] = mf
    sync, asyn = mf["sync"], mf["async"]
    best_durable = min(sync["durable_s"], asyn["durable_s"])
    res["ratios"] = {
        "loop_vs_sync": ratio(mt_loop, sync["loop_s"]),
        "loop_vs_async_enqueue": ratio(mt_loop, asyn["loop_s"]),
        "durable_vs_sync": ratio(mt_durable, sync["durable_s"]),
        "durable_vs_async": ratio(mt_durable, asyn["durable_s"]),
        "durable_vs_best": ratio(mt_durable, best_durable),
    }

    star = "*" if sync["extrapolated_from"] else ""
    dag = "+" if asyn["extrapolated_from"] else ""
    mt_mark = "~" if n != LOG_N else ""
    rows = [
        ("per call, loop  (MLflow sync)", fmt_us(mt_loop / LOG_N), fmt_us(sync["per_call_s"]),
         fmt_ratio(mt_loop, sync["loop_s"])),
        ("loop, 100k calls (MLflow sync)", fmt_s(mt_loop) + mt_mark, fmt_s(sync["loop_s"]) + star,
         fmt_ratio(mt_loop, sync["loop_s"])),
        ("durable after end_run (sync)", fmt_s(mt_durable) + mt_mark,
         fmt_s(sync["durable_s"]) + star, fmt_ratio(mt_durable, sync["durable_s"])),
        ("per call, loop  (MLflow async)", fmt_us(mt_loop / LOG_N), fmt_us(asyn["per_call_s"]),
         fmt_ratio(mt_loop, asyn["loop_s"])),
        ("loop, 100k calls (MLflow async)", fmt_s(mt_loop) + mt_mark, fmt_s(asyn["loop_s"]) + dag,
         fmt_ratio(mt_loop, asyn["loop_s"])),
        ("durable after end_run (async)", fmt_s(mt_durable) + mt_mark,
         fmt_s(asyn["durable_s"]) + dag, fmt_ratio(mt_durable, asyn["durable_s"])),
    ]  # fmt: skip
    notes = [f"mltrail: median of {cfg['log_reps']} x {n:,} calls of mt.log_metric, sqlite store."]
    if n != LOG_N:
        notes.append(f"~ scaled linearly from {n:,} calls (--quick)")
    if star:
        notes.append(
            f"* extrapolated from N={sync['extrapolated_from']:,} measured synchronous calls "
            f"(median of {cfg['mlflow_log_reps']})"
        )
    if dag:
        notes.append(
            f"+ extrapolated from N={asyn['extrapolated_from']:,} measured async calls "
            f"(enqueue and flush, median of {cfg['mlflow_log_reps']})"
        )
    return table(f"1. Logging overhead: {LOG_N:,} x log_metric(step=i)", rows, notes)


# --------------------------------------------------------------------------------------------
# 2. search
# --------------------------------------------------------------------------------------------
def bench_search(cfg: dict, results: dict) -> str:
    n, points = cfg["search_runs"], cfg["history_points"]
    res: dict = {"runs": n, "points": points}
    results["search"] = res
    expected = run_worker("expected", {"runs": n}, "mltrail")
    out: dict = {}
    for tool in ("mltrail", "mlflow"):
        store = tempfile.mkdtemp(prefix=f"{tool}-search-", dir=WORK)
        label = "mltrail" if tool == "mltrail" else "MLflow"
        progress(f"search: seeding {label}: {n:,} runs x 5 params x 5 metrics + {points:,} points")
        seed = run_worker(f"seed_{tool}", {"runs": n, "points": points, "store": store}, tool)
        progress(
            f"search: {label} seeded in {seed['seed_runs_s']:.1f} s + "
            f"{seed['seed_history_s']:.1f} s; querying"
        )
        q = run_worker(
            f"query_{tool}",
            {
                "store": store,
                "seed": seed,
                "reps": cfg["query_reps"],
                "history_reps": cfg["history_reps"],
            },
            tool,
        )
        discard(store)
        checks = {
            "filter_order_matches_expected": q["client_filter_order"]["names"]
            == expected["filter_order"],
            "order_only_matches_expected": q["client_order_only"]["names"]
            == expected["order_only"],
            "runs_carry_params": q["client_filter_order"]["has_data"],
            "dataframe_rows": q["dataframe_filter_order"]["rows"],
            "history_points": q["history"]["points"],
            "history_complete": q["history"]["points"] == points and q["history"]["ordered"],
        }
        for k in ("client_filter_order", "client_order_only"):
            q[k]["names"] = q[k]["names"][:5]  # keep results.json small
        out[tool] = {"seed": seed, "query": q, "checks": checks}
    res.update(out)
    mt, mf = out["mltrail"], out["mlflow"]

    def med(tool: dict, key: str) -> float:
        return tool["query"][key]["median_s"]

    keys = ("client_filter_order", "client_order_only", "dataframe_filter_order", "history")
    res["ratios"] = {k: ratio(med(mt, k), med(mf, k)) for k in keys}
    res["ratios"]["first_client_filter_order"] = ratio(
        mt["query"]["client_filter_order"]["first_s"], mf["query"]["client_filter_order"]["first_s"]
    )
    res["ratios"]["seed_runs"] = ratio(mt["seed"]["seed_runs_s"], mf["seed"]["seed_runs_s"])

    def row(label: str, a: float, b: float) -> tuple[str, str, str, str]:
        return (label, fmt_s(a), fmt_s(b), fmt_ratio(a, b))

    rows = [
        row(f"seed {n:,} runs", mt["seed"]["seed_runs_s"], mf["seed"]["seed_runs_s"]),
        row(f"seed history {points:,} pts", mt["seed"]["seed_history_s"],
            mf["seed"]["seed_history_s"]),
        ("store size on disk", f"{mt['seed']['store_bytes'] / 1e6:.1f} MB",
         f"{mf['seed']['store_bytes'] / 1e6:.1f} MB", ""),
        row("filter+order, top 100 (client)", med(mt, "client_filter_order"),
            med(mf, "client_filter_order")),
        row("  same, first call in process", mt["query"]["client_filter_order"]["first_s"],
            mf["query"]["client_filter_order"]["first_s"]),
        row("order-by only, top 100 (client)", med(mt, "client_order_only"),
            med(mf, "client_order_only")),
        row("filter+order, top 100 (DataFrame)", med(mt, "dataframe_filter_order"),
            med(mf, "dataframe_filter_order")),
        row(f"metric history, {points:,} points", med(mt, "history"), med(mf, "history")),
    ]  # fmt: skip
    bad = [f"{t}: {k}" for t in out for k, v in out[t]["checks"].items() if v is False]
    notes = [
        f"filter: {workers.FILTER}; order by {workers.ORDER}",
        f"medians of {cfg['query_reps']} calls after a first one (history: "
        f"{cfg['history_reps']}); client = MltrailClient / MlflowClient.search_runs",
        "results checked against the expected top 100: "
        + ("all correct" if not bad else "MISMATCH " + ", ".join(bad)),
    ]
    return table(f"2. Search: {n:,} runs x 5 params x 5 metrics", rows, notes)


# --------------------------------------------------------------------------------------------
# 3. startup
# --------------------------------------------------------------------------------------------
def time_cmd(cmd: list[str], reps: int, tool: str) -> dict:
    cwd = tempfile.mkdtemp(prefix="cwd-", dir=WORK)
    env = worker_env(tool)
    first = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)  # warm-up
    if first.returncode != 0:
        shutil.rmtree(cwd, ignore_errors=True)
        tail = (first.stderr.strip().splitlines() or [""])[-1]
        return {"ok": False, "error": f"exit {first.returncode}: {tail}"[:200]}
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    shutil.rmtree(cwd, ignore_errors=True)
    return {
        "ok": True,
        "median_s": statistics.median(times),
        "all_s": times,
        "output": first.stdout.strip()[:100],
    }


def bench_startup(cfg: dict, results: dict) -> str:
    reps = cfg["startup_reps"]
    cmds = {
        "python_pass": ([PY, "-c", "pass"], "mltrail"),
        "mltrail_version": ([str(BIN / "mltrail"), "--version"], "mltrail"),
        "mltrail_import": ([PY, "-c", "import mltrail"], "mltrail"),
        "mlflow_version": ([str(BIN / "mlflow"), "--version"], "mlflow"),
        "mlflow_import": ([PY, "-c", "import mlflow"], "mlflow"),
    }
    res = {}
    for name, (cmd, tool) in cmds.items():
        progress(f"startup: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}")
        res[name] = time_cmd(cmd, reps, tool)
    results["startup"] = res

    def m(name: str) -> float | None:
        return res[name]["median_s"] if res[name]["ok"] else None

    rows = [
        ("CLI --version", fmt_s(m("mltrail_version")), fmt_s(m("mlflow_version")),
         fmt_ratio(m("mltrail_version"), m("mlflow_version"))),
        ("python -c 'import <tool>'", fmt_s(m("mltrail_import")), fmt_s(m("mlflow_import")),
         fmt_ratio(m("mltrail_import"), m("mlflow_import"))),
        ("python -c pass (floor)", fmt_s(m("python_pass")), fmt_s(m("python_pass")), ""),
    ]  # fmt: skip
    notes = [f"wall time of a subprocess, median of {reps} after one warm-up run"]
    if not res["mltrail_version"]["ok"]:
        notes.append(f"mltrail --version unavailable: {res['mltrail_version']['error']}")
    return table("3. Startup", rows, notes)


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------
def summary(results: dict) -> tuple[str, list[dict]]:
    items: list[dict] = []

    def add(name: str, value: float | None, goal: float, kind: str) -> None:
        if value is None:
            status = "n/a"
        elif kind in ("ratio", "fraction"):
            status = "PASS" if value >= goal else "MISS"
        else:
            status = "PASS" if value <= goal else "MISS"
        items.append({"target": name, "value": value, "goal": goal, "kind": kind,
                      "status": status})  # fmt: skip

    lg = results.get("logging", {}).get("ratios")
    if lg:
        add("log loop vs MLflow sync", lg["loop_vs_sync"], TARGETS["log_loop_ratio"], "ratio")
        add("durable vs fastest MLflow mode", lg["durable_vs_best"],
            TARGETS["log_durable_ratio"], "ratio")  # fmt: skip
    sr = results.get("search", {}).get("ratios")
    if sr:
        add("search filter+order (client)", sr["client_filter_order"], TARGETS["search_ratio"],
            "ratio")  # fmt: skip
        add("search order-by only (client)", sr["client_order_only"], TARGETS["search_ratio"],
            "ratio")  # fmt: skip
        add("search filter+order (DataFrame)", sr["dataframe_filter_order"],
            TARGETS["search_ratio"], "ratio")  # fmt: skip
        add("metric history", sr["history"], TARGETS["history_ratio"], "ratio")
    st = results.get("startup")
    if st:
        v = st["mltrail_version"]
        add("mltrail --version", v.get("median_s"), TARGETS["cli_version_s"], "seconds")
        add("import mltrail", st["mltrail_import"].get("median_s"), TARGETS["import_s"],
            "seconds")  # fmt: skip
    for name, value, goal, kind in data_bench.summary_targets(results):
        add(name, value, goal, kind)

    lines = ["", "Summary vs targets", "=" * 18]
    lines.append(f"{'target':<36}{'mltrail':>14}{'goal':>14}   status")
    lines.append("-" * 75)
    for it in items:
        if it["kind"] == "ratio":
            val = "n/a" if it["value"] is None else f"{it['value']:,.1f}x faster"
            goal = f">= {it['goal']:.0f}x"
        elif it["kind"] == "fraction":
            val = "n/a" if it["value"] is None else f"{it['value'] * 100:.0f}%"
            goal = f">= {it['goal'] * 100:.0f}%"
        else:
            val = fmt_s(it["value"])
            goal = f"<= {it['goal']:.2f} s"
        lines.append(f"{it['target']:<36}{val:>14}{goal:>14}   {it['status']}")
    return "\n".join(lines), items


# --------------------------------------------------------------------------------------------
def versions() -> dict:
    out = {}
    code = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps({p: m.version(p) for p in "
        "('mltrail', 'mlflow', 'SQLAlchemy', 'alembic', 'pandas', 'dvc', 'dvc-data', "
        "'blake3')}))"
    )
    try:
        out = json.loads(subprocess.run([PY, "-c", code], capture_output=True, text=True).stdout)
    except Exception as exc:
        out = {"error": str(exc)}
    out["python"] = platform.python_version()
    return out


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    with contextlib.suppress(OSError):
        mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "free_h": mem, "platform": platform.platform()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                    help="small sizes, to check the suite works (env BENCH_QUICK=1)")  # fmt: skip
    ap.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", "startup,logging,search,data"),
        help="comma-separated subset of startup,logging,search,data (env BENCH_ONLY)",
    )
    ap.add_argument("--large", action="store_true", default=os.environ.get("BENCH_LARGE") == "1",
                    help="data: also the 100,000-file tree (env BENCH_LARGE=1)")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the work folder's stores")
    opts = ap.parse_args()
    cfg = dict(QUICK if opts.quick else FULL)
    global KEEP
    KEEP = data_bench.KEEP = opts.keep
    cfg["data"] = data_bench.config(opts.quick, opts.large)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ver = versions()
    mach = machine()
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if opts.quick else "full",
        "config": cfg,
        "targets": TARGETS,
        "versions": ver,
        "machine": mach,
    }
    print(
        f"mltrail {ver.get('mltrail')} vs MLflow {ver.get('mlflow')} | SQLAlchemy "
        f"{ver.get('SQLAlchemy')} | Python {ver['python']}\n"
        f"{mach['nproc']} cores, {mach['cpu']} | {results['date']} | "
        f"{'QUICK smoke mode: figures not meaningful' if opts.quick else 'full mode'}"
    )
    benches = {
        "startup": bench_startup,
        "logging": bench_logging,
        "search": bench_search,
        "data": data_bench.bench_data,
    }
    only = [b.strip() for b in opts.only.split(",") if b.strip()]
    failed = False
    for name in only:
        if name not in benches:
            print(f"unknown benchmark {name!r}; choose from {', '.join(benches)}", file=sys.stderr)
            return 2
        try:
            print(benches[name](cfg, results), flush=True)
            if name == "data" and results["data"].get("failures"):
                failed = True  # a tool failed or gave wrong bytes: shown in the table
        except (WorkerError, data_bench.DataBenchError, subprocess.TimeoutExpired) as exc:
            failed = True
            results.setdefault("errors", {})[name] = str(exc)
            print(f"\n{name}: FAILED: {exc}", flush=True)
    text, items = summary(results)
    results["summary"] = items
    results["elapsed_s"] = time.time() - started
    print(text)
    # A smoke run must not overwrite the figures of the last full run.
    out = WORK / ("results-quick.json" if opts.quick else "results.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nelapsed {results['elapsed_s']:.0f} s; raw figures in {out.relative_to(HERE.parent)}")
    if not opts.keep:
        for p in WORK.iterdir():
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

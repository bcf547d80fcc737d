"""Timed benchmark bodies. Each runs in its own fresh interpreter, started by ``bench.py``.

Usage: ``python workers.py <task> '<json args>'``. The result is printed as one line
``BENCH_RESULT {json}`` on stdout; anything else on stdout/stderr is library chatter.

Only the standard library is imported at module level, so each task pays for exactly the imports
of the tool it measures, inside or outside the timed region as documented per task.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

perf = time.perf_counter

#: Fixed base timestamp (ms) for seeded data, so both tools store identical rows.
BASE_TS = 1_790_000_000_000
#: The search benchmark's queries: the same text for both tools (MLflow needs quoted params).
FILTER = "metrics.m0 > 0.5 and params.p1 = 'v3'"
ORDER = "metrics.m1 DESC"
TOP = 100
N_PARAMS = 5
N_METRICS = 5


def emit(result: dict) -> None:
    sys.stdout.flush()
    print("BENCH_RESULT " + json.dumps(result), flush=True)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def gen_runs(n: int):
    """Deterministic run contents: params p0..p4 in v0..v9, metrics m0..m4 uniform in [0, 1)."""
    rng = random.Random(42)
    for _ in range(n):
        params = {f"p{j}": f"v{rng.randrange(10)}" for j in range(N_PARAMS)}
        metrics = {f"m{j}": rng.random() for j in range(N_METRICS)}
        yield params, metrics


def expected_top(n: int) -> list[str]:
    """The run names the benchmark query must return, computed in plain Python."""
    rows = [
        (m["m1"], f"run-{i:05d}")
        for i, (p, m) in enumerate(gen_runs(n))
        if m["m0"] > 0.5 and p["p1"] == "v3"
    ]
    rows.sort(key=lambda r: -r[0])
    return [name for _, name in rows[:TOP]]


def expected_order_only(n: int) -> list[str]:
    rows = [(m["m1"], f"run-{i:05d}") for i, (_, m) in enumerate(gen_runs(n))]
    rows.sort(key=lambda r: -r[0])
    return [name for _, name in rows[:TOP]]


def history_value(i: int) -> float:
    return 1.0 / (1.0 + i)


# --------------------------------------------------------------------------------------------
# 1. Logging overhead
# --------------------------------------------------------------------------------------------
def log_mltrail(args: dict) -> dict:
    """``n`` calls of ``mt.log_metric(key, value, step=i)``; loop time and loop + end_run time."""
    n, store = args["n"], Path(args["store"])
    store.mkdir(parents=True, exist_ok=True)
    import mltrail as mt

    mt.set_tracking_uri(str(store))
    mt.set_experiment("logging")
    run = mt.start_run()
    run_id = run.info.run_id
    log_metric = mt.log_metric
    t0 = perf()
    for i in range(n):
        log_metric("loss", 0.5, step=i)
    t1 = perf()
    mt.end_run()
    t2 = perf()
    # Outside the timed region: prove every point is in the store, read by a fresh client.
    client = mt.MltrailClient(str(store))
    stored = len(client.get_metric_history(run_id, "loss"))
    status = client.get_run(run_id).info.status
    return {
        "n": n,
        "loop_s": t1 - t0,
        "drain_s": t2 - t1,
        "durable_s": t2 - t0,
        "stored": stored,
        "status": str(getattr(status, "value", status)),
    }


def log_mlflow(args: dict) -> dict:
    """``n`` calls of ``mlflow.log_metric(key, value, step=i, synchronous=...)``."""
    n, store, synchronous = args["n"], Path(args["store"]), args["synchronous"]
    store.mkdir(parents=True, exist_ok=True)
    os.chdir(store)  # MLflow puts ./mlruns artifacts in the working directory
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("logging")
    run = mlflow.start_run()
    run_id = run.info.run_id
    log_metric = mlflow.log_metric
    t0 = perf()
    for i in range(n):
        log_metric("loss", 0.5, step=i, synchronous=synchronous)
    t1 = perf()
    mlflow.end_run()
    t2 = perf()
    client = MlflowClient(uri)
    stored = len(client.get_metric_history(run_id, "loss"))
    status = client.get_run(run_id).info.status
    return {
        "n": n,
        "synchronous": synchronous,
        "loop_s": t1 - t0,
        "drain_s": t2 - t1,
        "durable_s": t2 - t0,
        "stored": stored,
        "status": status,
    }


# --------------------------------------------------------------------------------------------
# 2. Search: seeding
# --------------------------------------------------------------------------------------------
def seed_mltrail(args: dict) -> dict:
    n, points, store = args["runs"], args["points"], Path(args["store"])
    store.mkdir(parents=True, exist_ok=True)
    from mltrail import MltrailClient
    from mltrail.entities import Metric

    client = MltrailClient(str(store))
    t0 = perf()
    eid = client.create_experiment("search")
    for i, (params, metrics) in enumerate(gen_runs(n)):
        ts = BASE_TS + i
        run_id = client.create_run(eid, run_name=f"run-{i:05d}", start_time=ts).info.run_id
        client.log_batch(
            run_id, metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()], params=params
        )
        client.set_terminated(run_id)
    t1 = perf()
    hid = client.create_experiment("history")
    hrun = client.create_run(hid, run_name="history", start_time=BASE_TS).info.run_id
    client.log_batch(
        hrun, metrics=[Metric("loss", history_value(i), BASE_TS + i, i) for i in range(points)]
    )
    client.set_terminated(hrun)
    t2 = perf()
    client.close()
    return {
        "runs": n,
        "points": points,
        "seed_runs_s": t1 - t0,
        "seed_history_s": t2 - t1,
        "experiment_id": eid,
        "history_run_id": hrun,
        "store_bytes": dir_size(store),
    }


def seed_mlflow(args: dict) -> dict:
    n, points, store = args["runs"], args["points"], Path(args["store"])
    store.mkdir(parents=True, exist_ok=True)
    os.chdir(store)
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.search_experiments()  # creates the schema (migrations) outside the timed region
    t0 = perf()
    eid = client.create_experiment("search")
    for i, (params, metrics) in enumerate(gen_runs(n)):
        ts = BASE_TS + i
        run_id = client.create_run(eid, start_time=ts, run_name=f"run-{i:05d}").info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run_id)
    t1 = perf()
    hid = client.create_experiment("history")
    hrun = client.create_run(hid, start_time=BASE_TS, run_name="history").info.run_id
    client.log_batch(
        hrun, metrics=[Metric("loss", history_value(i), BASE_TS + i, i) for i in range(points)]
    )
    client.set_terminated(hrun)
    t2 = perf()
    del mlflow
    return {
        "runs": n,
        "points": points,
        "seed_runs_s": t1 - t0,
        "seed_history_s": t2 - t1,
        "experiment_id": eid,
        "history_run_id": hrun,
        "store_bytes": dir_size(store),
    }


# --------------------------------------------------------------------------------------------
# 2. Search: queries (in a fresh process after seeding, page cache warm)
# --------------------------------------------------------------------------------------------
def _time(fn, reps: int) -> dict:
    """First call (cold in this process), then the median of ``reps`` further calls."""
    t0 = perf()
    result = fn()
    first = perf() - t0
    times = []
    for _ in range(reps):
        t0 = perf()
        fn()
        times.append(perf() - t0)
    return {"first_s": first, "median_s": statistics.median(times), "all_s": times}, result


def query_mltrail(args: dict) -> dict:
    store, seed, reps, hreps = args["store"], args["seed"], args["reps"], args["history_reps"]
    t0 = perf()
    import mltrail as mt
    from mltrail import MltrailClient

    client = MltrailClient(store)
    mt.set_tracking_uri(store)
    open_s = perf() - t0
    eid, hrun = seed["experiment_id"], seed["history_run_id"]
    out: dict = {"open_s": open_s}

    out["client_filter_order"], runs = _time(
        lambda: client.search_runs([eid], FILTER, [ORDER], TOP), reps
    )
    out["client_filter_order"]["names"] = [r.info.run_name for r in runs]
    out["client_filter_order"]["has_data"] = bool(runs) and len(runs[0].data.params) == N_PARAMS
    out["client_order_only"], runs = _time(
        lambda: client.search_runs([eid], None, [ORDER], TOP), reps
    )
    out["client_order_only"]["names"] = [r.info.run_name for r in runs]
    out["dataframe_filter_order"], df = _time(
        lambda: mt.search_runs([eid], FILTER, [ORDER], max_results=TOP, output_format="pandas"),
        reps,
    )
    out["dataframe_filter_order"]["rows"] = len(df)
    out["history"], hist = _time(lambda: client.get_metric_history(hrun, "loss"), hreps)
    out["history"]["points"] = len(hist)
    out["history"]["ordered"] = all(hist[i].step == i for i in range(len(hist)))
    return out


def query_mlflow(args: dict) -> dict:
    store, seed, reps, hreps = args["store"], args["seed"], args["reps"], args["history_reps"]
    os.chdir(store)
    t0 = perf()
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(store) / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    open_s = perf() - t0
    eid, hrun = seed["experiment_id"], seed["history_run_id"]
    out: dict = {"open_s": open_s}

    out["client_filter_order"], runs = _time(
        lambda: client.search_runs([eid], FILTER, order_by=[ORDER], max_results=TOP), reps
    )
    out["client_filter_order"]["names"] = [r.info.run_name for r in runs]
    out["client_filter_order"]["has_data"] = bool(runs) and len(runs[0].data.params) == N_PARAMS
    out["client_order_only"], runs = _time(
        lambda: client.search_runs([eid], "", order_by=[ORDER], max_results=TOP), reps
    )
    out["client_order_only"]["names"] = [r.info.run_name for r in runs]
    out["dataframe_filter_order"], df = _time(
        lambda: mlflow.search_runs(
            experiment_ids=[eid], filter_string=FILTER, order_by=[ORDER], max_results=TOP
        ),
        reps,
    )
    out["dataframe_filter_order"]["rows"] = len(df)
    out["history"], hist = _time(lambda: client.get_metric_history(hrun, "loss"), hreps)
    out["history"]["points"] = len(hist)
    out["history"]["ordered"] = sorted(m.step for m in hist) == list(range(len(hist)))
    return out


def expected(args: dict) -> dict:
    return {
        "filter_order": expected_top(args["runs"]),
        "order_only": expected_order_only(args["runs"]),
    }


TASKS = {
    "log_mltrail": log_mltrail,
    "log_mlflow": log_mlflow,
    "seed_mltrail": seed_mltrail,
    "seed_mlflow": seed_mlflow,
    "query_mltrail": query_mltrail,
    "query_mlflow": query_mlflow,
    "expected": expected,
}

if __name__ == "__main__":
    task, raw = sys.argv[1], sys.argv[2]
    emit(TASKS[task](json.loads(raw)))

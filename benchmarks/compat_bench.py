"""MLflow client: ``mltrail server`` vs ``mlflow server``, the same client script against both.

``bash benchmarks/run.sh --only compat`` (or ``.venv-bench/bin/python compat_bench.py [--quick]
[--backends sqlite,postgres] [--json PATH] [--keep] [--render JSON]``). The client is the real
``mlflow`` (``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``) in every measurement; only the server
differs: ``mlflow server`` (its SQLAlchemy store, ``--artifacts-destination``) or ``mltrail
server`` (MLflow's REST API under ``/api/2.0/mlflow/`` and ``/api/2.0/mlflow-artifacts/``), 1
worker each, on a SQLite file and on a throwaway PostgreSQL cluster (server_bench.Postgres), each
tool with its own database and artifact folder. First, untimed, all four servers are seeded at
once through the mlflow client: 10,000 runs (``create_run`` + one ``log_batch`` of 5 params and
5 metrics each) and one 100,000-point metric (``log_batch`` of 1,000 points). Then per backend:

1. start-up: spawn until ``GET /health`` answers 200, one server at a time (the schema exists);
2. ``MlflowClient().log_metric``, one call at a time: p50 and p99 of N calls;
3. ``MlflowClient().log_batch`` of 1,000 metric points: p50 of several calls;
4. ``MlflowClient().search_runs`` over the 10,000 runs: ``metrics.acc > 0.5 and params.model =
   'rf'`` ordered by ``metrics.f1 DESC``, top 100; both tools must return the 100 run names plain
   Python computes, in order;
5. ``MlflowClient().get_metric_history`` of the 100,000-point metric; every step must come back;
6. a 200 MB random file up (``log_artifact``) and down (``download_artifacts``), MB/s, the
   download's BLAKE3 equal to the upload's;
7. the 4-model wine workflow in one process: ``load_wine``, 4 ``RandomForestClassifier`` fits,
   each in its own run with params, metrics and ``mlflow.sklearn.log_model(...,
   registered_model_name="wine-rf")``, alias ``production`` on the best version,
   ``mlflow.pyfunc.load_model("models:/wine-rf@production")`` and predict (equal to the best
   model's own predictions). Reported with the time inside ``log_model``, the client's time
   inside HTTP requests, the server's CPU time, the server's time (mltrail: the summed
   ``duration_ms`` of its JSON access log, on by default and left on; MLflow: estimated) and the
   same script with fit/predict only (no tracking).

2-7 run with both servers up and idle (MLflow's job runner starts its consumers after /health
answers: the run waits until it is done), the tools taking turns. A second table splits each
call against mltrail server into its server's part (the access log) and the rest (the mlflow
client and loopback HTTP), and gives the ratio a server answering in no time would reach.
Each measurement is a fresh interpreter: the module is its own worker (``--worker TASK JSON``)
and imports only the standard library at module level (server_bench, whose Server, Tool and
Postgres it uses, does the same). Servers listen on free 127.0.0.1 ports and are stopped on
errors, Ctrl-C and SIGTERM. Goal: every per-call and search figure >= 5x faster against mltrail
server, the whole workflow >= 2x; a miss is reported, not a failure. An error or a wrong answer
from either server is (exit status 1), with the server's log tail in the JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import server_bench as sb  # noqa: E402  (Server, Tool, Postgres, the seeded runs, formatting)

WORK = HERE / ".work"
PY = sys.executable
SELF = str(Path(__file__).resolve())
FULL = {"startup_reps": 3, "calls": 500, "batch_calls": 20, "runs": 10_000, "seeders": 2,
        "search_calls": 20, "search_budget_s": 30, "points": 100_000, "history_reps": 3,
        "file_mb": 200, "artifact_reps": 3, "workflow_reps": 3}  # fmt: skip
QUICK = {"startup_reps": 1, "calls": 50, "batch_calls": 5, "runs": 300, "seeders": 2,
         "search_calls": 5, "search_budget_s": 5, "points": 10_000, "history_reps": 2,
         "file_mb": 20, "artifact_reps": 1, "workflow_reps": 1}  # fmt: skip
TARGET_CALL, TARGET_WORKFLOW = 5.0, 2.0
KEYS = ("mlflow", "mltrail")
LABEL = {"mlflow": "mlflow server", "mltrail": "mltrail server"}
WARMUP = 5  # untimed log_metric calls before the timed ones (connection, first-call caches)
MODEL, ALIAS, TREES = "wine-rf", "production", (25, 50, 100, 200)
perf, med, progress = time.perf_counter, statistics.median, sb.progress


# --- workers: each runs in a fresh interpreter with MLFLOW_TRACKING_URI set ---------------------


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _new_run(c, experiment: str) -> str:
    return c.create_run(c.create_experiment(experiment)).info.run_id


def _points(first: int, n: int) -> list:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    return [Metric("loss", 1.0 / (1 + i), ts + i, i) for i in range(first, first + n)]


def w_seed_setup(a: dict) -> dict:
    c = _client()
    return {"search_experiment": c.create_experiment("search"), "run_id": _new_run(c, "history")}


def w_seed_history(a: dict) -> dict:
    """An N-point metric in 1,000-point log_batch calls."""
    c, t0 = _client(), perf()
    for k in range(0, a["points"], sb.BATCH):
        c.log_batch(a["run_id"], metrics=_points(k, min(sb.BATCH, a["points"] - k)))
    return {"seed_s": perf() - t0}


def w_seed_runs(a: dict) -> dict:
    """Every ``parts``-th seeded run from ``part``: create_run, then one log_batch of its data."""
    from mlflow.entities import Metric, Param

    c, n, t0 = _client(), 0, perf()
    for i, (name, ts, params, metrics, tags) in enumerate(sb.gen_runs(a["runs"])):
        if i % a["parts"] == a["part"]:
            rid = c.create_run(a["experiment"], start_time=ts, tags=tags, run_name=name)
            c.log_batch(rid.info.run_id, metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
                        params=[Param(k, v) for k, v in params.items()])  # fmt: skip
            n += 1
    return {"runs": n, "seed_s": perf() - t0}


def w_log_metric(a: dict) -> dict:
    c = _client()
    run_id = _new_run(c, a["experiment"])
    for i in range(WARMUP):
        c.log_metric(run_id, "warmup", 0.0, step=i)
    times = []
    for i in range(a["n"]):
        t0 = perf()
        c.log_metric(run_id, "loss", 1.0 / (1 + i), step=i)
        times.append(perf() - t0)
    return {"times_s": times, "stored": len(c.get_metric_history(run_id, "loss"))}


def w_log_batch(a: dict) -> dict:
    """One untimed 1,000-point call, then ``n`` timed ones (each batch built before its timer)."""
    c = _client()
    run_id = _new_run(c, a["experiment"])
    c.log_batch(run_id, metrics=_points(0, sb.BATCH))
    times = []
    for k in range(1, a["n"] + 1):
        batch = _points(k * sb.BATCH, sb.BATCH)
        t0 = perf()
        c.log_batch(run_id, metrics=batch)
        times.append(perf() - t0)
    return {"times_s": times, "stored": len(c.get_metric_history(run_id, "loss"))}


def w_search(a: dict) -> dict:
    """One untimed call (checked), then up to ``calls`` timed ones or ``budget_s`` (at least 5)."""
    c = _client()

    def call() -> list:
        return c.search_runs([a["experiment"]], sb.FILTER, order_by=[sb.ORDER], max_results=sb.TOP)

    t0 = perf()
    runs = call()
    first, times, deadline = perf() - t0, [], perf() + a["budget_s"]
    while len(times) < a["calls"] and (len(times) < 5 or perf() < deadline):
        t0 = perf()
        call()
        times.append(perf() - t0)
    return {"first_s": first, "times_s": times, "names": [r.info.run_name for r in runs],
            "complete": all(len(r.data.params) == 5 and len(r.data.metrics) == 5
                            for r in runs)}  # fmt: skip


def w_history(a: dict) -> dict:
    c, times, steps = _client(), [], []
    for _ in range(a["reps"]):
        t0 = perf()
        history = c.get_metric_history(a["run_id"], "loss")
        times.append(perf() - t0)
        steps.append(sorted(m.step for m in history) == list(range(a["points"])))
    return {"times_s": times, "points": len(history), "all_steps": all(steps)}


def w_artifact(a: dict) -> dict:
    """One upload and one download of the file, each timed alone after a sync."""
    src, dst = Path(a["file"]), Path(a["dst"])
    c = _client()
    run_id = _new_run(c, a["experiment"])
    os.sync()
    t0 = perf()
    c.log_artifact(run_id, str(src))
    up = perf() - t0
    dst.mkdir(parents=True)
    os.sync()
    t0 = perf()
    got = Path(c.download_artifacts(run_id, src.name, str(dst)))
    down = perf() - t0
    same = got.stat().st_size == src.stat().st_size and sb._b3(got) == sb._b3(src)
    return {"upload_s": up, "download_s": down, "same_bytes": same}


def _time_http() -> dict:
    """Count and time every request the mlflow client sends (it goes through requests.Session;
    a streamed download's body is read after the call returns, so it is not included)."""
    import requests

    stats, send = {"requests": 0, "http_s": 0.0}, requests.Session.request

    def timed(self, *args, **kwargs):
        t0 = perf()
        try:
            return send(self, *args, **kwargs)
        finally:
            stats["requests"] += 1
            stats["http_s"] += perf() - t0

    requests.Session.request = timed
    return stats


def w_workflow(a: dict) -> dict:
    """The wine workflow; with ``track`` false the same fits and predict with no mlflow at all."""
    track, t0 = a["track"], perf()
    if track:
        import mlflow
        import mlflow.sklearn
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    http = _time_http() if track else {}
    imports_s, log_model_s, fit_s = perf() - t0, 0.0, 0.0
    t0 = perf()
    X, y = load_wine(return_X_y=True, as_frame=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    if track:
        mlflow.set_experiment(a["experiment"])
    best = None
    for n in TREES:
        with mlflow.start_run(run_name=f"rf-{n}") if track else contextlib.nullcontext():
            t1 = perf()
            model = RandomForestClassifier(n_estimators=n, random_state=0).fit(X_tr, y_tr)
            pred = model.predict(X_te)
            fit_s += perf() - t1
            acc, f1 = accuracy_score(y_te, pred), f1_score(y_te, pred, average="macro")
            version = None
            if track:
                mlflow.log_params({"n_estimators": n, "random_state": 0, "test_size": 0.3})
                mlflow.log_metrics({"accuracy": acc, "f1_macro": f1})
                t1 = perf()
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name=MODEL,
                    serialization_format="cloudpickle",
                    pip_requirements=["scikit-learn"],
                )
                log_model_s += perf() - t1
                version = info.registered_model_version
        if best is None or acc > best[0]:
            best = (acc, n, version, model)
    t1 = perf()
    if track:
        mlflow.MlflowClient().set_registered_model_alias(MODEL, ALIAS, best[2])
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@{ALIAS}")
    else:
        loaded = best[3]
    load_s = perf() - t1
    got = loaded.predict(X_te)
    total = perf() - t0
    return {"total_s": total, "imports_s": imports_s, "log_model_s": log_model_s, "fit_s": fit_s,
            "load_s": load_s, "best_trees": best[1], "best_version": best[2],
            "same_predictions": [int(v) for v in got] == [int(v) for v in best[3].predict(X_te)],
            **http}  # fmt: skip


WORKERS = {"seed_setup": w_seed_setup, "seed_history": w_seed_history, "seed_runs": w_seed_runs,
           "log_metric": w_log_metric, "log_batch": w_log_batch, "search": w_search,
           "history": w_history, "artifact": w_artifact, "workflow": w_workflow}  # fmt: skip


# --- the driver ---------------------------------------------------------------------------------


class Failed(RuntimeError):
    """A worker that exited without a result, or a server that answered wrongly."""


class Tool(sb.Tool):
    """server_bench's tool, with mltrail's access log left on (its default: each request's
    duration_ms) and the mlflow client pointed at either server."""

    def server_cmd(self, port: int, workers: int | None) -> list[str]:
        return [arg for arg in super().server_cmd(port, workers) if arg != "--no-access-log"]

    def client_env(self, port: int) -> dict[str, str]:
        return {**sb.base_env(), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}


def run_workers(jobs: list[tuple[str, dict]], env: dict, logs: Path) -> list[dict]:
    """Start the jobs' workers together, each in a fresh interpreter with its stderr in a file
    under ``logs``; return their results in order, or raise with the failing one's last lines."""
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for task, args in jobs:
            err = logs / f"{task}-{len(list(logs.iterdir()))}.stderr"
            with open(err, "wb") as fh:
                procs.append((task, err, subprocess.Popen(
                    [PY, SELF, "--worker", task, json.dumps(args)], env=env,
                    stdout=subprocess.PIPE, stderr=fh, text=True)))  # fmt: skip
        results = []
        for task, err, proc in procs:
            stdout, _ = proc.communicate(timeout=1800)
            found = [ln for ln in stdout.splitlines() if ln.startswith("BENCH_RESULT ")]
            if proc.returncode or not found:
                tail = err.read_text(errors="replace").strip().splitlines()[-25:]
                raise Failed(f"{task} worker exited {proc.returncode}:\n" + "\n".join(tail))
            results.append(json.loads(found[-1].removeprefix("BENCH_RESULT ")))
        return results
    finally:
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def access_lines(srv: sb.Server, start: int) -> list[dict]:
    """mltrail's JSON access-log lines written to the server's log since byte ``start``."""
    with open(srv.log.name, "rb") as f:
        f.seek(start)
        data = f.read()
    lines = []
    for raw in data.splitlines():
        if raw.startswith(b"{") and b'"duration_ms"' in raw:
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
    return lines


def route(line: dict) -> str:
    """The request's route: MLflow artifact paths and logged-model ids folded."""
    path = re.sub(r"/m-[0-9a-f]{32}", "/{id}", line["path"].split("?")[0])
    if "/mlflow-artifacts/artifacts/" in path:
        path = path.split("/artifacts/")[0] + "/artifacts/…"
    return f"{line['method']} {path}"


def on_server(srv: sb.Server, task: str, args: dict, logs: Path) -> dict:
    """One worker against ``srv``, with the server's CPU seconds over it and, from mltrail's
    access log, each request's duration by route and any status >= 400."""
    cpu0, start = srv.cpu_s(), os.path.getsize(srv.log.name)
    r = run_workers([(task, args)], srv.tool.client_env(srv.port), logs)[0]
    time.sleep(0.2)  # the server logs a request after its last byte is sent
    r["server_cpu_s"] = srv.cpu_s() - cpu0
    if lines := access_lines(srv, start):
        by_route: dict[str, list[float]] = {}
        for ln in lines:
            by_route.setdefault(route(ln), []).append(ln["duration_ms"])
        r["server_requests"] = len(lines)
        r["server_ms"] = sum(ln["duration_ms"] for ln in lines)
        r["server_ms_by_route"] = by_route
        r["server_status_ge_400"] = [{k: ln[k] for k in ("method", "path", "status")}
                                     for ln in lines if ln["status"] >= 400][:20]  # fmt: skip
    if server_errors := [e for e in r.get("server_status_ge_400", []) if e["status"] >= 500]:
        raise Failed(f"{srv.tool.label} answered {len(server_errors)} request(s) with a 5xx: "
                     f"{server_errors[:3]}")  # fmt: skip
    return r


def expected(n: int) -> list[str]:
    hits = [r for r in sb.gen_runs(n) if r[3]["acc"] > 0.5 and r[2]["model"] == "rf"]
    return [r[0] for r in sorted(hits, key=lambda r: -r[3]["f1"])[: sb.TOP]]


def prepare(backend: str, root: Path, pg: sb.Postgres | None, out: dict) -> dict[str, Tool]:
    """Each tool's database and folder, and mltrail's schema (MLflow's server makes its own)."""
    tools: dict[str, Tool] = {}
    for key in KEYS:
        folder = root / backend / key
        uri = pg.create(f"{key}_compat") if pg else f"sqlite:///{folder / (key + '.db')}"
        tools[key] = Tool(key, uri, folder)
    t0 = sb.mono()
    subprocess.run([str(sb.BIN / "mltrail"), "server", "migrate", "--store", tools["mltrail"].uri],
                   check=True, capture_output=True, env=sb.base_env(), timeout=300)  # fmt: skip
    out["mltrail_migrate_s"] = sb.mono() - t0
    return tools


def seed_one(srv: sb.Server, cfg: dict) -> dict:
    """The search runs (``seeders`` clients) and the history metric (one more) at once."""
    env, logs, t0 = srv.tool.client_env(srv.port), srv.tool.folder / "workers", perf()
    ids = run_workers([("seed_setup", {})], env, logs)[0]
    jobs = [("seed_history", {"run_id": ids["run_id"], "points": cfg["points"]})]
    jobs += [("seed_runs", {"experiment": ids["search_experiment"], "runs": cfg["runs"],
                            "part": p, "parts": cfg["seeders"]})
             for p in range(cfg["seeders"])]  # fmt: skip
    cpu0 = srv.cpu_s()
    done = run_workers(jobs, env, logs)
    return {**ids, "history_s": done[0]["seed_s"], "runs": sum(r["runs"] for r in done[1:]),
            "runs_s": max(r["seed_s"] for r in done[1:]), "wall_s": perf() - t0,
            "server_cpu_s": srv.cpu_s() - cpu0}  # fmt: skip


def seed_all(tools: dict[str, dict[str, Tool]], pg: sb.Postgres | None, cfg: dict,
             res: dict) -> None:  # fmt: skip
    """Untimed, through the mlflow client: every server of every backend up and seeded at the
    same time (MLflow's, one busy core each, are the long ones), then stopped. MLflow's first
    start creates its schema. On PostgreSQL the seeding sessions skip the WAL flush per commit;
    it is reset, and the databases ANALYZEd, before the timed servers start (as in
    server_bench)."""
    if pg:
        for key in KEYS:
            pg.sql(f"ALTER DATABASE {key}_compat SET synchronous_commit = off")
    servers = {(b, key): sb.Server(tool, 1) for b, ts in tools.items() for key, tool in ts.items()}
    try:
        for (b, key), srv in servers.items():
            res["backends"][b].setdefault("first_start_s", {})[key] = srv.wait_ready()
        with concurrent.futures.ThreadPoolExecutor(len(servers)) as pool:
            futures = {bk: pool.submit(seed_one, srv, cfg) for bk, srv in servers.items()}
            for (b, key), f in futures.items():
                try:
                    res["backends"][b].setdefault("seed", {})[key] = f.result()
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    res["errors"].append({"backend": b, "tool": key, "step": "seed",
                                          "error": str(exc)})  # fmt: skip
                    progress(f"{b}: {LABEL[key]} seeding FAILED: {exc}")
    finally:
        for srv in servers.values():
            srv.stop()
    if pg:
        for key in KEYS:
            pg.sql(f"ALTER DATABASE {key}_compat RESET synchronous_commit")
            pg.sql("ANALYZE", f"{key}_compat")


def settle(servers: list[sb.Server], timeout_s: float = 180) -> float:
    """Wait until the servers' process trees are idle (under 0.1 s of CPU in 2 s): after /health
    answers, MLflow's job runner still starts its huey consumers (7 processes importing mlflow,
    ~10-30 s of a core here), which would slow whatever runs next on the 2 cores."""
    t0 = sb.mono()
    while sb.mono() - t0 < timeout_s:
        cpu0 = sum(srv.cpu_s() for srv in servers)
        time.sleep(2)
        if sum(srv.cpu_s() for srv in servers) - cpu0 < 0.1:
            break
    return sb.mono() - t0


def run_backend(backend: str, tools: dict[str, Tool], cfg: dict, big: Path, out: dict,
                errors: list) -> None:  # fmt: skip
    """Start-up (one server at a time, stopped after), then both servers up, idle, measured."""
    progress(f"{backend}: start-up x {cfg['startup_reps']}")
    startup: dict[str, list[float]] = out.setdefault("startup_s", {k: [] for k in KEYS})
    try:
        for rep in range(cfg["startup_reps"]):
            for key in KEYS if rep % 2 == 0 else KEYS[::-1]:
                srv = sb.Server(tools[key], 1)
                startup[key].append(srv.wait_ready())
                srv.stop()
        servers = {key: sb.Server(tools[key], 1) for key in KEYS}
        for srv in servers.values():
            srv.wait_ready()
        out["settle_s"] = settle(list(servers.values()))
        measure(backend, servers, cfg, big, out, errors)
    finally:
        for srv in list(sb.Server.live):
            srv.stop()


def measure(backend: str, servers: dict[str, sb.Server], cfg: dict, big: Path, out: dict,
            errors: list) -> None:  # fmt: skip
    """Each step for both tools (taking turns); a failure is recorded and the next step runs."""
    seeds = out["seed"]
    steps = {"log_metric": ({"n": cfg["calls"]}, 1),
             "log_batch": ({"n": cfg["batch_calls"]}, 1),
             "search": ({"calls": cfg["search_calls"], "budget_s": cfg["search_budget_s"]}, 1),
             "history": ({"reps": cfg["history_reps"], "points": cfg["points"]}, 1),
             "artifact": ({"file": str(big)}, cfg["artifact_reps"]),
             "workflow": ({"track": True}, cfg["workflow_reps"])}  # fmt: skip
    for step, (args, reps) in steps.items():
        for rep in range(reps):
            for key in KEYS if rep % 2 == 0 else KEYS[::-1]:
                if key in out.get("failed", {}).get(step, []):
                    continue
                srv = servers[key]
                folder = srv.tool.folder
                a = {**args, "experiment": f"{step}-{rep}", "dst": str(folder / f"dl-{rep}")}
                if step == "search":
                    a["experiment"] = seeds[key]["search_experiment"]
                elif step == "history":
                    a["run_id"] = seeds[key]["run_id"]
                elif step == "artifact":
                    sb.patch_file(big, f"{backend}-{key}-{rep}")  # new bytes every upload
                progress(f"{backend}: {LABEL[key]} {step}"
                         + (f" (rep {rep + 1}/{reps})" if reps > 1 else ""))  # fmt: skip
                try:
                    r = on_server(srv, step, a, folder / "workers")
                    check(step, r, cfg)
                except (Failed, OSError, subprocess.SubprocessError) as exc:
                    tail = Path(srv.log.name).read_text(errors="replace").splitlines()[-40:]
                    errors.append({"backend": backend, "tool": key, "step": step,
                                   "error": str(exc), "server_log_tail": tail})  # fmt: skip
                    out.setdefault("failed", {}).setdefault(step, []).append(key)
                    progress(f"{backend}: {LABEL[key]} {step} FAILED: {exc}")
                    continue
                finally:
                    shutil.rmtree(folder / f"dl-{rep}", ignore_errors=True)
                out.setdefault(step, {}).setdefault(key, []).append(r)
        if step == "search" and set(out.get("search", {})) == set(KEYS):
            want = expected(cfg["runs"])
            for key in KEYS:
                got = out["search"][key][0]["names"]
                out["search"][key][0]["correct"] = got == want
                if got != want:
                    msg = f"not the expected runs: {got[:3]}… instead of {want[:3]}…"
                    errors.append({"backend": backend, "tool": key, "step": "search",
                                   "error": msg})  # fmt: skip
    progress(f"{backend}: fit/predict only, no tracking (floor)")
    for _ in range(cfg["workflow_reps"]):
        r = run_workers([("workflow", {"track": False})], sb.base_env(),
                        servers["mltrail"].tool.folder.parent / "floor")[0]  # fmt: skip
        out.setdefault("floor", []).append(r)


def check(step: str, r: dict, cfg: dict) -> None:
    """Wrong answers fail the step: every point stored, every byte back, the same predictions."""
    want = {"log_metric": ("stored", cfg["calls"]),
            "log_batch": ("stored", (cfg["batch_calls"] + 1) * sb.BATCH),
            "history": ("points", cfg["points"])}  # fmt: skip
    if step in want and r[want[step][0]] != want[step][1]:
        raise Failed(f"{step}: {r[want[step][0]]:,} points came back, not {want[step][1]:,}")
    if step == "history" and not r["all_steps"]:
        raise Failed("history: the steps that came back are not 0 … N-1")
    if step == "search" and not r["complete"]:
        raise Failed("search: a run came back without its 5 params and 5 metrics")
    if step == "artifact" and not r["same_bytes"]:
        raise Failed("artifact: the downloaded bytes differ from the uploaded ones")
    if step == "workflow" and not r["same_predictions"]:
        raise Failed("workflow: the model loaded by alias predicts differently from the best one")


# --- figures and tables -------------------------------------------------------------------------


def figures(b: dict, cfg: dict) -> dict[str, dict]:
    """name -> {tool: value}: seconds (lower is better) or MB/s (names ending in _mb_s)."""
    figs: dict[str, dict] = {}

    def put(name: str, step: str, fn) -> None:
        reps = b.get(step, {})
        figs[name] = {key: fn(reps[key]) for key in KEYS if reps.get(key)}

    def times(rs: list[dict]) -> list[float]:
        return [t for r in rs for t in r["times_s"]]

    mb = cfg["file_mb"]
    figs["startup"] = {key: med(v) for key, v in b.get("startup_s", {}).items() if v}
    put("log_metric_p50", "log_metric", lambda rs: med(times(rs)))
    put("log_metric_p99", "log_metric", lambda rs: sb.pct(times(rs), 99))
    put("log_batch_p50", "log_batch", lambda rs: med(times(rs)))
    put("search_p50", "search", lambda rs: med(times(rs)))
    put("search_p99", "search", lambda rs: sb.pct(times(rs), 99))
    put("history", "history", lambda rs: med(times(rs)))
    for op in ("upload", "download"):
        put(f"{op}_s", "artifact", lambda rs, op=op: med([r[f"{op}_s"] for r in rs]))
        figs[f"{op}_mb_s"] = {k: mb / v for k, v in figs[f"{op}_s"].items()}
    for k in ("total_s", "log_model_s", "http_s", "server_cpu_s", "requests", "imports_s"):
        put(f"workflow_{k}", "workflow", lambda rs, k=k: med([r[k] for r in rs]))
    for fig, step, _, prefix, how in SPLIT:  # mltrail's own time in the calls, from its access log
        rs = b.get(step, {}).get("mltrail")
        if rs and all("server_ms_by_route" in r for r in rs):
            figs[f"{fig}_in_server"] = {"mltrail": in_server(rs, prefix, how, cfg) / 1e3}
    # MLflow's server time in the workflow, estimated: its client's time in HTTP requests less
    # what the same requests cost mltrail's client outside mltrail's server.
    wf, http = figs.get("workflow_total_s_in_server", {}), figs.get("workflow_http_s", {})
    if "mltrail" in wf and set(http) == set(KEYS):
        wf["mlflow"] = http["mlflow"] - (http["mltrail"] - wf["mltrail"])
    if b.get("floor"):
        figs["floor_s"] = {"floor": med([r["total_s"] for r in b["floor"]])}
    return figs


#: figure, step, label, the mltrail server routes it spends its time in, and how to add them up:
#: "each" (the median request), "sum" (all of a worker's requests, median over workers), "read"
#: ("sum" per history read).
SPLIT = [
    ("log_metric_p50", "log_metric", "log_metric", "POST /api/2.0/mlflow/runs/log-metric", "each"),
    ("log_batch_p50", "log_batch", "log_batch 1,000 points", "POST /api/2.0/mlflow/runs/log-batch",
     "each"),
    ("search_p50", "search", "search_runs", "POST /api/2.0/mlflow/runs/search", "each"),
    ("history", "history", "get_metric_history", "GET /api/2.0/mlflow/metrics/get-history",
     "read"),
    ("upload_s", "artifact", "log_artifact", "PUT /api/2.0/mlflow-artifacts/", "sum"),
    ("download_s", "artifact", "download_artifacts", "GET /api/2.0/mlflow-artifacts/", "sum"),
    ("workflow_total_s", "workflow", "wine workflow", "", "sum"),
]  # fmt: skip


def in_server(rs: list[dict], prefix: str, how: str, cfg: dict) -> float:
    """Milliseconds mltrail server spent in the requests of ``prefix`` (see SPLIT)."""
    if how == "each":
        return med([d for r in rs for k, v in r["server_ms_by_route"].items()
                    if k.startswith(prefix) for d in v])  # fmt: skip
    per = cfg["history_reps"] if how == "read" else 1
    return med([sum(sum(v) for k, v in r["server_ms_by_route"].items() if k.startswith(prefix))
                / per for r in rs])  # fmt: skip


ROWS = [  # figure, label, unit, target
    ("startup", "start-up (until /health 200)", "s", None),
    ("log_metric_p50", "log_metric, p50", "s", TARGET_CALL),
    ("log_metric_p99", "log_metric, p99", "s", TARGET_CALL),
    ("log_batch_p50", "log_batch 1,000 points, p50", "s", TARGET_CALL),
    ("search_p50", "search_runs {runs}, p50", "s", TARGET_CALL),
    ("search_p99", "search_runs {runs}, p99", "s", TARGET_CALL),
    ("history", "get_metric_history {points}", "s", TARGET_CALL),
    ("upload_mb_s", "log_artifact {mb} MB, MB/s", "mb", TARGET_CALL),
    ("download_mb_s", "download_artifacts, MB/s", "mb", TARGET_CALL),
    ("workflow_total_s", "wine workflow, 4 models", "s", TARGET_WORKFLOW),
    ("workflow_log_model_s", "  of which in log_model", "s", None),
    ("workflow_http_s", "  client in HTTP requests", "s", None),
    ("workflow_server_cpu_s", "  server CPU", "s", None),
    ("workflow_total_s_in_server", "  in the server (mlflow: est.)", "s", None),
]


def cell(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "mb":
        return f"{v:,.0f}"
    return f"{v:,.0f} ms" if unit == "ms" else sb.fs(v)


def heading(title: str, head: list[str], widths: list[int]) -> list[str]:
    return ["", title, "=" * len(title), line(head, widths), "-" * sum(widths)]


def line(cells: list[str], widths: list[int]) -> str:
    """The first cell left-aligned, the others right-aligned."""
    return cells[0].ljust(widths[0]) + "".join(
        c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))  # fmt: skip


def render(res: dict, cfg: dict) -> str:
    widths = [30, 15, 15, 9, 11]
    lines: list[str] = []
    summary = res["summary"] = []

    for backend, b in res["backends"].items():
        figs = res["figures"][backend] = figures(b, cfg)
        name = {"sqlite": "SQLite", "postgres": f"PostgreSQL {res['versions'].get('postgresql')}"}
        title = f"{name[backend]}: the mlflow {res['versions'].get('mlflow')} client, 1 worker each"
        lines += heading(title, ["what", "mlflow server", "mltrail server", "ratio", "target"],
                         widths)  # fmt: skip
        fmt = {"runs": f"{cfg['runs']:,} runs", "points": f"{cfg['points']:,}",
               "mb": f"{cfg['file_mb']}"}  # fmt: skip
        for fig, label, unit, target in ROWS:
            v = figs.get(fig, {})
            mf, mt = v.get("mlflow"), v.get("mltrail")
            ratio = goal = ""
            if mf and mt:
                x = mt / mf if unit == "mb" else mf / mt
                ratio = sb.ratio_s(x)
                if target:
                    ok = x >= target
                    goal = f">={target:.0f}x " + ("met" if ok else "MISS")
                    summary.append({"backend": backend, "figure": fig, "ratio": round(x, 3),
                                    "target": target, "met": ok})  # fmt: skip
            elif target:
                goal = f">={target:.0f}x n/a"
            cells = [label.format(**fmt), cell(mf, unit), cell(mt, unit), ratio, goal]
            lines.append(line(cells, widths))
        notes = [f"p50/p99 over {cfg['calls']} log_metric calls (after {WARMUP} untimed), "
                 f"{cfg['batch_calls']} log_batch calls, up to {cfg['search_calls']} searches "
                 f"(filter {sb.FILTER}, order {sb.ORDER}, top {sb.TOP}), {cfg['history_reps']} "
                 f"history reads; medians of {cfg['startup_reps']} start-ups, "
                 f"{cfg['artifact_reps']} transfers, {cfg['workflow_reps']} workflows. ratio: "
                 "how many times faster against mltrail server."]  # fmt: skip
        if floor := figs.get("floor_s", {}).get("floor"):
            per = {k: figs[f"workflow_{k}"] for k in ("requests", "imports_s")}
            notes.append(
                f"workflow: the same script with fit/predict only (no mlflow) "
                f"{sb.fs(floor)}; HTTP requests per workflow (mlflow/mltrail) "
                + "/".join(f"{per['requests'].get(k, 0):.0f}" for k in KEYS)
                + "; imports before the timer "
                + "/".join(sb.fs(per["imports_s"].get(k, 0)) for k in KEYS)
                + "; server CPU: the server's process tree (not PostgreSQL's)."
            )
        seeds = b.get("seed", {})
        if set(seeds) == set(KEYS):
            notes.append("seeding, untimed (mlflow/mltrail): "
                         f"{cfg['runs']:,} runs " + "/".join(
                             sb.fs(seeds[k]["runs_s"]) for k in KEYS)
                         + f" with {cfg['seeders']} clients, {cfg['points']:,} points "
                         + "/".join(sb.fs(seeds[k]["history_s"]) for k in KEYS))  # fmt: skip
        for n in notes:
            lines += textwrap.wrap(n, 80, subsequent_indent="  ")
        lines += split_table(figs, name[backend])
    met = sum(s["met"] for s in summary)
    lines += ["", f"Targets: {met} of {len(summary)} met (per-call and search >= "
              f"{TARGET_CALL:.0f}x, workflow >= {TARGET_WORKFLOW:.0f}x)."]  # fmt: skip
    lines += [f"  MISS {s['backend']}: {s['figure']} {sb.ratio_s(s['ratio'])}"
              for s in summary if not s["met"]]  # fmt: skip
    return "\n".join(ln.rstrip() for ln in lines)


def split_table(figs: dict, backend: str) -> list[str]:
    """Each call against mltrail server, split into the server's part (its duration_ms) and the
    rest (the mlflow client and loopback HTTP, the same whichever server answers)."""
    widths = [24, 11, 11, 12, 12, 10]
    rows = []
    for fig, _, label, _, _ in SPLIT:
        mt, mf = figs.get(fig, {}).get("mltrail"), figs.get(fig, {}).get("mlflow")
        srv = figs.get(f"{fig}_in_server", {}).get("mltrail")
        if mt is None or srv is None:
            continue
        rest = mt - srv
        rows.append([label, sb.fs(mt), sb.fs(srv), sb.fs(rest), sb.fs(mf) if mf else "n/a",
                     sb.ratio_s(mf / rest) if mf and rest > 0 else ""])  # fmt: skip
    if not rows:
        return []
    title = f"{backend}: where a call's time goes against mltrail server (median)"
    head = ["call", "mltrail", "in server", "client+HTTP", "mlflow srv", "at most"]
    out = heading(title, head, widths) + [line(r, widths) for r in rows]
    out += textwrap.wrap("in server: mltrail's duration_ms for the call's requests (access log); "
                         "client+HTTP: the rest. at most: the ratio a server answering in no "
                         "time at all would reach with this client (mlflow server's time / "
                         "client+HTTP).", 80, subsequent_indent="  ")  # fmt: skip
    return out


def versions() -> dict:
    out = sb.versions()
    for p in ("scikit-learn", "cloudpickle", "requests"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[p] = importlib.metadata.version(p)
    return out


def backend_list(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    if bad := set(names) - {"sqlite", "postgres"}:
        raise argparse.ArgumentTypeError(f"unknown backend: {', '.join(sorted(bad))}")
    return names


def new_results(cfg: dict, quick: bool) -> dict:
    """The results' frame: when, what, versions and machine; figures are added as they come."""
    machine = {"nproc": os.cpu_count(), "machine": platform.machine(),
               "platform": platform.platform(), "loadavg_start": os.getloadavg()}  # fmt: skip
    return {"date": dt.datetime.now().isoformat(timespec="seconds"),
            "mode": "quick" if quick else "full", "config": cfg,
            "targets": {"per_call": TARGET_CALL, "workflow": TARGET_WORKFLOW},
            "versions": versions(), "backends": {}, "figures": {}, "errors": [],
            "machine": machine}  # fmt: skip


def save(res: dict, path: Path, started: float) -> None:
    res["elapsed_s"] = time.time() - started
    res["machine"]["loadavg_end"] = os.getloadavg()
    path.write_text(json.dumps(res, indent=2) + "\n")
    progress(f"raw figures in {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                    help="small N, one repetition (env BENCH_QUICK=1)")  # fmt: skip
    ap.add_argument("--backends", type=backend_list,
                    help="sqlite,postgres (default: both; --quick: sqlite)")  # fmt: skip
    ap.add_argument("--json", metavar="PATH", help="raw figures (.work/compat-results.json)")
    ap.add_argument("--keep", action="store_true", help="keep the stores in benchmarks/.work")
    ap.add_argument("--render", metavar="PATH", help="print the tables of a results JSON, no run")
    opts = ap.parse_args(argv)
    if opts.render:
        saved = json.loads(Path(opts.render).read_text())
        print(render(saved, saved["config"]))
        return 0
    cfg = dict(QUICK if opts.quick else FULL)
    backends = opts.backends or (["sqlite"] if opts.quick else ["sqlite", "postgres"])
    suffix = "-quick" if opts.quick else ""
    json_path = Path(opts.json) if opts.json else WORK / f"compat-results{suffix}.json"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: servers get stopped
    WORK.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="compat-", dir=WORK))
    res = new_results(cfg, opts.quick)
    ver = res["versions"]
    mode = "QUICK smoke mode: figures not meaningful" if opts.quick else "full mode"
    print(f"mlflow {ver.get('mlflow')} client: mltrail {ver.get('mltrail')} server vs mlflow "
          f"server | Python {ver['python']} | {os.cpu_count()} cores\n{res['date']} | {mode}",
          flush=True)  # fmt: skip
    started, pg, code = time.time(), None, 0
    try:
        big = root / "big.bin"
        progress(f"writing a {cfg['file_mb']} MB random file")
        with open(big, "wb") as f:
            for _ in range(cfg["file_mb"]):
                f.write(random.randbytes(1_000_000))
        for backend in backends:
            res["backends"][backend] = {}
        if "postgres" in backends:
            pg = sb.Postgres()
            pg.start()
            res["versions"]["postgresql"] = pg.version
        tools = {b: prepare(b, root, pg if b == "postgres" else None, res["backends"][b])
                 for b in backends}  # fmt: skip
        progress(f"seeding {', '.join(backends)} through the mlflow client (untimed)")
        try:
            seed_all(tools, pg, cfg, res)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            res["errors"].append({"backend": ",".join(backends), "step": "seed", "error": str(exc)})
            progress(f"seeding FAILED: {exc}")
        for backend in backends:
            if set(res["backends"][backend].get("seed", {})) != set(KEYS):
                continue  # its seeding failed (recorded)
            res["machine"][f"loadavg_{backend}"] = os.getloadavg()
            try:
                run_backend(backend, tools[backend], cfg, big, res["backends"][backend],
                            res["errors"])  # fmt: skip
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                res["errors"].append({"backend": backend, "error": str(exc)})
                progress(f"{backend}: FAILED: {exc}")
        print(render(res, cfg), flush=True)
        for e in res["errors"]:
            code = 1
            print(f"error: {e.get('backend')} {e.get('tool', '')} {e.get('step', '')}: "
                  f"{e['error'].splitlines()[0] if e['error'] else ''}")  # fmt: skip
    finally:
        for srv in list(sb.Server.live):
            srv.stop()
        if pg is not None:
            pg.stop()
        save(res, json_path, started)
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nelapsed {res['elapsed_s']:.0f} s")
    return code


def worker(task: str, args_json: str) -> int:
    result = WORKERS[task](json.loads(args_json))
    print("BENCH_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker(sys.argv[2], sys.argv[3]))
    sys.exit(main())

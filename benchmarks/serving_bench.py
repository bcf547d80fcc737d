"""Model loading and serving: mltrail vs MLflow, side by side in one run.

``bash benchmarks/run.sh --only serving`` runs it (or directly:
``benchmarks/.venv-bench/bin/python benchmarks/serving_bench.py [--quick] [--side mlflow]``).

One model, a scikit-learn ``RandomForestClassifier(n_estimators=100)`` fitted on the wine dataset
(13 float columns), is pickled once and logged + registered as ``wine-rf`` with the alias
``production`` by each tool, each in a fresh store of its own under ``benchmarks/.work/``. Then:

- **load by alias**: ``load_model("models:/wine-rf@production")`` in a fresh interpreter; the call
  alone, and from spawning the process until the model is loaded (imports included);
- **serving start-up**: from spawning the tool's ``models serve`` command until ``GET /ping``
  answers 200 (polled every 20 ms); then the idle RSS of the serving process tree;
- **throughput**: ``wrk`` (closed loop, on 127.0.0.1, sharing the machine's cores with the server)
  POSTs the same JSON body (``dataframe_split``, 1 row or 1,000 rows) to ``/invocations``:
  requests/s and the 50%/99% latency. Before the load, one request per body must return 200
  with the right number of predictions, equal to the model's own; a run with any non-2xx
  response is not counted.

The tools take turns (loads and start-ups alternate); the two servers never run at the same time.
mltrail is driven through ``MltrailAdapter``, written against the model API as specified (see its
docstring); while that API is missing, its column says "n/a" and the reason is printed.

This module is also its own worker: ``python serving_bench.py --worker TASK JSON`` runs one task in
a fresh interpreter and prints ``BENCH_RESULT {json}``. Only the standard library is imported at
module level, so a worker pays for exactly the imports of the tool it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
PY = sys.executable
BIN = Path(PY).parent
LUA = HERE / "wrk_post.lua"
WRK_INSTALL = "sudo apt-get install -y wrk"

MODEL_NAME = "wine-rf"
ALIAS = "production"
MODEL_URI = f"models:/{MODEL_NAME}@{ALIAS}"
SEED = 20261123
ROWS = (1, 1000)  # request sizes

FULL = {"load_reps": 5, "startup_reps": 3, "duration_s": 10, "warmup_s": 1}
QUICK = {"load_reps": 2, "startup_reps": 2, "duration_s": 3, "warmup_s": 1}
TARGETS = {"throughput_ratio": 2.0, "startup_s": 1.0}
STARTUP_TIMEOUT_S = 180
KEEP = False  # --keep: leave the stores under benchmarks/.work for inspection
perf = time.perf_counter


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class NotAvailable(RuntimeError):
    """The tool cannot do this (yet): the figure is n/a."""


class ToolFailed(RuntimeError):
    """The tool answered wrongly (non-200, wrong predictions): the figure is not counted."""


# ============================================================================================
# workers: each runs in a fresh interpreter (cwd = the tool's store)
# ============================================================================================
def _wine():
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True)


def _load_pickled_model(work: Path):
    import pickle

    with open(work.parent / "model.pkl", "rb") as f:
        return pickle.load(f)


def _predict_body(model, body_path: str) -> list:
    import pandas as pd

    split = json.loads(Path(body_path).read_text())["dataframe_split"]
    preds = model.predict(pd.DataFrame(split["data"], columns=split["columns"]))
    return [p.item() if hasattr(p, "item") else p for p in list(preds)]


def w_prepare(args: dict) -> dict:
    """Fit the model once, pickle it, write the request bodies and the expected predictions."""
    import pickle

    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    out = Path(args["out"])
    wine = _wine()
    X, y = wine.data, wine.target
    t0 = perf()
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    fit_s = perf() - t0
    with open(out / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    rng = np.random.default_rng(SEED)
    bodies = {}
    for n in ROWS:
        rows = X.iloc[rng.integers(0, len(X), size=n)]
        body = {"dataframe_split": {"columns": list(X.columns), "data": rows.to_numpy().tolist()}}
        path = out / f"body-{n}.json"
        path.write_text(json.dumps(body, separators=(",", ":")))
        bodies[str(n)] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "expected": [int(p) for p in model.predict(rows)],
        }
    # The floor for a server: JSON body -> DataFrame -> model.predict, in process, one core.
    for n in ROWS:
        raw = Path(bodies[str(n)]["path"]).read_bytes()
        times = []
        for _ in range(50 if n == 1 else 10):
            t0 = perf()
            split = json.loads(raw)["dataframe_split"]
            model.predict(pd.DataFrame(split["data"], columns=split["columns"]))
            times.append(perf() - t0)
        bodies[str(n)]["predict_floor_s"] = statistics.median(times)
    return {"n_train": len(X), "fit_s": fit_s, "bodies": bodies, "sklearn": sklearn.__version__}


def w_register_mlflow(args: dict) -> dict:
    work = Path(args["work"])
    import cloudpickle
    import mlflow
    import mlflow.sklearn
    import numpy
    import pandas
    import sklearn
    from mlflow import MlflowClient

    model, X = _load_pickled_model(work), _wine().data
    mlflow.set_tracking_uri(args["tracking_uri"])
    mlflow.create_experiment("serving", artifact_location=(work / "artifacts").as_uri())
    mlflow.set_experiment("serving")
    reqs = [
        f"scikit-learn=={sklearn.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
        f"pandas=={pandas.__version__}",
        f"numpy=={numpy.__version__}",
    ]  # given, so that log_model does not spend ~8 s inferring them
    with mlflow.start_run():
        t0 = perf()
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=MODEL_NAME,
            serialization_format="cloudpickle",
            input_example=X[:5],
            pip_requirements=reqs,
        )
        log_s = perf() - t0
    version = info.registered_model_version
    MlflowClient().set_registered_model_alias(MODEL_NAME, ALIAS, version)
    return {"version": str(version), "log_model_s": log_s, "model_uri": info.model_uri}


def w_register_mltrail(args: dict) -> dict:
    work = Path(args["work"])
    import mltrail as mt

    model, X = _load_pickled_model(work), _wine().data
    mt.set_tracking_uri(str(work))
    with mt.start_run():
        t0 = perf()
        info = mt.log_model(model, "model", registered_name=MODEL_NAME, input_example=X[:5])
        log_s = perf() - t0
    # MLflow's ModelInfo names it registered_model_version; a fresh store's first version is 1.
    version = getattr(info, "registered_model_version", None) or getattr(info, "version", None)
    version = version or 1
    mt.MltrailClient(str(work)).set_registered_model_alias(MODEL_NAME, ALIAS, version)
    return {"version": str(version), "log_model_s": log_s}


def w_load(args: dict) -> dict:
    """Load by alias; the call is timed alone, and its end is stamped for the parent."""
    tool, work = args["tool"], Path(args["work"])
    t_imp = perf()
    if tool == "mlflow":
        import mlflow.pyfunc

        mlflow.set_tracking_uri(args["tracking_uri"])
        load = mlflow.pyfunc.load_model
    else:
        import mltrail as mt

        mt.set_tracking_uri(str(work))
        load = mt.load_model
    t0 = perf()
    model = load(MODEL_URI)
    t1 = perf()
    loaded_at = time.monotonic()  # CLOCK_MONOTONIC: comparable with the parent's spawn time
    preds = _predict_body(model, args["body"])  # untimed: the loaded model must work
    return {"load_s": t1 - t0, "import_s": t0 - t_imp, "loaded_at": loaded_at, "preds": preds}


WORKERS = {
    "prepare": w_prepare,
    "register_mlflow": w_register_mlflow,
    "register_mltrail": w_register_mltrail,
    "load": w_load,
}


def worker_main(task: str, args_json: str) -> int:
    result = WORKERS[task](json.loads(args_json))
    sys.stdout.flush()
    print("BENCH_RESULT " + json.dumps(result), flush=True)
    return 0


# ============================================================================================
# the two tools
# ============================================================================================
def base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLTRAIL_", "MLFLOW_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # uvicorn etc. from the venv
    return env


def short_error(text: str) -> str:
    """The line of a failed command's output that names the error (else its last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    named = [ln for ln in lines if re.search(r"Error\b|Exception\b|error:|No such", ln)]
    return ((named or lines or ["(no output)"])[-1])[:300]


class Adapter:
    """One tool: how to register the model, load it and serve it. Subclasses fill it in."""

    key = ""
    label = ""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = base_env()

    def run_worker(self, task: str, args: dict, timeout: float = 600) -> dict:
        args = {"work": str(self.work), **args}
        proc = subprocess.run(
            [PY, str(Path(__file__).resolve()), "--worker", task, json.dumps(args)],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("BENCH_RESULT "):
                return json.loads(line[len("BENCH_RESULT ") :])
        raise self.failure(f"{task} exited {proc.returncode}: {short_error(proc.stderr)}")

    def failure(self, msg: str) -> Exception:
        return ToolFailed(msg)

    def setup(self) -> dict:
        raise NotImplementedError

    def worker_args(self) -> dict:
        return {}

    def serve_cmd(self, port: int) -> list[str]:
        raise NotImplementedError


class MlflowAdapter(Adapter):
    key, label = "mlflow", "MLflow"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
        # Telemetry only adds background network attempts; keep it out of MLflow's figures.
        self.env.update(
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            MLFLOW_TRACKING_URI=self.tracking_uri,  # so that `models serve` resolves models:/
        )

    def setup(self) -> dict:
        self.work.mkdir(parents=True)
        return self.run_worker("register_mlflow", self.worker_args())

    def worker_args(self) -> dict:
        return {"tracking_uri": self.tracking_uri}

    def serve_cmd(self, port: int) -> list[str]:
        return [str(BIN / "mlflow"), "models", "serve", "-m", MODEL_URI, "--env-manager", "local",
                "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip


class MltrailAdapter(Adapter):
    """mltrail's side, written against the model API being built. It expects:

    - ``mt.log_model(model, "model", registered_name="wine-rf", input_example=X[:5])`` inside
      ``with mt.start_run():`` (store: ``mt.set_tracking_uri(project_dir)``, a folder made by
      ``mltrail init``); its return value's ``registered_model_version`` (or ``version``) is the
      new version, else version 1 is assumed (a fresh store);
    - ``mt.MltrailClient(project_dir)`` ``.set_registered_model_alias("wine-rf", "production",
      version)``;
    - ``mt.load_model("models:/wine-rf@production")`` returning an object with ``.predict(df)``;
    - ``mltrail models serve models:/wine-rf@production --host 127.0.0.1 --port PORT --workers 1``
      run in the project folder, answering ``GET /ping`` with 200 once ready and
      ``POST /invocations`` (``application/json``, ``{"dataframe_split": {"columns", "data"}}``)
      with ``{"predictions": [...]}``.

    Anything missing raises ``NotAvailable``: the column reads n/a and the reason is printed.
    """

    key, label = "mltrail", "mltrail"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env["MLTRAIL_CAPTURE"] = "0"  # no git/pip capture at start_run

    def failure(self, msg: str) -> Exception:
        return NotAvailable(msg)

    def setup(self) -> dict:
        self.work.mkdir(parents=True)
        cmd = [str(BIN / "mltrail"), "init", str(self.work)]
        proc = subprocess.run(
            cmd, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise NotAvailable(f"mltrail init exited {proc.returncode}: {short_error(proc.stderr)}")
        return self.run_worker("register_mltrail", {})

    def serve_cmd(self, port: int) -> list[str]:
        return [str(BIN / "mltrail"), "models", "serve", MODEL_URI, "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1"]  # fmt: skip


# ============================================================================================
# measuring
# ============================================================================================
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``models serve`` process (group), started, polled until ready, stopped."""

    def __init__(self, side: Adapter) -> None:
        self.side = side
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop())
            prefix=f"serve-{side.key}-", suffix=".log", dir=side.work, delete=False
        )
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(
            side.serve_cmd(self.port), cwd=side.work, env=side.env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def log_tail(self) -> str:
        self.log.flush()
        return short_error(Path(self.log.name).read_text(errors="replace"))

    def wait_ready(self) -> float:
        """Seconds from spawn until ``GET /ping`` answers 200, polling every 20 ms."""
        deadline = self.t_spawn + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                cmd = self.side.serve_cmd(self.port)
                raise self.side.failure(
                    f"`{Path(cmd[0]).name} {' '.join(cmd[1:3])}` exited {self.proc.returncode}: "
                    f"{self.log_tail()}"
                )
            status = None
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                status = conn.getresponse().status
                conn.close()
            except (OSError, http.client.HTTPException):
                pass
            if status == 200:
                return time.monotonic() - self.t_spawn
            if status in (404, 405):  # up, but no readiness route: polling longer will not help
                raise self.side.failure(f"GET /ping answered {status}")
            time.sleep(0.02)
        raise self.side.failure(f"no 200 from /ping within {STARTUP_TIMEOUT_S} s")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM the process group, wait until every process of the tree is gone."""
        import psutil

        tree = []
        with contextlib.suppress(psutil.Error):
            top = psutil.Process(self.proc.pid)
            tree = [top, *top.children(recursive=True)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        if tree:  # descendants still shutting down (or outside the group) must not overlap
            _, alive = psutil.wait_procs(tree, timeout=15)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()
        self.log.close()


def process_tree(pid: int) -> list[int]:
    import psutil

    with contextlib.suppress(psutil.Error):
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    return []


def memory_of(pids: list[int]) -> dict:
    """RSS and PSS (MB) summed over the processes (RSS counts shared pages once per process)."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return {"rss_mb": rss / 1024, "pss_mb": pss / 1024, "processes": len(pids)}


def post(port: int, body_path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/invocations", body=Path(body_path).read_bytes(),
                 headers={"Content-Type": "application/json"})  # fmt: skip
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def check_predictions(preds: object, expected: list[int], where: str) -> None:
    if not isinstance(preds, list) or len(preds) != len(expected):
        n = len(preds) if isinstance(preds, list) else type(preds).__name__
        raise ToolFailed(f"{where}: {n} predictions for {len(expected)} rows")
    try:
        same = all(float(p) == float(e) for p, e in zip(preds, expected, strict=True))
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ToolFailed(f"{where}: predictions differ from the model's own, e.g. {preds[:5]}")


def verify(port: int, body: dict, n: int) -> None:
    """One request must answer 200 with the model's own predictions before any load is timed."""
    status, data = post(port, body["path"])
    if status != 200:
        raise ToolFailed(f"{n}-row request: HTTP {status}: {data[:200]!r}")
    try:
        preds = json.loads(data)["predictions"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolFailed(f"{n}-row request: no 'predictions' in {data[:200]!r}") from exc
    check_predictions(preds, body["expected"], f"{n}-row request")


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(out: str) -> dict:
    """Requests/s and the 50%/99% lines of ``wrk --latency``, plus error counts."""

    def lat(pct: str) -> float | None:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else None

    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    res: dict = {"rps": float(m.group(1)) if m else None, "p50_s": lat("50"), "p99_s": lat("99")}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    res["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, m.groups()), strict=True)) if m else {}  # fmt: skip
    m = re.search(r"^WRK_JSON (.*)$", out, re.M)
    res["exact"] = json.loads(m.group(1)) if m else None
    return res


def run_wrk(port: int, body_path: str, duration_s: float, opts: argparse.Namespace) -> dict:
    cmd = ["wrk", f"-t{opts.threads}", f"-c{opts.connections}", f"-d{duration_s:g}s",
           "--timeout", "30s", "--latency", "-s", str(LUA),
           f"http://127.0.0.1:{port}/invocations", "--", body_path]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 120)
    if proc.returncode != 0:
        raise ToolFailed(f"wrk exited {proc.returncode}: {short_error(proc.stderr)}")
    res = parse_wrk(proc.stdout)
    res["raw"] = proc.stdout
    if res["rps"] is None or res["p99_s"] is None:
        raise ToolFailed(f"could not parse wrk's output: {proc.stdout[-300:]!r}")
    return res


class Side:
    """One tool's adapter plus its figures and errors."""

    def __init__(self, adapter: Adapter) -> None:
        self.a = adapter
        self.res: dict = {"errors": {}}
        self.failed = False  # a wrong answer (not merely "not available")

    @property
    def alive(self) -> bool:
        return "setup" not in self.res["errors"]

    def error(self, step: str, exc: BaseException) -> None:
        """Record why a step has no figure: a wrong answer is a FAIL, anything else n/a."""
        kind = "FAIL" if isinstance(exc, ToolFailed) else "not available"
        self.failed |= kind == "FAIL"
        text = str(exc) if isinstance(exc, NotAvailable | ToolFailed) else repr(exc)
        self.res["errors"][step] = {"kind": kind, "error": text}
        progress(f"{self.a.label} {step}: {kind} ({text})")


def measure(sides: list[Side], prepared: dict, cfg: dict, opts: argparse.Namespace) -> None:
    bodies = prepared["bodies"]
    one = bodies[str(ROWS[0])]
    for side in sides:
        progress(f"{side.a.label}: log_model + register {MODEL_NAME} + alias {ALIAS}")
        try:
            side.res["setup"] = side.a.setup()
        except (NotAvailable, ToolFailed, subprocess.TimeoutExpired, OSError) as exc:
            side.error("setup", exc)

    # 1. load by alias in a fresh interpreter; the tools take turns.
    for rep in range(cfg["load_reps"]):
        for side in (s for s in sides if s.alive and "load" not in s.res["errors"]):
            progress(f"{side.a.label}: load_model by alias (rep {rep + 1}/{cfg['load_reps']})")
            try:
                t_spawn = time.monotonic()
                r = side.a.run_worker("load", {"tool": side.a.key, "body": one["path"],
                                               **side.a.worker_args()})  # fmt: skip
                r["process_s"] = time.monotonic() - t_spawn
                r["to_loaded_s"] = r.pop("loaded_at") - t_spawn
                check_predictions(r.pop("preds"), one["expected"], "predict after load")
                side.res.setdefault("load", []).append(r)
            except (NotAvailable, ToolFailed, subprocess.TimeoutExpired) as exc:
                side.error("load", exc)

    # 2. serving start-up until /ping answers; the tools take turns.
    for rep in range(cfg["startup_reps"]):
        for side in (s for s in sides if s.alive and "serve" not in s.res["errors"]):
            progress(f"{side.a.label}: models serve start-up (rep {rep + 1}/{cfg['startup_reps']})")
            srv = None
            try:
                srv = Server(side.a)
                side.res.setdefault("startup_s", []).append(srv.wait_ready())
            except (NotAvailable, ToolFailed, OSError) as exc:
                side.error("serve", exc)
            finally:
                if srv is not None:
                    srv.stop()

    # 3. one more server per tool: idle memory, a checked request per body, then wrk.
    for side in (s for s in sides if s.alive and "serve" not in s.res["errors"]):
        srv = None
        try:
            srv = Server(side.a)
            srv.wait_ready()
            time.sleep(1.0)  # idle: after start-up, before the first request
            side.res["idle_memory"] = memory_of(srv.pids())
            for n in ROWS:
                verify(srv.port, bodies[str(n)], n)
            for n in ROWS:
                path = bodies[str(n)]["path"]
                progress(f"{side.a.label}: wrk {n}-row requests, {cfg['duration_s']} s")
                run_wrk(srv.port, path, cfg["warmup_s"], opts)  # warm-up, not counted
                r = run_wrk(srv.port, path, cfg["duration_s"], opts)
                if r["non_2xx"]:
                    raise ToolFailed(f"{n}-row load: {r['non_2xx']} non-2xx responses")
                side.res[f"wrk_{n}"] = r
            side.res["loaded_memory"] = memory_of(srv.pids())
        except (NotAvailable, ToolFailed, subprocess.TimeoutExpired, OSError) as exc:
            side.error("throughput", exc)
        finally:
            if srv is not None:
                srv.stop()


# ============================================================================================
# reporting
# ============================================================================================
def med(xs: list[float] | None) -> float | None:
    return statistics.median(xs) if xs else None


def figures(side: Side) -> dict:
    r = side.res
    loads = r.get("load") or []
    out = {
        "load_ms": med([x["load_s"] * 1e3 for x in loads]),
        "load_process_ms": med([x["to_loaded_s"] * 1e3 for x in loads]),
        "startup_s": med(r.get("startup_s")) if "serve" not in r["errors"] else None,
        "idle_rss_mb": (r.get("idle_memory") or {}).get("rss_mb"),
    }
    for n in ROWS:
        w = r.get(f"wrk_{n}") or {}
        out[f"rps_{n}"] = w.get("rps")
        out[f"p50_{n}_ms"] = w["p50_s"] * 1e3 if w else None
        out[f"p99_{n}_ms"] = w["p99_s"] * 1e3 if w else None
    return out


ROWS_SPEC = [  # (key, label, unit, higher_is_better)
    ("load_ms", "load by alias, in process", "ms", False),
    ("load_process_ms", "load incl. process start", "ms", False),
    ("startup_s", "serve start-up (to /ping 200)", "s", False),
    ("idle_rss_mb", "idle RSS, serving tree", "MB", False),
    ("rps_1", "1-row requests/s", "req/s", True),
    ("p99_1_ms", "1-row p99 latency", "ms", False),
    ("rps_1000", "1000-row requests/s", "req/s", True),
    ("p99_1000_ms", "1000-row p99 latency", "ms", False),
]


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "req/s":
        return f"{v:,.0f}/s" if v >= 100 else f"{v:.1f}/s"
    if unit == "MB":
        return f"{v:,.0f} MB"
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def advantage(mt: float | None, mf: float | None, higher_better: bool) -> float | None:
    if not mt or not mf:
        return None
    return mt / mf if higher_better else mf / mt


def render(sides: dict[str, Side], results: dict, cfg: dict, opts: argparse.Namespace) -> str:
    figs = {k: figures(s) for k, s in sides.items()}
    mt, mf = figs.get("mltrail", {}), figs.get("mlflow", {})
    title = f"5. Serving: {MODEL_NAME} (RandomForest, 100 trees, 13 columns) by alias"
    w = [34, 14, 14, 10]
    out = ["", title, "=" * len(title)]
    out.append(f"{'':<{w[0]}}{'mltrail':>{w[1]}}{'MLflow':>{w[2]}}{'ratio':>{w[3]}}")
    out.append("-" * sum(w))
    for key, label, unit, hib in ROWS_SPEC:
        r = advantage(mt.get(key), mf.get(key), hib)
        rs = "n/a" if r is None else f"{r:.1f}x" if r < 100 else f"{r:,.0f}x"
        out.append(f"{label:<{w[0]}}{fmt(mt.get(key), unit):>{w[1]}}"
                   f"{fmt(mf.get(key), unit):>{w[2]}}{rs:>{w[3]}}")  # fmt: skip
    notes = [
        "ratio: how many times better mltrail is (MLflow's time or MB / mltrail's; mltrail's "
        "req/s / MLflow's).",
        f"load: fresh interpreter, median of {cfg['load_reps']}; 'incl. process start' runs from "
        "spawn to the loaded model (imports included). start-up: spawn until GET /ping is 200, "
        f"median of {cfg['startup_reps']}. RSS: summed over the server's processes, idle after "
        "start-up.",
        f"wrk {results['wrk_version']}: {opts.threads} threads, {opts.connections} connections, "
        f"{cfg['duration_s']:g} s per case after a {cfg['warmup_s']:g} s warm-up, closed loop on "
        f"127.0.0.1, on the same {os.cpu_count()} cores as the server (1 worker).",
        "floor, in one process (json.loads -> DataFrame -> model.predict, median): "
        + ", ".join(
            f"{n}-row {b['predict_floor_s'] * 1e3:.1f} ms"
            for n, b in results["prepared"]["bodies"].items()
        ),
    ]
    for k, s in sides.items():
        m = s.res.get("idle_memory")
        if m:
            notes.append(
                f"{s.a.label} idle: {m['processes']} process(es), PSS {m['pss_mb']:,.0f} MB"
            )
        for step, e in s.res["errors"].items():
            what = "FAIL" if e["kind"] == "FAIL" else "not available"
            notes.append(f"{k}: {what} ({step}: {e['error']})")
    for n in ROWS:
        for s in sides.values():
            se = (s.res.get(f"wrk_{n}") or {}).get("socket_errors") or {}
            if any(se.values()):
                notes.append(f"{s.a.label} {n}-row: wrk socket errors {se}")
    for note in notes:
        out.extend(textwrap.wrap(note, 78, subsequent_indent="  "))

    out += ["", "Targets", "-------"]
    results["summary"] = []
    for n in ROWS:
        r = advantage(mt.get(f"rps_{n}"), mf.get(f"rps_{n}"), True)
        goal = TARGETS["throughput_ratio"]
        status = "n/a" if r is None else "PASS" if r >= goal else "MISS"
        val = "n/a" if r is None else f"{r:.1f}x"
        out.append(
            f"{f'{n}-row throughput vs MLflow':<36}{val:>14}{f'>= {goal:.0f}x':>14}   {status}"
        )
        results["summary"].append({"target": f"throughput_{n}", "value": r, "goal": goal,
                                   "status": status})  # fmt: skip
    s_mt = mt.get("startup_s")
    goal = TARGETS["startup_s"]
    status = "n/a" if s_mt is None else "PASS" if s_mt <= goal else "MISS"
    out.append(
        f"{'mltrail serve start-up':<36}{fmt(s_mt, 's'):>14}{f'<= {goal:.0f} s':>14}   {status}"
    )
    results["summary"].append({"target": "startup_s", "value": s_mt, "goal": goal,
                               "status": status})  # fmt: skip
    results["figures"] = figs
    return "\n".join(line.rstrip() for line in out)


def versions() -> dict:
    out = {}
    for p in ("mltrail", "mlflow", "scikit-learn", "pandas", "numpy", "uvicorn", "fastapi",
              "cloudpickle", "psutil"):  # fmt: skip
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    out["python"] = platform.python_version()
    return out


def wrk_version() -> str:
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    m = re.search(r"wrk (\S+)", proc.stdout + proc.stderr)
    return m.group(1) if m else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                    help="3 s per wrk case and fewer repetitions (env BENCH_QUICK=1)")  # fmt: skip
    ap.add_argument("--side", choices=("both", "mlflow", "mltrail"), default="both",
                    help="one tool only (e.g. mlflow while mltrail's side is missing)")  # fmt: skip
    ap.add_argument("--json", metavar="PATH", help="write every raw figure to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the stores in benchmarks/.work")
    ap.add_argument("--duration", type=float, help="seconds per wrk case (default 10, quick 3)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    opts = ap.parse_args(argv)
    global KEEP
    KEEP = opts.keep
    cfg = dict(QUICK if opts.quick else FULL)
    if opts.duration:
        cfg["duration_s"] = opts.duration

    if not shutil.which("wrk"):
        print(f"serving: wrk (the HTTP load generator) is not on the PATH; install it with:\n"
              f"    {WRK_INSTALL}", file=sys.stderr)  # fmt: skip
        return 2
    for mod in ("sklearn", "pandas", "psutil"):
        if importlib.util.find_spec(mod) is None:
            fix = f"{PY} -m pip install scikit-learn pandas psutil"
            print(f"serving: {mod} is missing; install it with:\n    {fix}", file=sys.stderr)
            return 2

    # A SIGTERM (e.g. from `timeout`) unwinds like an exception: the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    root = Path(tempfile.mkdtemp(prefix="serving-", dir=WORK))
    ver = versions()
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if opts.quick else "full",
        "side": opts.side,
        "config": {**cfg, "threads": opts.threads, "connections": opts.connections},
        "targets": TARGETS,
        "versions": ver,
        "wrk_version": wrk_version(),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform()},
    }
    mode = "QUICK smoke mode: figures not meaningful" if opts.quick else "full mode"
    print(f"mltrail {ver['mltrail']} vs MLflow {ver['mlflow']} | scikit-learn "
          f"{ver['scikit-learn']} | Python {ver['python']} | {os.cpu_count()} cores\n"
          f"{results['date']} | {mode} | side: {opts.side}", flush=True)  # fmt: skip

    code = 0
    try:
        progress(f"fitting the model, writing {', '.join(map(str, ROWS))}-row bodies")
        prep = Adapter(root)
        results["prepared"] = prepared = prep.run_worker("prepare", {"out": str(root)})
        names = ("mltrail", "mlflow") if opts.side == "both" else (opts.side,)
        kinds = {"mltrail": MltrailAdapter, "mlflow": MlflowAdapter}
        sides = {k: Side(kinds[k](root / k)) for k in names}
        measure(list(sides.values()), prepared, cfg, opts)
        print(render(sides, results, cfg, opts), flush=True)
        results["sides"] = {k: s.res for k, s in sides.items()}
        mf = sides.get("mlflow")
        if mf is not None and (mf.res["errors"] or mf.failed):
            code = 1  # the peer must work: the harness is broken otherwise
        if any(s.failed for s in sides.values()):
            code = 1  # a tool answered wrongly
    finally:
        results["elapsed_s"] = time.time() - started
        if opts.json:
            Path(opts.json).write_text(json.dumps(results, indent=2) + "\n")
            progress(f"raw figures in {opts.json}")
        if not KEEP:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nelapsed {results['elapsed_s']:.0f} s")
    return code


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3]))
    sys.exit(main())

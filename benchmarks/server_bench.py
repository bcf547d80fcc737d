"""Team server: ``mltrail server`` vs ``mlflow server``, side by side in one run.

``bash benchmarks/run.sh --only server`` (or ``.venv-bench/bin/python server_bench.py [--quick]
[--backends sqlite,postgres] [--only start,ingest,search,artifacts]``). Per backend (a SQLite
file; a throwaway PostgreSQL cluster with default durability) each tool gets its own database
and artifact folder, then: 1. start-up (spawn until ``GET /health`` is 200) and idle memory
(RSS/PSS of the process tree); 2. metric ingest from 8 concurrent client processes until durable
(mltrail ``mt.log_metric``; MLflow ``mlflow.log_metric`` per point and ``log_batch`` of 1,000);
3. p50/p99 of two searches over 10,000 runs seeded into the database before the server starts;
4. upload/download MB/s of a 200 MB file next to ``cp``/``dd``/``cat``. Servers listen on free
127.0.0.1 ports and are stopped on errors, Ctrl-C and SIGTERM. The module is its own worker
(``--worker TASK JSON``); only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import math
import os
import platform
import random
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
SELF = str(Path(__file__).resolve())
PG_BINS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (15, 16, 17, 14)]

FULL = {"reps": 3, "clients": 8, "n_mltrail": 50_000, "n_mlflow": 200, "n_batch": 10_000,
        "runs": 10_000, "search_calls": 100, "search_budget_s": 40, "file_mb": 200,
        "artifact_reps": 5, "startup": True}  # fmt: skip
QUICK = {"reps": 1, "clients": 8, "n_mltrail": 5_000, "n_mlflow": 20, "n_batch": 2_000,
         "runs": 1_000, "search_calls": 10, "search_budget_s": 5, "file_mb": 20,
         "artifact_reps": 1, "startup": False}  # fmt: skip
TARGETS = {"ready_s": 1.0, "idle_mb_per_worker": 150.0, "ingest_ratio": 10.0, "upload_frac": 0.8}
BATCH = 1000  # MLflow log_batch points per call (its limit)
BASE_TS = 1_790_000_000_000
FILTER = "metrics.acc > 0.5 and params.model = 'rf'"
ORDER = "metrics.f1 DESC"
TOP = 100
READY_TIMEOUT_S = 240
perf, mono = time.perf_counter, time.monotonic


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def gen_runs(n: int):
    """Deterministic runs: (name, start ms, 5 params, 5 metrics, 3 tags); ~10% match FILTER."""
    rng = random.Random(20261123)
    for i in range(n):
        params = {"model": rng.choice(("rf", "gb", "lr", "svm", "knn")),
                  "depth": str(rng.randrange(2, 12)), "lr": rng.choice(("0.001", "0.01", "0.1")),
                  "n_estimators": str(rng.choice((50, 100, 200, 400))),
                  "seed": str(rng.randrange(1000))}  # fmt: skip
        metrics = {k: rng.random() for k in ("acc", "f1", "auc", "precision", "recall")}
        tags = {"team": rng.choice(("vision", "nlp", "tabular")),
                "dataset": f"ds-{rng.randrange(20)}",
                "stage": rng.choice(("dev", "prod"))}  # fmt: skip
        yield f"run-{i:05d}", BASE_TS + i * 1000, params, metrics, tags


def expected(n: int) -> dict[str, list[str]]:
    runs = list(gen_runs(n))
    hits = [r for r in runs if r[3]["acc"] > 0.5 and r[2]["model"] == "rf"]
    return {
        "filter": [r[0] for r in sorted(hits, key=lambda r: -r[1])[:TOP]],
        "order": [r[0] for r in sorted(runs, key=lambda r: -r[3]["f1"])[:TOP]],
    }


def w_seed_mltrail(a: dict) -> dict:
    """Through mltrail's own SQL store: create_run, write_batches of 1,000 runs, update_run."""
    from mltrail.entities import Metric, RunBatch
    from mltrail.store import open_store

    store = open_store(a["uri"])
    t0 = perf()
    eid = store.create_experiment("search")
    batches = []
    for name, ts, params, metrics, tags in gen_runs(a["runs"]):
        rid = store.create_run(eid, name, "bench", ts, tags=tags).info.run_id
        batches.append(RunBatch(rid, [Metric(k, v, ts, 0) for k, v in metrics.items()], params, {}))
    for k in range(0, len(batches), 1000):
        store.write_batches(batches[k : k + 1000])
    for (_, ts, *_), b in zip(gen_runs(a["runs"]), batches, strict=True):
        store.update_run(b.run_id, status="FINISHED", end_time=ts + 500)
    out = {"experiment_id": eid, "seed_s": perf() - t0}
    store.close()
    return out


def w_seed_mlflow(a: dict) -> dict:
    """MLflow's store makes the schema and the experiment; the rows go in as bulk inserts through
    MLflow's own table definitions (the rows its create_run/log_batch/set_terminated write)."""
    import uuid

    from mlflow.store.tracking.dbmodels import models as m
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(a["uri"], "mlflow-artifacts:/")
    t0 = perf()
    eid = store.create_experiment("search")
    root = store.get_experiment(eid).artifact_location
    rng = random.Random(7)
    runs, tag_rows, param_rows, metric_rows = [], [], [], []
    for name, ts, params, metrics, tags in gen_runs(a["runs"]):
        rid = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        runs.append(dict(run_uuid=rid, name=name, source_type="UNKNOWN", source_name="",
                         entry_point_name="", user_id="bench", status="FINISHED", start_time=ts,
                         end_time=ts + 500, deleted_time=None, source_version="",
                         lifecycle_stage="active", artifact_uri=f"{root}/{rid}/artifacts",
                         experiment_id=int(eid)))  # fmt: skip
        for k, v in {**tags, "mlflow.runName": name, "mlflow.user": "bench"}.items():
            tag_rows.append(dict(key=k, value=v, run_uuid=rid))
        param_rows += [dict(key=k, value=v, run_uuid=rid) for k, v in params.items()]
        metric_rows += [dict(key=k, value=v, timestamp=ts, step=0, is_nan=False, run_uuid=rid)
                        for k, v in metrics.items()]  # fmt: skip
    with store.engine.begin() as conn:
        for table, rows in ((m.SqlRun, runs), (m.SqlTag, tag_rows), (m.SqlParam, param_rows),
                            (m.SqlMetric, metric_rows),
                            (m.SqlLatestMetric, metric_rows)):  # fmt: skip
            for k in range(0, len(rows), 5000):
                conn.execute(table.__table__.insert(), rows[k : k + 5000])
    out = {"experiment_id": eid, "seed_s": perf() - t0}
    store.engine.dispose()
    return out


def w_ingest(a: dict) -> dict:
    """One ingest client: set up, say READY, wait for GO on stdin, log, make durable, stamp."""
    n, batch = a["n"], a["mode"] == "log_batch"
    if a["tool"] == "mltrail":
        import mltrail as lib
    else:
        import mlflow as lib
        from mlflow.entities import Metric

        client = lib.MlflowClient()
    run_id = client.create_run("0").info.run_id if batch else lib.start_run().info.run_id
    print("BENCH_READY", flush=True)
    sys.stdin.readline()
    t_go = mono()
    if batch:
        for k in range(0, n, BATCH):
            ts = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (1 + i), ts, i)
                                              for i in range(k, min(n, k + BATCH))])  # fmt: skip
        t_loop = mono()
        client.set_terminated(run_id)
    else:
        for i in range(n):
            lib.log_metric("loss", 1.0 / (1 + i), step=i)
        t_loop = mono()
        lib.end_run()
    return {"run_id": run_id, "t_go": t_go, "loop_s": t_loop - t_go, "t_done": mono()}


def _client(tool: str):
    if tool == "mltrail":
        from mltrail import MltrailClient

        return MltrailClient()
    from mlflow import MlflowClient

    return MlflowClient()


def w_count(a: dict) -> dict:
    """Points of ``loss`` stored for each run, read back through the server."""
    client = _client(a["tool"])
    return {rid: len(client.get_metric_history(rid, "loss")) for rid in a["run_ids"]}


def w_search(a: dict) -> dict:
    """Both queries through the server: checked once, then timed (calls or a time budget)."""
    eid, c = a["experiment_id"], _client(a["tool"])
    # The same call for both clients (MLflow's third positional is the view type).
    queries = {"filter": lambda: c.search_runs([eid], FILTER, order_by=None, max_results=TOP),
               "order": lambda: c.search_runs([eid], "", order_by=[ORDER],
                                              max_results=TOP)}  # fmt: skip
    out = {}
    for q, fn in queries.items():
        t0 = perf()
        runs = fn()
        first = perf() - t0
        ok = bool(runs) and all(len(r.data.params) == 5 for r in runs)
        times, deadline = [], perf() + a["budget_s"]
        while len(times) < a["calls"] and (len(times) < 5 or perf() < deadline):
            t0 = perf()
            fn()
            times.append(perf() - t0)
        out[q] = {"first_s": first, "times_s": times, "has_data": ok,
                  "names": [r.info.run_name for r in runs]}  # fmt: skip
    return out


def w_artifact(a: dict) -> dict:
    """One upload and one download of the file through the server; both timed alone."""
    src, dst = Path(a["file"]), Path(a["dst"])
    if a["tool"] == "mltrail":
        import mltrail as lib

        def download(run_id: str) -> str:
            return lib.MltrailClient().download_artifacts(run_id, src.name, str(dst))
    else:
        import mlflow as lib
        import mlflow.artifacts

        def download(run_id: str) -> str:
            return mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=src.name, dst_path=str(dst))  # fmt: skip

    with lib.start_run() as run:
        os.sync()
        t0 = perf()
        lib.log_artifact(str(src))
        up = perf() - t0
    os.sync()
    t0 = perf()
    got = Path(download(run.info.run_id))
    down = perf() - t0
    got = got / src.name if got.is_dir() else got
    same = got.stat().st_size == src.stat().st_size and _b3(got) == _b3(src)
    return {"upload_s": up, "download_s": down, "same_bytes": same}


def _b3(path: Path) -> str:
    from blake3 import blake3

    return blake3(max_threads=blake3.AUTO).update_mmap(str(path)).hexdigest()


WORKERS = {"seed_mltrail": w_seed_mltrail, "seed_mlflow": w_seed_mlflow, "ingest": w_ingest,
           "count": w_count, "search": w_search, "artifact": w_artifact}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLTRAIL_", "MLFLOW_")) and k != "PYTHONPATH"}  # fmt: skip
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # No git/pip capture at start_run; no telemetry (it can only help MLflow's figures).
    env.update(MLTRAIL_CAPTURE="0", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def run_worker(task: str, args: dict, env: dict | None = None) -> dict:
    proc = subprocess.run([PY, SELF, "--worker", task, json.dumps(args)], env=env or base_env(),
                          capture_output=True, text=True, timeout=1800)  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-3:]
    raise RuntimeError(f"{task} exited {proc.returncode}: {' | '.join(tail)[-600:]}")


class Postgres:
    """A throwaway cluster: initdb into a temp folder, pg_ctl start on 127.0.0.1 (as `postgres`
    when run as root); default durability settings (fsync, synchronous_commit on)."""

    def __init__(self) -> None:
        self.bin = next((b for b in PG_BINS if (b / "initdb").exists()), None)
        if self.bin is None:
            raise RuntimeError("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="mltrail-bench-pg-"))
        self.data = self.base / "data"
        self.root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        subprocess.run((["runuser", "-u", "postgres", "--"] if self.root else []) + cmd,
                       check=True, capture_output=True, timeout=180)  # fmt: skip

    def start(self) -> None:
        self.base.chmod(0o755)
        self.data.mkdir()
        if self.root:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        out = subprocess.run([str(self.bin / "postgres"), "-V"], capture_output=True, text=True)
        self.version = out.stdout.split()[2]  # "postgres (PostgreSQL) 15.18 (Debian …)"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.data} -c max_connections=200",
                  "start")  # fmt: skip

    def sql(self, statement: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.uri(db), autocommit=True) as conn:
            conn.execute(statement)

    def create(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def uri(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


class Tool:
    """One tool on one backend: its database, artifact folder and server command."""

    def __init__(self, key: str, uri: str, folder: Path) -> None:
        self.key, self.uri, self.folder = key, uri, folder
        self.label = "mltrail" if key == "mltrail" else "MLflow"
        self.objects = folder / ("objects" if key == "mltrail" else "artifacts")
        folder.mkdir(parents=True, exist_ok=True)

    def server_cmd(self, port: int, workers: int | None) -> list[str]:
        if self.key == "mltrail":
            return [str(BIN / "mltrail"), "server", "--store", self.uri, "--objects",
                    str(self.objects), "--host", "127.0.0.1", "--port", str(port), "--workers",
                    str(workers or 1), "--no-access-log"]  # fmt: skip
        cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", self.uri,
               "--artifacts-destination", str(self.objects), "--serve-artifacts",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        return cmd + (["--workers", str(workers)] if workers else [])

    def client_env(self, port: int) -> dict[str, str]:
        var = "MLTRAIL_TRACKING_URI" if self.key == "mltrail" else "MLFLOW_TRACKING_URI"
        return {**base_env(), var: f"http://127.0.0.1:{port}"}


class Server:
    """A server's process group: spawned, polled until /health is 200, measured, stopped."""

    live: list[Server] = []

    def __init__(self, tool: Tool, workers: int | None) -> None:
        self.tool, self.port = tool, free_port()
        self.log = open(tool.folder / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.t_spawn = mono()
        self.proc = subprocess.Popen(tool.server_cmd(self.port, workers), cwd=tool.folder,
                                     env=base_env(), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        Server.live.append(self)

    def wait_ready(self) -> float:
        while mono() < self.t_spawn + READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                tail = Path(self.log.name).read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"{self.tool.label} server exited: {' | '.join(tail)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return mono() - self.t_spawn
            time.sleep(0.02)
        raise RuntimeError(f"{self.tool.label}: no 200 from /health in {READY_TIMEOUT_S} s")

    def procs(self) -> list:
        import psutil

        with contextlib.suppress(psutil.Error):
            top = psutil.Process(self.proc.pid)
            return [top, *top.children(recursive=True)]
        return []

    def memory(self) -> dict:
        """RSS and PSS (MB) summed over the process tree (RSS counts shared pages per process)."""
        procs, rss, pss = self.procs(), 0, 0
        for p in procs:
            with contextlib.suppress(Exception):  # psutil.Error: a process that just ended
                m = p.memory_full_info()
                rss, pss = rss + m.rss, pss + m.pss
        return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20, "processes": len(procs)}

    def cpu_s(self) -> float:
        total = 0.0
        for p in self.procs():
            with contextlib.suppress(Exception):
                total += sum(p.cpu_times()[:2])
        return total

    def stop(self) -> None:
        import psutil

        tree = self.procs()  # SIGTERM to the group; whatever is left after 20 s is killed
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        for p in psutil.wait_procs(tree, timeout=20)[1]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.proc.wait(timeout=20)
        self.log.close()
        with contextlib.suppress(ValueError):
            Server.live.remove(self)


def bench_startup(tools: dict[str, Tool], cfg: dict, out: dict) -> None:
    """Start-up and idle memory; the configurations take turns, one server at a time."""
    configs = [("mltrail", 1), ("mlflow", 1)]
    if cfg["startup"]:
        configs += [("mlflow", None), ("mltrail", 4)]
    for rep in range(cfg["reps"]):
        for key, workers in configs:
            name = f"{key}-{workers or 'default'}"
            progress(f"  start-up {name} (rep {rep + 1}/{cfg['reps']})")
            srv = Server(tools[key], workers)
            try:
                ready = srv.wait_ready()
                time.sleep(2.0)  # idle: MLflow's job runner forks its consumers after start-up
                out.setdefault(name, []).append({"ready_s": ready, **srv.memory()})
            finally:
                srv.stop()


def bench_ingest(servers: dict[str, Server], tools: dict[str, Tool], cfg: dict, mode: str,
                 out: list) -> None:  # fmt: skip
    """8 clients log N points each from one GO; the time runs until the last is durable."""
    key = "mltrail" if mode == "mltrail" else "mlflow"
    n = {"mltrail": cfg["n_mltrail"], "log_metric": cfg["n_mlflow"],
         "log_batch": cfg["n_batch"]}[mode]  # fmt: skip
    srv, env = servers[key], tools[key].client_env(servers[key].port)
    other = servers["mlflow" if key == "mltrail" else "mltrail"]
    args = json.dumps({"tool": key, "mode": "log_metric" if mode == "mltrail" else mode, "n": n})
    clients = [subprocess.Popen([PY, SELF, "--worker", "ingest", args], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
               for _ in range(cfg["clients"])]  # fmt: skip
    try:
        for c in clients:  # every client imported its tool and created its run
            while (line := c.stdout.readline()) and not line.startswith("BENCH_READY"):
                pass
            if not line:
                raise RuntimeError(f"{mode} client exited before it was ready ({c.wait()})")
        cpu0, other0 = srv.cpu_s(), other.cpu_s()
        t_go = mono()
        for c in clients:
            c.stdin.write("GO\n")
            c.stdin.flush()
        results = []
        for c in clients:
            stdout, _ = c.communicate(timeout=1800)
            found = [ln for ln in stdout.splitlines() if ln.startswith("BENCH_RESULT ")]
            if c.returncode != 0 or not found:
                raise RuntimeError(f"{mode} client exited {c.returncode}")
            results.append(json.loads(found[-1][len("BENCH_RESULT ") :]))
        wall = max(r["t_done"] for r in results) - t_go
        cpu, other_cpu = srv.cpu_s() - cpu0, other.cpu_s() - other0
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
    counts = run_worker("count", {"tool": key, "run_ids": [r["run_id"] for r in results]}, env)
    stored = sum(counts.values())
    if stored != n * len(clients):
        raise RuntimeError(f"{mode}: {stored:,} points stored of {n * len(clients):,} logged")
    out.append({"points": stored, "wall_s": wall, "points_per_s": stored / wall,
                "loop_s_max": max(r["loop_s"] for r in results), "server_cpu_s": cpu,
                "idle_other_server_cpu_s": other_cpu})  # fmt: skip


FLOORS = {"cp_s": "cp", "cp_sync_s": "cp + sync -f", "dd_s": "dd bs=1M + fsync",
          "cat_s": "cat > /dev/null"}  # fmt: skip


def patch_file(path: Path, token: str) -> None:
    """New content (a new hash) in place: mltrail's store would not upload a known object."""
    with open(path, "r+b") as f:
        f.write(token.encode().ljust(32, b"\0"))


def bench_floor(path: Path, folder: Path, reps: int) -> dict:
    """Loopback disk floor on the same file system: cp (copy_file_range, in the kernel), with
    sync -f; dd with 1 MiB write() calls and fsync (the path a server's upload takes); cat."""
    out: dict = {k: [] for k in FLOORS}
    for rep in range(reps):
        for key, cmd in (("cp_s", f"cp {path} {folder}/copy"),
                         ("cp_sync_s", f"cp {path} {folder}/copy && sync -f {folder}/copy"),
                         ("dd_s", f"dd if={path} of={folder}/copy bs=1M conv=fsync status=none"),
                         ("cat_s", f"cat {path} > /dev/null")):  # fmt: skip
            patch_file(path, f"floor-{rep}-{key}")
            os.sync()
            t0 = perf()
            subprocess.run(["bash", "-c", cmd], check=True)
            out[key].append(perf() - t0)
            with contextlib.suppress(FileNotFoundError):
                (folder / "copy").unlink()
    return out


def run_backend(backend: str, root: Path, pg: Postgres | None, cfg: dict, only: set,
                big: Path | None, out: dict) -> None:  # fmt: skip
    tools = {}
    for key in ("mltrail", "mlflow"):
        folder = root / backend / key
        folder.mkdir(parents=True)
        uri = pg.create(f"{key}_bench") if pg else f"sqlite:///{folder / (key + '.db')}"
        tools[key] = Tool(key, uri, folder)
    # Schemas and the 10,000 search runs, straight into each tool's database, before any server.
    # On PostgreSQL the seeding sessions skip the WAL flush per commit (reset before serving).
    seeds = {}
    for key, tool in tools.items():
        progress(f"{backend}: seeding {cfg['runs']:,} runs into {tool.label}'s database")
        if pg:
            pg.sql(f"ALTER DATABASE {key}_bench SET synchronous_commit = off")
        seeds[key] = run_worker(f"seed_{key}", {"uri": tool.uri, "runs": cfg["runs"]})
        if pg:  # and statistics for the planner, as autovacuum would gather them soon after
            pg.sql(f"ALTER DATABASE {key}_bench RESET synchronous_commit")
            pg.sql("ANALYZE", f"{key}_bench")
    out["seed"] = seeds
    work = bool(only & {"ingest", "search", "artifacts"})
    # Quick mode times the start of the servers used below instead of starting extra ones.
    startup_here = "start" in only and (cfg["startup"] or not work)
    if startup_here:
        progress(f"{backend}: start-up and idle memory")
        bench_startup(tools, cfg, out.setdefault("startup", {}))
    if not work:
        return
    servers: dict[str, Server] = {}
    try:
        for key, tool in tools.items():
            servers[key] = Server(tool, 1)
            ready = servers[key].wait_ready()
            if "start" in only and not startup_here:
                time.sleep(2.0)
                out.setdefault("startup", {}).setdefault(f"{key}-1", []).append(
                    {"ready_s": ready, **servers[key].memory()})  # fmt: skip
        if "search" in only:
            want = expected(cfg["runs"])
            for key in tools:
                progress(f"{backend}: {tools[key].label} search, {cfg['runs']:,} runs")
                args = {"tool": key, "experiment_id": seeds[key]["experiment_id"],
                        "calls": cfg["search_calls"],
                        "budget_s": cfg["search_budget_s"]}  # fmt: skip
                r = run_worker("search", args, tools[key].client_env(servers[key].port))
                for q in want:  # the same runs, in the same order, as plain Python finds
                    r[q]["correct"] = r[q].pop("names") == want[q] and r[q]["has_data"]
                out.setdefault("search", {})[key] = r
        if "ingest" in only:
            for rep in range(cfg["reps"]):
                for mode in ("mltrail", "log_batch", "log_metric"):
                    progress(f"{backend}: ingest {mode} (rep {rep + 1}/{cfg['reps']})")
                    bench_ingest(servers, tools, cfg, mode, out.setdefault("ingest", {})
                                 .setdefault(mode, []))  # fmt: skip
        if "artifacts" in only and big is not None:
            for rep in range(cfg["artifact_reps"]):
                for key in tools:
                    progress(f"{backend}: {tools[key].label} artifact up/down "
                             f"(rep {rep + 1}/{cfg['artifact_reps']})")  # fmt: skip
                    patch_file(big, f"{backend}-{key}-{rep}")
                    dst = tools[key].folder / f"download-{rep}"
                    r = run_worker("artifact", {"tool": key, "file": str(big), "dst": str(dst)},
                                   tools[key].client_env(servers[key].port))  # fmt: skip
                    shutil.rmtree(dst, ignore_errors=True)
                    if not r["same_bytes"]:
                        raise RuntimeError(f"{key}: downloaded bytes differ from the upload")
                    out.setdefault("artifacts", {}).setdefault(key, []).append(r)
        if "ingest" in only and cfg["startup"]:  # full mode: MLflow's defaults (4 workers) too
            servers["mlflow"].stop()
            servers["mlflow"] = Server(tools["mlflow"], None)
            servers["mlflow"].wait_ready()
            for rep in range(cfg["reps"]):
                for mode in ("log_batch", "log_metric"):
                    progress(f"{backend}: ingest {mode}, MLflow defaults (rep {rep + 1})")
                    bench_ingest(servers, tools, cfg, mode, out.setdefault("ingest_default", {})
                                 .setdefault(mode, []))  # fmt: skip
    finally:
        for srv in servers.values():
            srv.stop()


med = statistics.median


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def fs(v: float) -> str:
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def fn(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def table(title: str, head: list[str], widths: list[int], rows: list[list[str]],
          notes: list[str]) -> list[str]:  # fmt: skip
    def line(cells: list[str]) -> str:
        return "".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(cells, widths, strict=True)))  # fmt: skip

    out = ["", title, "=" * len(title), line(head), "-" * sum(widths)]
    out += [line(r) for r in rows]
    for n in notes:
        out += textwrap.wrap(n, 78, subsequent_indent="  ")
    return out


def ratio_s(r: float) -> str:
    return f"{r:.2f}x" if r < 20 else f"{r:,.0f}x"


def render(res: dict, cfg: dict) -> str:
    lines: list[str] = []
    summary: list[dict] = []
    be = [b for b in ("sqlite", "postgres") if b in res["backends"]]
    figs: dict = {}

    def target(what: str, value: str, goal: str, ok: bool) -> None:
        summary.append({"target": what, "value": value, "goal": goal,
                        "status": "PASS" if ok else "MISS"})  # fmt: skip

    rows = []
    for b in be:
        for name, label in (("mltrail-1", "mltrail, 1 worker"), ("mltrail-4", "mltrail, 4 workers"),
                            ("mlflow-1", "MLflow, 1 worker"),
                            ("mlflow-default", "MLflow, defaults (4 w.)")):  # fmt: skip
            reps = res["backends"][b].get("startup", {}).get(name)
            if not reps:
                continue
            f = {k: med([r[k] for r in reps]) for k in ("ready_s", "rss_mb", "pss_mb", "processes")}
            f["per_worker_mb"] = f["rss_mb"] / (4 if name.endswith(("-4", "default")) else 1)
            figs[f"{b}/{name}"] = f
            rows.append([b, label, f"{f['ready_s']:.2f} s", fn(f["rss_mb"]), fn(f["pss_mb"]),
                         f"{f['processes']:.0f}", fn(f["per_worker_mb"])])  # fmt: skip
            if name.startswith("mltrail"):
                target(f"{b}: {label} ready", f"{f['ready_s']:.2f} s",
                       f"<= {TARGETS['ready_s']:.0f} s",
                       f["ready_s"] <= TARGETS["ready_s"])  # fmt: skip
                target(f"{b}: {label} idle RSS/worker", f"{f['per_worker_mb']:.0f} MB",
                       f"<= {TARGETS['idle_mb_per_worker']:.0f} MB",
                       f["per_worker_mb"] <= TARGETS["idle_mb_per_worker"])  # fmt: skip
    if rows:
        lines += table("1. Server start-up and idle memory",
                       ["backend", "server", "ready", "RSS MB", "PSS MB", "procs", "RSS/w"],
                       [9, 25, 10, 9, 9, 7, 9], rows,
                       [f"ready: spawn until GET /health is 200; memory 2 s later, summed over "
                        f"the process tree (RSS/w: RSS per worker). Median of "
                        f"{cfg['reps'] if cfg['startup'] else 1}."])  # fmt: skip

    rows, cpu_notes = [], []
    modes = {"mltrail": ("mltrail log_metric", "n_mltrail"),
             "log_metric": ("MLflow log_metric", "n_mlflow"),
             "log_batch": ("MLflow log_batch 1000", "n_batch")}  # fmt: skip
    for b in be:
        ing = res["backends"][b].get("ingest", {})
        if set(ing) != set(modes):
            continue
        rate = {m: med([r["points_per_s"] for r in ing[m]]) for m in ing}
        for m, (label, n) in modes.items():
            ratio = "" if m == "mltrail" else ratio_s(rate["mltrail"] / rate[m])
            rows.append([b, label, f"{cfg['clients']} x {cfg[n]:,}",
                         fs(med([r["wall_s"] for r in ing[m]])), fn(rate[m]), ratio])  # fmt: skip
        for m, reps in res["backends"][b].get("ingest_default", {}).items():
            r = figs[f"{b}/mlflow_4w_{m}_points_per_s"] = med([x["points_per_s"] for x in reps])
            rows.append([b, modes[m][0].replace("MLflow", "MLflow 4w").replace(" 1000", ""),
                         f"{cfg['clients']} x {cfg[modes[m][1]]:,}",
                         fs(med([x["wall_s"] for x in reps])), fn(r),
                         ratio_s(rate["mltrail"] / r)])  # fmt: skip
        cpu_notes.append(f"{b}: " + ", ".join(
            f"{modes[m][0].replace(' 1000', '')} "
            f"{med([r['server_cpu_s'] / r['points'] for r in ing[m]]) * 1e6:,.0f}"
            for m in modes))  # fmt: skip
        for m in ("log_metric", "log_batch"):
            r = figs[f"{b}/ingest_vs_{m}"] = rate["mltrail"] / rate[m]
            target(f"{b}: ingest vs MLflow {m}", ratio_s(r), f">= {TARGETS['ingest_ratio']:.0f}x",
                   r >= TARGETS["ingest_ratio"])  # fmt: skip
    if rows:
        lines += table("2. Metric ingest: 8 concurrent clients, 1 server worker each",
                       ["backend", "client", "points", "time", "points/s", "mt/this"],
                       [9, 23, 14, 11, 12, 11], rows,
                       ["time: from the common start until the last client's points are "
                        "durable on the server (mltrail: end_run drains the background "
                        "writer; MLflow calls are synchronous); points counted back after. "
                        f"Median of {cfg['reps']}. 4w: MLflow with its default 4 workers. "
                        "Server CPU per point, µs (its process tree): "
                        + "; ".join(cpu_notes)])  # fmt: skip

    rows = []
    for b in be:
        s = res["backends"][b].get("search", {})
        if set(s) != {"mltrail", "mlflow"}:
            continue
        for q, label in (("filter", "2-term filter, top 100"), ("order", "order-by, top 100")):
            mt, mf = s["mltrail"][q]["times_s"], s["mlflow"][q]["times_s"]
            ok = s["mltrail"][q]["correct"] and s["mlflow"][q]["correct"]
            figs[f"{b}/search_{q}"] = {"mltrail": [med(mt), pct(mt, 99)],
                                       "mlflow": [med(mf), pct(mf, 99)]}  # fmt: skip
            rows.append([b, label + ("" if ok else " (!)"), fs(med(mt)), fs(pct(mt, 99)),
                         fs(med(mf)), fs(pct(mf, 99)), ratio_s(med(mf) / med(mt))])  # fmt: skip
    if rows:
        lines += table(f"3. Run search over {cfg['runs']:,} runs, through the server",
                       ["backend", "query", "mt p50", "mt p99", "MLflow p50", "p99", "p50 x"],
                       [9, 24, 9, 9, 11, 9, 9], rows,
                       [f"filter: {FILTER} (default order); order-by: {ORDER}. "
                        "MltrailClient / MlflowClient.search_runs; up to "
                        f"{cfg['search_calls']} calls per query or {cfg['search_budget_s']} s "
                        "(at least 5) after a first call; p99 is nearest-rank. (!) marks a "
                        "result that differs from the expected runs."])  # fmt: skip

    rows, floor, mb = [], res.get("floor"), res.get("file_bytes", 0) / 1e6
    for b in be:
        a = res["backends"][b].get("artifacts", {})
        if set(a) != {"mltrail", "mlflow"}:
            continue
        for op in ("upload", "download"):
            mt, mf = (mb / med([r[f"{op}_s"] for r in a[k]]) for k in ("mltrail", "mlflow"))
            rows.append([b, op, f"{mt:,.0f}", f"{mf:,.0f}", ratio_s(mt / mf)])
            figs[f"{b}/{op}_mb_s"] = {"mltrail": mt, "mlflow": mf}
        if floor:
            frac = figs[f"{b}/upload_mb_s"]["mltrail"] / (mb / med(floor["cp_s"]))
            target(f"{b}: upload vs cp", f"{frac:.0%}", f">= {TARGETS['upload_frac']:.0%}",
                   frac >= TARGETS["upload_frac"])  # fmt: skip
    if rows:
        notes = [f"MB/s of a {mb:,.0f} MB file (10^6 bytes): mt.log_artifact / "
                 "MltrailClient.download_artifacts vs mlflow.log_artifact / "
                 "mlflow.artifacts.download_artifacts (--serve-artifacts); each timed alone, "
                 "new content each time, page cache synced first. Median of "
                 f"{cfg['artifact_reps']}."]  # fmt: skip
        if floor:
            notes.append("floor on the same file system (median): " + ", ".join(
                f"{lbl} {mb / med(floor[k]):,.0f} MB/s" for k, lbl in FLOORS.items()))  # fmt: skip
        lines += table("4. Artifacts through the server (MB/s)",
                       ["backend", "direction", "mltrail", "MLflow", "mt/MLflow"],
                       [9, 25, 14, 14, 16], rows, notes)  # fmt: skip

    lines += ["", "Summary vs targets", "=================="]
    lines += [f"{t['target']:<46}{t['value']:>10}{t['goal']:>12}   {t['status']}"
              for t in summary]  # fmt: skip
    res["figures"], res["summary"] = figs, summary
    return "\n".join(ln.rstrip() for ln in lines)


def versions() -> dict:
    def ver(p: str) -> str | None:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(p)
        return None

    names = ("mltrail", "mlflow", "sqlalchemy", "fastapi", "uvicorn", "httpx", "psycopg",
             "psycopg2-binary", "psutil")  # fmt: skip
    return {**{p: ver(p) for p in names}, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                    help="small N, one repetition (env BENCH_QUICK=1)")  # fmt: skip
    ap.add_argument("--backends", help="sqlite,postgres (default: both; --quick: sqlite)")
    ap.add_argument("--only", default="start,ingest,search,artifacts",
                    help="start,ingest,search,artifacts")  # fmt: skip
    ap.add_argument("--json", metavar="PATH", help="raw figures (.work/server-results.json)")
    ap.add_argument("--keep", action="store_true", help="keep the stores in benchmarks/.work")
    opts = ap.parse_args(argv)
    cfg = dict(QUICK if opts.quick else FULL)
    only = {s.strip() for s in opts.only.split(",") if s.strip()}
    backends = opts.backends or ("sqlite" if opts.quick else "sqlite,postgres")
    backends = [b.strip() for b in backends.split(",") if b.strip()]
    if bad := (only - {"start", "ingest", "search", "artifacts"}) | (
            set(backends) - {"sqlite", "postgres"}):  # fmt: skip
        ap.error(f"unknown: {', '.join(sorted(bad))}")
    json_path = Path(opts.json or WORK / f"server-results{'-quick' if opts.quick else ''}.json")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: servers get stopped
    WORK.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="server-", dir=WORK))
    ver = versions()
    res: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                 "mode": "quick" if opts.quick else "full", "config": cfg, "targets": TARGETS,
                 "versions": ver, "backends": {}, "errors": [],
                 "machine": {"nproc": os.cpu_count(), "platform": platform.platform()}}  # fmt: skip
    mode = "QUICK smoke mode: figures not meaningful" if opts.quick else "full mode"
    print(f"mltrail {ver.get('mltrail')} vs MLflow {ver.get('mlflow')} | Python {ver['python']} "
          f"| {os.cpu_count()} cores\n{res['date']} | {mode}", flush=True)  # fmt: skip
    started, pg, code = time.time(), None, 0
    try:
        big = None
        if "artifacts" in only:
            big = root / "big.bin"
            progress(f"writing a {cfg['file_mb']} MB random file")
            with open(big, "wb") as f:
                for _ in range(cfg["file_mb"]):
                    f.write(random.randbytes(1_000_000))
            res["file_bytes"] = big.stat().st_size
            (root / "floor").mkdir()
            res["floor"] = bench_floor(big, root / "floor", max(3, cfg["artifact_reps"]))
        for backend in backends:
            try:
                if backend == "postgres":
                    pg = Postgres()
                    pg.start()
                    res["versions"]["postgresql"] = pg.version
                run_backend(backend, root, pg, cfg, only, big,
                            res["backends"].setdefault(backend, {}))  # fmt: skip
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                code = 1
                res["errors"].append(f"{backend}: {exc}")
                progress(f"{backend}: FAILED: {exc}")
            finally:
                if pg is not None:
                    pg.stop()
                    pg = None
        print(render(res, cfg), flush=True)
        for e in res["errors"]:
            print(f"error: {e}")
    finally:
        for srv in list(Server.live):
            srv.stop()
        res["elapsed_s"] = time.time() - started
        json_path.write_text(json.dumps(res, indent=2) + "\n")
        progress(f"raw figures in {json_path}")
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nelapsed {res['elapsed_s']:.0f} s")
    return code


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        result = WORKERS[sys.argv[2]](json.loads(sys.argv[3]))
        sys.stdout.flush()
        print("BENCH_RESULT " + json.dumps(result), flush=True)
        sys.exit(0)
    sys.exit(main())

"""Web UI: mltrail's pages vs ``mlflow ui``, side by side in headless Chromium.

``bash benchmarks/run.sh --only ui`` (or ``.venv-bench/bin/python ui_bench.py [--quick]``).
Seeds the same data into a mltrail SQLite store and an MLflow SQLite database: 10,000 runs x 20
params x 20 metrics in one experiment, and one run with a 1,000,000-point metric in another.
Then each tool's server (``mltrail server``, which serves the UI, and ``mlflow server``, which is
what ``mlflow ui`` runs) is started on a free 127.0.0.1 port and Debian's Chromium, driven by
Playwright, measures from navigation start until the thing is on screen:

1. the runs table's first render (the newest run's name visible in the table);
2. a filter round-trip (type the filter, press Enter, until the first matching run shows);
3. comparing 50 runs (until an overlay chart has drawn all 50 runs' lines), mltrail only;
4. the 1,000,000-point metric chart (until its line is drawn).

Charts are timed twice: until the line is drawn (mltrail draws a plain SVG first, from the data,
while plotly.js loads) and until plotly's interactive chart is drawn. Each is measured ``reps``
times on a cold browser (a fresh context: nothing cached) and warm (the same context again: the
static files cached), after one discarded round that warms the servers; medians are reported.
Targets: each under 1 s for mltrail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import server_bench as sb  # noqa: E402  (its Tool/Server start and stop both servers)

WORK = HERE / ".work" / "ui"
FULL = {"runs": 10_000, "params": 20, "metrics": 20, "points": 1_000_000, "reps": 5, "compare": 50}
QUICK = {"runs": 1_000, "params": 20, "metrics": 20, "points": 100_000, "reps": 2, "compare": 50}
TARGET_S = 1.0
BASE_TS = 1_790_000_000_000
FILTER = "metrics.m00 > 0.9 and params.p00 = 'rf'"
CHROMIUM = os.environ.get("MLTRAIL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
perf = time.perf_counter


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def gen_runs(cfg: dict):
    """Deterministic runs: (name, start ms, params, metrics); ~2% match FILTER."""
    rng = random.Random(20261123)
    for i in range(cfg["runs"]):
        params = {f"p{j:02d}": str(rng.randrange(100)) for j in range(cfg["params"])}
        params["p00"] = rng.choice(("rf", "gb", "lr", "svm", "knn"))
        metrics = {f"m{j:02d}": rng.random() for j in range(cfg["metrics"])}
        yield f"run-{i:05d}", BASE_TS + i * 1000, params, metrics


def newest(cfg: dict, matching: bool = False) -> str:
    """The name the table shows first (newest start): of all runs, or of those matching FILTER."""
    best = None
    for name, _, params, metrics in gen_runs(cfg):
        if not matching or (metrics["m00"] > 0.9 and params["p00"] == "rf"):
            best = name
    assert best is not None
    return best


def series(n: int):
    """A 1M-point loss curve with noise and a few spikes: (step, value)."""
    rng = random.Random(5)
    for i in range(n):
        spike = 5.0 if i % 99_991 == 0 else 0.0
        yield i, 1.0 / (1 + i / 5000) + rng.random() * 0.05 + spike


def seed_mltrail(uri: str, cfg: dict) -> dict:
    """Through mltrail's SQL store: runs, then params and metrics in batches of 1,000 runs."""
    from mltrail.entities import Metric, RunBatch
    from mltrail.store import open_store

    store = open_store(uri)
    t0 = perf()
    eid = store.create_experiment("ui-bench")
    batches, ids = [], []
    for name, ts, params, metrics in gen_runs(cfg):
        rid = store.create_run(eid, name, "bench", ts).info.run_id
        ids.append(rid)
        batches.append(RunBatch(rid, [Metric(k, v, ts, 0) for k, v in metrics.items()], params, {}))
        if len(batches) == 1000:
            store.write_batches(batches)
            batches = []
    store.write_batches(batches)
    for rid, (_, ts, *_) in zip(ids, gen_runs(cfg), strict=True):
        store.update_run(rid, status="FINISHED", end_time=ts + 500)
    long_eid = store.create_experiment("ui-bench-long")
    long_id = store.create_run(long_eid, "long", "bench", BASE_TS).info.run_id
    chunk: list = []
    for step, value in series(cfg["points"]):
        chunk.append(Metric("loss", value, BASE_TS + step, step))
        if len(chunk) == 100_000:
            store.write_batches([RunBatch(long_id, chunk, {}, {})])
            chunk = []
    if chunk:
        store.write_batches([RunBatch(long_id, chunk, {}, {})])
    store.update_run(long_id, status="FINISHED", end_time=BASE_TS + cfg["points"])
    store.close()
    return {"experiment_id": eid, "run_ids": ids, "long_run": long_id, "seed_s": perf() - t0}


def seed_mlflow(uri: str, cfg: dict) -> dict:
    """MLflow's store makes the schema and experiments; rows go in as bulk inserts through its
    own table definitions (the rows create_run/log_batch/set_terminated write)."""
    import uuid

    from mlflow.store.tracking.dbmodels import models as m
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, "mlflow-artifacts:/")
    t0 = perf()
    rng = random.Random(7)
    out: dict = {}

    def run_row(eid: str, name: str, ts: int, end: int) -> dict:
        rid = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        root = store.get_experiment(eid).artifact_location
        return dict(run_uuid=rid, name=name, source_type="UNKNOWN", source_name="",
                    entry_point_name="", user_id="bench", status="FINISHED", start_time=ts,
                    end_time=end, deleted_time=None, source_version="",
                    lifecycle_stage="active", artifact_uri=f"{root}/{rid}/artifacts",
                    experiment_id=int(eid))  # fmt: skip

    eid = store.create_experiment("ui-bench")
    runs, tags, params_rows, metric_rows = [], [], [], []
    for name, ts, params, metrics in gen_runs(cfg):
        row = run_row(eid, name, ts, ts + 500)
        rid = row["run_uuid"]
        runs.append(row)
        tags += [dict(key=k, value=v, run_uuid=rid)
                 for k, v in {"mlflow.runName": name, "mlflow.user": "bench"}.items()]  # fmt: skip
        params_rows += [dict(key=k, value=v, run_uuid=rid) for k, v in params.items()]
        metric_rows += [dict(key=k, value=v, timestamp=ts, step=0, is_nan=False, run_uuid=rid)
                        for k, v in metrics.items()]  # fmt: skip
    long_eid = store.create_experiment("ui-bench-long")
    long_row = run_row(long_eid, "long", BASE_TS, BASE_TS + cfg["points"])
    long_id = long_row["run_uuid"]
    long_points = [dict(key="loss", value=v, timestamp=BASE_TS + s, step=s, is_nan=False,
                        run_uuid=long_id) for s, v in series(cfg["points"])]  # fmt: skip
    last = long_points[-1]
    with store.engine.begin() as conn:
        for table, rows in ((m.SqlRun, [*runs, long_row]), (m.SqlTag, tags),
                            (m.SqlParam, params_rows), (m.SqlMetric, metric_rows),
                            (m.SqlLatestMetric, metric_rows), (m.SqlMetric, long_points),
                            (m.SqlLatestMetric, [last])):  # fmt: skip
            for k in range(0, len(rows), 5000):
                conn.execute(table.__table__.insert(), rows[k : k + 5000])
        conn.execute(m.SqlTag.__table__.insert(),
                     [dict(key="mlflow.runName", value="long", run_uuid=long_id)])  # fmt: skip
    out = {"experiment_id": eid, "run_ids": [r["run_uuid"] for r in runs], "long_run": long_id,
           "long_experiment_id": long_eid, "seed_s": perf() - t0}  # fmt: skip
    store.engine.dispose()
    return out


# -- what each tool's page looks like ------------------------------------------------------------


class Pages:
    """URLs and 'it is on screen' conditions of one tool's UI."""

    def __init__(self, key: str, base: str, seeded: dict, cfg: dict) -> None:
        self.key, self.base, self.s, self.cfg = key, base, seeded, cfg

    def table(self) -> str:
        if self.key == "mltrail":
            return f"{self.base}/experiments/{self.s['experiment_id']}"
        # MLflow 3 opens an experiment on its GenAI overview unless told it is model training.
        eid = self.s["experiment_id"]
        return f"{self.base}/#/experiments/{eid}/runs?workflowType=machine_learning"

    def compare(self) -> str:
        ids = ",".join(self.s["run_ids"][-self.cfg["compare"] :])
        return f"{self.base}/compare?runs={ids}"

    def chart(self) -> str:
        if self.key == "mltrail":
            return f"{self.base}/runs/{self.s['long_run']}"
        eid, rid = self.s["long_experiment_id"], self.s["long_run"]
        return f"{self.base}/#/experiments/{eid}/runs/{rid}/model-metrics"


DRAWN = "svg.chart-sketch path, .js-plotly-plot .scatterlayer .trace path"
PLOTLY = ".js-plotly-plot .scatterlayer .trace path"
# The 1M-point line: a path with real data in it (plotly draws empty paths for a blank plot).
LONG_PATH = "sel => [...document.querySelectorAll(sel)].some(p => (p.getAttribute('d') || '')"
LONG_PATH += ".length > 1000)"
# A compare overlay: one chart with at least n lines, among the sketches (if counted) or plotly's.
N_LINES = """([n, sketches]) => {
  const has = (outer, inner) => [...document.querySelectorAll(outer)]
    .some(c => c.querySelectorAll(inner).length >= n);
  return (sketches && has('svg.chart-sketch', 'path'))
    || has('.js-plotly-plot', '.scatterlayer .trace');
}"""


def timed(browser, reps: int, action) -> dict[str, dict[str, list[float]]]:
    """``action(page) -> {stage: seconds}`` on a cold browser (a fresh context: nothing cached)
    and then warm (the same context again: static files cached), ``reps`` times each after one
    discarded round that warms the server; ``{"cold"|"warm": {stage: [seconds]}}``."""
    out: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
    for i in range(reps + 1):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        for temp in ("cold", "warm"):
            page = context.new_page()
            page.set_default_timeout(120_000)
            stages = action(page)
            # Warm means cached files, not remembered UI state: MLflow keeps the last filter
            # in localStorage and would open the next visit already filtered.
            page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
            page.close()
            for stage, took in stages.items():
                if i:
                    out[temp].setdefault(stage, []).append(took)
        context.close()
    return out


def measure(pages: Pages, browser, cfg: dict, only: set[str]) -> dict:
    """The measurements of one tool (compare: mltrail only), each as :func:`timed` returns."""
    reps, out = cfg["reps"], {}
    first, first_match = newest(cfg), newest(cfg, matching=True)
    url = pages.table()
    mine = pages.key == "mltrail"

    def table(page) -> dict:
        t0 = perf()
        page.goto(url, wait_until="commit")
        page.get_by_text(first, exact=True).first.wait_for(state="visible")
        return {"table": perf() - t0}

    def filtered(page) -> dict:
        page.goto(url)
        page.get_by_text(first, exact=True).first.wait_for(state="visible")
        box = (page.locator("input[name=filter]") if mine
               else page.get_by_placeholder("metrics.", exact=False).first)  # fmt: skip
        box.fill(FILTER)
        t0 = perf()
        box.press("Enter")
        page.get_by_text(first_match, exact=True).first.wait_for(state="visible")
        page.get_by_text(first, exact=True).first.wait_for(state="hidden")
        return {"filter": perf() - t0}

    def compare(page) -> dict:
        t0 = perf()
        page.goto(pages.compare(), wait_until="commit")
        page.wait_for_function(N_LINES, arg=[cfg["compare"], True], polling="raf")
        drawn = perf() - t0
        page.wait_for_function(N_LINES, arg=[cfg["compare"], False], polling="raf")
        return {"compare_drawn": drawn, "compare_interactive": perf() - t0}

    def chart(page) -> dict:
        t0 = perf()
        page.goto(pages.chart(), wait_until="commit")
        page.wait_for_function(LONG_PATH, arg=DRAWN if mine else PLOTLY, polling="raf")
        drawn = perf() - t0
        page.wait_for_function(LONG_PATH, arg=PLOTLY, polling="raf")
        return {"chart_drawn": drawn, "chart_interactive": perf() - t0}

    actions = {"table": table, "filter": filtered, "compare": compare, "chart": chart}
    for name, action in actions.items():
        if name in only and (mine or name != "compare"):
            for temp, stages in timed(browser, reps, action).items():
                for stage, times in stages.items():
                    out.setdefault(stage, {})[temp] = times
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 runs, a 100,000-point metric")
    ap.add_argument("--only", default="table,filter,compare,chart")
    ap.add_argument("--tools", default="mltrail,mlflow")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--keep", action="store_true", help="keep the seeded stores in .work/ui")
    args = ap.parse_args()
    cfg = QUICK if args.quick or os.environ.get("BENCH_QUICK") else FULL
    only = set(args.only.split(","))
    tools = args.tools.split(",")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    from playwright.sync_api import sync_playwright

    results: dict = {"config": cfg, "tools": {}}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox"])  # fmt: skip
            for key in tools:
                tool = sb.Tool(key, f"sqlite:///{WORK / key / 'store.db'}", WORK / key)
                shape = f"{cfg['runs']:,} runs x {cfg['params']} params x {cfg['metrics']} metrics"
                progress(f"{key}: seeding {shape} and a {cfg['points']:,}-point metric")
                seeded = (seed_mltrail if key == "mltrail" else seed_mlflow)(tool.uri, cfg)
                progress(f"{key}: seeded in {seeded['seed_s']:.1f} s; starting its server")
                server = sb.Server(tool, 1)
                try:
                    server.wait_ready()
                    pages = Pages(key, f"http://127.0.0.1:{server.port}", seeded, cfg)
                    results["tools"][key] = measure(pages, browser, cfg, only)
                    progress(f"{key}: {summary(results['tools'][key])}")
                finally:
                    server.stop()
            browser.close()
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    results["versions"] = sb.versions()
    results["date"] = dt.date.today().isoformat()
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def summary(figs: dict) -> str:
    return ", ".join(
        f"{stage} {statistics.median(t['warm']):.3f} warm / {statistics.median(t['cold']):.3f} cold"
        for stage, t in figs.items()
    )


LABELS = {
    "table": "runs table, first render",
    "filter": "filter round-trip",
    "compare_drawn": "compare 50 runs: drawn",
    "compare_interactive": "  ... interactive",
    "chart_drawn": "1M-point chart: drawn",
    "chart_interactive": "  ... interactive",
}


def table(results: dict) -> str:
    """The side-by-side table, median seconds, warm / cold browser cache (fits 80 columns)."""
    t = results["tools"]
    head = f"{'median s, warm / cold':<27}{'mltrail':>15}{'mlflow ui':>15}{'< 1 s (warm)':>14}"
    lines = [head]
    for stage, label in LABELS.items():
        mine, theirs = t.get("mltrail", {}).get(stage), t.get("mlflow", {}).get(stage)
        if not mine and not theirs:
            continue
        ok = "met" if mine and statistics.median(mine["warm"]) < TARGET_S else "missed"
        lines.append(f"{label:<27}{pair(mine):>15}{pair(theirs):>15}{ok if mine else '':>14}")
    return "\n".join(lines)


def pair(times: dict | None) -> str:
    if not times:
        return "n/a"
    return f"{statistics.median(times['warm']):.2f} / {statistics.median(times['cold']):.2f}"


if __name__ == "__main__":
    sys.exit(main())

"""``mltrail models serve`` and ``mltrail models predict``: a scoring server, batch prediction."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import listen_options

#: Below this size an input file gets no progress bar.
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


def _need_serve_extra() -> None:
    from mltrail.errors import InvalidInput

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise InvalidInput(
            f"serving needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            "not installed",
            hint="pip install 'mltrail[serve]'",
        )


@click.command("serve")
@click.argument("model")
@listen_options(8080, "Server processes; each loads the model from a local copy.")
@click.option(
    "--max-body-mb",
    default=50,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Largest request body accepted, in MB; bigger ones get 413.",
)
@click.pass_context
def serve_command(
    ctx: click.Context, model: str, host: str, port: int, workers: int, max_body_mb: float
) -> None:
    """Serve MODEL over HTTP: POST /invocations, GET /ping, /health and /version.

    MODEL is a saved model folder, NAME@ALIAS, NAME/VERSION, NAME/STAGE, or a models:/… or
    runs:/… URI. The model is loaded once before the server starts, so a bad reference fails
    here. Requests use MLflow's shapes: JSON with one of dataframe_split, dataframe_records,
    instances or inputs, or CSV with a header row.
    """
    from mltrail.serving import server

    _need_serve_extra()
    with server.open_source(model, lambda: get_client(ctx)) as source:
        loaded = source.load()
        sock = server.bind(host, port)
        try:
            bound_port = sock.getsockname()[1]
            url = f"http://{f'[{host}]' if ':' in host else host}:{bound_port}"
            workers_note = f" with {workers} workers" if workers > 1 else ""
            fmt.echo(f"Serving {source.uri} ({server.describe(loaded)}) on {url}{workers_note}")
            curl = server.example_curl(loaded, source.folder, url)
            if curl:
                fmt.echo(f"Try: {curl}")
            fmt.echo("Press Ctrl+C to stop.")
            sys.stdout.flush()
            # Several workers load their own copies from the folder; this one is not needed.
            serving, loaded = (loaded if workers == 1 else None), None
            limit = int(max_body_mb * 1024 * 1024)
            server.run(serving, source, sock, workers=workers, max_body_bytes=limit)
        finally:
            sock.close()


_FORMATS = {
    "json": "json",
    "application/json": "json",
    "csv": "csv",
    "text/csv": "csv",
    "parquet": "parquet",
    "application/vnd.apache.parquet": "parquet",
}


def _progress_bar(total: int) -> tuple[Any, Any]:
    """A rich bar on stderr for a big input read on a terminal; else (None, None)."""
    from mltrail.cli.render import is_terminal

    if not is_terminal(sys.stderr) or total < PROGRESS_MIN_BYTES:
        return None, None
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from mltrail.cli.render import console as safe_console

    bar = Progress(
        TextColumn("Predicting"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
        console=safe_console(stderr=True),
        transient=True,
    )
    task = bar.add_task("predict", total=total, rows=0)

    def advance(done_bytes: int, rows: int) -> None:
        bar.update(task, completed=done_bytes, rows=rows)

    return bar, advance


@click.command("predict")
@click.argument("model")
@click.option(
    "-i",
    "--input",
    "input_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Rows to predict on: .csv (header row first), .json (the server's request shapes) "
    "or .parquet (needs pyarrow).",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    default="-",
    show_default=True,
    help="Where to write predictions: a .csv or .json file (replaced atomically), or - for stdout.",
)
@click.option(
    "--content-type",
    metavar="TYPE",
    type=click.Choice(sorted(_FORMATS), case_sensitive=False),
    help="Format of the input when its extension does not say (json, csv, parquet or their "
    "MIME types).",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(["csv", "json"], case_sensitive=False),
    help="Format of the output. Default: from the -o extension; on stdout, JSON for a JSON "
    "input, else CSV.",
)
@click.pass_context
def predict_command(
    ctx: click.Context,
    model: str,
    input_path: Path,
    output: str,
    content_type: str | None,
    out_format: str | None,
) -> None:
    """Predict with MODEL on the rows of a file; write one prediction per row.

    CSV inputs stream through in chunks of 100,000 rows, so memory stays flat on big files.
    Predictions are one `prediction` column (or the model's own output columns), in the same
    order as the input rows.
    """
    from mltrail.serving import batch, server

    kind = _FORMATS[content_type.lower()] if content_type else batch.input_kind(input_path)
    with server.open_source(model, lambda: get_client(ctx)) as source:
        loaded = source.load()
        size = input_path.stat().st_size if input_path.is_file() else 0
        bar, advance = _progress_bar(size) if kind == "csv" else (None, None)
        to_stdout = output == "-"
        target: Any = sys.stdout.buffer if to_stdout else Path(output)
        try:
            if bar is not None:
                bar.start()
            summary = batch.predict_file(
                loaded,
                input_path,
                target,
                input_format=kind,
                output_format=out_format.lower() if out_format else None,
                progress=advance,
            )
        finally:
            if bar is not None:
                bar.stop()
    if not to_stdout:
        rows = f"{summary.rows:,} prediction{'' if summary.rows == 1 else 's'}"
        fmt.echo(f"Wrote {rows} to {output}")

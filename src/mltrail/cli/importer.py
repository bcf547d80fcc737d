"""``mltrail import``: bring another tool's history into this store."""

from __future__ import annotations

import sys
from typing import Any

import click

from mltrail.cli import format as fmt
from mltrail.cli.context import get_client
from mltrail.cli.options import json_option


@click.group("import")
def import_group() -> None:
    """Bring in another tool's history (MLflow, DVC) so lineage, search and the registry see it."""


@import_group.command("mlflow")
@click.argument("source", metavar="SOURCE")
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME",
    help="Import only this experiment (repeat for more). Default: every experiment.",
)
@click.option(
    "--models",
    "models",
    multiple=True,
    metavar="NAME",
    help="Import only this registered model (repeat for more). Default: every model.",
)
@click.option(
    "--artifacts",
    "artifacts_root",
    metavar="FOLDER|s3://BUCKET/PREFIX",
    help="The MLflow server's --artifacts-destination (a folder or s3:// URI), where "
    "mlflow-artifacts: URIs point. Runs whose artifacts are in local folders or s3:// need "
    "none; an http:// source downloads them through the server.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be imported; write nothing.")
@json_option
def mlflow_command(
    source: str,
    experiments: tuple[str, ...],
    models: tuple[str, ...],
    artifacts_root: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import an MLflow store: a database, a file store or a server.

    SOURCE is a database (sqlite:///mlflow.db, postgresql://user@host/db), a file store folder
    (./mlruns) or a running MLflow server (http://host:5000, through its REST API).

    Experiments (matched by name), runs with their MLflow ids, names, users, parents, statuses
    and times, params, tags, every metric point, dataset inputs and artifacts, and the registry:
    models, versions (with their numbers and files), stages and aliases. The source is
    opened read-only. Run it again to bring in what changed: finished runs already imported are
    skipped, and an import that was stopped completes. Exit 1 when anything was left out (each
    item is listed with the reason).
    """
    from mltrail.importers.mlflow import import_mlflow

    client = get_client()
    bar = _RunsBar()
    try:
        report = import_mlflow(
            source,
            client,
            experiments=experiments or None,
            models=models or None,
            artifacts_root=artifacts_root,
            dry_run=dry_run,
            progress=bar.update,
        )
    finally:
        bar.stop()
    if as_json:
        fmt.echo_json(report.to_dict())
    else:
        _print_report(report)
    if report.skipped:
        sys.exit(1)


class _RunsBar:
    """A progress bar over runs on stderr when it is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def update(self, done: int, total: int, name: str) -> None:
        from mltrail.cli.render import is_terminal

        if not is_terminal(sys.stderr):
            return
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            from mltrail.cli.render import console as safe_console

            self._progress = Progress(
                TextColumn("importing runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[name]}", markup=False),
                console=safe_console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("runs", total=total, name="")
        self._progress.update(self._task, completed=done, name=name[:30])

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _print_report(report: Any) -> None:
    from mltrail.cli.render import console, key_values

    out = console()
    verb = "Would import" if report.dry_run else "Imported"
    kind = {
        "database": f"MLflow database, schema {report.schema_revision}",
        "REST API": f"MLflow {report.schema_revision} server, REST API",
    }.get(report.source_format, f"MLflow {report.source_format}")
    out.print(f"{verb} from {report.source} ({kind}):")
    rows = [
        (
            "experiments",
            f"{report.experiments_created} new, {report.experiments_existing} existing",
        ),
        (
            "runs",
            f"{report.runs_imported} new, {report.runs_updated} updated, "
            f"{report.runs_unchanged} unchanged",
        ),
        (
            "models",
            f"{report.models_created} new; versions {report.versions_imported} new, "
            f"{report.versions_existing} existing",
        ),
        (
            "logged models",
            f"{report.logged_models_imported} new, {report.logged_models_existing} existing",
        ),
    ]
    if not report.dry_run:
        rows += [
            ("params", f"{report.params:,}"),
            ("metric points", f"{report.metric_points:,}"),
            ("artifacts", f"{report.artifacts:,} files, {fmt.size(report.artifact_bytes)}"),
        ]
    out.print(key_values(rows))
    if report.skipped:
        out.print(f"Left out ({len(report.skipped)}):")
        for item in report.skipped:
            out.print(f"  {item.what}: {item.reason}", highlight=False)


# -- DVC -------------------------------------------------------------------------------------------


@import_group.command("dvc")
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--remote-url",
    "remote_urls",
    multiple=True,
    metavar="NAME=URL",
    help="Where the mltrail remote made from DVC remote NAME points (repeat for more). "
    "Default: DVC's URL with -mltrail appended, beside DVC's objects.",
)
@click.option(
    "--no-history",
    is_flag=True,
    help="Convert only the current versions, not those of the Git history.",
)
@click.option(
    "--remove-dvc",
    is_flag=True,
    help="Also run the git rm/git add of the cutover (DVC's files leave Git; the commit is "
    "yours). Default: DVC's files stay and the commands are printed.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be imported; write nothing.")
@json_option
def dvc_command(
    path: str,
    remote_urls: tuple[str, ...],
    no_history: bool,
    remove_dvc: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import a DVC repository: its data, pipeline, remotes and history.

    PATH (default: here) becomes an mltrail project too. .dvc files become .trail pointers
    (objects from DVC's cache or remotes, checked against their MD5), dvc.yaml and dvc.lock
    become mltrail.yaml and mltrail.lock (so `mltrail repro` runs nothing DVC had run), DVC
    remotes become mltrail remotes, and every version of the DVC files in the Git history is
    recorded so older revisions resolve. DVC's files and cache are only read. Run it again to
    bring in what changed. Exit 1 when anything was left out (each
    item is listed with the reason).
    """
    from mltrail.cli.context import state
    from mltrail.cli.data import _reporter
    from mltrail.errors import InvalidInput
    from mltrail.importers.dvc import import_dvc

    urls = {}
    for item in remote_urls:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise InvalidInput(
                f"--remote-url {item!r} is not NAME=URL", hint="For example origin=s3://b/p."
            )
        urls[name] = url
    # An explicit --store/--objects or MLTRAIL_TRACKING_URI takes the runs; else the project.
    st = state()
    client = get_client() if st.store or st.objects else None
    report = import_dvc(
        path,
        client,
        dry_run=dry_run,
        remove_dvc=remove_dvc,
        remote_urls=urls,
        history=not no_history,
        reporter=_reporter(),
    )
    if as_json:
        fmt.echo_json(report.to_dict())
    else:
        _print_dvc_report(report)
    if report.skipped:
        sys.exit(1)


def _print_dvc_report(report: Any) -> None:
    from mltrail.cli.render import console, key_values

    out = console()
    verb = "Would import" if report.dry_run else "Imported"
    out.print(f"{verb} the DVC repository {report.source}:", highlight=False)
    rows = [
        (
            "pointers",
            f"{report.pointers_written} written, {report.pointers_unchanged} unchanged",
        ),
        (
            "objects",
            f"{report.objects_stored:,} stored ({fmt.size(report.object_bytes)}, "
            f"{report.objects_from_remote:,} from remotes), {report.objects_already:,} already",
        ),
        ("stages", f"{report.stages} ({report.stages_locked} up to date in mltrail.lock)"),
        ("remotes", f"{report.remotes_added} added"),
        ("history", f"{report.history_versions} versions recorded"),
        ("runs", f"{report.runs_imported} new, {report.runs_existing} existing"),
        ("model versions", str(report.model_versions)),
    ]
    out.print(key_values(rows))
    if report.changed:
        out.print("Files written: " + ", ".join(report.changed), highlight=False)
    if report.removed:
        out.print("Removed from Git (git rm): " + ", ".join(report.removed), highlight=False)
    if not report.changed and not report.removed:
        out.print("Nothing in the repository changed.")
    for title, items in (
        ("Stages that will run (their DVC record does not match the workspace)", "stale_stages"),
        ("Old versions whose data was found nowhere (listed, not imported)", "unavailable"),
    ):
        found = getattr(report, items)
        if found:
            out.print(f"{title} ({len(found)}):")
            for item in found:
                out.print(f"  {item.what}: {item.reason}", highlight=False)
    for note in report.notes:
        out.print(f"Note: {note}", highlight=False)
    if report.cutover:
        if len(report.cutover) == 1:
            out.print("To finish the move, commit:")
        else:
            out.print("The cutover commit (DVC's files stay until you run it, or --remove-dvc):")
        for line in report.cutover:
            out.print(f"  {line}", highlight=False, soft_wrap=True)
    if report.skipped:
        out.print(f"Left out ({len(report.skipped)}):")
        for item in report.skipped:
            out.print(f"  {item.what}: {item.reason}", highlight=False)

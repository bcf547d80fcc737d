"""``mltrail init``: create the ``.mltrail`` project folder."""

from __future__ import annotations

from pathlib import Path

import click

from mltrail.cli import format as fmt


@click.command("init")
@click.argument(
    "path",
    required=False,
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
def init_command(path: Path) -> None:
    """Create a .mltrail project folder in PATH (default: here).

    The folder holds config.toml (commit it), the SQLite database and the object store
    (both git-ignored). Safe to run again: it only adds what is missing.
    """
    from mltrail.cli.context import state
    from mltrail.config import CONFIG_FILE, DB_FILE, OBJECTS_DIR, PROJECT_DIR, init_project

    root = path.resolve()
    project = root / PROJECT_DIR
    watched = [
        project,
        project / CONFIG_FILE,
        project / ".gitignore",
        project / OBJECTS_DIR,
        project / DB_FILE,
    ]
    existed = {p: p.exists() for p in watched}

    root.mkdir(parents=True, exist_ok=True)
    project = init_project(root)
    from mltrail.tracking.client import MltrailClient

    # Opening the client creates the database and brings its schema up to date; the project
    # path is given explicitly so MLTRAIL_TRACKING_URI cannot send this elsewhere.
    MltrailClient(str(project), str(project / OBJECTS_DIR)).close()

    created = [p for p in watched if not existed[p]]
    if not created:
        fmt.echo(f"Already initialized: {project} (nothing to do)")
    else:
        fmt.echo(f"Initialized mltrail project in {project}")
        for p in created[1:] if created[0] == project else created:
            kind = "folder" if p.is_dir() else "file"
            fmt.echo(f"  created {p.relative_to(project)} ({kind})")
    other = state().store
    if other:
        fmt.echo(
            f"note: --store / MLTRAIL_TRACKING_URI is {other}; commands given it use that "
            "store, not this project."
        )

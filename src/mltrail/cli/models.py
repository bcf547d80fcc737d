"""``mltrail models``: the model registry, scoring server and batch prediction."""

from __future__ import annotations

import click

from mltrail.cli.lazy import LazyGroup

#: Subcommand → where it lives; registry commands first, then serving.
_REGISTRY = (
    *("ls", "show", "versions", "register", "alias", "unalias", "stage", "history"),
    *("check", "describe", "tag", "rename", "delete", "download"),
)
COMMANDS: dict[str, str] = {
    **{name: f"mltrail.cli.models_registry:{name}_command" for name in _REGISTRY},
    "serve": "mltrail.cli.models_serve:serve_command",
    "predict": "mltrail.cli.models_serve:predict_command",
}


@click.group("models", cls=LazyGroup, lazy_commands=COMMANDS)
def models_group() -> None:
    """Registered models: versions, aliases, stages, their audit trail, serving and prediction.

    Models are logged from Python (`mt.log_model(model, "model", registered_name="NAME")`);
    these commands manage and use them. MODEL arguments take `NAME@ALIAS`, `NAME/VERSION`,
    `NAME/STAGE` or a full `models:/…` / `runs:/…` URI.
    """

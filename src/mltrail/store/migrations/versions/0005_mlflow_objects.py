"""What the real mlflow client logs beyond runs: logged models, their links to runs, named datasets.

Revision: 0005 (after 0004)
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, key: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.{key}"], ondelete="CASCADE", name=f"fk_{table}_{column}_{target}"
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_pk", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("run_pk", sa.Integer, nullable=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_path", sa.String(1024), nullable=True),
        sa.Column("model_type", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_pk", name="pk_logged_models"),
        sa.UniqueConstraint("model_id", name="uq_logged_models_model_id"),
        _fk("logged_models", "experiment_id", "experiments", "experiment_id"),
        _fk("logged_models", "run_pk", "runs", "run_pk"),
    )
    op.create_index(
        "ix_logged_models_experiment_id_creation_time",
        "logged_models",
        ["experiment_id", "creation_time"],
    )
    op.create_index("ix_logged_models_run_pk", "logged_models", ["run_pk"])
    for table, length in (("logged_model_params", 6000), ("logged_model_tags", 8000)):
        op.create_table(
            table,
            sa.Column("model_pk", sa.Integer, nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.String(length), nullable=False),
            sa.PrimaryKeyConstraint("model_pk", "key", name=f"pk_{table}"),
            _fk(table, "model_pk", "logged_models", "model_pk"),
        )
    op.create_table(
        "logged_model_files",
        sa.Column("model_pk", sa.Integer, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("model_pk", "path", name="pk_logged_model_files"),
        _fk("logged_model_files", "model_pk", "logged_models", "model_pk"),
    )
    op.create_index("ix_logged_model_files_hash", "logged_model_files", ["hash"])
    op.create_table(
        "run_models",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(6), nullable=False),
        sa.Column("model_pk", sa.Integer, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "direction", "model_pk", name="pk_run_models"),
        _fk("run_models", "run_pk", "runs", "run_pk"),
        _fk("run_models", "model_pk", "logged_models", "model_pk"),
    )
    op.create_table(
        "named_datasets",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "name", "digest", name="pk_named_datasets"),
        _fk("named_datasets", "run_pk", "runs", "run_pk"),
    )


def downgrade() -> None:
    for table in ("named_datasets", "run_models", "logged_model_files", "logged_model_tags"):
        op.drop_table(table)
    op.drop_table("logged_model_params")
    op.drop_table("logged_models")

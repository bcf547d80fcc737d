"""Initial schema: experiments, runs, params, tags, metrics, latest metrics, artifacts.

Revision: 0001 (first)
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    experiments = op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_experiment_tags_experiment_id_experiments",
        ),
    )
    op.create_table(
        "runs",
        sa.Column("run_pk", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("deleted_time", sa.BigInteger, nullable=True),
        sa.Column("parent_run_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("run_pk", name="pk_runs"),
        sa.UniqueConstraint("run_id", name="uq_runs_run_id"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_runs_experiment_id_experiments",
        ),
    )
    op.create_index(
        "ix_runs_experiment_id_lifecycle_stage_start_time",
        "runs",
        ["experiment_id", "lifecycle_stage", "start_time"],
    )
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])

    for name, value_type in (("params", sa.String(6000)), ("tags", sa.String(8000))):
        op.create_table(
            name,
            sa.Column("run_pk", sa.Integer, nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", value_type, nullable=False),
            sa.PrimaryKeyConstraint("run_pk", "key", name=f"pk_{name}"),
            sa.ForeignKeyConstraint(
                ["run_pk"], ["runs.run_pk"], ondelete="CASCADE", name=f"fk_{name}_run_pk_runs"
            ),
        )

    op.create_table(
        "latest_metrics",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "key", name="pk_latest_metrics"),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.run_pk"], ondelete="CASCADE", name="fk_latest_metrics_run_pk_runs"
        ),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])

    op.create_table(
        "metrics",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.run_pk"], ondelete="CASCADE", name="fk_metrics_run_pk_runs"
        ),
    )
    op.create_index(
        "ix_metrics_run_pk_key_step_timestamp", "metrics", ["run_pk", "key", "step", "timestamp"]
    )

    op.create_table(
        "artifacts",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "path", name="pk_artifacts"),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.run_pk"], ondelete="CASCADE", name="fk_artifacts_run_pk_runs"
        ),
    )
    op.create_index("ix_artifacts_hash", "artifacts", ["hash"])

    now = int(time.time() * 1000)
    op.bulk_insert(
        experiments,
        [
            {
                "experiment_id": 0,
                "name": "Default",
                "lifecycle_stage": "active",
                "creation_time": now,
                "last_update_time": now,
            }
        ],
    )


def downgrade() -> None:
    for name in (
        "artifacts",
        "metrics",
        "latest_metrics",
        "tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
    ):
        op.drop_table(name)

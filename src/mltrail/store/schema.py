"""Tables of the metadata store, shared by SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create exactly these tables; a test compares the two.
Runs have an integer surrogate key (``run_pk``) so the metric series, the largest table by far,
indexes 4-byte integers instead of 32-character ids.
A NaN metric value is stored as NULL (SQLite cannot store NaN); infinities are stored as such.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False, unique=True),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, unique=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("deleted_time", sa.BigInteger, nullable=True),
    sa.Column("parent_run_id", sa.String(32), nullable=True),
    # The default listing: one experiment's active runs, newest first.
    sa.Index(None, "experiment_id", "lifecycle_stage", "start_time"),
    sa.Index(None, "parent_run_id"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    # No index on value: PostgreSQL b-tree entries are capped near 2.7 kB, params go to 6000 chars.
    sa.Column("value", sa.String(6000), nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

# One row per (run, key): the point with the highest step, then the latest timestamp.
# Search and listings read this table, never the series.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    # Range filters ("metrics.accuracy > 0.9") over many runs.
    sa.Index(None, "key", "value"),
)

# The full series. No primary key: a composite one over every column (as MLflow has) doubles
# the table's size. History reads walk the (run_pk, key, step, timestamp) index in order.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Index(None, "run_pk", "key", "step", "timestamp"),
)

# Files logged as run artifacts: each points at a blob in the object store.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.Integer, nullable=False),
    sa.Index(None, "hash"),
)

# Dataset versions a run read (``input``) or wrote (``output``): the lineage edges between data and
# runs. One row per (run, direction, path, hash), so logging the same version again is a no-op.
# ``path`` is relative to the project root; ``hash`` names the file or the folder's tree object.
run_datasets = sa.Table(
    "run_datasets",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("direction", sa.String(6), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(4), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("nfiles", sa.Integer, nullable=True),
    sa.Column("context", sa.String(250), nullable=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    # "Which runs used this version?" (lineage from a hash) and "every version of this dataset".
    sa.Index(None, "hash"),
    sa.Index(None, "path", "hash"),
)

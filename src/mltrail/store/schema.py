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

# -- model registry ------------------------------------------------------------------------------
# A registered model is a name with numbered versions; each version names a run's model folder by
# its tree object's hash, so what was registered can never change under the name.

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("model_pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column(
        "model_pk",
        sa.Integer,
        sa.ForeignKey("registered_models.model_pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

# A deleted version keeps its row (lifecycle_stage "deleted") so its number is never given again.
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column(
        "model_pk",
        sa.Integer,
        sa.ForeignKey("registered_models.model_pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("artifact_path", sa.String(1024), nullable=True),
    sa.Column("tree_hash", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("stage", sa.String(20), nullable=False, server_default="None"),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    # Lineage: "which model versions came from this run?" and "which versions are this folder?".
    sa.Index(None, "run_id"),
    sa.Index(None, "tree_hash"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("model_pk", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
    sa.ForeignKeyConstraint(
        ["model_pk", "version"],
        ["model_versions.model_pk", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# An alias names one version of its model; the primary key makes aliases unique per model.
model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_pk", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["model_pk", "version"],
        ["model_versions.model_pk", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# The audit trail: one row per change, written in the transaction that makes the change. No
# foreign key, so the history of a deleted model stays readable under its name. ``key`` is the
# tag key or alias name the change was about (None for other actions).
registry_events = sa.Table(
    "registry_events",
    metadata,
    sa.Column("event_pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("key", sa.String(255), nullable=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Index(None, "model_name", "timestamp"),
)

# -- the team server (migration 0004) ------------------------------------------------------------

# Write batches a remote client sent, by the id it gave them: a batch sent again after a lost
# reply is recognised and not applied twice. Rows older than a day are pruned.
applied_batches = sa.Table(
    "applied_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("applied_at", sa.BigInteger, nullable=False),
    sa.Index(None, "applied_at"),
)

# API tokens. The secret is never stored: only its SHA-256 (a token is 32 random bytes, so a
# slow password hash would add nothing but latency). ``token_id`` is the public part, shown by
# `tokens ls` and used to revoke.
auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("user_name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Index(None, "user_name"),
)

# Per-experiment and per-model permissions of a user; each overrides the user's token role for
# that one experiment (``kind`` "experiment", ``target`` its id) or model (name).
permissions = sa.Table(
    "permissions",
    metadata,
    sa.Column("user_name", sa.String(256), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(500), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
)

# -- MLflow's own objects (migration 0005) ---------------------------------------------------------
# What the real `mlflow` client logs that mltrail's own API has no word for. A logged model (MLflow
# 3) is a model folder with an id; when it has a source run its files are that run's artifacts
# under ``artifact_path`` (so `runs show`, the UI and `runs:/` URIs see them), otherwise they are
# listed in logged_model_files.

logged_models = sa.Table(
    "logged_models",
    metadata,
    sa.Column("model_pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("artifact_path", sa.String(1024), nullable=True),
    sa.Column("model_type", sa.String(500), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    sa.Index(None, "experiment_id", "creation_time"),
    sa.Index(None, "run_pk"),
)

logged_model_params = sa.Table(
    "logged_model_params",
    metadata,
    sa.Column(
        "model_pk",
        sa.Integer,
        sa.ForeignKey("logged_models.model_pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(6000), nullable=False),
)

logged_model_tags = sa.Table(
    "logged_model_tags",
    metadata,
    sa.Column(
        "model_pk",
        sa.Integer,
        sa.ForeignKey("logged_models.model_pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

# The files of a logged model that has no source run (paths relative to the model folder).
logged_model_files = sa.Table(
    "logged_model_files",
    metadata,
    sa.Column(
        "model_pk",
        sa.Integer,
        sa.ForeignKey("logged_models.model_pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.Integer, nullable=False),
    sa.Index(None, "hash"),
)

# Logged models a run used (``input``) or produced (``output``, with the step it was logged at).
run_models = sa.Table(
    "run_models",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("direction", sa.String(6), primary_key=True),
    sa.Column(
        "model_pk",
        sa.Integer,
        sa.ForeignKey("logged_models.model_pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("step", sa.BigInteger, nullable=False),
)

# Datasets a run names by name and digest (MLflow's log_inputs): their bytes live elsewhere,
# unlike run_datasets, whose versions are objects in the store.
named_datasets = sa.Table(
    "named_datasets",
    metadata,
    sa.Column(
        "run_pk", sa.Integer, sa.ForeignKey("runs.run_pk", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("name", sa.String(500), primary_key=True),
    sa.Column("digest", sa.String(36), primary_key=True),
    sa.Column("source_type", sa.String(36), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("schema", sa.Text, nullable=True),
    sa.Column("profile", sa.Text, nullable=True),
    # The input's tags (mlflow.data.context and any others) as a JSON object.
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
)

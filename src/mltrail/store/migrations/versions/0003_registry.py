"""The model registry: registered models, versions, tags, aliases and the audit trail.

Revision: 0003 (after 0002)
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("model_pk", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_pk", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_pk", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(8000), nullable=False),
        sa.PrimaryKeyConstraint("model_pk", "key", name="pk_registered_model_tags"),
        sa.ForeignKeyConstraint(
            ["model_pk"],
            ["registered_models.model_pk"],
            ondelete="CASCADE",
            name="fk_registered_model_tags_model_pk_registered_models",
        ),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_pk", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, autoincrement=False, nullable=False),
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
        sa.PrimaryKeyConstraint("model_pk", "version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["model_pk"],
            ["registered_models.model_pk"],
            ondelete="CASCADE",
            name="fk_model_versions_model_pk_registered_models",
        ),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_tree_hash", "model_versions", ["tree_hash"])
    op.create_table(
        "model_version_tags",
        sa.Column("model_pk", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(8000), nullable=False),
        sa.PrimaryKeyConstraint("model_pk", "version", "key", name="pk_model_version_tags"),
        sa.ForeignKeyConstraint(
            ["model_pk", "version"],
            ["model_versions.model_pk", "model_versions.version"],
            ondelete="CASCADE",
            name="fk_model_version_tags_model_pk_model_versions",
        ),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_pk", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("model_pk", "alias", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_pk", "version"],
            ["model_versions.model_pk", "model_versions.version"],
            ondelete="CASCADE",
            name="fk_model_aliases_model_pk_model_versions",
        ),
    )
    op.create_table(
        "registry_events",
        sa.Column("event_pk", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("event_pk", name="pk_registry_events"),
    )
    op.create_index(
        "ix_registry_events_model_name_timestamp", "registry_events", ["model_name", "timestamp"]
    )


def downgrade() -> None:
    for table in (
        "registry_events",
        "model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(table)

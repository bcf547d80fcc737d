"""The team server: idempotent write batches, API tokens and permissions.

Revision: 0004 (after 0003)
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applied_batches",
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("applied_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_applied_batches"),
    )
    op.create_index("ix_applied_batches_applied_at", "applied_batches", ["applied_at"])
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_auth_tokens"),
    )
    op.create_index("ix_auth_tokens_user_name", "auth_tokens", ["user_name"])
    op.create_table(
        "permissions",
        sa.Column("user_name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("user_name", "kind", "target", name="pk_permissions"),
    )


def downgrade() -> None:
    op.drop_table("permissions")
    op.drop_index("ix_auth_tokens_user_name", table_name="auth_tokens")
    op.drop_table("auth_tokens")
    op.drop_index("ix_applied_batches_applied_at", table_name="applied_batches")
    op.drop_table("applied_batches")

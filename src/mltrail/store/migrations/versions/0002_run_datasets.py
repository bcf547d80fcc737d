"""Dataset versions as run inputs and outputs: the run_datasets table.

Revision: 0002 (after 0001)
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_datasets",
        sa.Column("run_pk", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(6), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(4), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("nfiles", sa.Integer, nullable=True),
        sa.Column("context", sa.String(250), nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "direction", "path", "hash", name="pk_run_datasets"),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["runs.run_pk"], ondelete="CASCADE", name="fk_run_datasets_run_pk_runs"
        ),
    )
    op.create_index("ix_run_datasets_hash", "run_datasets", ["hash"])
    op.create_index("ix_run_datasets_path_hash", "run_datasets", ["path", "hash"])


def downgrade() -> None:
    op.drop_table("run_datasets")

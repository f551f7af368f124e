"""lower-case search keys for users, indexed for prefix searches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 07:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# PostgreSQL serves LIKE 'prefix%' from an index only with the C collation or text_pattern_ops.
PATTERN_INDEXES = {"ix_users_username_key_pattern": "username_key", "ix_users_email_key_pattern": "email_key",
                   "ix_users_display_name_key_pattern": "display_name_key", "ix_users_phone_pattern": "phone"}


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name_key', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('email_key', sa.String(length=254), nullable=True))
    op.execute("UPDATE users SET email_key = lower(email), display_name_key = lower(display_name)")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_display_name_key'), ['display_name_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_email_key'), ['email_key'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for name, column in PATTERN_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON users ({column} text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PATTERN_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_email_key'))
        batch_op.drop_index(batch_op.f('ix_users_display_name_key'))
        batch_op.drop_column('email_key')
        batch_op.drop_column('display_name_key')

"""staff second factor (TOTP)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 06:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_seed_encrypted', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('totp_confirmed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff_accounts', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_confirmed')
        batch_op.drop_column('totp_seed_encrypted')

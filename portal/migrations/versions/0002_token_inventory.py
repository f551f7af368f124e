"""third-party OATH token inventory

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oath_token_inventory',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('otp_type', sa.String(length=8), nullable=False),
    sa.Column('algorithm', sa.String(length=8), nullable=False),
    sa.Column('digits', sa.Integer(), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('seed_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.Column('imported_by', sa.String(length=160), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oath_token_inventory')),
    sa.UniqueConstraint('serial', name=op.f('uq_oath_token_inventory_serial'))
    )


def downgrade() -> None:
    op.drop_table('oath_token_inventory')

"""seen phone request signatures (replay protection)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 05:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=36), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_device_requests_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_requests')),
    sa.UniqueConstraint('digest', name=op.f('uq_device_requests_digest'))
    )
    with op.batch_alter_table('device_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_requests_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('device_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_requests_seen_at'))
    op.drop_table('device_requests')

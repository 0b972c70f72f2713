"""create task table

The table the tutorial's `flask db migrate` generates from its Task model, DDL for DDL, so a tutorial database
can be stamped to this revision (docs/app.md, "Adopting a tutorial database").

Revision ID: b272c71feea9
Revises:
Create Date: 2026-11-23 21:08:40.652057

"""
from alembic import op
import sqlalchemy as sa


revision = 'b272c71feea9'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=80), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    op.drop_table('task')

"""add api_token fields to user model

Revision ID: 3e5106ee570c
Revises: 366e5694a9ad
Create Date: 2025-06-02 09:03:55.104417

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3e5106ee570c'
down_revision = '366e5694a9ad'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_created_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('api_token', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_user_api_token'), ['api_token'], unique=True)


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_api_token'))
        batch_op.drop_column('api_token')
        batch_op.drop_column('token_created_at')

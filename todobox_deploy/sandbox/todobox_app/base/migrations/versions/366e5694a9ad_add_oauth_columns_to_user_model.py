"""add oauth columns to user model

Revision ID: 366e5694a9ad
Revises: 6793349c088c
Create Date: 2025-04-17 15:40:09.518842

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '366e5694a9ad'
down_revision = '6793349c088c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oauth_provider', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('oauth_id', sa.String(length=128), nullable=True))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('oauth_id')
        batch_op.drop_column('oauth_provider')

"""increase password_hash column size to 255

Revision ID: 6793349c088c
Revises:
Create Date: 2025-03-04 10:12:41.227310

The `user` table predates Flask-Migrate (it was made by ``db.create_all()``), so this first
revision creates that baseline table when it is absent (a fresh database), then widens
password_hash: Werkzeug 3 defaults to scrypt, whose hashes are 162 characters long.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6793349c088c'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    if not sa.inspect(op.get_bind()).has_table('user'):
        op.create_table(
            'user',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('username', sa.String(length=64), nullable=False),
            sa.Column('email', sa.String(length=120), nullable=True),
            sa.Column('password_hash', sa.String(length=128), nullable=True),
            sa.PrimaryKeyConstraint('id'),
        )
        with op.batch_alter_table('user', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_user_username'), ['username'], unique=True)
            batch_op.create_index(batch_op.f('ix_user_email'), ['email'], unique=True)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('password_hash',
               existing_type=sa.String(length=128),
               type_=sa.String(length=255),
               existing_nullable=True)


def downgrade():
    # Lossy: fails (strict mode) or truncates if any hash is longer than 128 characters.
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('password_hash',
               existing_type=sa.String(length=255),
               type_=sa.String(length=128),
               existing_nullable=True)

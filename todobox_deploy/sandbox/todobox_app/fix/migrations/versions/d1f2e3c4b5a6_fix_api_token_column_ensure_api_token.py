"""fix api_token column: ensure api_token and ix_user_api_token exist

Revision ID: d1f2e3c4b5a6
Revises: c682ef478e45
Create Date: 2025-07-14 11:48:02.310958

Production reads c682ef478e45 in alembic_version but has no user.api_token (see
MIGRATION_ANALYSIS.md). This revision is idempotent: it looks at the live schema and adds
only what is missing. The column and the unique index are checked separately, so a database
that has the column but lost the index is repaired too. Safe to run on a fresh database
(where 3e5106ee570c already made both): it then does nothing.
"""
import logging

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1f2e3c4b5a6'
down_revision = 'c682ef478e45'
branch_labels = None
depends_on = None

log = logging.getLogger('alembic.runtime.migration')

TABLE = 'user'
COLUMN = 'api_token'
INDEX = 'ix_user_api_token'
LENGTH = 64


def _inspect():
    # A fresh inspector each time: SQLAlchemy's inspector caches what it has seen.
    return sa.inspect(op.get_bind())


def _column():
    for col in _inspect().get_columns(TABLE):
        if col['name'] == COLUMN:
            return col
    return None


def _index_on_column():
    """The index (or unique constraint) whose columns are exactly [api_token], else None."""
    insp = _inspect()
    for idx in insp.get_indexes(TABLE):
        if idx['column_names'] == [COLUMN]:
            return idx
    for uq in insp.get_unique_constraints(TABLE):
        if uq['column_names'] == [COLUMN]:
            return dict(uq, unique=True)
    return None


def upgrade():
    if context.is_offline_mode():
        # No live schema to inspect: print the DDL for the broken state, for review only.
        op.execute(f'ALTER TABLE `{TABLE}` ADD COLUMN {COLUMN} VARCHAR({LENGTH}) NULL')
        op.execute(f'CREATE UNIQUE INDEX {INDEX} ON `{TABLE}` ({COLUMN})')
        return

    bind = op.get_bind()
    if bind.dialect.name in ('mysql', 'mariadb'):
        # Fail fast instead of queueing behind a metadata lock (the default wait is a day).
        op.execute('SET SESSION lock_wait_timeout = 60')

    col = _column()
    if col is None:
        log.info('%s.%s is missing: adding it', TABLE, COLUMN)
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            batch_op.add_column(sa.Column(COLUMN, sa.String(length=LENGTH), nullable=True))
    else:
        length = getattr(col['type'], 'length', None)
        if length is None or length < LENGTH:
            log.info('%s.%s is %s: widening it to VARCHAR(%d)', TABLE, COLUMN, col['type'], LENGTH)
            with op.batch_alter_table(TABLE, schema=None) as batch_op:
                batch_op.alter_column(COLUMN, existing_type=col['type'], type_=sa.String(length=LENGTH),
                                      existing_nullable=True)
        else:
            log.info('%s.%s already exists', TABLE, COLUMN)

    idx = _index_on_column()
    if idx is not None and idx.get('unique') and idx['name'] == INDEX:
        log.info('index %s already exists', INDEX)
        return
    if idx is not None and idx.get('unique'):
        log.info('unique index %s covers %s: renaming it to %s', idx['name'], COLUMN, INDEX)
        op.execute(f'ALTER TABLE `{TABLE}` RENAME INDEX `{idx["name"]}` TO `{INDEX}`')
        return
    if idx is not None:
        log.info('index %s on %s is not unique: replacing it', idx['name'], COLUMN)
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            batch_op.drop_index(idx['name'])

    dupes = bind.execute(sa.text(
        f'SELECT {COLUMN}, COUNT(*) FROM `{TABLE}` WHERE {COLUMN} IS NOT NULL '
        f'GROUP BY {COLUMN} HAVING COUNT(*) > 1 LIMIT 5'
    )).fetchall()
    if dupes:
        raise RuntimeError(
            f'cannot create unique index {INDEX}: duplicate {COLUMN} values exist '
            f'({len(dupes)} shown at most 5); clear them first'
        )
    log.info('creating unique index %s', INDEX)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(INDEX, [COLUMN], unique=True)


def downgrade():
    # Deliberately a no-op: this revision only ensures objects that 3e5106ee570c already owns
    # and that may now hold live tokens. Dropping them would destroy tokens and break the code
    # just as the original bug did. To undo 3e5106ee570c itself, downgrade past it.
    log.info('d1f2e3c4b5a6 downgrade: nothing to undo (ensure-only revision)')

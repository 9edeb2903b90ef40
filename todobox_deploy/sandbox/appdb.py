"""The todobox database in its production bug state.

``alembic_version`` says ``c682ef478e45`` (every migration up to it "ran"), but ``user.api_token``
and its unique index ``ix_user_api_token`` are missing: the schema 6793349c088c..c682ef478e45
leave behind when 3e5106ee570c ran before it was edited to add the token column.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

DB_NAME = "todobox"
DB_USER = "todobox"
BUG_REVISION = "c682ef478e45"
FIX_REVISION = "d1f2e3c4b5a6"
_APP_HOSTS = ("localhost", "127.0.0.1")

# What the migrations up to c682ef478e45 create on MariaDB, minus api_token and its index.
_USER_TABLE = """
CREATE TABLE `user` (
  `id` INTEGER NOT NULL AUTO_INCREMENT,
  `username` VARCHAR(64) NOT NULL,
  `email` VARCHAR(120) NULL,
  `password_hash` VARCHAR(255) NULL,
  `oauth_provider` VARCHAR(32) NULL,
  `oauth_id` VARCHAR(128) NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ix_user_username` (`username`),
  UNIQUE KEY `ix_user_email` (`email`)
)
"""
_ALEMBIC_TABLE = """
CREATE TABLE `alembic_version` (
  `version_num` VARCHAR(32) NOT NULL,
  CONSTRAINT `alembic_version_pkc` PRIMARY KEY (`version_num`)
)
"""
# Realistic rows fast: MariaDB's Sequence engine; 162-character scrypt-shaped password hashes.
_SEED_USERS = """
INSERT INTO `user` (username, email, password_hash, oauth_provider, oauth_id)
SELECT CONCAT('user', seq),
       CONCAT('user', seq, '@example.com'),
       CONCAT('scrypt:32768:8:1$', LEFT(MD5(seq), 16), '$', SHA2(CONCAT('pw', seq), 512)),
       IF(seq % 7 = 0, 'github', NULL),
       IF(seq % 7 = 0, CONCAT('gh-', seq), NULL)
FROM seq_1_to_{n}
"""


def create_database(server: ThrowawayMariaDB, password: str) -> None:
    """Create the database and the app user (``todobox``@localhost and @127.0.0.1) with ``password``.

    As a DBA would for rehearsals, the app user may also create scratch copies named ``todobox_rehearsal_*``
    (and nothing else outside its own schema)."""
    conn = server.admin_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            for host in _APP_HOSTS:
                cur.execute("CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s", (DB_USER, host, password))
                cur.execute(f"GRANT ALL PRIVILEGES ON `{DB_NAME}`.* TO %s@%s", (DB_USER, host))
                pattern = REHEARSAL_GRANT.replace("%", "%%")  # a literal % in a parameterised query
                cur.execute(f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO %s@%s", (DB_USER, host))
    finally:
        conn.close()


REHEARSAL_GRANT = DB_NAME.replace("_", "\\_") + "\\_rehearsal\\_%"
"""The schema pattern the app user may create scratch copies in (the rehearsal's)."""


def restore_bug_state(server: ThrowawayMariaDB, users: int) -> None:
    """Rebuild the tables in the bug state with ``users`` seeded rows (keeps the database and grants).

    Other sessions of the app user are killed first so that no metadata lock can stall the DROP.
    """
    conn = server.admin_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            _kill_app_sessions(cur)
            cur.execute("SET SESSION lock_wait_timeout = 20")
            cur.execute("DROP TABLE IF EXISTS `user`, `alembic_version`")
            cur.execute(_USER_TABLE)
            cur.execute(_ALEMBIC_TABLE)
            cur.execute("INSERT INTO `alembic_version` (version_num) VALUES (%s)", (BUG_REVISION,))
            if users > 0:
                cur.execute(_SEED_USERS.format(n=int(users)))
    finally:
        conn.close()


def apply_fix_ddl(server: ThrowawayMariaDB, column: bool, index: bool, revision: str = BUG_REVISION) -> None:
    """On the bug-state tables, run the fix's DDL as far as asked and set ``alembic_version``.

    ``column``: ``ALTER TABLE user ADD COLUMN api_token VARCHAR(64) NULL`` (appended, as the migration does);
    ``index`` (needs ``column``): ``CREATE UNIQUE INDEX ix_user_api_token ON user (api_token)``.
    """
    if index and not column:
        raise ValueError("the unique index needs the api_token column")
    conn = server.admin_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 20")
            if column:
                cur.execute("ALTER TABLE `user` ADD COLUMN `api_token` VARCHAR(64) NULL")
            if index:
                cur.execute("CREATE UNIQUE INDEX `ix_user_api_token` ON `user` (`api_token`)")
            cur.execute("UPDATE `alembic_version` SET version_num = %s", (revision,))
    finally:
        conn.close()


def _kill_app_sessions(cur: Any) -> None:
    cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (DB_USER,))
    for (session_id,) in cur.fetchall():
        with contextlib.suppress(Exception):  # the session may have ended meanwhile
            cur.execute(f"KILL {int(session_id)}")


def schema_summary(server: ThrowawayMariaDB) -> dict[str, Any]:
    """Version, columns, api_token indexes and row count: what tests and ``status`` report."""
    conn = server.admin_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            versions = [row[0] for row in cur.fetchall()]
            cur.execute(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = 'user' ORDER BY ORDINAL_POSITION",
                (DB_NAME,),
            )
            columns = [row[0] for row in cur.fetchall()]
            cur.execute(
                "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = 'user' AND COLUMN_NAME = 'api_token'",
                (DB_NAME,),
            )
            indexes = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT COUNT(*) FROM `user`")
            count = cur.fetchone()
    finally:
        conn.close()
    return {
        "alembic_version": versions,
        "columns": columns,
        "api_token_indexes": indexes,
        "users": int(count[0]) if count else 0,
    }

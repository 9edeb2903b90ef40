"""Checklist step 4 against the real sandbox: sshd, MariaDB through an SSH channel, the migration history."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pymysql
import pytest

from todobox_deploy.config import load_config
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.sandbox.manager import SandboxInfo

from .conftest import RunPhase

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _password(info: SandboxInfo) -> str:
    password = password_in_env_text(
        Path(load_config(info.config).app.env_file or "").read_text(), "DATABASE_URL"
    )
    assert password
    return password


def _admin(info: SandboxInfo) -> pymysql.connections.Connection:
    return pymysql.connect(
        unix_socket=str(info.db_socket), user="root", database=info.db_name, autocommit=True
    )


def test_db_check_shows_the_production_bug(sandbox_reset: SandboxInfo, run_phase: RunPhase) -> None:
    outcome, seen, transcript = run_phase("db_check", load_config(sandbox_reset.config))
    text = "\n".join(line for _, line in seen)
    assert outcome.fact("alembic_version") == "c682ef478e45"
    assert outcome.fact("user.api_token") == "MISSING"
    assert outcome.fact("unique index ix_user_api_token") == "MISSING"
    # the fix is not deployed yet: the checked-out migration files do not know d1f2e3c4b5a6
    assert outcome.status is PhaseStatus.WARNING
    assert "deploy the new code first" in outcome.summary
    assert "| password_hash  | varchar(255)" in text  # DESCRIBE user, streamed
    assert "3e5106ee570c -> c682ef478e45 (head)" in text  # the history read from the files on the host
    assert ("stdout", "  c682ef478e45") in seen
    assert _password(sandbox_reset) not in text
    assert "c682ef478e45 (head)" in transcript.read_text()
    assert _password(sandbox_reset) not in transcript.read_text()


def test_db_check_after_code_deploy_says_upgrade_needed(
    sandbox_reset: SandboxInfo, run_phase: RunPhase
) -> None:
    import git

    config = load_config(sandbox_reset.config)
    repo = git.Repo(config.app.path)
    repo.remotes.origin.pull("master")
    outcome, seen, _ = run_phase("db_check", config)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert outcome.fact("history heads") == "d1f2e3c4b5a6"
    assert "upgrade to d1f2e3c4b5a6 needed" in outcome.summary


def test_db_check_refuses_multiple_applied_heads(sandbox_reset: SandboxInfo, run_phase: RunPhase) -> None:
    with _admin(sandbox_reset) as admin, admin.cursor() as cur:
        cur.execute("INSERT INTO alembic_version (version_num) VALUES ('deadbeef0000')")
    outcome, _, _ = run_phase("db_check", load_config(sandbox_reset.config))
    assert outcome.status is PhaseStatus.FAILED
    assert "multiple heads applied" in outcome.summary


def test_wrong_password_is_a_clear_failure(sandbox: SandboxInfo, run_phase: RunPhase) -> None:
    config = load_config(sandbox.config)
    config = dataclasses.replace(
        config, database=dataclasses.replace(config.database, password_env="TODOBOX_TEST_PW")
    )
    outcome, seen, _ = run_phase("db_check", config, {"TODOBOX_TEST_PW": "not-the-password"})
    assert outcome.status is PhaseStatus.FAILED
    assert "1045" in outcome.summary and "Access denied" in outcome.summary
    assert "not-the-password" not in "\n".join(line for _, line in seen)


def test_database_down_is_a_clear_failure(sandbox: SandboxInfo, run_phase: RunPhase) -> None:
    from todobox_deploy.sandbox.ports import free_port

    config = load_config(sandbox.config)
    config = dataclasses.replace(config, database=dataclasses.replace(config.database, port=free_port()))
    outcome, _, _ = run_phase("db_check", config)
    assert outcome.status is PhaseStatus.FAILED
    assert str(config.database.port) in outcome.summary

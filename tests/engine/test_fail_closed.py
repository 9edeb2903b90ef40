"""Fail closed (issue 8): evidence is never a guess, host programs are reached by their configured path,
and the sandbox keeps its secrets parseable.

Fast tests cover the typed evidence, the flow's enforcement and the pure decisions; the rest run on the
real sandbox: a DB user granted SELECT on alembic_version only, a stop command that does nothing,
supervisorctl outside the SSH user's PATH, and a sandbox whose MariaDB was killed.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pymysql
import pytest

from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.config import AppConfig, DeployConfig, TargetConfig, load_config
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.envfile import parse_env_file, password_in_env_text
from todobox_deploy.core.outcome import (
    Fact,
    PhaseOutcome,
    PhaseStatus,
    assumed,
    cannot_verify,
    observed,
)
from todobox_deploy.core.streams import Stream
from todobox_deploy.db.grants import missing_grant, visibility_gap
from todobox_deploy.db.schema import Rows, SchemaFacts
from todobox_deploy.engine.flask_cli import app_command
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases.db_check import conclude
from todobox_deploy.engine.phases.service import stop_app
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.engine.service import service_command, service_not_found
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_down, sandbox_status, sandbox_up
from todobox_deploy.sandbox.procs import wait_gone
from todobox_deploy.sandbox.sshd import ThrowawaySshd

from .conftest import arranged_before, by_hand_before
from .test_flow import ListJournal, specs
from .test_phase_logic import CONFIG, Result, ScriptedSession

HEAD = "d1f2e3c4b5a6"
BUG = "c682ef478e45"

# -- the typed evidence and the flow's enforcement (no servers) -----------------------------------------


def test_outcome_keeps_the_pairs_view_and_the_typed_evidence() -> None:
    outcome = PhaseOutcome.of(
        PhaseStatus.OK,
        "fine",
        [observed("health", "down", "GET /health", decisive=True), ("note", "plain"), assumed("head", HEAD)],
    )
    assert outcome.facts == (("health", "down"), ("note", "plain"), ("head", HEAD))
    assert outcome.fact("health") == "down" and outcome.how("note") is None
    assert outcome.rows() == (
        ("health", "down", "observed"),
        ("note", "plain", ""),
        ("head", HEAD, "assumed"),
    )
    only = PhaseOutcome(PhaseStatus.OK, "x", evidence=(observed("a", "1"),))
    assert only.facts == (("a", "1"),)  # derived from the evidence
    assert Fact.from_json(outcome.evidence[0].to_json()) == outcome.evidence[0]
    with pytest.raises(ValueError, match="how must be one of"):
        Fact("a", "b", "guessed")  # type: ignore[arg-type]


def test_a_decisive_fact_not_observed_cannot_end_ok() -> None:
    why = cannot_verify("user.api_token", "cannot verify: table user is not visible", decisive=True)
    failed = PhaseOutcome.of(PhaseStatus.OK, "looks fine", [why]).fail_closed()
    assert failed.status is PhaseStatus.FAILED
    assert failed.summary.startswith("cannot verify: user.api_token: table user is not visible")
    guess = PhaseOutcome.of(PhaseStatus.WARNING, "w", [assumed("app", "down", decisive=True)]).fail_closed()
    assert guess.status is PhaseStatus.FAILED and "app: assumed (down), not observed" in guess.summary
    side = PhaseOutcome.of(PhaseStatus.OK, "ok", [cannot_verify("locks", "no PROCESS privilege")])
    assert side.fail_closed() is side  # not decisive: the phase may pass, the gate shows the gap
    already = PhaseOutcome.of(PhaseStatus.FAILED, "bad", [why])
    assert already.fail_closed() is already


def test_the_flow_fails_an_unverified_ok_and_journals_how_each_fact_was_obtained() -> None:
    def says_ok(call: PhaseCall) -> PhaseOutcome:
        return PhaseOutcome.of(
            PhaseStatus.OK,
            "stopped",
            [
                observed("stopped at", "12:00", "the clock"),
                cannot_verify("health", "cannot verify: InvalidURL", "GET http://x/ y", decisive=True),
            ],
        )

    journal = ListJournal()
    phases = specs(backup=PhaseSpec("backup", "b", says_ok))
    flow = DeployFlow(CHECKLIST, phases, session=None, operator="alice", host="h", journal=journal)
    seen: list[tuple[Stream, str]] = []
    outcome = flow.run("backup", lambda s, lines: seen.extend((s, x) for x in lines))
    assert outcome.status is PhaseStatus.FAILED
    assert outcome.summary.startswith("cannot verify: health: InvalidURL")
    assert flow.progress.outcomes["backup"] == outcome  # what the gate shows
    assert ("info", f"backup: failed: {outcome.summary}") in seen
    assert not flow.confirm("backup", True).accepted
    (finished,) = journal.events("phase_finished")
    assert finished["status"] == "failed" and finished["facts"]["health"] == "cannot verify: InvalidURL"
    assert finished["evidence"][1] == {
        "label": "health",
        "value": "cannot verify: InvalidURL",
        "how": "cannot verify",
        "source": "GET http://x/ y",
        "decisive": True,
    }
    assert finished["evidence"][0]["how"] == "observed"


# -- grants decide whether an absence is evidence --------------------------------------------------------

ONLY_ALEMBIC = [
    "GRANT USAGE ON *.* TO `ro`@`localhost` IDENTIFIED BY PASSWORD '*AB'",
    "GRANT SELECT ON `todobox`.`alembic_version` TO `ro`@`localhost`",
]


def test_visibility_gap_names_the_missing_grant() -> None:
    assert missing_grant("todobox", "user") == "SELECT ON `todobox`.`user` (or on `todobox`.*)"
    gap = visibility_gap(ONLY_ALEMBIC, "todobox", "user", False, "ro")
    assert gap is not None and "not visible to ro" in gap and "SELECT ON `todobox`.`user`" in gap
    assert visibility_gap(ONLY_ALEMBIC, "todobox", "alembic_version", True) is None
    column_only = ["GRANT SELECT (`id`) ON `todobox`.`user` TO `ro`@`%`"]
    assert "only through column grants" in (visibility_gap(column_only, "todobox", "user", True) or "")
    assert (
        visibility_gap(["GRANT ALL PRIVILEGES ON `todobox`.* TO `u`@`%`"], "todobox", "user", False) is None
    )


def _facts(gap: str | None) -> SchemaFacts:
    none = Rows(("COLUMN_NAME",), ())
    return SchemaFacts(
        "todobox", "user", "api_token", "10.11", False, Rows((), ()), none, Rows((), ()), True, (BUG,), gap
    )


def test_db_check_says_cannot_verify_for_a_hidden_table_and_missing_only_for_a_visible_one() -> None:
    history = [f"{BUG} -> {HEAD} (head), fix", f"<base> -> {BUG}, add"]
    gap = visibility_gap(ONLY_ALEMBIC, "todobox", "user", False, "ro")
    hidden = conclude(CONFIG.migration, _facts(gap), 0, history)
    assert hidden.status is PhaseStatus.FAILED and hidden.summary.startswith(
        "cannot verify: user: table user"
    )
    assert "does not exist" not in hidden.summary
    assert not any("MISSING" in value for _, value in hidden.facts)
    column = hidden.how("user.api_token")
    assert column is not None and column.how == "cannot verify" and column.decisive
    alembic = hidden.how("alembic_version")
    assert alembic is not None and alembic.how == "observed" and alembic.value == BUG
    absent = conclude(CONFIG.migration, _facts(None), 0, history)  # grants cover it: absence is evidence
    assert absent.fact("user.api_token") == "MISSING" and "table user does not exist" in absent.summary


# -- host programs by path -------------------------------------------------------------------------------


def test_the_configured_programs_run_and_a_missing_one_names_its_key() -> None:
    app = AppConfig(
        path="/srv/app",
        service_manager="supervisor",
        supervisorctl="/opt/venv/bin/supervisorctl",
        git="/usr/local/bin/git",
    )
    assert service_command(app, "stop") == ["/opt/venv/bin/supervisorctl", "stop", "todobox"]
    systemd = dataclasses.replace(app, service_manager="systemd", systemctl="/bin/systemctl")
    assert service_command(systemd, "status") == ["/bin/systemctl", "is-active", "--", "todobox"]
    assert service_not_found(app, "stop", 127) == (
        "/opt/venv/bin/supervisorctl: command not found on the host: set [app] supervisorctl to its "
        "absolute path"
    )
    assert service_not_found(app, "stop", 1) is None
    text = app_command(app, ["git", "rev-parse", "HEAD"])
    assert "exec /usr/local/bin/git rev-parse HEAD" in text and "set [app] git" in text
    assert app_command(app, ["ls", "-la"]).endswith("exec ls -la")


def test_stop_without_supervisorctl_on_the_path_names_the_key() -> None:
    config = dataclasses.replace(CONFIG, app=dataclasses.replace(CONFIG.app, health_url=None))
    # the status runs too (read-only, in the same round trip) and fails the same way
    session = ScriptedSession(
        {"supervisorctl stop todobox": Result(127), "status": Result(127)}, config=config
    )
    seen: list[tuple[Stream, str]] = []
    call = PhaseCall(
        session, lambda s, ls: seen.extend((s, x) for x in ls), threading.Event(), DeployContext()
    )  # type: ignore[arg-type]
    outcome = stop_app(call)
    hint = "supervisorctl: command not found on the host: set [app] supervisorctl to its absolute path"
    assert outcome.status is PhaseStatus.FAILED and hint in outcome.summary
    assert ("error", hint) in seen


# -- on the real sandbox ----------------------------------------------------------------------------------

RO_USER = "todobox_ro"
RO_ENV = "TODOBOX_RO_PASSWORD"


def _admin(info: SandboxInfo) -> Any:
    return pymysql.connect(unix_socket=str(info.db_socket), user="root", autocommit=True)


@pytest.fixture
def alembic_only_user(sandbox: SandboxInfo) -> Iterator[tuple[DeployConfig, dict[str, str]]]:
    """The sandbox's config pointed at a DB user granted SELECT on todobox.alembic_version only."""
    password = "Ro-" + secrets.token_urlsafe(15)
    hosts = ("localhost", "127.0.0.1")
    with _admin(sandbox) as conn, conn.cursor() as cur:
        for host in hosts:
            cur.execute("CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s", (RO_USER, host, password))
            cur.execute(f"GRANT SELECT ON `{sandbox.db_name}`.`alembic_version` TO %s@%s", (RO_USER, host))
    config = load_config(sandbox.config)
    database = dataclasses.replace(
        config.database, user=RO_USER, password_env=RO_ENV, password_env_file_key=None, password_prompt=False
    )
    try:
        yield dataclasses.replace(config, database=database), {RO_ENV: password}
    finally:
        with _admin(sandbox) as conn, conn.cursor() as cur:
            for host in hosts:
                cur.execute("DROP USER IF EXISTS %s@%s", (RO_USER, host))


def _journaled(
    phase_id: str, config: DeployConfig, environ: dict[str, str], pins: Path
) -> tuple[PhaseOutcome, ListJournal, list[str]]:
    """The real phase run by a DeployFlow over a fresh session, with its journal kept."""
    session = DeploySession(
        config,
        connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=pins),
        environ=environ,
    )
    journal = ListJournal()
    flow = DeployFlow(
        CHECKLIST, by_hand_before(phase_id), session=session, operator="t", host="h", journal=journal
    )
    seen: list[str] = []
    try:
        arranged_before(flow, phase_id)
        outcome = flow.run(phase_id, lambda s, lines: seen.extend(lines))
    finally:
        flow.close(0, "the test ended")
        session.close()
    return outcome, journal, seen


def _no_missing_journaled(journal: ListJournal) -> dict[str, Any]:
    (finished,) = journal.events("phase_finished")
    assert not any("MISSING" in str(v) for v in finished["facts"].values()), finished["facts"]
    assert not any("MISSING" in e["value"] for e in finished["evidence"])
    return finished


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_db_check_with_select_on_alembic_version_only_cannot_verify(
    sandbox_state: Any, alembic_only_user: tuple[DeployConfig, dict[str, str]], tmp_path: Path
) -> None:
    sandbox_state("fixed")  # the column and its index exist: the restricted user must not call them missing
    config, environ = alembic_only_user
    outcome, journal, seen = _journaled("db_check", config, environ, tmp_path / "pins")
    assert outcome.status is PhaseStatus.FAILED, outcome.summary
    assert outcome.summary.startswith("cannot verify: ")
    assert f"not visible to {RO_USER}" in outcome.summary
    assert "missing grant: SELECT ON `todobox`.`user` (or on `todobox`.*)" in outcome.summary
    assert "does not exist" not in outcome.summary and "MISSING" not in outcome.summary
    assert outcome.fact("alembic_version") == HEAD  # what it can see, it reports as observed
    column = outcome.how("user.api_token")
    assert column is not None and column.how == "cannot verify" and column.decisive
    finished = _no_missing_journaled(journal)
    hows = {e["label"]: e["how"] for e in finished["evidence"]}
    assert hows["user.api_token"] == "cannot verify" and hows["alembic_version"] == "observed"
    assert environ[RO_ENV] not in "\n".join(seen)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_preflight_with_select_on_alembic_version_only_cannot_verify(
    sandbox_reset: SandboxInfo, alembic_only_user: tuple[DeployConfig, dict[str, str]], tmp_path: Path
) -> None:
    config, environ = alembic_only_user
    outcome, journal, _ = _journaled("preflight", config, environ, tmp_path / "pins")
    assert outcome.status is PhaseStatus.FAILED, outcome.summary
    assert "cannot verify the database state: table user is not visible to todobox_ro" in outcome.summary
    assert "SELECT ON `todobox`.`user`" in outcome.summary
    state = outcome.how("database state")
    assert state is not None and state.how == "cannot verify" and state.decisive
    # no classification was made from what it could not see
    assert not any(s in outcome.summary for s in ("stamped but not applied", "needs migration"))
    assert outcome.fact("next action") is None and outcome.fact("migration plan") is None
    _no_missing_journaled(journal)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_stop_command_that_does_nothing_fails_because_the_app_still_answers(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    config = load_config(sandbox_reset.config)
    app = dataclasses.replace(
        config.app, service_manager="command", stop_command=("true",), start_command=("true",)
    )
    outcome, journal, _ = _journaled("stop_app", dataclasses.replace(config, app=app), {}, tmp_path / "pins")
    assert outcome.status is PhaseStatus.FAILED
    assert "still answers 200" in outcome.summary
    health = outcome.how("health")
    assert health is not None and health.how == "observed" and health.decisive
    assert health.source == f"GET {app.health_url} from the host"
    (finished,) = journal.events("phase_finished")
    assert finished["status"] == "failed"


@pytest.fixture
def bare_path_sshd(tmp_path: Path) -> Iterator[ThrowawaySshd]:
    """A second sshd on the same machine whose sessions get a system PATH only (no venv, no sandbox bin)."""
    server = ThrowawaySshd(tmp_path / "sshd", session_env={"PATH": "/usr/local/bin:/usr/bin:/bin"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _through(server: ThrowawaySshd, config: DeployConfig) -> DeployConfig:
    target = TargetConfig(
        host=server.host,
        port=server.port,
        user=server.user,
        identity_file=server.client_key,
        known_hosts=server.known_hosts,
        ssh_config=config.target.ssh_config,
        run_root=config.target.run_root,
    )
    return dataclasses.replace(config, target=target)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_supervisorctl_outside_the_path_is_reached_through_the_configured_path(
    sandbox_reset: SandboxInfo, bare_path_sshd: ThrowawaySshd, tmp_path: Path
) -> None:
    config = _through(bare_path_sshd, load_config(sandbox_reset.config))
    session = DeploySession(
        config,
        connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=tmp_path / "p"),
        environ={},
    )
    try:
        assert session.capture("command -v supervisorctl").exit_status != 0  # not on this user's PATH
        missing_git = dataclasses.replace(config.app, git="/nonexistent/bin/git")
        res = session.capture(app_command(missing_git, ["git", "rev-parse", "HEAD"]))
        assert res.exit_status == 127
        assert "/nonexistent/bin/git: command not found on the host: set [app] git" in res.stderr
        assert session.capture(app_command(config.app, ["git", "rev-parse", "HEAD"])).exit_status == 0
    finally:
        session.close()

    refused, _, _ = _journaled("stop_app", config, {}, tmp_path / "pins1")
    assert refused.status is PhaseStatus.FAILED
    assert (
        "supervisorctl: command not found on the host: set [app] supervisorctl to its absolute path"
        in refused.summary
    )
    program = Path(sys.executable).parent / "supervisorctl"
    if not program.exists():
        program = sandbox_reset.directory / "bin" / "supervisorctl"
    absolute = dataclasses.replace(config, app=dataclasses.replace(config.app, supervisorctl=str(program)))
    stopped, _, seen = _journaled("stop_app", absolute, {}, tmp_path / "pins2")
    assert stopped.status is PhaseStatus.OK, stopped.summary
    assert (stopped.fact("health") or "").startswith("down (observed: ")
    assert any(line.startswith(f"$ {program} -c ") for line in seen)
    started, _, _ = _journaled("start_app", absolute, {}, tmp_path / "pins3")
    assert started.status in (PhaseStatus.OK, PhaseStatus.WARNING), started.summary
    assert started.fact("health") == "200"


# -- the sandbox keeps its secrets parseable ----------------------------------------------------------------

SPECIAL = "p@ss:w/rd%41?#&=+ ;'\"\\~`"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_sandbox_up_after_its_mariadb_was_killed_keeps_the_password_parseable(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox"
    info = sandbox_up(directory, users=20)
    try:
        assert info.app_dir is not None
        env_file = info.app_dir / ".env"
        # an operator's special-character password, URL-encoded as a DATABASE_URL must be
        with _admin(info) as conn, conn.cursor() as cur:
            for host in ("localhost", "127.0.0.1"):
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (info.db_user, host, SPECIAL))
        text = env_file.read_text()
        url = parse_env_file(text)["DATABASE_URL"]
        old = urlsplit(url).password or ""
        env_file.write_text(text.replace(f":{old}@", f":{quote(SPECIAL, safe='')}@"))
        assert password_in_env_text(env_file.read_text(), "DATABASE_URL") == SPECIAL

        status = sandbox_status(directory)
        assert status is not None
        pid = status.processes["mariadbd"]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_gone([pid], 10.0) == []
        again = sandbox_up(directory, users=20)
        assert again.processes["mariadbd"] not in (None, pid)

        url = parse_env_file(env_file.read_text())["DATABASE_URL"]
        assert password_in_env_text(env_file.read_text(), "DATABASE_URL") == SPECIAL  # the product
        from sqlalchemy.engine import make_url

        assert make_url(url).password == SPECIAL  # the app (Flask-SQLAlchemy) reads it so too
        assert "@" not in (urlsplit(url).password or "") and "/" not in (urlsplit(url).password or "")
        conn = pymysql.connect(host="127.0.0.1", port=again.db_port, user=again.db_user, password=SPECIAL)
        conn.close()  # the database accepts exactly that password
    finally:
        sandbox_down(directory)

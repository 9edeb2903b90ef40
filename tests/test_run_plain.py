"""``todobox-deploy run --plain`` end to end on the real sandbox, as a subprocess fed on stdin.

Covers a whole deploy answered line by line (with a command run by hand at a gate), ``--yes`` never
confirming a phase that needs a person, ``--yes`` to the end followed by ``rollback --plain --yes``, a
tampered journal, the host lock between two runs, and resuming after a ``kill -9`` at a gate and in the
middle of a phase.

Every run gets its own copy of the sandbox's deploy config whose host lock lives in the test's tmp dir
(see :func:`run_helpers.private_config`), and its own ``XDG_STATE_HOME`` for the session folders.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from run_helpers import (
    PlainProcess,
    SecretWatch,
    app_status,
    events,
    health_url,
    journal_in,
    pid_gone,
    private_config,
    read_events,
    run_cli,
    wait_until,
)

from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.engine.lock import LockOwner
from todobox_deploy.sandbox.appdb import BUG_REVISION, DB_NAME, FIX_REVISION
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PHASES = (
    "backup",
    "preflight",
    "rehearsal",
    "notify",
    "stop_app",
    "deploy_code",
    "verify_files",
    "db_check",
    "migrate",
    "verify_migration",
    "start_app",
    "post_verify",
)
BEFORE_STOP = PHASES[: PHASES.index("stop_app")]
ONLINE = "Migrate online"  # the question at the stop gate when the rehearsal saw an additive migration
READ_ITEMS = [
    "Done by hand: Read MIGRATION_FIX_SUMMARY.md?",
    "Done by hand: Read MIGRATION_ANALYSIS.md to understand the issue?",
]
ACCEPTABLE = {"ok", "warning", "skipped"}


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """``spawn(config, *args, operator=..., by_hand=...)``: a PlainProcess using this test's state dir."""
    started: list[PlainProcess] = []

    def start(config: Path, *args: str, **kwargs: Any) -> PlainProcess:
        proc = PlainProcess(config, tmp_path / "state", *args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()


@pytest.fixture
def config(sandbox_reset: SandboxInfo, tmp_path: Path) -> Iterator[Path]:
    """The sandbox's deploy config (bug state), with the host lock under this test's tmp dir. The bug
    state is put back afterwards, for the tests that use the session sandbox as it is."""
    yield private_config(sandbox_reset.config, tmp_path)
    sandbox_restore(sandbox_reset.directory)


def _status(url: str) -> int | None:
    """The app's HTTP status, None when nothing answers (10 s to answer: the host is busy deploying)."""
    return app_status(url, timeout=10)


def _state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _lock_file(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "deploy.lock"


def _head(info: SandboxInfo) -> str:
    assert info.app_dir is not None
    done = subprocess.run(
        ["git", "-C", str(info.app_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _sql(info: SandboxInfo, statement: str) -> list[tuple[Any, ...]]:
    """A query as MariaDB's root over the sandbox's socket (not through the tool)."""
    conn = ThrowawayMariaDB(info.directory / "db").admin_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


def _revision(info: SandboxInfo) -> list[str]:
    return [str(r[0]) for r in _sql(info, "SELECT version_num FROM alembic_version")]


def _checksum(info: SandboxInfo) -> int:
    return int(_sql(info, "CHECKSUM TABLE `user`")[0][1])


def _password(info: SandboxInfo) -> str:
    assert info.app_dir is not None
    password = password_in_env_text((info.app_dir / ".env").read_text(), "DATABASE_URL")
    assert password and len(password) >= 16
    return password


def _verify(journal: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(["journal", "verify", str(journal)], state)


def _answer(question: str) -> str:
    """y to everything, except the online migration: the checklist's order (stop, migrate, start)."""
    return "n" if question.startswith(ONLINE) else "y"


def _answer_until_gate(proc: PlainProcess, phase: str) -> None:
    """Answer every question up to (not including) ``phase``'s ``Confirm?``, which is left pending."""
    while (question := proc.next_prompt(90)) != "Confirm?" or proc.phase != phase:
        proc.answer(_answer(question))


def _phases(journal: Path, event: str) -> list[str]:
    return [str(e["phase"]) for e in events(journal, event)]


def _context(journal: Path) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for e in events(journal, "context_updated"):
        context.update(e["changes"])
    return context


def _assert_secret_nowhere(password: str, journals: list[Path], *texts: str) -> None:
    for text in texts:
        assert password not in text
    for journal in journals:
        assert password not in journal.read_text(), journal
        for path in (journal.parent / "transcripts").iterdir():
            assert password not in path.read_text(errors="replace"), path


def _assert_watch_clean(watch: SecretWatch) -> None:
    assert watch.scans >= 20 and len(watch.processes) > 20, (watch.scans, len(watch.processes))
    assert not watch.hits, watch.hits


def _blocking_git(info: SandboxInfo, directory: Path, subcommand: str) -> tuple[Path, Path, Path]:
    """Make ``git <subcommand>`` on the host wait for a release file (a ``git`` first on the sandbox's
    PATH); every other git command goes to the real git.

    Returns (the wrapper, the file the blocked command writes its pid to, the release file). The released
    command exits 1 having done nothing. The caller removes the wrapper.
    """
    real_git = shutil.which("git")
    assert real_git is not None
    wrapper = info.directory / "bin" / "git"
    assert not wrapper.exists()
    pid_file, release = directory / f"{subcommand}.pid", directory / "release"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = {subcommand} ]; then\n'
        f"  echo $$ > '{pid_file}'\n"
        f"  while [ ! -e '{release}' ]; do sleep 0.05; done\n"
        "  exit 1\n"
        "fi\n"
        f"exec '{real_git}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper, pid_file, release


# -- 1. a whole deploy, answered line by line ------------------------------------------------------------


def test_plain_deploy_answered_line_by_line_fixes_the_app(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    password = _password(info)
    commit_before = _head(info)
    checksum_before = _checksum(info)
    assert _revision(info) == [BUG_REVISION]
    assert _status(info.app_url) == 500  # the bug: the user list fails

    questions: list[str] = []
    by_hand: subprocess.CompletedProcess[str] | None = None
    with SecretWatch(password) as watch:  # every process's argv and environment, during the whole run
        run = spawn(config)
        journal = run.journal
        while (question := run.next_prompt_or_end(120)) is not None:
            questions.append(question)
            if question == "Confirm?" and run.phase == "migrate":  # a check by hand, at the gate
                by_hand = run_cli(
                    ["exec", "--config", str(config), "--app", "--", "flask", "db", "current"], state
                )
            run.answer(_answer(question))
        code = run.wait()
    assert code == 0, run.output + run.stderr
    assert "deploy complete" in run.output
    _assert_watch_clean(watch)

    # the questions: the reading items, a gate per phase, the online offer declined, no work by hand
    assert questions[:2] == READ_ITEMS
    assert questions.count("Confirm?") == len(PHASES)
    assert [q for q in questions if q.startswith(ONLINE)] == [
        "Migrate online (the app keeps serving until the restart)?"
    ]
    assert not [q for q in questions if q.startswith("Carried out by hand")]
    assert "Done by hand: Team notified of successful deployment?" in questions
    assert questions[-2:] == ["Done by hand: All features functional?", "Sign off as alice?"]
    (signed,) = events(journal, "signed_off")
    assert signed["signed_by"] == "alice"
    signoff = (journal.parent / "signoff.md").read_text()
    assert "Signed by: alice" in signoff and "| Migration completed without errors | ✔ pass |" in signoff
    assert json.loads((journal.parent / "signoff.json").read_text())["signed_by"] == "alice"
    assert re.findall(r"(?m)^== .* \((\w+)\) ==$", run.output) == list(PHASES)

    # the host: the fix is deployed, migrated and the user list works again
    assert _status(info.app_url) == 200
    assert _revision(info) == [FIX_REVISION]
    (column,) = _sql(
        info,
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'user' AND COLUMN_NAME = 'api_token'",
    )
    assert column == ("varchar(64)",)
    commit_after = _head(info)
    assert commit_after != commit_before
    assert not _lock_file(tmp_path).exists()  # released

    # the journal: intact, every phase run and confirmed by alice, none by hand
    verified = _verify(journal, state)
    assert verified.returncode == 0, verified.stdout
    assert f"intact, {len(read_events(journal))} entries" in verified.stdout
    assert _phases(journal, "phase_started") == list(PHASES)
    finished = {e["phase"]: e for e in events(journal, "phase_finished")}
    assert list(finished) == list(PHASES)
    assert finished["notify"]["status"] == "skipped"  # no channel configured: the operator confirms
    assert all(e["status"] in ACCEPTABLE - {"skipped"} for p, e in finished.items() if p != "notify")
    confirmed = {e["phase"]: e for e in events(journal, "phase_confirmed")}
    assert list(confirmed) == list(PHASES)
    for e in confirmed.values():
        assert e["by_hand"] is False and e["unattended"] is False and e["operator"] == "alice", e
    assert not events(journal, "phase_by_hand") and not events(journal, "phase_not_confirmed")
    assert len(events(journal, "online_migration_declined")) == 1
    assert all(e["unattended"] is False for e in events(journal, "item_confirmed"))
    assert events(journal, "session_ended", exit_code=0)

    # the command run by hand went into this session's journal, between the migration and its confirmation
    assert by_hand is not None and by_hand.returncode == 0, by_hand
    assert by_hand.stdout.strip() == f"{FIX_REVISION} (head)"
    assert f"recorded in the open deploy session {journal}" in by_hand.stderr
    (execd,) = events(journal, "exec_command")
    assert execd["command"] == "flask db current" and execd["exit_code"] == 0 and execd["app"] is True
    assert finished["migrate"]["seq"] < execd["seq"] < confirmed["migrate"]["seq"]

    # the context: a verified backup (the real file, read back here), commits, revisions, times
    context = _context(journal)
    backup = context["backup"]
    assert backup["verified"] is True and backup["tables"] == ["alembic_version", "user"]
    dump = Path(backup["path"])
    data = dump.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (backup["size"], backup["sha256"])
    sql = gzip.decompress(data)
    assert b"CREATE TABLE `user`" in sql and b"INSERT INTO `user`" in sql
    assert password.encode() not in sql
    assert context["commit_before"] == commit_before
    assert context["commit_target"] == context["commit_after"] == commit_after
    assert context["db_revision_before"] == BUG_REVISION
    assert context["db_revision_after"] == FIX_REVISION
    assert context["checksum_before"] == f"user={checksum_before}"
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00"
    assert re.fullmatch(stamp, context["app_down_at"]) and re.fullmatch(stamp, context["app_up_at"])
    assert context["app_down_at"] < context["app_up_at"]

    # the output: live lines tagged by stream, evidence as aligned tables
    out = run.output
    assert re.search(r"(?m)^out\| todobox: stopped$", out)
    assert re.search(r"(?m)^out\| Fast-forward$", out)
    assert re.search(
        r"(?m)^evidence:\n  stopped at +\[observed\] \S+\n(.*\n)*?  health +\[observed\] down \(observed: ",
        out,
    )
    assert re.search(
        rf"(?m)^evidence:\n  commit before +{commit_before}\n  commit after +{commit_after}$", out
    )
    assert re.search(r"(?m)^  check +(\[observed\] )?200$", out)
    assert re.search(r"(?m)^  sha256 +(\[observed\] )?" + backup["sha256"] + "$", out)

    # the DB password is nowhere: not on the screen, not in the journal, not in a transcript
    transcripts = sorted((journal.parent / "transcripts").iterdir())
    assert {p.name for p in transcripts} == {f"{p}.log" for p in PHASES}
    _assert_secret_nowhere(password, [journal], out, run.stderr, by_hand.stdout + by_hand.stderr)


# -- 2. --yes never confirms a phase that needs a person ---------------------------------------------------


def _yes_run(
    config: Path, state: Path, by_hand: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], Path]:
    done = run_cli(
        ["run", "--config", str(config), "--plain", "--yes", "--operator", "robot"],
        state,
        timeout=180,
        by_hand=by_hand,
    )
    return done, journal_in(done.stdout, done.stderr)


def test_plain_yes_stops_at_a_phase_done_by_hand_and_changes_nothing(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path
) -> None:
    """The backup made not automatable (its body removed in the launcher): ``--yes`` stops there."""
    info, state = sandbox_reset, _state(tmp_path)
    commit = _head(info)
    dumps = sorted((info.directory / "backups").iterdir())
    assert (_status(info.app_url), _status(health_url(info.config))) == (500, 200)

    done, journal = _yes_run(config, state, by_hand=("backup",))

    assert done.returncode == 3, done.stdout + done.stderr
    assert re.search(
        r"(?m)^stopped at backup \(Backup production database\): it is not automated", done.stdout
    )
    assert "--yes never confirms work done by hand" in done.stdout
    assert "Carried out by hand" not in done.stdout  # --yes never answers that question
    assert f"{READ_ITEMS[0]} [y/N] y (--yes)" in done.stdout

    items = events(journal, "item_confirmed")
    assert [e["item"] for e in items] == ["predeploy.read_summary", "predeploy.read_analysis"]
    assert all(e["unattended"] is True and e["operator"] == "robot" for e in items)
    for event in ("phase_started", "phase_by_hand", "phase_confirmed", "phase_finished"):
        assert not events(journal, event), event
    assert events(journal, "session_ended", exit_code=3)
    assert _verify(journal, state).returncode == 0

    # nothing changed on the host: the app still answers (with the bug), same commit, no dump, no lock
    assert (_status(info.app_url), _status(health_url(info.config))) == (500, 200)
    assert _head(info) == commit
    assert sorted((info.directory / "backups").iterdir()) == dumps
    assert not _lock_file(tmp_path).exists()


# -- 3. --yes to the end, then rollback --yes ---------------------------------------------------------------


def test_plain_yes_deploys_unattended_and_rollback_yes_puts_everything_back(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    password = _password(info)
    commit_before, checksum_before = _head(info), _checksum(info)
    assert _revision(info) == [BUG_REVISION]

    with SecretWatch(password) as watch:
        done, journal = _yes_run(config, state)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (_status(info.app_url), _revision(info)) == (200, [FIX_REVISION])
        back = run_cli(
            ["rollback", "--config", str(config), "--plain", "--yes", "--operator", "robot"], state, 180
        )
    _assert_watch_clean(watch)

    # the deploy: every phase run and confirmed unattended, every item too, and the report says so
    assert "deploy complete" in done.stdout
    order = "(--yes keeps the checklist's order: stop, migrate, start; --online takes the offer)"
    assert order in done.stdout
    assert "Carried out by hand" not in done.stdout
    confirmed = events(journal, "phase_confirmed")
    assert [e["phase"] for e in confirmed] == list(PHASES)
    assert all(
        e["unattended"] is True and e["by_hand"] is False and e["operator"] == "robot" for e in confirmed
    )
    items = events(journal, "item_confirmed")
    assert len(items) == 14 and all(e["unattended"] is True for e in items)
    assert events(journal, "online_migration_declined")
    assert _context(journal)["backup"]["verified"] is True
    report = run_cli(["report", str(journal)], state)
    assert report.returncode == 0, report.stderr
    assert report.stdout.count("**⚠ unattended**") >= len(PHASES)
    assert "**✅ Journal chain verifies**" in report.stdout

    # the rollback: exit 0, the revision, the data and the code as before the deploy, the app up
    assert back.returncode == 0, back.stdout + back.stderr
    assert "rollback complete" in back.stdout
    assert _revision(info) == [BUG_REVISION]
    assert _checksum(info) == checksum_before
    assert _head(info) == commit_before
    assert _status(health_url(info.config)) == 200
    rolled = journal_in(back.stdout)
    (header,) = events(rolled, "session_started")
    assert header["kind"] == "rollback" and header["deploy_session"] == str(journal.parent)
    assert events(rolled, "session_ended", exit_code=0)
    rb_confirmed = events(rolled, "phase_confirmed")
    assert rb_confirmed and all(e["unattended"] is True for e in rb_confirmed)
    assert not events(rolled, "phase_not_confirmed")
    assert _verify(rolled, state).returncode == 0
    assert not _lock_file(tmp_path).exists()
    _assert_secret_nowhere(password, [journal, rolled], done.stdout, done.stderr, back.stdout, back.stderr)


# -- 4. a changed journal no longer verifies -------------------------------------------------------------


def test_tampered_journal_is_caught_and_report_flags_unattended(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path
) -> None:
    state = _state(tmp_path)
    done, journal = _yes_run(config, state, by_hand=("backup",))  # quick: it stops at the backup
    assert done.returncode == 3
    lines = journal.read_bytes().split(b"\n")[:-1]
    assert len(lines) >= 5
    k = len(lines) // 2  # 0-based index of a middle line: line k+1, which line k+2 vouches for
    ts = re.search(rb'"ts": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d(\d)', lines[k])
    assert ts, lines[k]
    digit = ts.group(1)
    lines[k] = lines[k][: ts.start(1)] + (b"1" if digit != b"1" else b"2") + lines[k][ts.end(1) :]
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"\n".join(lines) + b"\n")
    assert len(tampered.read_bytes()) == len(journal.read_bytes())  # exactly one byte differs

    bad = _verify(tampered, state)
    assert bad.returncode == 1, bad.stdout
    assert f"BROKEN at line {k + 2}: " in bad.stdout
    assert f"line {k + 1} was changed" in bad.stdout

    good = _verify(journal, state)
    assert good.returncode == 0 and "intact" in good.stdout, good.stdout

    report = run_cli(["report", str(journal)], state)
    assert report.returncode == 0, report.stderr
    assert "**⚠ unattended**" in report.stdout
    assert "**✅ Journal chain verifies**" in report.stdout
    tampered_report = run_cli(["report", str(tampered)], state)
    assert "**⚠ Journal chain does NOT verify**" in tampered_report.stdout


# -- 5. the host lock ------------------------------------------------------------------------------------


def test_second_deploy_is_locked_out_until_the_first_ends(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    state = _state(tmp_path)
    first = spawn(config, operator="alice")
    assert first.next_prompt() == READ_ITEMS[0]  # A waits, holding the lock
    owner = LockOwner.from_json(_lock_file(tmp_path).read_text())
    assert (owner.operator, owner.pid) == ("alice", first.proc.pid)

    locked = run_cli(["run", "--config", str(config), "--plain", "--yes", "--operator", "bob"], state)
    assert locked.returncode == 4, locked.stdout + locked.stderr
    assert "locked by alice@" in locked.stderr
    assert "nothing was run" in locked.stderr
    assert LockOwner.from_json(_lock_file(tmp_path).read_text()) == owner  # B left A's lock alone
    sessions = (state / "todobox-deploy" / "sessions").glob("*/journal.jsonl")
    refused = [p for p in sessions if p != first.journal]
    assert len(refused) == 1
    assert events(refused[0], "lock_refused") and events(refused[0], "session_ended", exit_code=4)
    assert not events(refused[0], "item_confirmed")  # nothing was run, nothing confirmed
    assert not events(refused[0], "phase_started")

    first.close_stdin()  # end of input: no, at every question; the backup runs, its gate says no
    assert first.wait() == 3
    assert "stopped at backup: not confirmed" in first.output
    assert not _lock_file(tmp_path).exists()

    again = run_cli(["run", "--config", str(config), "--plain", "--operator", "bob"], state)
    assert again.returncode == 3, again.stdout + again.stderr
    assert "locked by" not in again.stderr + again.stdout
    assert "stopped at backup: not confirmed" in again.stdout
    assert "did not end" not in again.stdout  # A ended properly: nothing to resume


# -- 6. resume after kill -9 at a gate -------------------------------------------------------------------


def test_resume_after_kill_at_the_stop_gate(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    first = spawn(config, operator="alice")
    first_journal = first.journal
    _answer_until_gate(first, "stop_app")
    header = first.output.index("\n== 1. Stop Application (If Needed) (stop_app) ==\n")
    assert first.output.index("\nevidence:\n", header) > header
    assert first.output.endswith("Confirm? [y/N] ")
    first.kill()
    assert not events(first_journal, "session_ended")
    assert _status(health_url(info.config)) is None  # the app is down now
    assert _lock_file(tmp_path).exists()  # left behind by the killed run

    second = spawn(config, operator="bob")
    assert second.next_prompt() == "Resume from there?"
    out = second.output
    assert f"The last session for this host did not end: {first_journal}" in out
    assert "the app is DOWN on the host" in out
    assert "resume at: stop_app (already done on the host" in out
    second.answer("y")
    second_journal = second.journal
    assert second.next_prompt() == "Confirm?"  # no question about the online migration: it was declined
    shown = second.output[second.output.index("== 1. Stop Application") :]
    assert "already done on the host" in shown and "not run again" in shown
    assert "supervisorctl" not in second.output  # the stop command was not run again
    second.answer("y")
    second.close_stdin()  # no at the next gate
    assert second.wait() == 3, second.output + second.stderr
    assert "stopped at deploy_code: not confirmed" in second.output

    (header_event,) = events(second_journal, "session_started")
    assert header_event["unfinished_session"] == str(first_journal)
    assert [e["resumed_from"] for e in events(second_journal, "resumed")] == [str(first_journal)]
    assert _phases(second_journal, "phase_carried") == list(BEFORE_STOP)
    assert [e["item"] for e in events(second_journal, "item_carried")] == [
        "predeploy.read_summary",
        "predeploy.read_analysis",
    ]
    assert _phases(second_journal, "phase_started") == ["deploy_code"]
    assert events(second_journal, "phase_finished", phase="stop_app", proven_on_host=True)
    assert events(second_journal, "phase_confirmed", phase="stop_app", operator="bob")
    assert events(second_journal, "resume_offered", accepted=True, resume_at="stop_app")
    assert events(second_journal, "lock_taken", take_over=True)  # the killed holder is provably gone
    assert not (second_journal.parent / "transcripts" / "stop_app.log").exists()
    assert _verify(second_journal, state).returncode == 0
    assert _status(health_url(info.config)) is None  # still down: nobody started it

    # the second session ended properly: no offer to resume it
    third = spawn(config, operator="carol")
    third.close_stdin()
    assert third.wait() == 3
    assert "did not end" not in third.output
    assert "Resume from there?" not in third.output
    assert "unfinished_session" not in read_events(third.journal)[0]


def test_a_locked_out_run_does_not_hide_the_open_session(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    """Regression: the refused run's journal (ended, exit 4) is the newest session folder; it must not
    count as "the last session", or ``exec`` stops journaling into the open one and a crash of the open
    one is never offered for resume."""
    state = _state(tmp_path)
    first = spawn(config, operator="alice")
    first_journal = first.journal
    _answer_until_gate(first, "stop_app")  # stop_app ran: the app is down
    locked = run_cli(["run", "--config", str(config), "--plain", "--yes", "--operator", "bob"], state)
    assert locked.returncode == 4, locked.stdout + locked.stderr

    by_hand = run_cli(["exec", "--config", str(config), "--", "true"], state)
    assert by_hand.returncode == 0, by_hand.stderr
    assert f"recorded in the open deploy session {first_journal}" in by_hand.stderr
    assert events(first_journal, "exec_command", command="true", exit_code=0)

    first.kill()
    after = spawn(config, operator="carol")
    assert after.next_prompt() == "Resume from there?"
    assert f"The last session for this host did not end: {first_journal}" in after.output
    assert "the app is DOWN on the host" in after.output
    after.close_stdin()
    assert after.wait() == 3


# -- 7. resume after kill -9 while a phase runs ----------------------------------------------------------


def test_resume_after_kill_during_deploy_code_never_stops_the_app_again(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    """deploy_code is held in its ``git merge`` (a wrapper on the host) while the run is killed."""
    info, state = sandbox_reset, _state(tmp_path)
    commit_before = _head(info)
    wrapper, pid_file, release = _blocking_git(info, tmp_path, "merge")
    try:
        first = spawn(config, operator="alice")
        first_journal = first.journal
        _answer_until_gate(first, "stop_app")
        first.answer("y")
        first.wait_for(r"== 2\. Deploy New Code \(deploy_code\) ==")
        merge_pid = int(
            wait_until(
                lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the merge on the host"
            )
        )
        first.kill()  # while deploy_code waits in its git merge
    finally:
        release.touch()
        wrapper.unlink()
    wait_until(lambda: pid_gone(merge_pid), 30, "the released merge to exit")
    assert events(first_journal, "phase_started", phase="deploy_code")
    assert not events(first_journal, "phase_finished", phase="deploy_code")
    assert _head(info) == commit_before  # the merge never ran
    stops_before = (info.directory / "logs" / "app.log").read_text().count("Handling signal: term")

    second = spawn(config, operator="bob")
    assert second.next_prompt() == "Resume from there?"
    assert "the earlier session ended while deploy_code was running" in second.output
    assert "resume at: deploy_code" in second.output
    assert "resume at: deploy_code (already done" not in second.output
    second.answer("y")
    second_journal = second.journal
    assert second.next_prompt() == "Confirm?"  # deploy_code ran again, from the start
    second.close_stdin()
    assert second.wait() == 3, second.output + second.stderr

    assert "== 1. Stop Application" not in second.output
    assert "supervisorctl" not in second.output
    assert _phases(second_journal, "phase_carried") == [*BEFORE_STOP, "stop_app"]
    assert _phases(second_journal, "phase_started") == ["deploy_code"]
    assert not (second_journal.parent / "transcripts" / "stop_app.log").exists()
    assert "stopped at deploy_code: not confirmed" in second.output
    assert events(second_journal, "phase_finished", phase="deploy_code", status="ok")
    assert _head(info) == _context(second_journal)["commit_target"] != commit_before  # fast-forwarded
    assert _status(health_url(info.config)) is None  # still down: never started (nor stopped again)
    assert (info.directory / "logs" / "app.log").read_text().count("Handling signal: term") == stops_before
    assert _verify(second_journal, state).returncode == 0

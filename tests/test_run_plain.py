"""``todobox-deploy run --plain`` end to end on the real sandbox, as a subprocess fed on stdin.

Covers a whole deploy with the migration done by hand in the middle, ``--yes`` stopping at the first
gate that needs a person, a tampered journal, the host lock between two runs, and resuming after a
``kill -9`` at a gate and in the middle of a phase.

Every run gets its own copy of the sandbox's deploy config whose host lock lives in the test's tmp dir
(see :func:`run_helpers.private_config`), and its own ``XDG_STATE_HOME`` for the session folders.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from run_helpers import (
    PlainProcess,
    events,
    pid_gone,
    private_config,
    read_events,
    run_cli,
    wait_until,
)

from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.engine.lock import LockOwner
from todobox_deploy.sandbox.appdb import BUG_REVISION
from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.manager import SandboxInfo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

PHASES = (
    "backup",
    "stop_app",
    "deploy_code",
    "verify_files",
    "db_check",
    "migrate",
    "verify_migration",
    "start_app",
    "post_verify",
)
BY_HAND = {"backup", "migrate", "verify_migration", "post_verify"}
MIGRATION_QUESTION = "Carried out by hand: 5. Run Database Migrations?"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """``spawn(config, *args, operator=...)``: a PlainProcess using this test's state dir."""
    started: list[PlainProcess] = []

    def start(config: Path, *args: str, operator: str = "alice") -> PlainProcess:
        proc = PlainProcess(config, tmp_path / "state", *args, operator=operator)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()


@pytest.fixture
def config(sandbox_reset: SandboxInfo, tmp_path: Path) -> Path:
    """The sandbox's deploy config (bug state), with the host lock under this test's tmp dir."""
    return private_config(sandbox_reset.config, tmp_path)


def _state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _lock_file(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "deploy.lock"


def _health_url(info: SandboxInfo) -> str:
    return info.app_url.rsplit("/", 1)[0] + "/health"


def _status(url: str) -> int | None:
    """The app's HTTP status, None when nothing answers."""
    try:
        return http_status(url, timeout=10)
    except OSError:
        return None


def _head(info: SandboxInfo) -> str:
    assert info.app_dir is not None
    done = subprocess.run(
        ["git", "-C", str(info.app_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _verify(journal: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(["journal", "verify", str(journal)], state)


def _answer_until_confirm(proc: PlainProcess) -> None:
    """Answer y to every question up to (not including) the first ``Confirm?``, which is left pending."""
    while proc.next_prompt() != "Confirm?":
        proc.answer("y")


def _phases(journal: Path, event: str) -> list[str]:
    return [str(e["phase"]) for e in events(journal, event)]


def _by_hand_fetch(info: SandboxInfo, directory: Path) -> tuple[Path, Path, Path]:
    """Make ``git fetch`` on the host wait for a release file (a ``git`` first on the sandbox's PATH).

    Returns (the wrapper, the file the blocked fetch writes its pid to, the release file). The released
    fetch exits 1 without fetching. The caller removes the wrapper.
    """
    real_git = shutil.which("git")
    assert real_git is not None
    wrapper = info.directory / "bin" / "git"
    assert not wrapper.exists()
    pid_file, release = directory / "fetch.pid", directory / "release"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = fetch ]; then\n'
        f"  echo $$ > '{pid_file}'\n"
        f"  while [ ! -e '{release}' ]; do sleep 0.05; done\n"
        "  exit 1\n"
        "fi\n"
        f"exec '{real_git}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper, pid_file, release


# -- 1. a whole deploy, the migration done by hand in the middle -----------------------------------------


def test_plain_deploy_with_migration_by_hand(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    assert info.app_dir is not None
    password = password_in_env_text((info.app_dir / ".env").read_text(), "DATABASE_URL")
    assert password and len(password) >= 16
    commit_before = _head(info)
    assert _status(info.app_url) == 500  # the bug: the user list fails

    run = spawn(config)
    journal = run.journal
    questions: list[str] = []
    upgrade: subprocess.CompletedProcess[str] | None = None
    while (question := run.next_prompt_or_end(90)) is not None:
        questions.append(question)
        if question == MIGRATION_QUESTION:  # step 5 by hand, on the host, while the session is open
            upgrade = run_cli(
                ["exec", "--config", str(config), "--app", "--", "flask", "db", "upgrade"], state
            )
            assert upgrade.returncode == 0, upgrade.stderr
        run.answer("y")
    code = run.wait()
    assert code == 0, run.output + run.stderr
    assert "deploy complete" in run.output
    assert upgrade is not None, questions
    assert f"Running upgrade {BUG_REVISION} -> " in upgrade.stderr
    assert str(journal) in upgrade.stderr  # "recorded in the open deploy session <journal>"

    # the questions: 5 gates on automated phases, 4 phases by hand, every manual item
    assert questions.count("Confirm?") == 5
    by_hand_questions = [q for q in questions if q.startswith("Carried out by hand: ")]
    assert by_hand_questions == [
        "Carried out by hand: Backup production database?",
        MIGRATION_QUESTION,
        "Carried out by hand: 6. Verify Migration Completed?",
        "Carried out by hand: 8. Post-Deployment Verification?",
    ]
    assert "Done by hand: Team notified of successful deployment?" in questions
    assert "Done by hand: All features functional?" in questions

    # the host: the fix is deployed and the user list works again
    assert _status(info.app_url) == 200
    commit_after = _head(info)
    assert commit_after != commit_before
    assert not _lock_file(tmp_path).exists()  # released

    # the journal: intact, every phase confirmed, by hand where it was
    verified = _verify(journal, state)
    entries = read_events(journal)
    assert verified.returncode == 0, verified.stdout
    assert f"intact, {len(entries)} entries" in verified.stdout
    confirmed = {e["phase"]: e for e in events(journal, "phase_confirmed")}
    assert list(confirmed) == list(PHASES)
    for phase, e in confirmed.items():
        assert e["by_hand"] is (phase in BY_HAND), e
        assert e["unattended"] is False and e["operator"] == "alice"
    assert not events(journal, "phase_not_confirmed")
    assert set(_phases(journal, "phase_by_hand")) == BY_HAND
    assert events(journal, "session_ended", exit_code=0)

    # the migration by hand went into this session's journal, before step 5 was confirmed
    (execd,) = events(journal, "exec_command")
    assert execd["command"] == "flask db upgrade" and execd["exit_code"] == 0 and execd["app"] is True
    assert confirmed["db_check"]["seq"] < execd["seq"] < confirmed["migrate"]["seq"]

    context: dict[str, Any] = {}
    for e in events(journal, "context_updated"):
        context.update(e["changes"])
    assert context["commit_before"] == commit_before
    assert context["commit_after"] == commit_after
    assert context["db_revision_before"] == BUG_REVISION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", context["app_down_at"])

    # the output: live lines tagged by stream, evidence as aligned tables
    out = run.output
    assert re.search(r"(?m)^out\| todobox: stopped$", out)
    assert re.search(r"(?m)^out\| Fast-forward$", out)
    assert re.search(r"(?m)^evidence:\n  stopped at  \S+\n  health      down$", out)
    assert re.search(
        rf"(?m)^evidence:\n  commit before +{commit_before}\n  commit after +{commit_after}$", out
    )
    assert re.search(r"(?m)^  check +200$", out)

    # the DB password is nowhere: not on the screen, not in the journal, not in a transcript
    transcripts = sorted((journal.parent / "transcripts").iterdir())
    assert {p.name for p in transcripts} == {f"{p}.log" for p in PHASES if p not in BY_HAND}
    assert password not in out and password not in run.stderr
    assert password not in upgrade.stdout + upgrade.stderr
    assert password not in journal.read_text()
    for path in transcripts:
        assert password not in path.read_text(), path


# -- 2. --yes stops at the first step done by hand -------------------------------------------------------


def _yes_run(config: Path, state: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    done = run_cli(["run", "--config", str(config), "--plain", "--yes", "--operator", "robot"], state)
    match = re.search(r"(?m)^journal: (\S+)$", done.stdout)
    assert match, done.stdout + done.stderr
    return done, Path(match.group(1))


def test_plain_yes_stops_at_the_backup_and_changes_nothing(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    commit = _head(info)
    assert (_status(info.app_url), _status(_health_url(info))) == (500, 200)

    done, journal = _yes_run(config, state)

    assert done.returncode == 3, done.stdout + done.stderr
    assert re.search(
        r"(?m)^stopped at backup \(Backup production database\): it is not automated", done.stdout
    )
    assert "Carried out by hand" not in done.stdout  # --yes never answers that question
    assert "Done by hand: Read MIGRATION_FIX_SUMMARY.md? [y/N] y (--yes)" in done.stdout

    items = events(journal, "item_confirmed")
    assert [e["item"] for e in items] == ["predeploy.read_summary", "predeploy.read_analysis"]
    assert all(e["unattended"] is True and e["operator"] == "robot" for e in items)
    for event in ("phase_started", "phase_by_hand", "phase_confirmed", "phase_finished"):
        assert not events(journal, event), event
    assert events(journal, "session_ended", exit_code=3)
    assert _verify(journal, state).returncode == 0

    # nothing changed on the host: the app still answers (with the bug), same commit, lock released
    assert (_status(info.app_url), _status(_health_url(info))) == (500, 200)
    assert _head(info) == commit
    assert not _lock_file(tmp_path).exists()


# -- 3. a changed journal no longer verifies -------------------------------------------------------------


def test_tampered_journal_is_caught_and_report_flags_unattended(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path
) -> None:
    state = _state(tmp_path)
    done, journal = _yes_run(config, state)
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


# -- 4. the host lock ------------------------------------------------------------------------------------


def test_second_deploy_is_locked_out_until_the_first_ends(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    state = _state(tmp_path)
    first = spawn(config, operator="alice")
    assert first.next_prompt() == "Done by hand: Read MIGRATION_FIX_SUMMARY.md?"  # A waits, holding the lock
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

    first.close_stdin()  # end of input: no, at every question
    assert first.wait() == 3
    assert "stopped at backup: not done by hand" in first.output
    assert not _lock_file(tmp_path).exists()

    again = run_cli(["run", "--config", str(config), "--plain", "--yes", "--operator", "bob"], state)
    assert again.returncode == 3, again.stdout + again.stderr
    assert "locked by" not in again.stderr + again.stdout
    assert "stopped at backup" in again.stdout
    assert "did not end" not in again.stdout  # A ended properly: nothing to resume


# -- 5. resume after kill -9 at a gate -------------------------------------------------------------------


def test_resume_after_kill_at_the_stop_gate(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    first = spawn(config, operator="alice")
    first_journal = first.journal
    _answer_until_confirm(first)
    header = first.output.index("\n== 1. Stop Application (If Needed) (stop_app) ==\n")
    assert first.output.index("\nevidence:\n", header) > header
    assert first.output.endswith("Confirm? [y/N] ")
    first.kill()
    assert not events(first_journal, "session_ended")
    assert _status(_health_url(info)) is None  # the app is down now
    assert _lock_file(tmp_path).exists()  # left behind by the killed run

    second = spawn(config, operator="bob")
    assert second.next_prompt() == "Resume from there?"
    out = second.output
    assert f"The last session for this host did not end: {first_journal}" in out
    assert "the app is DOWN on the host" in out
    assert "resume at: stop_app (already done on the host" in out
    second.answer("y")
    second_journal = second.journal
    assert second.next_prompt() == "Confirm?"
    shown = second.output[second.output.index("== 1. Stop Application") :]
    assert "already done on the host" in shown and "not run again" in shown
    assert "supervisorctl" not in second.output  # the stop command was not run again
    second.answer("y")
    second.close_stdin()  # no at the next gate
    assert second.wait() == 3, second.output + second.stderr
    assert "stopped at deploy_code: not confirmed" in second.output

    (header,) = events(second_journal, "session_started")
    assert header["unfinished_session"] == str(first_journal)
    assert [e["resumed_from"] for e in read_events(second.journal) if e["event"] == "resumed"] == [
        str(first_journal)
    ]
    assert _phases(second_journal, "phase_carried") == ["backup"]
    assert "stop_app" not in _phases(second_journal, "phase_started")
    assert events(second_journal, "phase_finished", phase="stop_app", proven_on_host=True)
    assert events(second_journal, "phase_confirmed", phase="stop_app", operator="bob")
    assert events(second_journal, "resume_offered", accepted=True, resume_at="stop_app")
    assert events(second_journal, "lock_taken", take_over=True)  # the killed holder is provably gone
    assert not (second_journal.parent / "transcripts" / "stop_app.log").exists()
    assert _verify(second_journal, state).returncode == 0
    assert _status(_health_url(info)) is None  # still down: nobody started it

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
    _answer_until_confirm(first)  # stop_app ran: the app is down
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


# -- 6. resume after kill -9 while a phase runs ----------------------------------------------------------


def test_resume_after_kill_during_deploy_code_never_stops_the_app_again(
    sandbox_reset: SandboxInfo, config: Path, tmp_path: Path, spawn: Any
) -> None:
    info, state = sandbox_reset, _state(tmp_path)
    commit_before = _head(info)
    wrapper, pid_file, release = _by_hand_fetch(info, tmp_path)
    try:
        first = spawn(config, operator="alice")
        first_journal = first.journal
        _answer_until_confirm(first)  # the stop_app gate
        first.answer("y")
        first.wait_for(r"== 2\. Deploy New Code \(deploy_code\) ==")
        fetch_pid = int(
            wait_until(
                lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the fetch on the host"
            )
        )
        first.kill()  # while deploy_code waits in its git fetch
    finally:
        release.touch()
        wrapper.unlink()
    wait_until(lambda: pid_gone(fetch_pid), 30, "the released fetch to exit")
    assert events(first_journal, "phase_started", phase="deploy_code")
    assert not events(first_journal, "phase_finished", phase="deploy_code")
    stops_before = (info.directory / "logs" / "app.log").read_text().count("Handling signal: term")

    second = spawn(config, operator="bob")
    assert second.next_prompt() == "Resume from there?"
    assert "the earlier session ended while deploy_code was running" in second.output
    assert "resume at: deploy_code" in second.output
    second.answer("y")
    second_journal = second.journal
    assert second.next_prompt() == "Confirm?"  # deploy_code ran again, from the start
    second.close_stdin()
    assert second.wait() == 3, second.output + second.stderr

    assert "== 1. Stop Application" not in second.output
    assert "supervisorctl" not in second.output
    assert _phases(second_journal, "phase_carried") == ["backup", "stop_app"]
    assert _phases(second_journal, "phase_started") == ["deploy_code"]
    assert not (second_journal.parent / "transcripts" / "stop_app.log").exists()
    assert "stopped at deploy_code: not confirmed" in second.output
    assert events(second_journal, "phase_finished", phase="deploy_code", status="ok")
    assert _head(info) != commit_before  # B's deploy_code fast-forwarded
    assert _status(_health_url(info)) is None  # still down: never started (nor stopped again)
    assert (info.directory / "logs" / "app.log").read_text().count("Handling signal: term") == stops_before
    assert _verify(second_journal, state).returncode == 0

"""Several host commands in one round trip: exact per-step results, framing no output can forge."""

from __future__ import annotations

import pytest

from todobox_deploy.remote.batch import STEP_MARK, batch_script, capture_steps, parse_batch
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.errors import RemoteError
from todobox_deploy.remote.secrets import Secrets


def test_each_step_gets_its_own_status_output_and_time_exactly(conn: SshConnection) -> None:
    forged = f"{STEP_MARK} 1 0 0 0 - -"
    results = capture_steps(
        conn,
        [
            ["printf", "%s\\n", forged, "two\r\nlines"],  # looks like a frame: it is only output
            "printf 'no newline'; printf 'err\\n' >&2; exit 3",
            "cat; echo read-nothing",  # stdin is /dev/null: never waits for input
        ],
        stop_on_failure=False,
    )
    assert [r.exit_status for r in results] == [0, 3, 0]
    assert results[0].stdout == f"{forged}\ntwo\r\nlines\n" and results[0].stderr == ""
    assert (results[1].stdout, results[1].stderr) == ("no newline", "err\n")
    assert results[2].stdout == "read-nothing\n"
    assert all(r.seconds >= 0 for r in results)


def test_a_failed_step_ends_the_batch_and_later_steps_never_run(conn: SshConnection) -> None:
    marker = f"/tmp/todobox-batch-{id(conn)}"
    results = capture_steps(conn, ["exit 5", f"touch {marker}"])
    assert [r.exit_status for r in results] == [5]
    assert conn.capture(["test", "-e", marker]).exit_status == 1


def test_a_step_runs_in_its_own_subshell(conn: SshConnection) -> None:
    results = capture_steps(conn, ["cd / && exec pwd", "x=1; echo ${x}", "echo ${x:-unset}; pwd"])
    assert [r.stdout for r in results[:2]] == ["/\n", "1\n"]
    variable, cwd = results[2].stdout.splitlines()
    assert variable == "unset" and cwd != "/"  # neither the variable nor the cd leaked out of its step


def test_secrets_in_output_are_redacted_and_refused_in_the_command(conn: SshConnection) -> None:
    secrets = Secrets()
    secrets.add("hunter2-s3cret")
    results = capture_steps(conn, ["echo 'the password is hunter2''-s3cret'"], secrets=secrets)
    assert "hunter2-s3cret" not in results[0].stdout
    with pytest.raises(RemoteError):
        capture_steps(conn, ["echo hunter2-s3cret"], secrets=secrets)


def test_parse_refuses_unframed_or_truncated_output() -> None:
    script = batch_script(["true"])
    assert "emit 0" in script
    good = f"{STEP_MARK} 0 0 3 1 1.5 2.0\n".encode() + b"abcE"
    assert parse_batch(good) == [(0, b"abc", b"E", 0.5)]
    with pytest.raises(RemoteError, match="unframed"):
        parse_batch(b"stray\n" + good)
    with pytest.raises(RemoteError, match="truncated"):
        parse_batch(good[:-2])

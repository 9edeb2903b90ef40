"""Notify the team: the message is shown, then sent to a real local command and a real local webhook."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from todobox_deploy.config import NotifyConfig
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.phases.notify import notify
from todobox_deploy.engine.phases.spec import PhaseCall

from .test_phase_logic import CONFIG, ScriptedSession


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []
    answer = 204

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(Hook.answer)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received, Hook.answer = [], 204
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()


def run(notify_cfg: NotifyConfig) -> tuple[PhaseStatus, str, list[tuple[Stream, str]]]:
    config = dataclasses.replace(CONFIG, notify=notify_cfg)
    seen: list[tuple[Stream, str]] = []
    ctx = DeployContext(commit_target="b" * 40, migration_plan=(("upgrade", "d1f2e3c4b5a6"),))
    call = PhaseCall(ScriptedSession({}, config=config), lambda s, ls: seen.extend((s, x) for x in ls),  # type: ignore[arg-type]
                     threading.Event(), ctx)  # fmt: skip
    outcome = notify(call)
    return outcome.status, outcome.summary, seen


def test_without_a_channel_the_operator_does_it_by_hand() -> None:
    status, summary, seen = run(NotifyConfig())
    assert status is PhaseStatus.SKIPPED and "notify the team yourself" in summary
    assert any("bbbbbbbbbbbb" in line for _, line in seen)  # the message was shown


def test_the_command_gets_the_message_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "told.txt"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    status, _, seen = run(NotifyConfig(command=(sys.executable, "-c", script)))
    assert status is PhaseStatus.OK
    assert "deploying bbbbbbbbbbbb to prod" in out.read_text()
    shown = [i for i, (_, line) in enumerate(seen) if "deploying" in line]
    assert shown and shown[0] < len(seen)  # shown before the command's own output


def test_a_failing_command_fails_the_phase() -> None:
    status, summary, _ = run(NotifyConfig(command=(sys.executable, "-c", "raise SystemExit(3)")))
    assert status is PhaseStatus.FAILED and "status 3" in summary


def test_the_webhook_gets_json(hook: str) -> None:
    status, _, _ = run(NotifyConfig(webhook_url=hook))
    assert status is PhaseStatus.OK
    assert Hook.received and "upgrade d1f2e3c4b5a6" in str(Hook.received[0]["text"])


def test_a_webhook_error_or_silence_is_never_a_pass(hook: str) -> None:
    Hook.answer = 500
    status, summary, _ = run(NotifyConfig(webhook_url=hook))
    assert status is PhaseStatus.FAILED and "HTTP 500" in summary
    status, summary, _ = run(NotifyConfig(webhook_url="http://127.0.0.1:9/nothing-listens"))
    assert status is PhaseStatus.FAILED and "cannot verify" in summary


def test_the_message_says_when_there_is_nothing_to_deploy() -> None:
    from todobox_deploy.engine.phases.notify import message

    context = DeployContext(commit_target="a" * 40, nothing_to_deploy=True)
    call = PhaseCall(ScriptedSession({}), lambda s, ls: None, threading.Event(), context)  # type: ignore[arg-type]
    text = message(call)
    assert "nothing to deploy" in text and "stopped" not in text

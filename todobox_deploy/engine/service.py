"""The app's service on the host: start/stop/status commands per service manager, and HTTP probes.

Everything is built from the deploy config; probes run on the host with the app's own interpreter, so
nothing needs curl there and nothing is opened on the operator's machine.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Literal

from todobox_deploy.config import AppConfig
from todobox_deploy.engine.flask_cli import NOT_FOUND, app_python, not_found_hint

Action = Literal["start", "stop", "status", "restart"]

# Prints the status code, or "down <why>" only for a definite no-answer (connection refused, timed out)
# on a well-formed URL; anything else (a malformed URL, an unknown host) is "error <why>": not evidence.
_PROBE = """\
import socket, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as resp:
        print(resp.status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception as exc:
    why = getattr(exc, "reason", exc)
    down = isinstance(why, (ConnectionRefusedError, ConnectionResetError, socket.timeout, TimeoutError))
    print("down" if down else "error", type(why).__name__, why)
"""


# Polls a URL until it answers 200, the deadline passes, or the start command (its exit status lands in
# argv[3]) failed; prints each change of answer, then a last line "MARK <answer as _PROBE prints it>".
_WAIT_HEALTHY = """\
import os, socket, sys, time, urllib.error, urllib.request
url, limit, rc_file, mark = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
began, last = time.monotonic(), None

def once():
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except Exception as exc:
        why = getattr(exc, "reason", exc)
        down = isinstance(why, (ConnectionRefusedError, ConnectionResetError, socket.timeout, TimeoutError))
        return "%s %s %s" % ("down" if down else "error", type(why).__name__, why)

def start_failed():
    try:
        with open(rc_file) as fh:
            return fh.read().strip() not in ("", "0")
    except OSError:
        return False

while True:
    answer = once()
    if answer != last:
        print("GET %s: %s (%.2f s after the start)" % (url, answer, time.monotonic() - began), flush=True)
        last = answer
    if answer == "200" or answer.startswith("error") or start_failed() or time.monotonic() - began > limit:
        break
    time.sleep(0.05)
print(mark, answer, flush=True)
"""


def start_commands(app: AppConfig, action: Action) -> list[list[str]] | None:
    """The commands step 7 runs, in order: the start, or for a restart the stop and then the start (never
    the manager's own restart, during which a health poll could take the old process's answer for the
    new one's); None when one of them is not configured."""
    commands = [service_command(app, a) for a in (("stop", "start") if action == "restart" else (action,))]
    return None if any(argv is None for argv in commands) else [argv for argv in commands if argv]


def start_and_wait_script(
    app: AppConfig, action: Action, url: str | None, timeout: float, logs: Sequence[str], mark: str
) -> str:
    """Shell text that records each log's size, runs the start command and, at the same time, polls
    ``url`` from the host until it answers 200, so the first healthy answer is seen the moment it happens
    rather than after the process manager's own settle time (supervisord's ``startsecs``). A restart is
    the stop command, waited for, then the same: a 200 from the old process is never taken for the new.

    Prints, besides the command's output and the poll's changes of answer: ``<mark>-size N PATH`` per log
    before the start, ``<mark>-health ANSWER`` once the poll ends, ``<mark>-rc N`` for the command."""
    commands = start_commands(app, action)
    if commands is None:
        raise ValueError(f"no {action} command is configured")
    *before, argv = commands
    lines = ["t=$(mktemp -d) || exit 70", "trap 'rm -rf -- \"$t\"' EXIT"]
    for log in logs:
        q = shlex.quote(log)
        lines.append(f'printf "%s %s %s\\n" {mark}-size "$(stat -c %s -- {q} 2>/dev/null || echo 0)" {q}')
    for stop in before:  # a restart is a stop, then the start: the poll must never see the old process
        lines.append(f"{shlex.join(stop)} < /dev/null || {{ echo {mark}-rc $?; exit 0; }}")
    lines.append(f'( {shlex.join(argv)}; echo $? > "$t/rc" ) < /dev/null &')
    if url:
        poll = shlex.join([app_python(app), "-c", _WAIT_HEALTHY, url, f"{timeout:g}"])
        lines.append(f'{poll} "$t/rc" {mark}-health')
    lines.append("wait")
    lines.append(f'echo {mark}-rc "$(cat -- "$t/rc" 2>/dev/null || echo none)"')
    return "\n".join(lines) + "\n"


def service_command(app: AppConfig, action: Action) -> list[str] | None:
    """The argv that starts, stops or reports the app's service; None when no status command exists.

    ``systemctl`` and ``supervisorctl`` are the configured programs (``[app] systemctl``/``supervisorctl``:
    a name on the SSH user's PATH or an absolute path)."""
    name = app.service_name
    if app.service_manager == "systemd":
        return (
            [app.systemctl, "is-active", "--", name]
            if action == "status"
            else [app.systemctl, action, "--", name]
        )
    if app.service_manager == "supervisor":
        conf = ["-c", app.supervisor_config] if app.supervisor_config else []
        return [app.supervisorctl, *conf, action, name]
    if action == "restart":  # your own commands: stop, then start
        stop, start = service_command(app, "stop"), service_command(app, "start")
        return (
            None
            if stop is None or start is None
            else ["bash", "-c", f"{shlex.join(stop)} && {shlex.join(start)}"]
        )
    command = {"start": app.start_command, "stop": app.stop_command, "status": app.status_command}[action]
    return list(command) or None


def service_program_key(app: AppConfig, action: Action) -> str:
    """The config key naming the program that runs ``action`` on the host."""
    if app.service_manager == "systemd":
        return "[app] systemctl"
    if app.service_manager == "supervisor":
        return "[app] supervisorctl"
    return "[app] start_command and stop_command" if action == "restart" else f"[app] {action}_command"


def service_not_found(app: AppConfig, action: Action, rc: int) -> str | None:
    """The hint naming the config key when the service command's program was not found, else None."""
    argv = service_command(app, action)
    if rc != NOT_FOUND or not argv:
        return None
    program = argv[0] if argv[0] != "bash" else "the stop or start command"
    return not_found_hint(program, service_program_key(app, action))


def probe_command(app: AppConfig, url: str, timeout: float = 5.0) -> list[str]:
    """Prints the HTTP status of ``url`` as seen from the host, or ``down <reason>``."""
    return [app_python(app), "-c", _PROBE, url, str(timeout)]


def probe_says_down(output: str) -> bool:
    """The probe got a definite no-answer (refused or timed out), not merely an error."""
    return output.strip().startswith("down ")


def parse_probe(output: str) -> int | None:
    """The HTTP status a probe printed, or None when the app did not answer."""
    first = output.strip().split(" ", 1)[0]
    return int(first) if first.isdigit() else None

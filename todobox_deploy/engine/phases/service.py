"""Checklist steps 1 and 7: stop and start the application, with evidence that it really went down or up."""

from __future__ import annotations

import shlex
import threading
import time
from datetime import UTC, datetime

from todobox_deploy.core.outcome import Fact, PhaseOutcome, PhaseStatus, assumed, cannot_verify, observed
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.engine.flask_cli import NOT_FOUND, app_python, not_found_hint
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.service import (
    Action,
    parse_probe,
    probe_command,
    probe_says_down,
    service_command,
    service_not_found,
)
from todobox_deploy.engine.session import DeploySession

START_TIMEOUT = 30.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def probe_url(session: DeploySession, url: str, sink: OutputSink) -> int | None:
    """The HTTP status ``url`` answers from the host, or None when it did not answer (see probe_down)."""
    return probe(session, url, sink)[0]


def probe(session: DeploySession, url: str, sink: OutputSink) -> tuple[int | None, bool, str]:
    """(status, definitely down, what the probe said): down is a refused or timed-out connection on a
    well-formed URL; a probe that errs otherwise proves nothing (fails closed)."""
    app = session.config.app
    result = session.capture(probe_command(app, url), display=f"GET {url}")
    answer = result.stdout.strip() or result.stderr.strip() or f"no answer (exit {result.exit_status})"
    if result.exit_status == NOT_FOUND and not result.stdout.strip():
        answer = not_found_hint(app_python(app), "[app] python")
    sink("info", [f"GET {url} (from the host): {answer}"])
    return parse_probe(result.stdout), probe_says_down(result.stdout), answer


def _control(session: DeploySession, action: Action, sink: OutputSink, cancel: threading.Event) -> int:
    argv = service_command(session.config.app, action)
    if argv is None:
        return 0
    sink("info", [f"$ {' '.join(argv)}"])
    rc = session.run(argv, sink, cancel=cancel)
    hint = service_not_found(session.config.app, action, rc)
    if hint:
        sink("error", [hint])
    return rc


def _command_failed(session: DeploySession, action: Action, rc: int) -> str:
    app = session.config.app
    what = f"the {action} command for {app.service_name} exited with status {rc}"
    hint = service_not_found(app, action, rc)
    return f"{what}: {hint}" if hint else what


def _command_fact(session: DeploySession, action: Action, rc: int, *, decisive: bool = False) -> Fact:
    argv = service_command(session.config.app, action) or []
    return observed(f"{action} command", f"exit {rc}", " ".join(argv), decisive=decisive)


def stop_app(call: PhaseCall) -> PhaseOutcome:
    """Stop the service, then show it is stopped and the health URL no longer answers.

    The decisive fact is the health probe's definite no-answer (refused or timed out on a valid URL);
    without a health URL it is the stop command's exit status. With the online migration chosen at this
    gate (a purely additive migration), the app keeps serving the old code; step 7 restarts it into the
    new code, so the downtime is the restart alone."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    if call.context.online_migration:
        sink("info", ["online migration chosen: the app keeps serving the old code until step 7 restarts it"])
        return PhaseOutcome.of(
            PhaseStatus.OK,
            f"{app.service_name} left running (online migration: the migration is additive); "
            "step 7 restarts it into the new code",
            [assumed("app", "running (online migration)", "the operator's choice at the stop gate")],
        )
    rc = _control(session, "stop", sink, cancel)
    stopped_at = utc_now()
    call.establish(app_down_at=stopped_at, app_up_at=None)
    if rc != 0:
        return PhaseOutcome.of(
            PhaseStatus.FAILED,
            _command_failed(session, "stop", rc),
            [_command_fact(session, "stop", rc, decisive=True)],
        )
    facts: list[Fact] = [observed("stopped at", stopped_at, "the clock after the stop command")]
    facts.append(_command_fact(session, "stop", rc, decisive=not app.health_url))
    status_rc = _control(session, "status", sink, cancel) if service_command(app, "status") else None
    if status_rc is not None:
        facts.append(_command_fact(session, "status", status_rc))
    if app.health_url:
        source = f"GET {app.health_url} from the host"
        status, down, answer = probe(session, app.health_url, sink)
        if status is not None:
            facts.append(
                observed("health", f"{status} (observed: the app still answers)", source, decisive=True)
            )
            return PhaseOutcome.of(
                PhaseStatus.FAILED,
                f"{app.service_name} was stopped but {app.health_url} still answers {status}: "
                "another process serves the app",
                facts,
            )
        if not down:
            facts.append(cannot_verify("health", f"cannot verify: {answer}", source, decisive=True))
            return PhaseOutcome.of(
                PhaseStatus.FAILED,
                f"cannot verify that {app.service_name} is down: the probe of {app.health_url} got no "
                f"definite answer ({answer})",
                facts,
            )
        facts.append(observed("health", f"down (observed: {answer})", source, decisive=True))
    return PhaseOutcome.of(PhaseStatus.OK, f"{app.service_name} stopped at {stopped_at}", facts)


def _log_sizes(session: DeploySession, logs: tuple[str, ...]) -> dict[str, int]:
    """Each log file's size now (0 when absent), so that only what the new start writes is shown."""
    sizes: dict[str, int] = {}
    for log in logs:
        res = session.capture(["stat", "-c", "%s", "--", log], display=f"stat {log}")
        text = res.stdout.strip()
        sizes[log] = int(text) if res.exit_status == 0 and text.isdigit() else 0
    return sizes


def _log_since(
    session: DeploySession, sizes: dict[str, int], sink: OutputSink, cancel: threading.Event
) -> None:
    for log, offset in sizes.items():
        sink("info", [f"$ {log}: the lines written since this start (last 40)"])
        script = f"tail -c +{offset + 1} -- {shlex.quote(log)} | tail -n 40"
        session.run(script, sink, cancel=cancel, display=f"tail {log} since the start")


def _downtime(ctx_down: str | None, up: str) -> str | None:
    if not ctx_down:
        return None
    seconds = (datetime.fromisoformat(up) - datetime.fromisoformat(ctx_down)).total_seconds()
    return f"{seconds:.0f} s (stopped {ctx_down}, healthy {up})"


def start_app(call: PhaseCall) -> PhaseOutcome:
    """Start the service, wait for the health URL, then exercise the check URL and show the new log lines.

    The decisive fact is the health URL answering 200 (without a health URL: the start command's exit
    status). When the new code does not come up, the evidence is the process manager's state and what
    the start wrote to the logs, and the summary says how to roll back."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    sizes = _log_sizes(session, app.log_files)
    online = bool(call.context.online_migration)
    if online:  # the old code served through the migration: the downtime is this restart
        call.establish(app_down_at=utc_now(), app_up_at=None)
    action: Action = "restart" if online else "start"
    rc = _control(session, action, sink, cancel)
    facts: list[Fact] = [observed("started at", utc_now(), "the clock after the start")]
    if online:
        facts.append(
            assumed("start", "restart into the new code (online migration)", "the operator's choice")
        )
    facts.append(_command_fact(session, action, rc, decisive=not app.health_url))
    rollback = f"todobox-deploy rollback --config {session.config.source}" if session.config.source else ""
    if rc != 0:
        _control(session, "status", sink, cancel)
        _log_since(session, sizes, sink, cancel)
        return PhaseOutcome.of(
            PhaseStatus.FAILED,
            f"{_command_failed(session, action, rc)}; see the process manager's state and the new log lines "
            "above" + (f"; to roll back: {rollback}" if rollback else ""),
            facts,
        )
    status: int | None = None
    if app.health_url:
        source = f"GET {app.health_url} from the host"
        deadline = time.monotonic() + START_TIMEOUT
        answer = ""
        while not cancel.is_set():
            status, _, answer = probe(session, app.health_url, sink)
            if status == 200 or time.monotonic() > deadline:
                break
            cancel.wait(0.5)
        if status is not None:
            facts.append(observed("health", str(status), source, decisive=True))
        elif probe_says_down(answer):
            facts.append(observed("health", "down", source, decisive=True))
        else:
            facts.append(
                cannot_verify("health", f"cannot verify: {answer or 'no probe ran'}", source, decisive=True)
            )
        if cancel.is_set():
            return PhaseOutcome.of(PhaseStatus.CANCELLED, "cancelled while waiting for the app", facts)
        if status == 200:
            up = utc_now()
            call.establish(app_up_at=up)
            downtime = _downtime(call.context.app_down_at, up)
            if downtime:
                facts.append(observed("downtime", downtime, "the stop and the first healthy answer"))
        else:
            _control(session, "status", sink, cancel)
            _log_since(session, sizes, sink, cancel)
            last = status or "down"
            return PhaseOutcome.of(
                PhaseStatus.FAILED,
                f"{app.health_url} did not answer 200 within {START_TIMEOUT:.0f} s (last: {last}); "
                "the process manager's state and the new log lines are above"
                + (f"; to roll back: {rollback}" if rollback else ""),
                facts,
            )
    check: int | None = None
    if app.check_url:
        check, check_down, check_answer = probe(session, app.check_url, sink)
        source = f"GET {app.check_url} from the host"
        if check is not None or check_down:
            facts.append(observed("check", str(check) if check is not None else "down", source))
        else:
            facts.append(cannot_verify("check", f"cannot verify: {check_answer}", source))
    _log_since(session, sizes, sink, cancel)
    if app.check_url and check != 200:
        return PhaseOutcome.of(
            PhaseStatus.WARNING,
            f"{app.service_name} is up, but {app.check_url} answers {check or 'nothing'}: read the log above",
            facts,
        )
    return PhaseOutcome.of(PhaseStatus.OK, f"{app.service_name} is up and answers", facts)

"""Checklist steps 1 and 7: stop and start the application, with evidence that it really went down or up."""

from __future__ import annotations

import shlex
import threading
import time
from datetime import UTC, datetime

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.service import Action, parse_probe, probe_command, probe_says_down, service_command
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
    result = session.capture(probe_command(session.config.app, url), display=f"GET {url}")
    answer = result.stdout.strip() or result.stderr.strip() or f"no answer (exit {result.exit_status})"
    sink("info", [f"GET {url} (from the host): {answer}"])
    return parse_probe(result.stdout), probe_says_down(result.stdout), answer


def _control(session: DeploySession, action: Action, sink: OutputSink, cancel: threading.Event) -> int:
    argv = service_command(session.config.app, action)
    if argv is None:
        return 0
    sink("info", [f"$ {' '.join(argv)}"])
    return session.run(argv, sink, cancel=cancel)


def stop_app(call: PhaseCall) -> PhaseOutcome:
    """Stop the service, then show it is stopped and the health URL no longer answers.

    With the online migration chosen at this gate (a purely additive migration), the app keeps serving
    the old code; step 7 restarts it into the new code, so the downtime is the restart alone."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    if call.context.online_migration:
        sink("info", ["online migration chosen: the app keeps serving the old code until step 7 restarts it"])
        return PhaseOutcome(
            PhaseStatus.OK,
            f"{app.service_name} left running (online migration: the migration is additive); "
            "step 7 restarts it into the new code",
            (("app", "running (online migration)"),),
        )
    rc = _control(session, "stop", sink, cancel)
    stopped_at = utc_now()
    call.establish(app_down_at=stopped_at, app_up_at=None)
    if rc != 0:
        return PhaseOutcome(
            PhaseStatus.FAILED, f"the stop command for {app.service_name} exited with status {rc}"
        )
    _control(session, "status", sink, cancel)
    facts: list[tuple[str, str]] = [("stopped at", stopped_at)]
    if app.health_url:
        status, down, answer = probe(session, app.health_url, sink)
        if status is not None:
            facts.append(("health", f"{status} (observed: the app still answers)"))
            return PhaseOutcome(
                PhaseStatus.FAILED,
                f"{app.service_name} was stopped but {app.health_url} still answers {status}: "
                "another process serves the app",
                tuple(facts),
            )
        if not down:
            facts.append(("health", f"cannot verify: {answer}"))
            return PhaseOutcome(
                PhaseStatus.FAILED,
                f"cannot verify that {app.service_name} is down: the probe of {app.health_url} got no "
                f"definite answer ({answer})",
                tuple(facts),
            )
        facts.append(("health", f"down (observed: {answer})"))
    return PhaseOutcome(PhaseStatus.OK, f"{app.service_name} stopped at {stopped_at}", tuple(facts))


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

    When the new code does not come up, the evidence is the process manager's state and what the start
    wrote to the logs, and the summary says how to roll back."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    sizes = _log_sizes(session, app.log_files)
    online = bool(call.context.online_migration)
    if online:  # the old code served through the migration: the downtime is this restart
        call.establish(app_down_at=utc_now(), app_up_at=None)
    rc = _control(session, "restart" if online else "start", sink, cancel)
    facts: list[tuple[str, str]] = [("started at", utc_now())]
    if online:
        facts.append(("how", "restart into the new code (online migration)"))
    rollback = f"todobox-deploy rollback --config {session.config.source}" if session.config.source else ""
    if rc != 0:
        _control(session, "status", sink, cancel)
        _log_since(session, sizes, sink, cancel)
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"the start command for {app.service_name} exited with status {rc}; see the process manager's "
            f"state and the new log lines above" + (f"; to roll back: {rollback}" if rollback else ""),
            tuple(facts),
        )
    status: int | None = None
    if app.health_url:
        deadline = time.monotonic() + START_TIMEOUT
        while not cancel.is_set():
            status = probe_url(session, app.health_url, sink)
            if status == 200 or time.monotonic() > deadline:
                break
            cancel.wait(0.5)
        facts.append(("health", str(status) if status is not None else "down"))
        if cancel.is_set():
            return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled while waiting for the app", tuple(facts))
        if status == 200:
            up = utc_now()
            call.establish(app_up_at=up)
            downtime = _downtime(call.context.app_down_at, up)
            if downtime:
                facts.append(("downtime", downtime))
        else:
            _control(session, "status", sink, cancel)
            _log_since(session, sizes, sink, cancel)
            last = status or "down"
            return PhaseOutcome(
                PhaseStatus.FAILED,
                f"{app.health_url} did not answer 200 within {START_TIMEOUT:.0f} s (last: {last}); "
                "the process manager's state and the new log lines are above"
                + (f"; to roll back: {rollback}" if rollback else ""),
                tuple(facts),
            )
    check = probe_url(session, app.check_url, sink) if app.check_url else None
    if app.check_url:
        facts.append(("check", str(check) if check is not None else "down"))
    _log_since(session, sizes, sink, cancel)
    if app.check_url and check != 200:
        return PhaseOutcome(
            PhaseStatus.WARNING,
            f"{app.service_name} is up, but {app.check_url} answers {check or 'nothing'}: read the log above",
            tuple(facts),
        )
    return PhaseOutcome(PhaseStatus.OK, f"{app.service_name} is up and answers", tuple(facts))

"""Checklist steps 1 and 7: stop and start the application, with evidence that it really went down or up."""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from todobox_deploy.core.outcome import Fact, PhaseOutcome, PhaseStatus, assumed, cannot_verify, observed
from todobox_deploy.core.streams import CommandOutput, OutputSink, Stream
from todobox_deploy.engine.flask_cli import NOT_FOUND, app_python, not_found_hint
from todobox_deploy.engine.phases.common import show_output
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.service import (
    Action,
    parse_probe,
    probe_command,
    probe_says_down,
    service_command,
    service_not_found,
    start_and_wait_script,
    start_commands,
)
from todobox_deploy.engine.session import DeploySession

if TYPE_CHECKING:
    from todobox_deploy.remote.batch import StepResult

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
    return read_probe(session, url, result, sink)


def read_probe(
    session: DeploySession, url: str, result: CommandOutput, sink: OutputSink
) -> tuple[int | None, bool, str]:
    """What a probe of ``url`` returned, as :func:`probe` reports it (the answer shown in the log)."""
    answer = result.stdout.strip() or result.stderr.strip() or f"no answer (exit {result.exit_status})"
    if result.exit_status == NOT_FOUND and not result.stdout.strip():
        answer = not_found_hint(app_python(session.config.app), "[app] python")
    sink("info", [f"GET {url} (from the host): {answer}"])
    return parse_probe(result.stdout), probe_says_down(result.stdout), answer


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
    if call.context.nothing_to_deploy:
        return _left_up(call, "stop")
    if call.context.online_migration:
        sink("info", ["online migration chosen: the app keeps serving the old code until step 7 restarts it"])
        return PhaseOutcome.of(
            PhaseStatus.OK,
            f"{app.service_name} left running (online migration: the migration is additive); "
            "step 7 restarts it into the new code",
            [assumed("app", "running (online migration)", "the operator's choice at the stop gate")],
        )
    # the stop, the process manager's state and the health probe in one round trip; the downtime clock
    # starts when the stop is sent (a graceful stop refuses new requests from its first moment)
    stop_argv = service_command(app, "stop")
    status_argv = service_command(app, "status")
    steps: list[tuple[str, Sequence[str] | str]] = []
    if stop_argv:
        steps.append((shlex.join(stop_argv), stop_argv))
    if status_argv:
        steps.append((shlex.join(status_argv), status_argv))
    if app.health_url:
        steps.append((f"GET {app.health_url}", probe_command(app, app.health_url)))
    stopped_at = utc_now()
    call.establish(app_down_at=stopped_at, app_up_at=None)
    if stop_argv:
        sink("info", [f"$ {' '.join(stop_argv)}"])
    # read-only after the stop: they run even when it failed (status exits 3 for a stopped program)
    results = (
        session.capture_steps(steps, stop_on_failure=False, timeout=None, cancel=cancel) if steps else []
    )
    rc = results[0].exit_status if stop_argv else 0
    if stop_argv:
        show_output(sink, results[0])
        hint = service_not_found(app, "stop", rc)
        if hint:
            sink("error", [hint])
    if rc != 0:
        return PhaseOutcome.of(
            PhaseStatus.FAILED,
            _command_failed(session, "stop", rc),
            [_command_fact(session, "stop", rc, decisive=True)],
        )
    facts: list[Fact] = [observed("stopped at", stopped_at, "the clock when the stop command was sent")]
    facts.append(_command_fact(session, "stop", rc, decisive=not app.health_url))
    if status_argv:
        sink("info", [f"$ {' '.join(status_argv)}"])
        status_result = results[1 if stop_argv else 0]
        show_output(sink, status_result)
        facts.append(_command_fact(session, "status", status_result.exit_status))
    if app.health_url:
        source = f"GET {app.health_url} from the host"
        status, down, answer = read_probe(session, app.health_url, results[-1], sink)
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


def _left_up(call: PhaseCall, step: str) -> PhaseOutcome:
    """Nothing to deploy (the pre-flight found the target commit deployed and the database done): the
    app is neither stopped nor started; the evidence is that it answers now."""
    session, sink = call.session, call.sink
    app = session.config.app
    sink("info", ["nothing to deploy (see the pre-flight): the app is left running, no downtime"])
    facts: list[Fact] = [assumed(step, "not needed: nothing to deploy", "the pre-flight")]
    if not app.health_url:
        return PhaseOutcome.of(PhaseStatus.OK, f"{app.service_name} left running: nothing to deploy", facts)
    status, down, answer = probe(session, app.health_url, sink)
    source = f"GET {app.health_url} from the host"
    if status == 200:
        facts.append(observed("health", "200", source, decisive=True))
        if step == "start":  # healthy as of now: post-deploy's log scan starts here (nothing restarted it)
            call.establish(app_up_at=utc_now())
        return PhaseOutcome.of(PhaseStatus.OK, f"{app.service_name} left running: nothing to deploy", facts)
    value = str(status) if status is not None else ("down" if down else f"cannot verify: {answer}")
    facts.append(observed("health", value, source, decisive=True))
    return PhaseOutcome.of(
        PhaseStatus.FAILED,
        f"nothing to deploy, but {app.health_url} does not answer 200 ({value}): see the app's log",
        facts,
    )


def _log_since(
    session: DeploySession,
    sizes: dict[str, int],
    sink: OutputSink,
    extra: Sequence[tuple[str, Sequence[str] | str]] = (),
) -> list[StepResult]:
    """``extra`` steps, then each log's lines written since the start, in one round trip; the extra
    steps' results are returned (the log lines go to the sink)."""
    steps: list[tuple[str, Sequence[str] | str]] = list(extra)
    for log, offset in sizes.items():
        steps.append(
            (f"tail {log} since the start", f"tail -c +{offset + 1} -- {shlex.quote(log)} | tail -n 40")
        )
    if not steps:
        return []
    results = session.capture_steps(steps, stop_on_failure=False)
    for (log, _), result in zip(sizes.items(), results[len(extra) :], strict=False):
        sink("info", [f"$ {log}: the lines written since this start (last 40)"])
        show_output(sink, result)
    return results[: len(extra)]


class _StartWatch:
    """The output of the start script: passes the command's lines on, keeps the marked ones, and notes the
    operator's clock the moment the health poll reports its end (that is when the app answered)."""

    def __init__(self, sink: OutputSink) -> None:
        self.sink, self.mark = sink, f"__todobox_{secrets.token_hex(6)}"
        self.sizes: dict[str, int] = {}
        self.health: str | None = None
        self.health_at: str | None = None
        self.rc: int | None = None

    def __call__(self, stream: Stream, lines: list[str]) -> None:
        shown = []
        for line in lines:
            tag, _, rest = line.partition(" ")
            if stream == "stdout" and tag == f"{self.mark}-size":
                size, _, log = rest.partition(" ")
                self.sizes[log] = int(size) if size.isdigit() else 0
            elif stream == "stdout" and tag == f"{self.mark}-health":
                self.health, self.health_at = rest, utc_now()
            elif stream == "stdout" and tag == f"{self.mark}-rc":
                self.rc = int(rest) if rest.lstrip("-").isdigit() else None
            else:
                shown.append(line)
        if shown:
            self.sink(stream, shown)


def _downtime(ctx_down: str | None, up: str) -> str | None:
    if not ctx_down:
        return None
    seconds = (datetime.fromisoformat(up) - datetime.fromisoformat(ctx_down)).total_seconds()
    return f"{seconds:.0f} s (stopped {ctx_down}, healthy {up})"


def start_app(call: PhaseCall) -> PhaseOutcome:
    """Start the service while the host polls the health URL, then exercise the check URL and show the new
    log lines.

    The decisive fact is the health URL answering 200 (without a health URL: the start command's exit
    status); the downtime ends at that first healthy answer. When the new code does not come up, the
    evidence is the process manager's state and what the start wrote to the logs, and the summary says
    how to roll back."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    if call.context.nothing_to_deploy:
        return _left_up(call, "start")
    online = bool(call.context.online_migration)
    if online:  # the old code served through the migration: the downtime is this restart
        call.establish(app_down_at=utc_now(), app_up_at=None)
    action: Action = "restart" if online else "start"
    commands = start_commands(app, action)
    if commands is None:
        return PhaseOutcome.of(
            PhaseStatus.FAILED, f"no {action} command is configured for {app.service_name}", []
        )
    shown = " && ".join(" ".join(argv) for argv in commands)  # a restart: the stop, then the start
    watch = _StartWatch(sink)
    sink(
        "info",
        [f"$ {shown}"] + ([f"(the host polls {app.health_url} meanwhile)"] if app.health_url else []),
    )
    script = start_and_wait_script(app, action, app.health_url, START_TIMEOUT, app.log_files, watch.mark)
    sent_at = utc_now()
    run_rc = session.run(script, watch, cancel=cancel, display=f"{shown} (the host polls the health URL)")
    rc = watch.rc if watch.rc is not None else (run_rc or -1)
    facts: list[Fact] = [observed("start sent at", sent_at, "the clock when the start command was sent")]
    if online:
        facts.append(
            assumed("start", "restart into the new code (online migration)", "the operator's choice")
        )
    facts.append(observed(f"{action} command", f"exit {rc}", shown, decisive=not app.health_url))
    sizes = {log: watch.sizes.get(log, 0) for log in app.log_files}
    rollback = f"todobox-deploy rollback --config {session.config.source}" if session.config.source else ""
    status_argv = service_command(app, "status")
    status_step = [(shlex.join(status_argv), status_argv)] if status_argv else []

    def diagnose() -> None:
        for (title, _), result in zip(
            status_step, _log_since(session, sizes, sink, status_step), strict=True
        ):
            show_output(sink, result, title)

    if cancel.is_set():
        return PhaseOutcome.of(PhaseStatus.CANCELLED, "cancelled while starting the app", facts)
    if rc != 0:
        hint = service_not_found(app, action, rc)
        if hint:
            sink("error", [hint])
        diagnose()
        return PhaseOutcome.of(
            PhaseStatus.FAILED,
            f"{_command_failed(session, action, rc)}; see the process manager's state and the new log lines "
            "above" + (f"; to roll back: {rollback}" if rollback else ""),
            facts,
        )
    if app.health_url:
        source = f"GET {app.health_url} from the host (polled during the start)"
        answer = watch.health or ""
        status = parse_probe(answer)
        if status is not None:
            facts.append(observed("health", str(status), source, decisive=True))
        elif probe_says_down(answer):
            facts.append(observed("health", "down", source, decisive=True))
        else:
            facts.append(
                cannot_verify(
                    "health", f"cannot verify: {answer or 'no answer from the poll'}", source, decisive=True
                )
            )
        if status == 200 and watch.health_at:
            call.establish(app_up_at=watch.health_at)
            downtime = _downtime(call.context.app_down_at, watch.health_at)
            if downtime:
                facts.append(observed("downtime", downtime, "the stop and the first healthy answer"))
        else:
            diagnose()
            last = status or "down"
            return PhaseOutcome.of(
                PhaseStatus.FAILED,
                f"{app.health_url} did not answer 200 within {START_TIMEOUT:.0f} s (last: {last}); "
                "the process manager's state and the new log lines are above"
                + (f"; to roll back: {rollback}" if rollback else ""),
                facts,
            )
    check: int | None = None
    checks = [(f"GET {app.check_url}", probe_command(app, app.check_url))] if app.check_url else []
    results = _log_since(session, sizes, sink, checks)
    if app.check_url:
        check, check_down, answer = read_probe(session, app.check_url, results[0], sink)
        source = f"GET {app.check_url} from the host"
        if check is not None or check_down:
            facts.append(observed("check", str(check) if check is not None else "down", source))
        else:
            facts.append(cannot_verify("check", f"cannot verify: {answer}", source))
    if app.check_url and check != 200:
        return PhaseOutcome.of(
            PhaseStatus.WARNING,
            f"{app.service_name} is up, but {app.check_url} answers {check or 'nothing'}: read the log above",
            facts,
        )
    return PhaseOutcome.of(PhaseStatus.OK, f"{app.service_name} is up and answers", facts)

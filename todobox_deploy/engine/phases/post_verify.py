"""Checklist step 8, "Post-Deployment Verification": tests 1, 2, 4 and 5 and the configured commands.

Test 1 runs the HTTP checks on the host (the shipped :mod:`todobox_deploy.engine.http_checks` program,
with the app's interpreter); test 2 scans the app's logs since the app came up; tests 4 and 5 run the
configured Python snippets in the app's environment. Test 3 (login) stays the operator's.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from todobox_deploy.config import AppConfig, DeployConfig, HttpCheck
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.envfile import parse_env_file
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus, cannot_verify
from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.engine import http_checks
from todobox_deploy.engine.flask_cli import app_command, app_python
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.phases.verify_migration import Check

HTTP_TIMEOUT = 10.0  # seconds per request
SNIPPET_TIMEOUT = 120.0
LOG_TAIL_BYTES = 4 << 20  # how much of each log's end is read
SHOWN_LINES = 20  # matching log lines shown per kind
_SECRET_KEY = re.compile(r"pass|secret|token|key", re.I)

# -- test 1: HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpTest:
    """One request the check program makes, and the fact label it reports under."""

    label: str
    check: HttpCheck


def http_tests(app: AppConfig) -> list[HttpTest]:
    """The health URL, the check URL (both must answer 200) and each ``[[app.checks]]`` entry."""
    tests = [HttpTest(f"Test 1: GET {u}", HttpCheck(url=u, name=n)) for n, u in _urls(app)]
    for check in app.checks:
        name = check.name or f"{check.method.upper()} {check.url}"
        tests.append(HttpTest(f"Test 1: {name}", check))
    return tests


def _urls(app: AppConfig) -> list[tuple[str, str]]:
    return [(n, u) for n, u in (("health", app.health_url), ("check_url", app.check_url)) if u]


def http_spec(tests: Sequence[HttpTest], timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
    """The JSON the check program reads on stdin."""
    checks = []
    for test in tests:
        c = test.check
        login = None
        if c.login_url:
            login = {"url": c.login_url, "form": [list(p) for p in c.login_form], "csrf_field": c.csrf_field}
        checks.append(
            {
                "name": c.name or test.label,
                "url": c.url,
                "method": c.method.upper(),
                "form": [list(p) for p in c.form],
                "expect_status": c.expect_status,
                "login": login,
            }
        )
    return {"timeout": timeout, "checks": checks}


def parse_results(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the check program printed, one per line, in order (other lines ignored)."""
    results = []
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "status" in value:
            results.append(value)
    return results


def judge_http(label: str, result: dict[str, Any] | None, why_missing: str = "") -> Check:
    """A check passes only when its URL answered the expected status; no answer is "cannot verify"."""
    if result is None:
        return Check(
            label, "no result", "cannot verify", f"cannot verify {label}: {why_missing or 'no result'}"
        )
    status, expect = result.get("status"), result.get("expect")
    login = result.get("login") or {}
    if status is None:
        error = str(result.get("error") or "no answer")
        login_status = login.get("status") if isinstance(login, dict) else None
        if isinstance(login_status, int) and login_status >= 500:
            return Check(label, f"login answered {login_status}", "failed", f"{label}: {error}")
        return Check(label, error, "cannot verify", f"cannot verify {label}: {error}")
    observed = str(status)
    if result.get("location"):
        observed += f" -> {result['location']}"
    if status != expect:
        body = f" ({result['body']})" if result.get("body") else ""
        return Check(label, observed, "failed", f"{label} answered {status}, expected {expect}{body}")
    return Check(label, observed)


def _run_http(call: PhaseCall, tests: list[HttpTest]) -> list[Check]:
    session, sink, app = call.session, call.sink, call.config.app
    for test in tests:
        for key, value in test.check.login_form:
            if _SECRET_KEY.search(key):
                session.secrets.add(value)
    spec = json.dumps(http_spec(tests)).encode("utf-8")
    names = ", ".join(f"{t.check.method.upper()} {t.check.url}" for t in tests)
    sink("info", [f"HTTP checks from the host with {app_python(app)}: {names}"])
    result = session.capture(
        [app_python(app), "-I", "-c", inspect.getsource(http_checks)],  # -I: no stray modules from cwd
        stdin=spec,
        timeout=30 + 3 * HTTP_TIMEOUT * len(tests),
        display=f"http checks: {names}",
    )
    results = parse_results(result.stdout)
    lost = f"the check program exited {result.exit_status}: {_last_line(result.stderr) or 'no output'}"
    checks = []
    for i, test in enumerate(tests):
        check = judge_http(test.label, results[i] if i < len(results) else None, lost)
        check = replace(check, source=f"{test.check.method.upper()} {test.check.url} from the host")
        stream: Stream = "stdout" if check.verdict == "ok" else "stderr"
        sink(stream, [f"{test.check.method.upper()} {test.check.url}: {check.observed}"])
        checks.append(check)
    return checks


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip()[:200] if lines else ""


# -- test 2: the logs since the app came up -----------------------------------------------------------

_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[,.]\d+)?(Z|[+-]\d{2}:?\d{2})?(?=\s|$)")
_BRACKET = re.compile(r"^\[(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:[,.]\d+)? ([+-]\d{4})\]")  # gunicorn
_CLF = re.compile(r"^\S+ \S+ \S+ \[(\d{2}/\w{3}/\d{4}):(\d{2}:\d{2}:\d{2}) ([+-]\d{4})\]")  # access log
_ERROR = re.compile(r"Traceback|\bERROR\b")


def parse_stamp(line: str) -> datetime | None:
    """A log line's leading timestamp: naive for local time (``%(asctime)s``), aware when it names a zone."""
    for pattern, date_format in ((_ISO, "%Y-%m-%d"), (_BRACKET, "%Y-%m-%d"), (_CLF, "%d/%b/%Y")):
        m = pattern.match(line)
        if not m:
            continue
        try:
            stamp = datetime.strptime(f"{m[1]} {m[2]}", f"{date_format} %H:%M:%S")
        except ValueError:
            return None
        zone = m[3]
        if zone:
            stamp = stamp.replace(tzinfo=UTC if zone == "Z" else _zone(zone))
        return stamp
    return None


def _zone(text: str) -> timezone:
    digits = text.replace(":", "")
    sign = -1 if digits[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5])))


def parse_offset(text: str) -> timezone | None:
    """``date +%z`` output (``+0100``) as a timezone, None when it is not one."""
    text = text.strip()
    return _zone(text) if re.fullmatch(r"[+-]\d{4}", text) else None


@dataclass
class LogScan:
    """What the tail of one log says about the time since ``since``."""

    total: int = 0  # lines in the window
    lines: int = 0  # lines at or after since (continuation lines count with their record)
    stamped: int = 0  # lines with a readable timestamp in the whole window
    oldest: datetime | None = None  # the first timestamp in the window
    undated_local: bool = False  # a local-time stamp met while the host's UTC offset is unknown
    unknown_column: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _after(stamp: datetime, since: datetime, host_zone: timezone | None) -> bool | None:
    if stamp.tzinfo is None:
        if host_zone is None:
            return None
        stamp = stamp.replace(tzinfo=host_zone)
    return stamp >= since


def scan_log(lines: Sequence[str], since: datetime, host_zone: timezone | None) -> LogScan:
    """Keep the lines logged at or after ``since`` (lines without a stamp belong to the record above them;
    lines before the window's first stamp are dropped) and collect Unknown column and error lines."""
    scan = LogScan()
    keep = False
    for line in lines:
        scan.total += 1
        stamp = parse_stamp(line)
        if stamp is not None:
            scan.stamped += 1
            scan.oldest = scan.oldest or stamp
            after = _after(stamp, since, host_zone)
            if after is None:
                scan.undated_local = True
            keep = after is not False
        if not keep:
            continue
        scan.lines += 1
        if "Unknown column" in line:
            scan.unknown_column.append(line)
        elif _ERROR.search(line):
            scan.errors.append(line)
    return scan


def judge_log(
    label: str, scan: LogScan, since: datetime, window_full: bool, host_zone: timezone | None
) -> Check:
    """``Unknown column`` since the start fails; Traceback or ERROR warns; unreadable times cannot verify."""
    when = since.isoformat(timespec="seconds")
    if scan.stamped == 0:
        if scan.total == 0:
            return Check(label, "empty", "ok")
        return Check(
            label, "no timestamps", "cannot verify", f"cannot verify {label}: no line has a timestamp"
        )
    if scan.undated_local:
        return Check(
            label,
            "local times, host offset unknown",
            "cannot verify",
            f"cannot verify {label}: its times are local and the host's UTC offset is unknown",
        )
    if window_full and scan.oldest is not None and _after(scan.oldest, since, host_zone):
        return Check(
            label,
            f"last {LOG_TAIL_BYTES >> 20} MiB start after {when}",
            "cannot verify",
            f"cannot verify {label}: the last {LOG_TAIL_BYTES >> 20} MiB begin after the app came up "
            f"({when}); earlier lines were not scanned",
        )
    if scan.unknown_column:
        n = len(scan.unknown_column)
        return Check(
            label,
            f"{n} 'Unknown column' line(s)",
            "failed",
            f"{label}: {n} 'Unknown column' line(s) since {when}",
        )
    if scan.errors:
        n = len(scan.errors)
        return Check(
            label, f"{n} Traceback/ERROR line(s)", "warning", f"{label}: {n} Traceback/ERROR line(s)"
        )
    return Check(label, f"{scan.lines} line(s) since {when}, no errors")


def _run_logs(call: PhaseCall, since_text: str | None) -> list[Check]:
    session, sink, app = call.session, call.sink, call.config.app
    labels = [f"Test 2: log {path}" for path in app.log_files]
    if not labels:
        return []
    if since_text is None:
        why = "the time the app came up is unknown (start_app did not run in this deploy)"
        return [
            Check(label, "no start time", "cannot verify", f"cannot verify {label}: {why}")
            for label in labels
        ]
    since = datetime.fromisoformat(since_text)
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    zone_answer = session.capture(["date", "+%z"], display="date +%z")
    host_zone = parse_offset(zone_answer.stdout) if zone_answer.exit_status == 0 else None
    sink(
        "info",
        [f"scanning the logs from {since.isoformat(timespec='seconds')} (host UTC offset {host_zone})"],
    )
    checks = []
    for path, label in zip(app.log_files, labels, strict=True):
        q = shlex.quote(path)
        result = session.capture(
            f"stat -L -c %s -- {q} && tail -c {LOG_TAIL_BYTES} -- {q}", timeout=120, display=f"tail {path}"
        )
        size, _, text = result.stdout.partition("\n")
        if result.exit_status != 0 or not size.isdigit():
            why = _last_line(result.stderr) or f"exit status {result.exit_status}"
            checks.append(Check(label, "unreadable", "cannot verify", f"cannot verify {label}: {why}"))
            continue
        full = int(size) > LOG_TAIL_BYTES
        lines = text.splitlines()[1 if full else 0 :]  # a cut window starts mid-line
        scan = scan_log(lines, since, host_zone)
        for kind, found in (("Unknown column", scan.unknown_column), ("Traceback/ERROR", scan.errors)):
            if found:
                sink("stderr", [f"{path}: {kind} since the start:", *found[:SHOWN_LINES]])
                if len(found) > SHOWN_LINES:
                    sink("stderr", [f"... and {len(found) - SHOWN_LINES} more"])
        check = replace(
            judge_log(label, scan, since, full, host_zone), source=f"tail -c of {path} on the host"
        )
        sink("info", [f"{path}: {check.observed}"])
        checks.append(check)
    return checks


# -- tests 4 and 5, and the check commands --------------------------------------------------------------

# Runs on the target: loads the app's env file inside the interpreter (the password never reaches argv or
# the process environment block), then runs the snippet read from stdin as __main__ in the app directory.
_SNIPPET = (
    "from __future__ import annotations\nimport os, sys\n"
    + inspect.getsource(parse_env_file)
    + """
env_file, flask_app, label = sys.argv[1:4]
if env_file:
    with open(env_file, encoding="utf-8") as fh:
        os.environ.update(parse_env_file(fh.read()))
if flask_app:
    os.environ["FLASK_APP"] = flask_app
sys.path.insert(0, os.getcwd())
source = sys.stdin.read()
sys.argv = [label]
exec(compile(source, label, "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
"""
)


def snippet_command(app: AppConfig, label: str) -> str:
    """Shell text running Python read from stdin in the app's directory and environment."""
    argv = [
        "env",
        "PYTHONUNBUFFERED=1",
        app_python(app),
        "-c",
        _SNIPPET,
        app.env_file or "",
        app.flask_app or "",
    ]
    return f"cd -- {shlex.quote(app.path)} && exec {shlex.join([*argv, label])}"


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*:")  # "pkg.SomeError: why"


def judge_exit(label: str, rc: int, output: Sequence[str]) -> Check:
    """Exit 0 passes; another exit status fails; no exit status (killed, link lost) cannot verify."""
    shown = [ln.strip() for ln in output if ln.strip()]
    if rc == 0:
        return Check(label, "exit 0" + (f": {shown[0][:120]}" if shown else ""))
    if rc < 0:
        return Check(
            label, "no exit status", "cannot verify", f"cannot verify {label}: it ended without a status"
        )
    errors = [ln for ln in shown if _EXCEPTION.match(ln)]
    tail = f": {(errors or shown)[-1][:160]}" if shown else ""
    return Check(label, f"exit {rc}{tail}", "failed", f"{label} exited {rc}{tail}")


def _keep(sink: OutputSink, into: list[str]) -> OutputSink:
    def tee(stream: Stream, lines: list[str]) -> None:
        if stream in ("stdout", "stderr"):
            into.extend(lines)
        sink(stream, lines)

    return tee


def _run_snippets(call: PhaseCall) -> list[Check]:
    app, checks = call.config.app, []
    for label, source in (("Test 4: ORM query", app.orm_check), ("Test 5: API token", app.token_check)):
        if source is None or call.cancel.is_set():
            continue
        call.sink(
            "info", [f"$ python (in the app's environment) <<'EOF'  # {label}", *source.splitlines(), "EOF"]
        )
        output: list[str] = []
        rc = call.session.run(
            snippet_command(app, label),
            _keep(call.sink, output),
            cancel=call.cancel,
            stdin=source.encode("utf-8"),
            timeout=SNIPPET_TIMEOUT,
            display=f"python in the app's environment ({label})",
        )
        checks.append(replace(judge_exit(label, rc, output), source="python in the app's environment"))
    for argv in app.check_commands:
        if call.cancel.is_set():
            break
        label = f"command: {shlex.join(argv)}"[:120]
        call.sink("info", [f"$ {shlex.join(argv)}"])
        output = []
        rc = call.session.run(
            app_command(app, list(argv)),
            _keep(call.sink, output),
            cancel=call.cancel,
            timeout=SNIPPET_TIMEOUT,
        )
        checks.append(
            replace(judge_exit(label, rc, output), source=f"{shlex.join(argv)} in the app directory")
        )
    return checks


# -- the conclusion -------------------------------------------------------------------------------


def _criterion(checks: Sequence[Check]) -> str:
    if not checks:
        return "not verified"
    if any(c.verdict == "failed" for c in checks):
        return "NOT met"
    if any(c.verdict == "cannot verify" for c in checks):
        return "not verified"
    return "met"


def criteria(config: DeployConfig, context: DeployContext, checks: Sequence[Check]) -> list[tuple[str, str]]:
    """The checklist's success criteria, judged from this evidence (and the migration's, from the context)."""
    app, head = config.app, config.migration.expected_head
    revision = context.db_revision_after
    migrated = "not verified" if revision is None else "met" if revision == head else "NOT met"
    by_label = {c.label: c for c in checks}
    start_url = app.health_url or app.check_url
    starts = [by_label[f"Test 1: GET {start_url}"]] if start_url else []
    logs = [c for c in checks if c.label.startswith("Test 2:")]
    queries = [c for c in checks if c.label == "Test 4: ORM query"]
    if app.check_url:
        queries.append(by_label[f"Test 1: GET {app.check_url}"])
    return [
        ("migration completed", migrated),
        ("app starts", _criterion(starts)),
        ("no Unknown column", _criterion(logs)),
        ("DB queries work", _criterion(queries)),
    ]


def conclude(checks: Sequence[Check], judged: Sequence[tuple[str, str]]) -> PhaseOutcome:
    """OK when every check passed, WARNING when some only warned, FAILED when any failed or was unverified."""
    facts = [c.fact() for c in checks]
    facts.append(cannot_verify("Test 3: login", "manual: confirm it yourself", "the operator"))
    met = "; ".join(f"{name}: {verdict}" for name, verdict in judged)
    manual = "test 3 (login) is yours to confirm"
    failed = [c.problem for c in checks if c.verdict in ("failed", "cannot verify")]
    warned = [c.problem for c in checks if c.verdict == "warning"]
    if not checks:
        return PhaseOutcome.of(PhaseStatus.WARNING, f"nothing configured to check; {manual}", facts)
    if failed:
        return PhaseOutcome.of(PhaseStatus.FAILED, "; ".join([*failed, *warned, met, manual]), facts)
    if warned:
        return PhaseOutcome.of(PhaseStatus.WARNING, "; ".join([*warned, met, manual]), facts)
    return PhaseOutcome.of(PhaseStatus.OK, f"all {len(checks)} checks passed; {met}; {manual}", facts)


def post_verify(call: PhaseCall) -> PhaseOutcome:
    """Test 1 (HTTP), test 2 (logs since the start), tests 4 and 5 (snippets), then the check commands."""
    checks: list[Check] = []
    tests = http_tests(call.config.app)
    if tests:
        checks += _run_http(call, tests)
    if not call.cancel.is_set():
        checks += _run_logs(call, call.context.app_up_at)
    checks += _run_snippets(call)
    outcome = conclude(checks, criteria(call.config, call.context, checks))
    if call.cancel.is_set():
        return outcome.replaced(PhaseStatus.CANCELLED, "cancelled: " + outcome.summary)
    return outcome

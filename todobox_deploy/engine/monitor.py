"""Monitoring tails: which logs a deploy config lets the operator watch live, and where MySQL's error log is.

Everything comes from the config: ``[app] log_files``, ``[database] error_log`` (else asked of the server:
``@@log_error``, relative to ``@@datadir``) and, with systemd, the unit's journal. Each tail is one
long-running command over the session's SSH connection (``tail -F`` / ``journalctl -f``), stopped by its
cancel event. No Textual here: the TUI gives each tail a pane.
"""

from __future__ import annotations

import posixpath
import shlex
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from todobox_deploy.config import DeployConfig
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.remote.errors import CommandCancelled, RemoteError

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession

TAIL_LINES = 200
JOURNAL_LINES = 50
LOCAL_DB_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

TailKind = Literal["file", "mysql_error", "journal"]


@dataclass(frozen=True)
class TailSpec:
    """One live tail: ``path`` for a file (None for the MySQL error log until it is found)."""

    id: str
    title: str
    kind: TailKind
    path: str | None = None
    unit: str | None = None
    how: str = ""

    def argv(self, lines: int = TAIL_LINES) -> list[str] | None:
        """The host command that follows this log, or None while its path is unknown."""
        if self.kind == "journal" and self.unit:
            return ["journalctl", "-u", self.unit, "-f", "-n", str(JOURNAL_LINES), "--no-pager"]
        if self.path is None:
            return None
        return ["tail", "-n", str(lines), "-F", "--", self.path]


def tail_specs(config: DeployConfig) -> tuple[TailSpec, ...]:
    """The tails a config names, in tab order: each app log file, MySQL's error log, the unit's journal."""
    specs = [
        TailSpec(f"app-log-{i}", f"app: {posixpath.basename(path)}", "file", path, how="[app] log_files")
        for i, path in enumerate(config.app.log_files, 1)
    ]
    configured = config.database.error_log
    if configured and posixpath.isabs(configured):
        specs.append(
            TailSpec(
                "mysql-error",
                "MySQL error log",
                "mysql_error",
                posixpath.normpath(configured),
                how="[database] error_log",
            )
        )
    else:
        specs.append(TailSpec("mysql-error", "MySQL error log", "mysql_error", None, how="@@log_error"))
    if config.app.service_manager == "systemd":
        unit = config.app.service_name
        specs.append(TailSpec("journal", f"journal: {unit}", "journal", unit=unit, how="systemd unit"))
    return tuple(specs)


def error_log_path(value: str | None, datadir: str | None) -> str | None:
    """Where ``@@log_error`` (or ``[database] error_log``) points: None for stderr or an empty value
    (the server then logs to its service's journal or console); a relative value is under the datadir."""
    value = (value or "").strip()
    if not value or value == "stderr":
        return None
    if posixpath.isabs(value):
        return posixpath.normpath(value)
    if not datadir:
        return None
    return posixpath.normpath(posixpath.join(datadir, value))


@dataclass(frozen=True)
class ErrorLogLocation:
    """The MySQL error log found for a session: its path on the target, or None and why not."""

    path: str | None
    how: str


def discover_error_log(session: DeploySession) -> ErrorLogLocation:
    """``[database] error_log`` when absolute, else ask the server (``SELECT @@log_error, @@datadir``)."""
    db = session.config.database
    configured = (db.error_log or "").strip()
    if configured and posixpath.isabs(configured):
        return ErrorLogLocation(posixpath.normpath(configured), "[database] error_log")
    try:
        conn = session.open_db()
    except Exception as exc:  # fails closed: no guess at a path
        return ErrorLogLocation(None, f"cannot verify: the database did not answer ({_describe(exc)})")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@log_error, @@datadir")
            row = cur.fetchone()
    except Exception as exc:
        return ErrorLogLocation(None, f"cannot verify: SELECT @@log_error failed ({_describe(exc)})")
    finally:
        conn.close()
    log_error, datadir = (_text(row[0]), _text(row[1])) if row else ("", "")
    asked = f"@@log_error = {log_error!r}, @@datadir = {datadir!r}"
    if configured:  # a relative [database] error_log: under the server's datadir
        path = error_log_path(configured, datadir)
        return ErrorLogLocation(path, f"[database] error_log {configured!r} under {asked}")
    path = error_log_path(log_error, datadir)
    if path is None:
        return ErrorLogLocation(
            None,
            f"the server logs errors to its own stderr ({asked}): read the database service's journal, "
            "or set [database] error_log",
        )
    if db.host not in LOCAL_DB_HOSTS:
        return ErrorLogLocation(
            None,
            f"{path} is on the database server {db.host}, not on the SSH target ({asked}): set "
            "[database] error_log to a copy the target can read",
        )
    return ErrorLogLocation(path, f"asked the server: {asked}")


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _describe(exc: BaseException) -> str:
    from todobox_deploy.engine.flow import describe

    return describe(exc)


def resolve(session: DeploySession, spec: TailSpec, known: tuple[TailSpec, ...] = ()) -> tuple[TailSpec, str]:
    """The spec with its path found (the MySQL error log), and a line saying where it came from.

    The path stays None when it cannot be found, or when another tail in ``known`` already follows it."""
    if spec.kind != "mysql_error":
        return spec, f"{spec.title}: {spec.how}"
    found = discover_error_log(session) if spec.path is None else ErrorLogLocation(spec.path, spec.how)
    if found.path is None:
        return spec, f"MySQL error log: {found.how}"
    twin = next((t for t in known if t.kind == "file" and t.path == found.path), None)
    if twin is not None:
        return replace(spec, path=None), f"MySQL error log: {found.path} is already tailed as {twin.title!r}"
    return replace(spec, path=found.path, how=found.how), f"MySQL error log: {found.path} ({found.how})"


def run_tail(session: DeploySession, spec: TailSpec, sink: OutputSink, cancel: threading.Event) -> str:
    """Follow one tail into ``sink`` until ``cancel`` is set (blocking: a worker thread); says how it ended.

    Runs on the session's connection directly (not ``session.run``): a tail is no phase's command."""
    argv = spec.argv()
    if argv is None:
        return "not started: no path"
    sink("info", [f"$ {shlex.join(argv)}"])
    try:
        code = session.connection.run(argv, sink, cancel=cancel, secrets=session.secrets)
    except CommandCancelled:
        return "stopped"
    except RemoteError as exc:
        sink("error", [f"the tail stopped: {exc}"])
        return f"stopped: {exc}"
    if cancel.is_set():
        return "stopped"
    sink("error" if code else "info", [f"the tail ended with exit status {code}"])
    return f"ended with exit status {code}"

"""Build the host command that runs Alembic steps against the app's migrations, in one of two modes.

* ``app``: the app's own ``flask db <cmd>`` in its environment (the app is imported; it reads its own env
  file inside the interpreter, as :mod:`todobox_deploy.engine.flask_cli` does).
* ``standalone``: a small program run by the app's interpreter that builds a bare ``Flask`` +
  ``Flask-SQLAlchemy`` + ``Flask-Migrate`` on the deploy config's database (password on stdin) and runs the
  app's unchanged migration scripts without ever importing the app: it still works when the app's import
  dies on a drifted schema (``1054 Unknown column``).

Both modes start every MySQL session with ``SET SESSION lock_wait_timeout = [migration] lock_wait_timeout``
and cap a migration's own ``SET SESSION lock_wait_timeout = N`` at that value, so a held metadata lock
fails the DDL within the configured bound instead of stalling the table for a day.
"""

from __future__ import annotations

import inspect
import json
import posixpath
import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from todobox_deploy.config import DeployConfig
from todobox_deploy.engine.flask_cli import app_program_argv, app_python, flask_argv
from todobox_deploy.remote.errors import CommandTimedOut, RemoteError

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession

MigrationStep = tuple[str, str]  # ("upgrade"|"stamp"|"downgrade"|"current", revision or "")
RunnerMode = Literal["app", "standalone", "auto"]
STEP_COMMANDS = ("upgrade", "stamp", "downgrade", "current")
PROBE_TIMEOUT = 60.0
FAILED_MARK = "todobox-migrate: FAILED:"
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_@+.:-]{0,127}\Z")


def cap_lock_wait(statement: str, limit: int) -> tuple[str, int | None]:
    """``(statement, asked)``: a session ``SET ... lock_wait_timeout = N`` above ``limit`` is capped at it.

    ``asked`` is the N a statement asked for when it was capped, else None. Shipped to the host as source.
    """
    if not re.match(r"\s*SET\b", statement, re.IGNORECASE) or re.search(r"\bGLOBAL\b", statement, re.I):
        return statement, None
    asked: list[int] = []

    def cap(m: re.Match[str]) -> str:
        value = int(m.group(2))
        if value <= limit:
            return m.group(0)
        asked.append(value)
        return m.group(1) + str(limit)

    pattern = r"((?:@@(?:session\.|local\.)?)?\block_wait_timeout\s*(?::=|=)\s*)(\d+)"
    capped = re.sub(pattern, cap, statement, flags=re.IGNORECASE)
    return capped, (max(asked) if asked else None)


# Runs on the host before SQLAlchemy creates an engine (class-level listeners reach every engine).
_GUARD = '''
def install_lock_wait_guard(limit):
    """Each MySQL session starts with lock_wait_timeout = limit; a migration's own SET cannot raise it."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    def on_connect(dbapi_connection, connection_record):
        if type(dbapi_connection).__module__.split(".")[0] not in ("pymysql", "MySQLdb", "mysql"):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET SESSION lock_wait_timeout = %d" % int(limit))
        finally:
            cursor.close()

    told = set()

    def before_execute(conn, cursor, statement, parameters, context, executemany):
        capped, asked = cap_lock_wait(statement, int(limit))
        if asked is not None and asked not in told:
            told.add(asked)
            print("todobox-migrate: the migration sets lock_wait_timeout = %d; [migration] "
                  "lock_wait_timeout caps it at %d s" % (asked, int(limit)), file=sys.stderr, flush=True)
        return capped, parameters

    event.listen(Pool, "connect", on_connect)
    event.listen(Engine, "before_cursor_execute", before_execute, retval=True)
'''

# Shared by the programs below: the steps, run through Flask-Migrate's own functions (what `flask db`
# calls), and one wrapper that turns any failure into a FAILED line with the exit status kept.
_STEPS = """
IMPORT_FAILED = 86  # the app-mode runner's exit status when the app could not even be imported


def say(text):
    print("todobox-migrate: " + text, flush=True)


def run_steps(flask_migrate, steps, directory):
    where = {"directory": directory} if directory else {}
    for command, revision in steps:
        say("%s %s" % (command, revision or ""))
        if command == "upgrade":
            flask_migrate.upgrade(revision=revision or "head", **where)
        elif command == "stamp":
            flask_migrate.stamp(revision=revision, **where)
        elif command == "downgrade":
            flask_migrate.downgrade(revision=revision, **where)
        elif command == "current":
            flask_migrate.current(**where)
        else:
            raise RuntimeError("unknown step %r" % command)
    say("done")


def guarded(main):
    try:
        code = main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            print("%s Flask-Migrate exited with status %s" % (FAILED_MARK, exc.code),
                  file=sys.stderr, flush=True)
        raise
    except BaseException as exc:
        lines = (str(exc) or type(exc).__name__).splitlines() or [""]
        print("%s %s: %s" % (FAILED_MARK, type(exc).__name__, lines[0]), file=sys.stderr, flush=True)
        for line in lines[1:]:
            print("    " + line, file=sys.stderr, flush=True)
        sys.exit(1)
    sys.exit(code or 0)
""".replace("FAILED_MARK", repr(FAILED_MARK))

# Standalone: never imports the app. argv[1] = JSON settings (nothing secret); stdin line 1 = password.
_STANDALONE_PROGRAM = (
    "from __future__ import annotations\nimport importlib, json, os, re, sys\n"
    "# the app's directory is the cwd: drop it from sys.path so nothing can import the app's modules\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.', os.getcwd())]\n"
    + inspect.getsource(cap_lock_wait)
    + _GUARD
    + _STEPS
    + """
DRIVERS = (("pymysql", "mysql+pymysql"), ("MySQLdb", "mysql+mysqldb"),
           ("mysql.connector", "mysql+mysqlconnector"))


def driver():
    for module, name in DRIVERS:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        return name
    raise RuntimeError("no MySQL driver in the app's Python environment (tried pymysql, MySQLdb, "
                       "mysql.connector): install the one the app uses")


def main():
    spec = json.loads(sys.argv[1])
    password = sys.stdin.readline()
    if not password.endswith("\\n"):
        raise RuntimeError("no password line on stdin")
    password = password[:-1]
    install_lock_wait_guard(spec["lock_wait_timeout"])
    from flask import Flask
    import flask_migrate
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.engine import URL

    name = driver()
    make_url = getattr(URL, "create", URL)
    app = Flask("todobox_migrate")
    app.config["SQLALCHEMY_DATABASE_URI"] = make_url(
        name, username=spec["user"], password=password, host=spec["host"], port=spec["port"],
        database=spec["database"])
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    app.config["SQLALCHEMY_ECHO"] = False
    db = SQLAlchemy(app)
    directory = spec["directory"]
    flask_migrate.Migrate(app, db, directory=directory)
    say("standalone: migrations in %s, database %s on %s:%s as %s (driver %s); the app is not imported"
        % (directory, spec["database"], spec["host"], spec["port"], spec["user"], name))
    with app.app_context():
        run_steps(flask_migrate, spec["steps"], directory)


guarded(main)
"""
)

# App mode in one process (after flask_cli's bootstrap has loaded the env file): the app is imported once,
# as `flask` would (FLASK_APP, then .env/.flaskenv), and its own Flask-Migrate runs every step; an import
# that fails exits IMPORT_FAILED before any step ran, so the caller may run the standalone program instead.
_APP_PROGRAM = (
    "import json, traceback\n"
    + inspect.getsource(cap_lock_wait)
    + _GUARD
    + _STEPS
    + """

def load_app():
    from flask.cli import ScriptInfo
    try:
        from flask.cli import load_dotenv
        load_dotenv()
    except Exception:
        pass
    app = ScriptInfo(app_import_path=os.environ.get("FLASK_APP") or None).load_app()
    if "migrate" not in app.extensions:
        raise RuntimeError("the app has no Flask-Migrate (app.extensions has no 'migrate')")
    return app


def main():
    spec = json.loads(sys.argv[1])
    install_lock_wait_guard(spec["lock_wait_timeout"])
    try:
        app = load_app()
        import flask_migrate
    except BaseException as exc:
        why = " ".join(line.strip() for line in traceback.format_exception_only(type(exc), exc))
        what = os.environ.get("FLASK_APP") or "FLASK_APP unset"
        print("todobox-migrate: the app does not import (%s): %s" % (what, why[:800]),
              file=sys.stderr, flush=True)
        return IMPORT_FAILED
    what = os.environ.get("FLASK_APP") or "the app"
    say("app mode: %s imported once; its own Flask-Migrate runs the steps" % what)
    with app.app_context():
        run_steps(flask_migrate, spec["steps"], spec.get("directory"))


guarded(main)
"""
)
IMPORT_FAILED = 86
APP_MODE_LINE = "todobox-migrate: app mode:"
IMPORT_FAILED_LINE = "todobox-migrate: the app does not import"
STANDALONE_LINE = "todobox-migrate: standalone:"


def checked_steps(steps: Sequence[MigrationStep]) -> list[MigrationStep]:
    """The steps, refused unless each is a known command with a plain revision.

    ``stamp`` and ``downgrade`` need an explicit revision (never a blind ``stamp head`` or ``-1``)."""
    if not steps:
        raise ValueError("no migration steps to run")
    out: list[MigrationStep] = []
    for command, revision in steps:
        if command not in STEP_COMMANDS:
            raise ValueError(f"unknown migration step {command!r}; known: {', '.join(STEP_COMMANDS)}")
        if revision and not _REVISION.match(revision):
            raise ValueError(f"revision {revision!r} is not a plain revision id (letters, digits, _@+.:-)")
        if command in ("stamp", "downgrade") and not revision:
            raise ValueError(f"a {command} needs an explicit revision")
        if command == "current" and revision:
            raise ValueError("'current' takes no revision")
        out.append((command, revision))
    return out


def migrations_path(config: DeployConfig, migrations_dir: str | None = None) -> str:
    """The migrations directory on the host (relative paths are under the app's path)."""
    directory = migrations_dir or config.migration.migrations_dir
    return directory if posixpath.isabs(directory) else posixpath.join(config.app.path, directory)


def describe_steps(steps: Sequence[MigrationStep]) -> str:
    """``stamp 366e5694a9ad, upgrade d1f2e3c4b5a6``."""
    return ", ".join(f"{c} {r}".strip() for c, r in steps)


def migration_script(
    config: DeployConfig,
    steps: Sequence[MigrationStep],
    *,
    mode: RunnerMode,
    database_name: str | None = None,
    migrations_dir: str | None = None,
) -> str:
    """Shell text that runs ``steps`` in the app's directory; nothing secret in it (see migration_stdin).

    ``database_name`` (a scratch schema) needs standalone mode: the app reads its own database URL.
    """
    todo = checked_steps(steps)
    app, limit = config.app, int(config.migration.lock_wait_timeout)
    cd = f"cd -- {shlex.quote(app.path)}"
    if mode == "app":
        if database_name is not None and database_name != config.database.name:
            raise ValueError("a database_name override needs standalone mode: the app reads its own URL")
        guard = inspect.getsource(cap_lock_wait) + _GUARD + f"install_lock_wait_guard({limit})\n"
        commands = []
        for command, revision in todo:
            args = ["db", command]
            if migrations_dir:
                args += ["--directory", migrations_path(config, migrations_dir)]
            if revision:
                args.append(revision)
            commands.append(shlex.join(flask_argv(app, args, prelude=guard)))
        return " && ".join([cd, *commands])
    if mode not in ("standalone", "auto"):
        raise ValueError(f"unknown migration mode {mode!r}")
    db = config.database
    spec = {
        "host": db.host,
        "port": int(db.port),
        "user": db.user,
        "database": database_name or db.name,
        "directory": migrations_path(config, migrations_dir),
        "lock_wait_timeout": limit,
        "steps": [list(step) for step in todo],
    }
    argv = ["env", "PYTHONUNBUFFERED=1", app_python(app), "-u", "-c", _STANDALONE_PROGRAM, json.dumps(spec)]
    if mode == "standalone":
        return f"{cd} && exec {shlex.join(argv)}"
    if database_name is not None and database_name != config.database.name:
        raise ValueError("a database_name override needs standalone mode: the app reads its own URL")
    in_app = {"steps": spec["steps"], "lock_wait_timeout": limit}
    if migrations_dir:
        in_app["directory"] = spec["directory"]
    app_mode = shlex.join(app_program_argv(app, _APP_PROGRAM, [json.dumps(in_app)]))
    fallback = shlex.quote(
        "todobox-migrate: the app's own Flask-Migrate cannot run: running the app's migration scripts "
        "standalone instead (the app is not imported)"
    )
    return (
        f"{cd} && {{ {app_mode}; rc=$?; if [ $rc -eq {IMPORT_FAILED} ]; then echo {fallback}; "
        f"exec {shlex.join(argv)}; fi; exit $rc; }}"
    )


def migration_stdin(mode: RunnerMode, password: str) -> bytes | None:
    """What the command built by :func:`migration_script` reads on stdin: the password line (standalone;
    auto, for its fallback: the app-mode runner leaves stdin unread)."""
    if mode == "app":
        return None
    if "\n" in password or "\r" in password:
        raise ValueError("the database password contains a line break; standalone mode reads one line")
    return (password + "\n").encode("utf-8")


# -- reading the output ------------------------------------------------------------------------------

_ERROR_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout)\b|Error\b|ERROR\b|FATAL\b).*\S"
)


def last_error_line(lines: Sequence[str]) -> str | None:
    """The line that says what failed: the last ``todobox-migrate: FAILED`` line, else the last line that
    looks like an error (``sqlalchemy.exc.OperationalError: ...``, ``Error: ...``, ``ERROR [...] ...``)."""
    stripped = [line.strip() for line in lines]
    for line in reversed(stripped):
        if line.startswith(FAILED_MARK):
            return line[len(FAILED_MARK) :].strip()
    for line in reversed(stripped):
        if _ERROR_LINE.match(line):
            return line
    return None


def classify_probe(exit_code: int, stdout: str, stderr: str, what: str) -> tuple[bool, str]:
    """Whether the app's own ``flask db current`` works: (True, its revision output) or (False, why)."""
    if exit_code == 0:
        revisions = [line.strip() for line in stdout.splitlines() if line.strip()]
        return True, "\n".join(revisions) or "(no revision: the database has no alembic_version row)"
    lines = [*stdout.splitlines(), *stderr.splitlines()]
    text = "\n".join(lines)
    error = last_error_line(lines)
    if not text.strip():
        return False, f"`{what}` exited with status {exit_code} and printed nothing"
    if "1054" in text or "Unknown column" in text:
        return False, (
            "the app cannot be imported: it queries the database while it loads and the schema lacks a "
            f"column the code expects ({error or 'Unknown column'})"
        )
    if "No such command 'db'" in text or 'No such command "db"' in text:
        return (
            False,
            f"the app's flask CLI has no 'db' command (is Flask-Migrate set up for FLASK_APP?): {what}",
        )
    if "Could not locate a Flask application" in text or "While importing" in text:
        return False, f"the app cannot be imported: {error or text.strip().splitlines()[-1]}"
    last = error or text.strip().splitlines()[-1]
    return False, f"`{what}` failed with status {exit_code}: {last}"


def probe_app_import(session: DeploySession) -> tuple[bool, str]:
    """Run the app's own ``flask db current`` (app mode); (True, current revision) when the app imports,
    else (False, the reason in plain words). Never silent: a bare non-zero exit says what was run."""
    what = f"flask db current (in {session.config.app.path})"
    script = migration_script(session.config, [("current", "")], mode="app")
    try:
        result = session.capture(script, timeout=PROBE_TIMEOUT, display=what)
    except CommandTimedOut:
        return False, f"`{what}` did not finish within {PROBE_TIMEOUT:g} s (the app's import may hang)"
    except RemoteError as exc:
        return False, f"`{what}` could not run: {exc}"
    return classify_probe(result.exit_status, result.stdout, result.stderr, what)

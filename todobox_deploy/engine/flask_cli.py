"""Build the command that runs the Flask CLI (``flask db ...``) on the target in the app's environment.

The app's env file holds the DB password, so it is never sourced by a shell (that would put the password
in the initial environment, readable in ``/proc/PID/environ``) nor put on a command line. A tiny Python
bootstrap reads the file inside the interpreter, sets ``os.environ`` (which does not change the process's
initial environment block) and then hands over to ``flask.cli.main``.
"""

from __future__ import annotations

import inspect
import posixpath
import shlex
from collections.abc import Sequence

from todobox_deploy.config import AppConfig
from todobox_deploy.core.envfile import parse_env_file

# Runs on the target: the env-file parser is this project's own, shipped as source so there is one copy.
_BOOTSTRAP = (
    "from __future__ import annotations\nimport os, re, sys\n"
    + inspect.getsource(parse_env_file)
    + """
env_file, flask_app = sys.argv[1], sys.argv[2]
if env_file:
    with open(env_file, encoding="utf-8") as fh:
        os.environ.update(parse_env_file(fh.read()))
if flask_app:
    os.environ["FLASK_APP"] = flask_app
sys.argv = ["flask", *sys.argv[4:]]
"""
)
_MAIN = "from flask.cli import main\nmain()\n"


def app_python(app: AppConfig) -> str:
    """The target interpreter: the venv's python when a venv is set and python is left at its default."""
    if app.venv and app.python in ("python", "python3"):
        return posixpath.join(app.venv, "bin", "python")
    return app.python


def app_program_argv(app: AppConfig, program: str, args: Sequence[str]) -> list[str]:
    """The argv that runs Python ``program`` in the app's interpreter with the app's env file loaded and
    ``FLASK_APP`` set (run it in the app's directory); ``sys.argv[1:]`` is ``args``."""
    for arg in args:
        if "\n" in arg or "\x00" in arg:
            raise ValueError(f"flask argument must not contain a newline or NUL: {arg!r}")
    return [
        "env",
        "PYTHONUNBUFFERED=1",
        app_python(app),
        "-c",
        _BOOTSTRAP + program,
        app.env_file or "",
        app.flask_app or "",
        "--",
        *args,
    ]


def flask_argv(app: AppConfig, args: Sequence[str], *, prelude: str = "") -> list[str]:
    """The argv that runs ``flask ARGS`` with the app's env file loaded (run it in the app's directory).

    ``prelude`` is Python run in the same interpreter just before Flask's CLI (and so before the app is
    imported): e.g. a guard on every database session the migration opens."""
    return app_program_argv(app, prelude + _MAIN, args)


def flask_command(app: AppConfig, args: Sequence[str], *, prelude: str = "") -> str:
    """Shell text for ``cd APP && flask ARGS`` with the app's env file loaded, unbuffered, nothing secret."""
    return f"cd -- {shlex.quote(app.path)} && exec {shlex.join(flask_argv(app, args, prelude=prelude))}"


def _history_entries(lines: Sequence[str]) -> list[tuple[str, bool]]:
    """``(revision, is_head)`` for each ``A -> B [(head)], message`` line of ``flask db history``."""
    entries: list[tuple[str, bool]] = []
    for line in lines:
        left = line.partition(",")[0]
        if "->" not in left:
            continue
        target = left.split("->", 1)[1].split()
        if target:
            entries.append((target[0], "(head)" in target[1:]))
    return entries


def parse_history_heads(lines: Sequence[str]) -> list[str]:
    """Revisions marked ``(head)`` in ``flask db history`` output, without repeats."""
    return list(dict.fromkeys(rev for rev, head in _history_entries(lines) if head))


def parse_history_revisions(lines: Sequence[str]) -> list[str]:
    """Every revision named on the right of ``->`` in ``flask db history`` output, newest first."""
    return [rev for rev, _ in _history_entries(lines)]


NOT_FOUND = 127  # the shell's exit status for a program it cannot find (or execute)


def not_found_hint(program: str, key: str) -> str:
    """What to do when the host has no ``program`` where the config says (exit 127)."""
    return f"{program}: command not found on the host: set {key} to its absolute path"


def app_command(app: AppConfig, argv: Sequence[str]) -> str:
    """Shell text that runs ``argv`` in the app's directory; ``flask ...`` gets the app's environment too.

    ``git`` is the configured program (``[app] git``); when the host has no such program the command
    exits 127 and says which key to set."""
    if argv and argv[0] == "flask":
        return flask_command(app, argv[1:])
    cd = f"cd -- {shlex.quote(app.path)}"
    if argv and argv[0] == "git":
        git = shlex.quote(app.git)
        hint = shlex.quote(not_found_hint(app.git, "[app] git"))
        found = f"{{ command -v {git} >/dev/null || {{ echo {hint} >&2; exit 127; }}; }}"
        return f"{cd} && {found} && exec {shlex.join([app.git, *argv[1:]])}"
    return f"{cd} && exec {shlex.join(argv)}"

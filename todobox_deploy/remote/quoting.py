"""Build remote shell command strings safely from argument lists."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from .errors import UnsafeArgument

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_arg(value: str) -> str:
    """Reject what no argv can carry (NUL); everything else is passed literally by quoting."""
    if not isinstance(value, str):
        raise UnsafeArgument(f"command arguments must be strings, got {type(value).__name__}")
    if "\x00" in value:
        raise UnsafeArgument(
            "a command argument contains a NUL byte; it cannot be passed to a remote command"
        )
    return value


def operand(value: str, what: str = "operand") -> str:
    """A path/name operand: also reject a leading '-' so it can never be read as an option."""
    check_arg(value)
    if value.startswith("-"):
        raise UnsafeArgument(f"{what} {value!r} starts with '-' and could be taken for an option; refusing")
    if not value:
        raise UnsafeArgument(f"{what} is empty")
    return value


def join(argv: Sequence[str]) -> str:
    """Quote an argument list into POSIX shell text (one layer of quoting)."""
    if isinstance(argv, str):
        raise TypeError("join() needs a list of arguments, not a string")
    if not argv:
        raise UnsafeArgument("empty command")
    return shlex.join(check_arg(a) for a in argv)


def env_prefix(env: dict[str, str]) -> list[str]:
    """``["env", "K=V", ...]`` for the front of an argv (values become argv: never put secrets here)."""
    out = ["env"]
    for k, v in env.items():
        if not _ENV_NAME.match(k):
            raise UnsafeArgument(f"invalid environment variable name {k!r}")
        out.append(f"{k}={check_arg(v)}")
    return out


def bash(script: str) -> str:
    """Run shell text under ``bash -o pipefail -c`` (the login shell may be dash, without pipefail)."""
    check_arg(script)
    return shlex.join(["bash", "--norc", "--noprofile", "-o", "pipefail", "-c", script])


def pipeline(*stages: Sequence[str]) -> str:
    """A bash pipeline of argv stages where every stage's status is checked.

    Reports every failing stage on stderr and exits with the rightmost non-zero status (as pipefail).
    """
    if not stages:
        raise UnsafeArgument("empty pipeline")
    body = " | ".join(join(s) for s in stages)
    names = " ".join(shlex.quote(s[0]) for s in stages)
    check = (
        'st=("${PIPESTATUS[@]}"); names=(' + names + "); rc=0; "
        'for i in "${!st[@]}"; do if [ "${st[$i]}" -ne 0 ]; then rc=${st[$i]}; '
        'echo "pipeline stage $((i+1)) (${names[$i]}) exited ${st[$i]}" >&2; fi; done; exit "$rc"'
    )
    return body + "; " + check

"""Several short host commands in one round trip: each step's exit status, output and duration, exactly.

Each command on a host costs a round trip plus the start of the login shell (sshd runs ``$SHELL -c``, and
bash started by sshd reads ``~/.bashrc``: 75 ms on a host whose rc file runs ``pyenv init``). Steps that
need nothing from the operator in between run as one script instead: each in its own subshell with stdin
from ``/dev/null``, its stdout and stderr captured to files in a private temp dir, then sent back after a
header that gives their lengths, so no output of a step can forge a frame or bleed into the next.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import RemoteError
from .secrets import decoded
from .stream import run_on_channel

if TYPE_CHECKING:
    from .connection import SshConnection
    from .secrets import Secrets

STEP_MARK = "__todobox_step__"
_HEADER = re.compile(rb"__todobox_step__ (\d+) (\d+) (\d+) (\d+) (\S*) (\S*)\n")

_PRELUDE = f"""\
d=$(mktemp -d) || exit 70
trap 'rm -rf -- "$d"' EXIT
emit() {{
  printf '{STEP_MARK} %s %s %s %s %s %s\\n' "$1" "$2" "$(stat -c %s -- "$d/o")" "$(stat -c %s -- "$d/e")" \\
    "${{3:--}}" "${{EPOCHREALTIME:--}}"
  cat -- "$d/o" "$d/e"
}}
"""


@dataclass(frozen=True)
class StepResult:
    """One step of a batch: its exit status, its output (decoded, redacted) and its time on the host."""

    exit_status: int
    stdout: str
    stderr: str
    seconds: float


def batch_script(scripts: Sequence[str], *, stop_on_failure: bool = True) -> str:
    """Shell text that runs each script in turn and frames its results (see :func:`parse_batch`)."""
    if not scripts:
        raise ValueError("a batch needs at least one step")
    parts = [_PRELUDE]
    for i, script in enumerate(scripts):
        run = f'(\n{script}\n) > "$d/o" 2> "$d/e" < /dev/null'
        parts.append(f't=${{EPOCHREALTIME:--}}\n{run}\nrc=$?\nemit {i} $rc "$t"\n')
        if stop_on_failure and i < len(scripts) - 1:
            parts.append('[ "$rc" -eq 0 ] || exit 0\n')
    return "".join(parts)


def _seconds(start: bytes, end: bytes) -> float:
    try:  # bash >= 5 has EPOCHREALTIME; a locale may write it with a comma
        return max(0.0, float(end.replace(b",", b".")) - float(start.replace(b",", b".")))
    except ValueError:
        return 0.0


def parse_batch(data: bytes) -> list[tuple[int, bytes, bytes, float]]:
    """``(exit status, stdout, stderr, seconds)`` per step that ran, from a batch script's output."""
    out: list[tuple[int, bytes, bytes, float]] = []
    pos = 0
    while pos < len(data):
        m = _HEADER.match(data, pos)
        if m is None or int(m.group(1)) != len(out):
            raise RemoteError(f"a batch of host commands returned unframed output at byte {pos}")
        n_out, n_err = int(m.group(3)), int(m.group(4))
        body = m.end()
        if body + n_out + n_err > len(data):
            raise RemoteError("a batch of host commands returned truncated output")
        stdout, stderr = data[body : body + n_out], data[body + n_out : body + n_out + n_err]
        out.append((int(m.group(2)), stdout, stderr, _seconds(m.group(5), m.group(6))))
        pos = body + n_out + n_err
    return out


def capture_steps(
    conn: SshConnection,
    scripts: Sequence[Sequence[str] | str],
    *,
    secrets: Secrets | None = None,
    stop_on_failure: bool = True,
    timeout: float | None = 60.0,
    cancel: threading.Event | None = None,
) -> list[StepResult]:
    """Run ``scripts`` (an argv or shell text each) in one round trip; the steps that ran, in order.

    With ``stop_on_failure`` the batch ends at the first step that exits non-zero. Raises RemoteError when
    the batch itself failed (e.g. no temp dir on the host), LinkLost and the like as ``capture`` does."""
    checked = [conn._script(script, secrets) for script in scripts]
    chunks: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    rc = run_on_channel(
        conn.transport(),
        batch_script(checked, stop_on_failure=stop_on_failure),
        lambda stream, data: chunks[stream].extend(data),
        timeout=timeout,
        cancel=cancel,
        kill_group=conn.kill_group,
        link_state=conn.link_state,
    )
    if rc != 0:
        why = decoded(chunks["stderr"], secrets).strip()
        raise RemoteError(f"a batch of host commands failed (exit {rc}): {why or 'no message'}")
    return [
        StepResult(code, decoded(o, secrets), decoded(e, secrets), secs)
        for code, o, e, secs in parse_batch(bytes(chunks["stdout"]))
    ]

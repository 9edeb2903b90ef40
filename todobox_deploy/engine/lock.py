"""One deploy at a time per host: an advisory lock file on the target, kept fresh by a heartbeat.

On the host, next to the detached runs (``<run_root>/``, default ``~/.cache/todobox-deploy/runs/``,
resolved by the host's shell, mode 0700):

``deploy.lock``
    The holder as JSON (:class:`LockOwner`). Created atomically (a temp file hard-linked into place,
    which fails if the lock exists) and replaced atomically (``mv``). Its mtime is the heartbeat:
    the holder ``touch``-es it every few seconds, and its age is measured with the host's clock only.
``deploy.lock.mutex``
    ``flock``-ed around every change (create, compare-and-swap take-over, refresh, release), so a
    take-over only replaces the exact lock it looked at and a refresh or release only touches our own.

Everything crosses over as argument lists quoted with ``shlex`` and the owner JSON and our token go
over stdin, never on the command line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shlex
import socket
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from todobox_deploy.remote.errors import RemoteError

if TYPE_CHECKING:
    from todobox_deploy.remote.connection import CommandResult, SshConnection

__all__ = ["LOCK_NAME", "HostLock", "HostLocked", "LockLost", "LockOwner", "UNKNOWN_OWNER"]

log = logging.getLogger(__name__)

LOCK_NAME = "deploy.lock"
_TOKEN = re.compile(r"[0-9a-f]{16,128}\Z")
_MAX_LOCK_BYTES = 64 * 1024
_CAPTURE_TIMEOUT = 30.0
_TAKE_OVER_ATTEMPTS = 5

# exit codes of the remote scripts
_HELD = 10  # the lock exists (or vanished under a take-over); its state follows on stdout
_NOT_OURS = 3  # refresh/release: the lock is absent or holds someone else's token
_BUSY = 73  # could not get the mutex in time


@dataclass(frozen=True)
class LockOwner:
    """Who holds (or wants) the deploy lock of a host."""

    operator: str
    machine: str  # the operator's machine (socket.gethostname() where the wizard runs)
    pid: int  # the wizard's pid on that machine
    started: str  # UTC, ISO 8601
    session: str  # the deploy session (its directory name or id)
    token: str = field(default_factory=lambda: secrets.token_hex(16))  # identifies this holder

    @classmethod
    def here(cls, operator: str, session: str) -> LockOwner:
        """An owner for this process: local machine name and pid, started now, a fresh token."""
        return cls(
            operator=operator,
            machine=socket.gethostname(),
            pid=os.getpid(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            session=session,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockOwner:
        """Parse a lock file; raise ValueError if it is not one of ours."""
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the lock file is not a JSON object")
        strs = ("operator", "machine", "started", "session", "token")
        if any(not isinstance(data.get(k), str) for k in strs):
            raise ValueError("the lock file lacks a string field")
        pid = data.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise ValueError("the lock file lacks an integer pid")
        return cls(
            operator=data["operator"],
            machine=data["machine"],
            pid=pid,
            started=data["started"],
            session=data["session"],
            token=data["token"],
        )


UNKNOWN_OWNER = LockOwner(
    operator="unknown", machine="unknown", pid=0, started="unknown", session="unknown", token=""
)


def _parse_owner(text: str) -> LockOwner:
    """A lock file's owner; garbage (empty, truncated, foreign) is reported as held by ``unknown``."""
    try:
        return LockOwner.from_json(text)
    except (ValueError, RecursionError):
        return UNKNOWN_OWNER


class HostLocked(Exception):
    """Another deploy holds the host's lock."""

    def __init__(self, owner: LockOwner, heartbeat_age: float | None) -> None:
        age = "unknown" if heartbeat_age is None else str(int(heartbeat_age))
        super().__init__(
            f"locked by {owner.operator}@{owner.machine} since {owner.started}, last heartbeat {age} s ago"
        )
        self.owner = owner
        self.heartbeat_age = heartbeat_age


class LockLost(Exception):
    """While we held the host's lock, someone else replaced (or removed) it."""


# -- the scripts that run on the host ------------------------------------------------------------
# Each starts with ``set -- <run_root or ""> ...``; an empty run_root means the default, expanded by
# the host's shell (like the detached runs' _PRELUDE).

_PRELUDE = (
    "root=${1:-$HOME/.cache/todobox-deploy/runs}; f=$root/"
    + LOCK_NAME
    + "; m=$f.mutex\n"
    # print the lock's state: "HELD <age s> <sha256>" then its content, or "ABSENT"
    + "show() {\n"
    + "  now=$(date +%s)\n"
    + '  t=$(stat -c %Y -- "$f" 2> /dev/null) || { echo ABSENT; return 0; }\n'
    + '  h=$(sha256sum < "$f" 2> /dev/null | cut -d" " -f1) || h=-\n'
    + '  echo "HELD $((now - t)) ${h:--}"\n'
    + f'  head -c {_MAX_LOCK_BYTES} -- "$f" 2> /dev/null\n'
    + "  return 0\n"
    + "}\n"
)

_MUTEX = (
    'exec 9>> "$m" || exit 70\n'
    'flock -w 20 9 || { echo "timed out waiting for $m" >&2; exit ' + str(_BUSY) + "; }\n"
)

# $2 = create | replace, $3 = sha256 of the lock we saw (replace); stdin = the new owner JSON
_ACQUIRE = (
    _PRELUDE
    + "umask 077\n"
    + 'mkdir -p -- "$root" || exit 70\n'
    + _MUTEX
    + r"""tmp=$(mktemp -- "$f.new.XXXXXX") || exit 70
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp" || exit 70
if [ "$2" = create ]; then
  ln -- "$tmp" "$f" 2> /dev/null && exit 0
  # a file system without hard links: a noclobber redirect is still exclusive (and we hold the mutex)
  if [ ! -e "$f" ] && ( set -C; cat -- "$tmp" > "$f" ) 2> /dev/null; then exit 0; fi
elif [ -e "$f" ] && [ "$(sha256sum < "$f" | cut -d" " -f1)" = "$3" ]; then
  mv -f -- "$tmp" "$f" || exit 70
  exit 0
fi
show
exit HELD
""".replace("HELD", str(_HELD))
)

# $2 = touch | remove; stdin = our token
_OWN = (
    _PRELUDE
    + r"""IFS= read -r tok
[ -d "$root" ] && [ -e "$f" ] || exit NOT_OURS
"""
    + _MUTEX
    + r"""grep -qE -- "\"token\"[[:space:]]*:[[:space:]]*\"$tok\"" "$f" 2> /dev/null || exit NOT_OURS
if [ "$2" = touch ]; then touch -c -- "$f"; else rm -f -- "$f"; fi
""".replace("NOT_OURS", str(_NOT_OURS))
)

# read only: a shared lock on the mutex if it exists (opening it for reading creates nothing)
_CURRENT = (
    _PRELUDE
    + r"""if [ -e "$m" ] && exec 9< "$m"; then flock -s -w 20 9 || exit BUSY; fi
show
""".replace("BUSY", str(_BUSY))
)


def _script(body: str, *args: str) -> str:
    return "set -- " + shlex.join(args) + "\n" + body


def _parse_state(stdout: str) -> tuple[LockOwner, float | None, str] | None:
    """The output of ``show``: None if absent, else (owner, heartbeat age, sha256 of the file)."""
    head, _, content = stdout.partition("\n")
    parts = head.split()
    if not parts or parts[0] == "ABSENT":
        return None
    if parts[0] != "HELD":
        raise RemoteError(f"unexpected answer while reading the deploy lock: {head[:200]!r}")
    age: float | None = None
    with contextlib.suppress(IndexError, ValueError):
        age = float(max(0, int(parts[1])))
    digest = parts[2] if len(parts) > 2 else "-"
    return _parse_owner(content), age, digest


def _process_gone(pid: int) -> bool:
    """True only if ``pid`` provably does not run on this machine."""
    if pid <= 0:  # 0 / negative would address process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


class HostLock:
    """The deploy lock of one host: ``acquire`` (with a heartbeat thread), ``release``, ``current``."""

    def __init__(self, conn: SshConnection, owner: LockOwner, *, heartbeat_interval: float = 5.0) -> None:
        if not _TOKEN.match(owner.token):
            raise ValueError("the lock owner's token must be 16 to 128 lowercase hex digits")
        self.conn = conn
        self.owner = owner
        self.heartbeat_interval = heartbeat_interval
        self._state = threading.Lock()
        self._held = False
        self._lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- remote plumbing ----------------------------------------------------------------------

    def _run(self, body: str, *args: str, stdin: bytes | None = None) -> CommandResult:
        return self.conn.capture(
            _script(body, self.conn.run_root or "", *args), stdin=stdin, timeout=_CAPTURE_TIMEOUT
        )

    @staticmethod
    def _fail(what: str, res: CommandResult) -> RemoteError:
        detail = res.stderr.strip() or res.stdout.strip() or "no message"
        return RemoteError(f"could not {what} the deploy lock (exit {res.exit_status}): {detail[:500]}")

    def _own(self, action: str) -> bool:
        """Touch or remove the lock if it still holds our token; False if it does not."""
        res = self._run(_OWN, action, stdin=(self.owner.token + "\n").encode())
        if res.exit_status == 0:
            return True
        if res.exit_status == _NOT_OURS:
            return False
        raise self._fail("refresh" if action == "touch" else "release", res)

    # -- the public API -----------------------------------------------------------------------

    @property
    def held(self) -> bool:
        return self._held and not self._lost

    @property
    def lost(self) -> bool:
        """True once the heartbeat (or ``refresh``) found the lock replaced or removed by someone else."""
        return self._lost

    def current(self) -> tuple[LockOwner, float | None] | None:
        """Who holds the lock and how old its heartbeat is (seconds), without changing anything."""
        res = self._run(_CURRENT)
        if res.exit_status != 0:
            raise self._fail("read", res)
        state = _parse_state(res.stdout)
        return None if state is None else (state[0], state[1])

    def acquire(self, *, take_over: bool = False) -> LockOwner | None:
        """Take the host's lock and start the heartbeat.

        Returns the previous owner when a lock was taken over (its holder is provably gone, or
        ``take_over``), else None. Raises HostLocked if someone else holds it, RemoteError if the
        host cannot be asked.
        """
        with self._state:
            if self._held and not self._lost:
                raise RuntimeError("this deploy lock is already held; release it first")
        payload = (self.owner.to_json() + "\n").encode()
        res = self._run(_ACQUIRE, "create", "", stdin=payload)
        previous: LockOwner | None = None
        attempts = 0
        while res.exit_status != 0:
            if res.exit_status != _HELD:
                raise self._fail("create", res)
            state = _parse_state(res.stdout)
            attempts += 1
            if state is None:  # released between two looks: create it afresh
                if attempts > _TAKE_OVER_ATTEMPTS:
                    raise self._fail("create", res)
                previous = None
                res = self._run(_ACQUIRE, "create", "", stdin=payload)
                continue
            owner, age, digest = state
            if attempts > _TAKE_OVER_ATTEMPTS or not (take_over or self._holder_gone(owner)):
                raise HostLocked(owner, age)
            previous = owner  # replaced only if the file is still exactly what we read
            res = self._run(_ACQUIRE, "replace", digest, stdin=payload)
        if previous is not None:
            log.warning("took over the deploy lock of %s (%s)", previous.operator, previous.session)
        with self._state:
            self._held, self._lost = True, False
        self._start_heartbeat()
        return previous

    def _holder_gone(self, owner: LockOwner) -> bool:
        """The holder ran on this machine and its process no longer exists."""
        return (
            owner is not UNKNOWN_OWNER
            and owner.token != self.owner.token
            and owner.machine == socket.gethostname()
            and _process_gone(owner.pid)
        )

    def refresh(self) -> None:
        """One heartbeat: touch the lock. Raises LockLost if it no longer holds our token."""
        if not self._held:
            raise LockLost("the deploy lock is not held")
        if self._lost or not self._own("touch"):
            self._lost = True
            raise LockLost(
                "the deploy lock of this host was taken over or removed by someone else while this deploy "
                "held it; check who deploys now before going on"
            )

    def check(self) -> None:
        """Raise LockLost if the heartbeat found the lock replaced (call before each risky step)."""
        if self._lost:
            raise LockLost(
                "the deploy lock of this host was taken over or removed by someone else while this deploy "
                "held it; check who deploys now before going on"
            )

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it still holds our token. Idempotent."""
        self.stop_heartbeat()
        with self._state:
            if not self._held:
                return
        self._own("remove")  # False: someone else's (or gone): leave it alone
        with self._state:
            self._held = False

    # -- heartbeat ----------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self.stop_heartbeat()
        if self.heartbeat_interval <= 0:
            return
        stop = self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(stop,), daemon=True, name="deploy-lock-heartbeat"
        )
        self._thread.start()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                ours = self._own("touch")
            except Exception as exc:  # link down, host busy: try again next tick
                log.debug("deploy lock heartbeat failed: %s", exc)
                continue
            if not ours and not stop.is_set():
                self._lost = True
                log.warning("the deploy lock was taken over or removed by someone else")
                return

    def stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, self.heartbeat_interval))

    def __enter__(self) -> HostLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

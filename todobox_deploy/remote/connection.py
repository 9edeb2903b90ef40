"""One verified, reusable SSH connection per deploy: host keys, auth, keepalive, reconnect, commands."""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from todobox_deploy.config import DatabaseConfig, TargetConfig
from todobox_deploy.core.streams import OutputSink

from . import quoting
from .auth import KeyRing, PassphraseCallback
from .errors import (
    HostKeyChanged,
    HostKeyInfo,
    HostKeyRevoked,
    HostKeyUnknown,
    HostUnreachable,
    IncompatibleServer,
    LinkLost,
    RemoteError,
    UnsafeArgument,
    known_hosts_name,
)
from .hostkeys import KnownHosts, default_known_hosts_files, default_pin_file, fingerprint, pin_host_key
from .lines import LineBatcher
from .secrets import ByteSink, RedactedBytes, Secrets, decoded
from .sshconfig import Endpoint, ResolvedTarget, resolve
from .stream import run_on_channel

if TYPE_CHECKING:
    import pymysql.connections

__all__ = ["CommandResult", "HostKeyInfo", "SshConnection"]

log = logging.getLogger(__name__)

ConfirmHostKey = Callable[[HostKeyInfo], bool]

DISABLED_ALGORITHMS = {
    "ciphers": ["3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"],
    "macs": ["hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96"],
}
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


class _Pinned(Exception):
    """Internal: a key was just pinned; reconnect and verify against the pin."""


def tcp_socket(host: str, port: int, timeout: float, user_timeout_ms: int = 10_000) -> socket.socket:
    """A TCP connection without Nagle, with keepalive and TCP_USER_TIMEOUT so a black-holed link errors out
    fast."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise HostUnreachable(host, port, "connection refused (nothing listens on that port)") from None
    except TimeoutError:
        raise HostUnreachable(host, port, f"TCP connect timed out after {timeout:g} s") from None
    except socket.gaierror as exc:
        raise HostUnreachable(host, port, f"cannot resolve host name ({exc.strerror})") from None
    except OSError as exc:
        raise HostUnreachable(host, port, exc.strerror or str(exc)) from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # Nagle + delayed ACK would hold each small request (open a channel, exec) ~40 ms: OpenSSH sets it too
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for opt, value in (
        ("TCP_KEEPIDLE", 5),
        ("TCP_KEEPINTVL", 2),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", user_timeout_ms),
    ):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
    return sock


def _configured_fingerprint(
    t: paramiko.Transport, info: HostKeyInfo, expected: str, known: KnownHosts
) -> paramiko.Transport:
    """The deploy config pins the target's key: it decides, a mismatch is a hard stop; @revoked still wins."""
    if known.is_revoked(base64.b64decode(info.key_base64)):
        raise HostKeyRevoked(info)
    if info.fingerprint != expected:
        raise HostKeyChanged(info, [f"{expected} (host_key_fingerprint in the deploy config)"])
    return t


class SshConnection:
    """A single SSH connection to the target (through ProxyJump hops), reconnected on demand.

    Thread-safe for concurrent commands: each command gets its own channel.
    """

    def __init__(
        self,
        target: TargetConfig,
        *,
        confirm_host_key: ConfirmHostKey | None = None,
        passphrase: PassphraseCallback | None = None,
        pinned_known_hosts: Path | None = None,
        known_hosts_files: Sequence[Path] | None = None,
        run_root: str | None = None,
        allow_agent: bool = True,
        heartbeat_interval: float = 3.0,
        heartbeat_timeout: float = 6.0,
        reconnect_timeout: float = 60.0,
    ) -> None:
        self.target = target
        self._confirm = confirm_host_key
        self.pin_file = pinned_known_hosts or default_pin_file()
        extra = [target.known_hosts] if target.known_hosts else []
        self._kh_files = [
            *(known_hosts_files if known_hosts_files is not None else default_known_hosts_files()),
            *extra,
        ]
        self.run_root = run_root or target.run_root
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.reconnect_timeout = reconnect_timeout
        self._lock = threading.RLock()
        self._transport: paramiko.Transport | None = None
        self._hops: list[paramiko.Transport] = []
        self._resolved: ResolvedTarget | None = None
        self._hb_stop = threading.Event()
        self._lost_reason: str | None = None
        self._last_info: HostKeyInfo | None = None
        self.warnings: list[str] = []
        self.on_reconnect: Callable[[str], None] | None = None  # told why, after a dropped link is re-made
        self._connected_once = False
        self._keyring = KeyRing(passphrase, allow_agent=allow_agent, warnings=self.warnings)

    # -- connecting -------------------------------------------------------------------------

    @property
    def resolved(self) -> ResolvedTarget:
        if self._resolved is None:
            self._resolved = resolve(self.target)
        return self._resolved

    def connect(self) -> None:
        """Connect (or reconnect) and authenticate. Raises RemoteError subclasses."""
        with self._lock:
            if self._transport is not None and self._transport.is_active():
                return
            self._teardown()
            reason = self.link_state()
            for _ in range(len(self.resolved.jumps) + 2):  # each hop may pin once, then verify
                try:
                    self._connect_chain()
                    if self._connected_once and self.on_reconnect is not None:
                        with contextlib.suppress(Exception):
                            self.on_reconnect(reason)
                    self._connected_once = True
                    return
                except _Pinned:
                    self._teardown()
            assert self._last_info is not None
            raise HostKeyUnknown(self._last_info)  # pragma: no cover - a pin that does not verify

    def transport(self) -> paramiko.Transport:
        """The live transport, reconnecting first if the link was lost."""
        with self._lock:
            if self._transport is None or not self._transport.is_active():
                self.connect()
            assert self._transport is not None
            return self._transport

    @property
    def is_connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def reconnect(
        self, *, deadline: float | None = None, notify: Callable[[str], None] | None = None
    ) -> None:
        """Reconnect, retrying transient failures until ``deadline`` (monotonic).

        Host key and authentication errors are never retried."""
        end = deadline if deadline is not None else time.monotonic() + self.reconnect_timeout
        delay = 0.5
        while True:
            try:
                self.connect()
                return
            except (HostUnreachable, LinkLost) as exc:
                if time.monotonic() + delay > end:
                    raise
                if notify:
                    notify(f"reconnect failed ({exc}); retrying in {delay:g} s")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _connect_chain(self) -> None:
        r = self.resolved
        sock: socket.socket | paramiko.Channel | None = None
        hops: list[paramiko.Transport] = []
        try:
            for ep in (*r.jumps, r.target):
                if sock is None:
                    sock = tcp_socket(ep.hostname, ep.port, r.connect_timeout)
                else:
                    try:
                        sock = hops[-1].open_channel(
                            "direct-tcpip",
                            (ep.hostname, ep.port),
                            ("127.0.0.1", 0),
                            timeout=r.connect_timeout,
                        )
                    except (paramiko.SSHException, OSError, EOFError) as exc:
                        raise HostUnreachable(
                            ep.hostname,
                            ep.port,
                            f"the jump host {hops[-1].getpeername()} cannot connect: {exc}",
                        ) from None
                t = self._handshake(ep, sock, r.connect_timeout)
                hops.append(t)
                self._keyring.authenticate(t, ep)
        except BaseException:
            for t in reversed(hops):
                t.close()
            if isinstance(sock, socket.socket) and not hops:
                sock.close()
            raise
        self._hops, self._transport = hops[:-1], hops[-1]
        self._lost_reason = None
        self._start_heartbeat(self._transport)

    def _handshake(
        self, ep: Endpoint, sock: socket.socket | paramiko.Channel, timeout: float
    ) -> paramiko.Transport:
        t = paramiko.Transport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
        t.banner_timeout = timeout
        t.handshake_timeout = timeout
        t.auth_timeout = timeout
        # paramiko's own rekey every 512 MiB can stall a long stream for 30 s (paramiko#822): let sshd rekey
        t.packetizer.REKEY_BYTES = t.packetizer.REKEY_PACKETS = 2**40
        opts = t.get_security_options()
        opts.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in opts.ciphers)
        known = KnownHosts.load([*self._kh_files, *ep.known_hosts_files, self.pin_file])
        self.warnings.extend(w for w in known.warnings if w not in self.warnings)
        wanted: list[str] = []
        for kt in known.key_types_for(known_hosts_name(ep.hostname, ep.port)):
            wanted += ["rsa-sha2-512", "rsa-sha2-256"] if kt == "ssh-rsa" else [kt]
        if wanted:
            opts.key_types = tuple(
                [k for k in wanted if k in opts.key_types] + [k for k in opts.key_types if k not in wanted]
            )
        try:
            t.start_client(timeout=timeout)
            key = t.get_remote_server_key()  # raises if the handshake did not complete
        except (paramiko.SSHException, OSError, EOFError) as exc:
            t.close()
            if "Incompatible ssh" in str(exc):
                raise IncompatibleServer(ep.hostname, ep.port, str(exc)) from None
            raise HostUnreachable(
                ep.hostname,
                ep.port,
                f"SSH handshake failed (not an SSH server, or timed out): {exc or exc.__class__.__name__}",
            ) from None
        info = HostKeyInfo(ep.hostname, ep.port, _key_type(key), fingerprint(key.asbytes()), key.get_base64())
        self._last_info = info
        try:
            if ep is self.resolved.target and self.target.host_key_fingerprint:
                return _configured_fingerprint(t, info, self.target.host_key_fingerprint, known)
            if known.check(info):
                return t
            if self._confirm is None or not self._confirm(info):
                raise HostKeyUnknown(info)
        except BaseException:
            t.close()
            raise
        pin_host_key(self.pin_file, info)
        t.close()
        raise _Pinned()

    # -- liveness ---------------------------------------------------------------------------

    def _start_heartbeat(self, t: paramiko.Transport) -> None:
        self._hb_stop.set()
        if self.heartbeat_interval <= 0:
            return
        stop = self._hb_stop = threading.Event()
        threading.Thread(target=self._heartbeat, args=(t, stop), daemon=True, name="ssh-heartbeat").start()

    def _heartbeat(self, t: paramiko.Transport, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval) and t.is_active():
            answered = threading.Event()

            def ping(answered: threading.Event = answered) -> None:
                with contextlib.suppress(Exception):
                    t.global_request("keepalive@openssh.com", wait=True)
                answered.set()

            threading.Thread(target=ping, daemon=True, name="ssh-heartbeat-ping").start()
            if not answered.wait(self.heartbeat_timeout) and not stop.is_set():
                self._lost_reason = f"the host did not answer a heartbeat within {self.heartbeat_timeout:g} s"
                log.warning("%s; closing the connection", self._lost_reason)
                t.close()
                return

    def link_state(self) -> str:
        return self._lost_reason or "the SSH connection dropped"

    # -- commands ---------------------------------------------------------------------------

    @staticmethod
    def _script(argv: Sequence[str] | str, secrets: Secrets | None) -> str:
        script = quoting.check_arg(argv) if isinstance(argv, str) else quoting.join(argv)
        if secrets and any(p in script.encode() for p in secrets.patterns):
            raise UnsafeArgument("a secret appears in the command text; pass it over stdin instead")
        return script

    def kill_group(self, pid: int, sig: str) -> None:
        """Signal a remote process group through a fresh channel (sshd refuses `signal` for root)."""
        with contextlib.suppress(RemoteError, paramiko.SSHException, OSError, EOFError):
            chan = self.transport().open_session(timeout=10)
            chan.exec_command(f"kill -{sig} -- -{int(pid)} 2>/dev/null")
            chan.status_event.wait(5)
            chan.close()

    def run(
        self,
        argv: Sequence[str] | str,
        sink: OutputSink,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        secrets: Secrets | None = None,
        timeout: float | None = None,
    ) -> int:
        """Run a command, streaming line batches to ``sink``; return its exit status.

        ``argv`` is a list (quoted with shlex.join) or shell text, run by ``bash -o pipefail -c``.
        Raises LinkLost, CommandKilled, CommandCancelled (also on timeout).
        """
        script = self._script(argv, secrets)
        batcher = LineBatcher(sink, secrets)
        try:
            return run_on_channel(
                self.transport(),
                script,
                batcher.feed,
                cancel=cancel,
                stdin=stdin,
                timeout=timeout,
                kill_group=self.kill_group,
                link_state=self.link_state,
                tick=batcher.maybe_flush,
            )
        finally:
            batcher.close()

    def run_bytes(
        self,
        argv: Sequence[str] | str,
        out: ByteSink,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        secrets: Secrets | None = None,
        timeout: float | None = None,
        stdout_closed: threading.Event | None = None,
    ) -> int:
        """Run a command, handing its output to ``out`` as raw chunks (no decoding, no line splitting);
        return its exit status. Known secrets are masked across chunk boundaries; a tail that may be a
        secret's start is held until the next chunk or the end. ``stdout_closed``: see ``run_on_channel``.
        Raises like :meth:`run`.
        """
        script = self._script(argv, secrets)
        redacted = RedactedBytes(out, secrets)
        try:
            return run_on_channel(
                self.transport(),
                script,
                redacted,
                cancel=cancel,
                stdin=stdin,
                timeout=timeout,
                kill_group=self.kill_group,
                link_state=self.link_state,
                stdout_closed=stdout_closed,
            )
        finally:
            redacted.close()

    def capture(
        self,
        argv: Sequence[str] | str,
        *,
        stdin: bytes | None = None,
        secrets: Secrets | None = None,
        timeout: float | None = 60.0,
    ) -> CommandResult:
        """Run a command with small output and return it whole (decoded, redacted)."""
        script = self._script(argv, secrets)
        out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        rc = run_on_channel(
            self.transport(),
            script,
            lambda s, d: out[s].extend(d),
            stdin=stdin,
            timeout=timeout,
            kill_group=self.kill_group,
            link_state=self.link_state,
        )
        return CommandResult(rc, decoded(out["stdout"], secrets), decoded(out["stderr"], secrets))

    def run_detached(
        self,
        run_id: str,
        argv: Sequence[str] | str,
        sink: OutputSink,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        secrets: Secrets | None = None,
    ) -> int:
        """Run a command detached on the host, following its log across link drops; see detached.py."""
        from .detached import DetachedRun

        return DetachedRun(self, run_id).launch_and_follow(
            self._script(argv, secrets), sink, cancel=cancel, stdin=stdin, secrets=secrets
        )

    def attach(
        self,
        run_id: str,
        sink: OutputSink,
        *,
        offset: int = 0,
        cancel: threading.Event | None = None,
        secrets: Secrets | None = None,
    ) -> int:
        """Re-attach to a detached run (e.g. after the tool restarted) from byte ``offset`` of its log."""
        from .detached import DetachedRun

        return DetachedRun(self, run_id).follow(sink, offset=offset, cancel=cancel, secrets=secrets)

    def run_detached_bytes(
        self,
        run_id: str,
        argv: Sequence[str] | str,
        out: ByteSink,
        *,
        info: Callable[[str], None],
        secrets: Secrets | None = None,
        stdout_closed: threading.Event | None = None,
    ) -> int:
        """``run_detached`` on the byte path (``exec --detached``); see ``DetachedRun.follow_bytes``."""
        from .detached import DetachedRun

        return DetachedRun(self, run_id).launch_and_follow_bytes(
            self._script(argv, secrets), out, info=info, secrets=secrets, stdout_closed=stdout_closed
        )

    def attach_bytes(
        self,
        run_id: str,
        out: ByteSink,
        *,
        info: Callable[[str], None],
        offset: int = 0,
        secrets: Secrets | None = None,
        stdout_closed: threading.Event | None = None,
    ) -> int:
        """``attach`` on the byte path: the run's log from byte ``offset``, exactly as written."""
        from .detached import DetachedRun

        return DetachedRun(self, run_id).follow_bytes(
            out, info=info, offset=offset, secrets=secrets, stdout_closed=stdout_closed
        )

    def run_state(self, run_id: str) -> tuple[str, int | None, int | None]:
        """State of a detached run: ("absent"|"running"|"finished"|"unknown", exit code, log size)."""
        from .detached import DetachedRun

        return DetachedRun(self, run_id).state()

    def cancel_detached(self, run_id: str, sig: str = "TERM") -> None:
        """Signal a detached run's process group; its wrapper still records the exit code."""
        from .detached import DetachedRun

        DetachedRun(self, run_id).cancel(sig)

    # -- database ---------------------------------------------------------------------------

    def open_mysql(
        self,
        db: DatabaseConfig,
        password: str,
        *,
        read_timeout: float = 30,
        write_timeout: float = 30,
        connect_timeout: float = 10,
    ) -> pymysql.connections.Connection:
        """A PyMySQL connection through a direct-tcpip channel of this SSH connection (no local port).

        After a reconnect, call again: the old channel died with the old transport.
        """
        from .mysql import open_mysql_over_channel

        return open_mysql_over_channel(
            self.transport(),
            db,
            password,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
        )

    # -- teardown ---------------------------------------------------------------------------

    def _teardown(self) -> None:
        self._hb_stop.set()
        if self._transport is not None:
            self._transport.close()
        for t in reversed(self._hops):
            t.close()
        self._transport, self._hops = None, []

    def close(self) -> None:
        with self._lock:
            self._teardown()

    def __enter__(self) -> SshConnection:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key_type(key: paramiko.PKey) -> str:
    """The key type as written in known_hosts (the blob's own type string)."""
    blob = key.asbytes()
    n = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + n].decode("ascii", "replace") or key.get_name()

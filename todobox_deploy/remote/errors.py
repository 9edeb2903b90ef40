"""Errors raised by the remote layer. Every message says what happened and what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HostKeyInfo:
    """A host key as presented by a server: what the operator compares before trusting it."""

    host: str
    port: int
    key_type: str
    fingerprint: str  # "SHA256:...", the same as `ssh-keygen -lf`
    key_base64: str

    @property
    def known_hosts_name(self) -> str:
        return known_hosts_name(self.host, self.port)


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


class RemoteError(Exception):
    """Base class: anything the remote layer reports to the engine or the CLI."""


class ConfigProblem(RemoteError):
    """The SSH configuration cannot be applied (e.g. an ``Include`` that cannot be followed)."""


class HostUnreachable(RemoteError):
    """TCP connect failed, timed out, or the peer does not speak SSH."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot reach {host} port {port}: {reason}; check the host name, port and firewall")
        self.host, self.port, self.reason = host, port, reason


class IncompatibleServer(HostUnreachable):
    """The server offers only algorithms this client refuses (SHA-1, CBC, 3DES) or paramiko 5 lacks."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        RemoteError.__init__(
            self,
            f"{host} port {port} offers only weak or legacy algorithms ({reason}); this client refuses "
            "SHA-1 key exchange and MACs, CBC and 3DES ciphers. Update the server's sshd configuration.",
        )
        self.host, self.port, self.reason = host, port, reason


class HostKeyError(RemoteError):
    """Base for host key problems; always raised before any authentication."""


class HostKeyUnknown(HostKeyError):
    """The host presented a key that no known_hosts file lists."""

    def __init__(self, info: HostKeyInfo) -> None:
        super().__init__(
            f"unknown host key for {info.host} port {info.port}: {info.key_type} {info.fingerprint}; "
            "compare it with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` run on the server's console "
            "before trusting it"
        )
        self.info = info


class HostKeyChanged(HostKeyError):
    """The host presented a key different from the one on record: a hard stop, no override."""

    def __init__(self, info: HostKeyInfo, expected: Sequence[str]) -> None:
        name = info.known_hosts_name
        super().__init__(
            f"HOST KEY CHANGED for {info.host} port {info.port}: it now presents {info.key_type} "
            f"{info.fingerprint}, but {', '.join(expected)} is on record. This may be an attack; "
            f"verify on the server's console. If the change is legitimate, remove the old entry "
            f"(ssh-keygen -R '{name}') and connect again."
        )
        self.info, self.expected = info, tuple(expected)


class HostKeyRevoked(HostKeyError):
    """The host presented a key marked ``@revoked`` in a known_hosts file."""

    def __init__(self, info: HostKeyInfo) -> None:
        super().__init__(
            f"host key {info.key_type} {info.fingerprint} of {info.host} port {info.port} is marked "
            "@revoked in known_hosts; refusing to connect"
        )
        self.info = info


class AuthenticationFailed(RemoteError):
    """The server rejected every credential we offered."""

    def __init__(self, host: str, port: int, user: str, tried: Sequence[str], detail: str = "") -> None:
        keys = ", ".join(tried) if tried else "none"
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"authentication failed for user {user!r} on {host} port {port}{extra}; keys tried: {keys}. "
            "Either the user name or the key is wrong (the server does not say which)."
        )
        self.host, self.port, self.user, self.tried = host, port, user, tuple(tried)


class PassphraseRequired(AuthenticationFailed):
    """An encrypted key needs a passphrase and none (or a wrong one) was given."""


class LinkLost(RemoteError):
    """The SSH connection dropped or stopped answering while a command was running."""


class CommandKilled(RemoteError):
    """The remote command ended without an exit status (killed by a signal, or the channel closed)."""


class CommandCancelled(RemoteError):
    """The operator cancelled the command."""


class CommandTimedOut(CommandCancelled):
    """The command ran longer than its timeout and was stopped."""


class RunLocked(RemoteError):
    """A detached run with this id is already running on the host."""


class RunStateUnknown(RemoteError):
    """A detached run has no exit code and no live process: an operator decision, never a re-run."""


class UnsafeArgument(RemoteError, ValueError):
    """A value cannot be passed safely to a remote command (NUL byte, option-like operand, ...)."""

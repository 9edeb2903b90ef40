"""Public-key authentication: identity files (encrypted ones unlocked once via a callback), the agent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import paramiko

from .errors import AuthenticationFailed, PassphraseRequired
from .sshconfig import Endpoint

PassphraseCallback = Callable[[Path], "str | None"]
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


class _Locked(Exception):
    """Internal: an identity file could not be unlocked (the message says why)."""


class KeyRing:
    """Loads and caches private keys (decrypted keys stay in memory only), and authenticates with them.

    Order: explicit identity files, then agent keys (unless IdentitiesOnly), then ~/.ssh/id_* when no
    identity file is configured. The agent is never forwarded.
    """

    def __init__(
        self, passphrase: PassphraseCallback | None, *, allow_agent: bool, warnings: list[str] | None = None
    ) -> None:
        self._passphrase = passphrase
        self._allow_agent = allow_agent
        self._keys: dict[Path, paramiko.PKey] = {}
        self.warnings = warnings if warnings is not None else []

    def load(self, path: Path, *, required: bool) -> paramiko.PKey | None:
        if path in self._keys:
            return self._keys[path]
        try:
            key = self._read(path)
        except _Locked:
            if required:
                raise
            return None
        except (OSError, paramiko.SSHException, ValueError) as exc:
            if required:
                self.warnings.append(f"cannot load identity file {path}: {exc}")
            return None
        self._keys[path] = key
        return key

    def _read(self, path: Path) -> paramiko.PKey:
        try:
            try:
                return paramiko.PKey.from_path(path)
            except TypeError as exc:  # cryptography's way of saying "needs a passphrase"
                if "password" not in str(exc):
                    raise paramiko.SSHException(str(exc)) from None
                raise paramiko.PasswordRequiredException(str(exc)) from None
        except paramiko.PasswordRequiredException:
            secret = self._passphrase(path) if self._passphrase else None
            if secret is None:
                raise _Locked(f"{path} is encrypted and no passphrase was given") from None
            try:
                return paramiko.PKey.from_path(path, password=secret.encode())  # type: ignore[arg-type]
            except (paramiko.SSHException, ValueError):
                raise _Locked(f"wrong passphrase for {path}") from None

    def _candidates(self, ep: Endpoint) -> tuple[list[tuple[str, paramiko.PKey]], paramiko.Agent | None]:
        candidates: list[tuple[str, paramiko.PKey]] = []
        for path in ep.identity_files:
            try:
                key = self.load(path, required=True)
            except _Locked as exc:
                raise PassphraseRequired(ep.hostname, ep.port, ep.user, [str(path)], str(exc)) from None
            if key is not None:
                candidates.append((f"{path} ({key.get_name()} {key.fingerprint})", key))
        agent: paramiko.Agent | None = None
        if self._allow_agent and not ep.identities_only:
            agent = paramiko.Agent()
            candidates += [(f"agent key {k.get_name()} {k.fingerprint}", k) for k in agent.get_keys()]
        if not ep.identity_files and not ep.identities_only:
            for name in DEFAULT_KEYS:
                path = Path("~/.ssh").expanduser() / name
                if path.exists() and (key := self.load(path, required=False)) is not None:
                    candidates.append((f"{path} ({key.get_name()})", key))
        return candidates, agent

    def authenticate(self, t: paramiko.Transport, ep: Endpoint) -> None:
        """Try each key in turn; raise AuthenticationFailed naming the user and every key tried."""
        candidates, agent = self._candidates(ep)
        tried: list[str] = []
        try:
            for desc, key in candidates:
                try:
                    t.auth_publickey(ep.user, key)
                except paramiko.BadAuthenticationType as exc:
                    allowed = ", ".join(exc.allowed_types)
                    raise AuthenticationFailed(
                        ep.hostname, ep.port, ep.user, tried, f"the server accepts only {allowed}"
                    ) from None
                except paramiko.AuthenticationException:
                    tried.append(desc)
                    continue
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    tried.append(desc)
                    raise AuthenticationFailed(
                        ep.hostname, ep.port, ep.user, tried, f"the server closed the connection: {exc}"
                    ) from None
                if t.is_authenticated():
                    return
            raise AuthenticationFailed(ep.hostname, ep.port, ep.user, tried)
        finally:
            if agent is not None:
                agent.close()

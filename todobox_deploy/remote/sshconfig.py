"""Resolve a TargetConfig through an OpenSSH client config (HostName, Port, User, IdentityFile, ProxyJump)."""

from __future__ import annotations

import getpass
import glob
import re
from dataclasses import dataclass
from pathlib import Path

import paramiko

from todobox_deploy.config import TargetConfig

from .errors import ConfigProblem

_INCLUDE = re.compile(r"^\s*include\s+(.*)$", re.IGNORECASE)
_MAX_DEPTH = 16


@dataclass(frozen=True)
class Endpoint:
    """One SSH server to connect to, fully resolved."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[Path, ...] = ()
    identities_only: bool = False
    known_hosts_files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ResolvedTarget:
    target: Endpoint
    jumps: tuple[Endpoint, ...] = ()  # in connection order
    connect_timeout: float = 10.0


def expand_includes(path: Path, depth: int = 0) -> str:
    """Return the config text with ``Include`` lines replaced by the files they name.

    Relative paths resolve against ~/.ssh (as for user configs). A glob matching nothing is
    skipped, as OpenSSH does; a missing or unreadable file, or too deep a nesting, is an error.
    """
    if depth > _MAX_DEPTH:
        raise ConfigProblem(f"{path}: Include nesting deeper than {_MAX_DEPTH}; cannot follow it")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigProblem(
            f"cannot read SSH config {path} ({exc.strerror}); Include cannot be followed"
        ) from None
    out: list[str] = []
    for line in text.splitlines():
        m = _INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        for spec in m.group(1).split():
            pattern = Path(spec.strip('"')).expanduser()
            if not pattern.is_absolute():
                pattern = Path("~/.ssh").expanduser() / pattern
            names = sorted(glob.glob(str(pattern)))
            if not names and not glob.has_magic(str(pattern)):
                raise ConfigProblem(f"{path}: Include {spec}: {pattern} does not exist; cannot follow it")
            for name in names:
                out.append(expand_includes(Path(name), depth + 1))
    return "\n".join(out) + "\n"


def load_ssh_config(path: Path | None) -> paramiko.SSHConfig:
    if path is None:
        default = Path("~/.ssh/config").expanduser()
        if not default.exists():
            return paramiko.SSHConfig()
        path = default
    elif not path.exists():
        raise ConfigProblem(f"SSH config {path} (target.ssh_config) does not exist")
    return paramiko.SSHConfig.from_text(expand_includes(path))


def _endpoint(
    cfg: paramiko.SSHConfig,
    alias: str,
    *,
    port: int | None = None,
    user: str | None = None,
    identity: Path | None = None,
) -> tuple[Endpoint, str | None, float | None]:
    opts = cfg.lookup(alias)
    ident = [Path(p).expanduser() for p in opts.get("identityfile", [])]
    if identity is not None:
        ident = [identity, *ident]
    kh = tuple(Path(p).expanduser() for p in str(opts.get("userknownhostsfile", "")).split() if p)
    timeout = opts.get("connecttimeout")
    ep = Endpoint(
        alias=alias,
        hostname=opts.get("hostname", alias),
        port=port if port is not None else int(opts.get("port", 22)),
        user=user or opts.get("user") or getpass.getuser(),
        identity_files=tuple(ident),
        identities_only=str(opts.get("identitiesonly", "no")).lower() == "yes",
        known_hosts_files=kh,
    )
    jump = opts.get("proxyjump")
    return ep, (None if jump in (None, "none") else str(jump)), (float(timeout) if timeout else None)


def _parse_jump(spec: str) -> tuple[str, str | None, int | None]:
    spec = spec.removeprefix("ssh://")
    user, _, hostport = spec.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif hostport.count(":") == 1:
        host, p = hostport.split(":")
        port = int(p)
    return host, (user or None), port


def resolve(target: TargetConfig) -> ResolvedTarget:
    """Apply the SSH config to a TargetConfig. Explicit TargetConfig fields win over the config."""
    cfg = load_ssh_config(target.ssh_config)
    ep, jump_spec, timeout = _endpoint(
        cfg, target.host, port=target.port, user=target.user, identity=target.identity_file
    )
    jumps: list[Endpoint] = []
    if jump_spec:
        for hop in jump_spec.split(","):
            host, user, port = _parse_jump(hop.strip())
            jumps.append(_endpoint(cfg, host, port=port, user=user)[0])
    if "proxycommand" in cfg.lookup(target.host) and not jump_spec:
        raise ConfigProblem(
            f"the SSH config sets ProxyCommand for {target.host}; it is not supported, use ProxyJump instead"
        )
    return ResolvedTarget(ep, tuple(jumps), timeout or target.connect_timeout)

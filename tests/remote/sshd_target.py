"""How the tests and benchmark scripts reach a ThrowawaySshd through the remote layer."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from todobox_deploy.config import TargetConfig
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.sshd import ThrowawaySshd


def target_for(sshd: ThrowawaySshd, **overrides: Any) -> TargetConfig:
    """The sshd as a deploy target: its operator key and known_hosts, no user ssh_config."""
    target = TargetConfig(
        host=sshd.host,
        port=sshd.port,
        user=sshd.user,
        identity_file=sshd.client_key,
        known_hosts=sshd.known_hosts,
        ssh_config=Path("/dev/null"),
        connect_timeout=5,
    )
    return dataclasses.replace(target, **overrides)


def make_conn(target: TargetConfig, directory: Path, **kw: Any) -> SshConnection:
    """A connection isolated from the operator's files: pins and runs under ``directory``, no agent."""
    kw.setdefault("pinned_known_hosts", directory / "pins" / "known_hosts")
    kw.setdefault("known_hosts_files", [])
    kw.setdefault("run_root", str(directory / "runs"))
    kw.setdefault("allow_agent", False)
    return SshConnection(target, **kw)

"""How the tests and benchmark scripts reach a ThrowawaySshd through the remote layer."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from todobox_deploy.config import TargetConfig
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.sshd import ThrowawaySshd


class RekeyingSshd(ThrowawaySshd):
    """The sandbox's sshd with a ``RekeyLimit`` (e.g. ``"8M"``): a long stream crosses server rekeys."""

    def __init__(self, directory: Path, rekey_limit: str) -> None:
        super().__init__(directory)
        self.rekey_limit = rekey_limit

    def _config_text(self) -> str:
        return super()._config_text() + f"RekeyLimit {self.rekey_limit}\n"


def openssh_argv(sshd: ThrowawaySshd, *options: str, program: str = "ssh") -> list[str]:
    """OpenSSH's ``ssh`` to the throwaway server (key, pinned host key, no config file, no prompts), with
    ``options`` (e.g. ``-c CIPHER``) before the destination; the remote command goes after it."""
    return [
        program,
        "-q",
        "-F",
        "/dev/null",
        "-i",
        str(sshd.client_key),
        "-o",
        f"UserKnownHostsFile={sshd.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        *options,
        "-p",
        str(sshd.port),
        f"{sshd.user}@{sshd.host}",
    ]


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


class RekeyCounter(logging.Handler):
    """Counts paramiko's "Switch to new keys" log records: one per completed key exchange."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Switch to new keys" in record.getMessage():
            self.count += 1


@contextlib.contextmanager
def counting_rekeys() -> Iterator[RekeyCounter]:
    """Count the key exchanges of every paramiko transport while inside (DEBUG records, not printed)."""
    logger = logging.getLogger("paramiko.transport")
    counter = RekeyCounter()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate

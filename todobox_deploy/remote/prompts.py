"""Terminal prompts for the two questions the connection may ask: trust a host key, unlock a key."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from .errors import HostKeyInfo


def ask_trust_on_terminal(info: HostKeyInfo) -> bool:
    """Show the fingerprint and trust only if the operator types 'yes' in full (False without a tty)."""
    if not sys.stdin.isatty():
        return False
    print(
        f"The authenticity of host {info.known_hosts_name} can't be established.\n"
        f"{info.key_type} key fingerprint is {info.fingerprint}.\n"
        "Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the server's console.",
        file=sys.stderr,
    )
    return input("Type 'yes' to trust and pin this key, anything else to stop: ").strip() == "yes"


def ask_passphrase_on_terminal(path: Path) -> str | None:
    """Ask for an encrypted key's passphrase (None without a tty: the key is skipped or auth fails)."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"Passphrase for {path}: ")

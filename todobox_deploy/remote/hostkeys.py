"""A tolerant, read-only OpenSSH known_hosts reader, host key checks, and the app-owned pin file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HostKeyChanged, HostKeyInfo, HostKeyRevoked


def fingerprint(blob: bytes) -> str:
    """OpenSSH SHA256 fingerprint of a public key blob (``ssh-keygen -lf`` format)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class KnownHostEntry:
    patterns: tuple[str, ...]
    key_type: str
    blob: bytes
    marker: str | None  # None, "@revoked" or "@cert-authority"
    source: str  # "file:line"

    def matches(self, name: str) -> bool:
        hit = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            pat = pattern[1:] if negated else pattern
            if _pattern_matches(pat, name):
                if negated:
                    return False
                hit = True
        return hit


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt_b64, hash_b64 = pattern.split("|", 3)
            salt, want = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), want)
    if "*" in pattern or "?" in pattern:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.fullmatch(regex, name, re.IGNORECASE) is not None
    return pattern.lower() == name.lower()


@dataclass
class KnownHosts:
    """Entries read from one or more known_hosts files. Never writes to them."""

    entries: list[KnownHostEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, paths: Iterable[Path]) -> KnownHosts:
        kh = cls()
        for path in paths:
            kh.read(path)
        return kh

    def read(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            self.warnings.append(f"{path}: cannot read ({exc.strerror}); ignored")
            return
        for lineno, line in enumerate(text.splitlines(), 1):
            self._parse_line(line, f"{path}:{lineno}")

    def _parse_line(self, line: str, source: str) -> None:
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            return
        marker = None
        if fields[0].startswith("@"):
            marker, fields = fields[0], fields[1:]
            if marker not in ("@revoked", "@cert-authority"):
                self.warnings.append(f"{source}: unknown marker {marker}; line ignored")
                return
        if len(fields) < 3:
            self.warnings.append(f"{source}: malformed line ignored")
            return
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except binascii.Error:
            self.warnings.append(f"{source}: key is not valid base64; line ignored")
            return
        self.entries.append(KnownHostEntry(tuple(fields[0].split(",")), fields[1], blob, marker, source))

    def is_revoked(self, blob: bytes) -> bool:
        """A key marked ``@revoked`` is refused for every host (stricter than per-pattern)."""
        return any(e.marker == "@revoked" and e.blob == blob for e in self.entries)

    def keys_for(self, name: str) -> list[KnownHostEntry]:
        return [
            e for e in self.entries if e.marker is None and e.matches(name) and not self.is_revoked(e.blob)
        ]

    def check(self, info: HostKeyInfo) -> bool:
        """True if trusted; False if unknown; raises HostKeyRevoked / HostKeyChanged."""
        blob = base64.b64decode(info.key_base64)
        if self.is_revoked(blob):
            raise HostKeyRevoked(info)
        known = self.keys_for(info.known_hosts_name)
        if any(e.blob == blob for e in known):
            return True
        if known:
            raise HostKeyChanged(info, [f"{e.key_type} {fingerprint(e.blob)} ({e.source})" for e in known])
        return False

    def key_types_for(self, name: str) -> list[str]:
        return list(dict.fromkeys(e.key_type for e in self.keys_for(name)))


def pin_host_key(path: Path, info: HostKeyInfo) -> None:
    """Append the key to the app-owned known_hosts (dir 0700, file 0600, fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{info.known_hosts_name} {info.key_type} {info.key_base64}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def default_pin_file() -> Path:
    from platformdirs import user_data_path

    return user_data_path("todobox-deploy") / "known_hosts"


def default_known_hosts_files(extra: Sequence[Path] = ()) -> list[Path]:
    return [Path("~/.ssh/known_hosts").expanduser(), Path("/etc/ssh/ssh_known_hosts"), *extra]

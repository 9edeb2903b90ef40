"""A support bundle: one session's record in a ``.tar.gz`` for the checklist's "Contact support".

The journal (with its chain verified), the transcripts, the sign-off, a Markdown report and the deploy
config. Transcripts were redacted as they were written; as a second line of defence every text file is
scrubbed again of anything that looks like a credential (a password in a URL, ``password=...``).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

from todobox_deploy.journal.report import report_file
from todobox_deploy.journal.verify import verify_journal

_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@", re.IGNORECASE)
_ASSIGNED = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)(\s*[=:]\s*)(\S+)")
MASK = "[REDACTED]"


def scrub(text: str) -> str:
    """Mask credential-looking values: ``scheme://user:PASSWORD@`` and ``password=VALUE``."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", text)
    return _ASSIGNED.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _text(path: Path) -> bytes:
    return scrub(path.read_text(encoding="utf-8", errors="replace")).encode("utf-8")


def write_bundle(session_dir: Path, out: Path | None = None) -> Path:
    """Write ``<session>-bundle.tar.gz`` (or ``out``), return its path (FileNotFoundError: no journal)."""
    journal = session_dir / "journal.jsonl"
    if not journal.is_file():
        raise FileNotFoundError(f"{session_dir}: no journal.jsonl: not a session folder")
    out = out or session_dir.with_name(session_dir.name + "-bundle.tar.gz")
    root = session_dir.name
    check = verify_journal(journal)
    header = json.loads(journal.read_text(encoding="utf-8").splitlines()[0])
    with tarfile.open(out, "w:gz") as tar:
        _add(tar, f"{root}/journal.jsonl", journal.read_bytes())  # exact: its hashes must still verify
        _add(
            tar,
            f"{root}/journal-verify.txt",
            f"ok={check.ok} entries={check.entries} {check.reason}\n".encode(),
        )
        _add(tar, f"{root}/report.md", scrub(report_file(journal)).encode("utf-8"))
        for path in sorted(session_dir.glob("transcripts/*.log")):
            _add(tar, f"{root}/transcripts/{path.name}", _text(path))
        for name in ("signoff.md", "signoff.json"):
            if (session_dir / name).is_file():
                _add(tar, f"{root}/{name}", _text(session_dir / name))
        config = Path(str(header.get("config") or ""))
        if config.is_file():
            _add(tar, f"{root}/deploy.toml", _text(config))
    out.chmod(0o600)
    return out

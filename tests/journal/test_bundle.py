"""The support bundle: the session's record in one archive, the journal exact, credentials scrubbed."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from todobox_deploy.journal.bundle import scrub, write_bundle
from todobox_deploy.journal.journal import Journal
from todobox_deploy.journal.verify import verify_journal


def test_scrub_masks_credentials_and_nothing_else() -> None:
    assert scrub("DATABASE_URL=mysql+pymysql://todobox:s3cr%40t@127.0.0.1:3306/todobox") == (
        "DATABASE_URL=mysql+pymysql://todobox:[REDACTED]@127.0.0.1:3306/todobox"
    )
    assert scrub("password = hunter2 and token: abc") == "password = [REDACTED] and token: [REDACTED]"
    assert scrub("http://127.0.0.1:5000/users answered 200") == "http://127.0.0.1:5000/users answered 200"


def test_the_bundle_holds_the_session_with_the_journal_still_verifying(tmp_path: Path) -> None:
    session = tmp_path / "20261130T120000Z-prod-abc123"
    (session / "transcripts").mkdir(parents=True)
    config = tmp_path / "deploy.toml"
    config.write_text('[target]\nhost = "prod"\n# DATABASE_URL=mysql://u:leaked@h/db\n')
    journal = Journal(session / "journal.jsonl", operator="alice", host="prod")
    journal.record("session_started", config=str(config))
    journal.record("phase_finished", phase="backup", status="ok", summary="backup verified")
    (session / "transcripts" / "backup.log").write_text("12:00:00   password=oops\n")
    (session / "signoff.md").write_text("# Sign-off\n")
    out = write_bundle(session)
    assert out.name == "20261130T120000Z-prod-abc123-bundle.tar.gz" and out.stat().st_mode & 0o077 == 0
    extract = tmp_path / "x"
    with tarfile.open(out) as tar:
        names = sorted(tar.getnames())
        tar.extractall(extract, filter="data")
    root = extract / session.name
    assert names == sorted(
        f"{session.name}/{n}"
        for n in (
            "journal.jsonl",
            "journal-verify.txt",
            "report.md",
            "transcripts/backup.log",
            "signoff.md",
            "deploy.toml",
        )  # fmt: skip
    )
    assert verify_journal(root / "journal.jsonl").ok
    assert "ok=True entries=2" in (root / "journal-verify.txt").read_text()
    assert "oops" not in (root / "transcripts" / "backup.log").read_text()
    assert "leaked" not in (root / "deploy.toml").read_text()
    assert "backup verified" in (root / "report.md").read_text()


def test_a_folder_without_a_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a session folder"):
        write_bundle(tmp_path)

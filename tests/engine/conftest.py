"""Run one engine phase against a real target, collecting what it streamed and its transcript."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from todobox_deploy.config import DeployConfig
from todobox_deploy.engine.events import PhaseOutcome, Stream
from todobox_deploy.engine.runner import DeployRunner
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection

RunPhase = Callable[..., tuple[PhaseOutcome, list[tuple[Stream, str]], Path]]


@pytest.fixture
def run_phase(tmp_path: Path) -> RunPhase:
    """``run_phase(phase_id, config, environ=None) -> (outcome, [(stream, line)], transcript path)``."""

    def run(
        phase_id: str, config: DeployConfig, environ: dict[str, str] | None = None
    ) -> tuple[PhaseOutcome, list[tuple[Stream, str]], Path]:
        def connect() -> SshConnection:
            return SshConnection(config.target, pinned_known_hosts=tmp_path / "pins")

        session = DeploySession(config, connection_factory=connect, environ=environ or {})
        runner = DeployRunner(session, transcript_dir=tmp_path / "transcripts")
        seen: list[tuple[Stream, str]] = []
        try:
            outcome = runner.run(
                phase_id, lambda s, lines: seen.extend((s, ln) for ln in lines), threading.Event()
            )
        finally:
            runner.close()
        return outcome, seen, tmp_path / "transcripts" / f"{phase_id}.log"

    return run

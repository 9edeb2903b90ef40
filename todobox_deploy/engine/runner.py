"""DeployRunner: runs checklist phases by id, turns every failure into a clear outcome, keeps transcripts."""

from __future__ import annotations

import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from todobox_deploy.engine.credentials import CredentialsError
from todobox_deploy.engine.events import OutputSink, PhaseOutcome, PhaseStatus, Stream
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession

_PREFIX: dict[Stream, str] = {"stdout": "  ", "stderr": "! ", "info": "# ", "error": "!! "}


class DeployRunner:
    """The engine's implementation of :class:`~todobox_deploy.engine.events.PhaseRunner`."""

    def __init__(self, session: DeploySession, *, transcript_dir: Path | None = None) -> None:
        self.session = session
        self.transcript_dir = transcript_dir

    def can_run(self, phase_id: str) -> bool:
        return phase_id in PHASES

    def run(self, phase_id: str, sink: OutputSink, cancel: threading.Event) -> PhaseOutcome:
        phase = PHASES.get(phase_id)
        if phase is None:
            summary = f"phase {phase_id!r} is not automated yet: carry it out by hand from the checklist text"
            sink("info", [summary])
            return PhaseOutcome(PhaseStatus.SKIPPED, summary)
        transcript = self._open_transcript(phase_id)
        tee = _tee(sink, transcript)
        try:
            outcome = phase(self.session, tee, cancel)
        except Exception as exc:  # one place turns every failure into an outcome the operator can read
            outcome = PhaseOutcome(PhaseStatus.FAILED, _describe(exc))
            tee("error", [outcome.summary])
            if transcript is not None:
                transcript.write(self.session.secrets.redact(traceback.format_exc()))
        if cancel.is_set() and outcome.status is not PhaseStatus.FAILED:
            outcome = PhaseOutcome(PhaseStatus.CANCELLED, "cancelled by the operator", outcome.facts)
        tee("info", [f"{phase_id}: {outcome.status.value}: {outcome.summary}"])
        if transcript is not None:
            transcript.close()
        return outcome

    def close(self) -> None:
        self.session.close()

    def _open_transcript(self, phase_id: str) -> TextIO | None:
        if self.transcript_dir is None:
            return None
        self.transcript_dir.mkdir(parents=True, exist_ok=True)
        return (self.transcript_dir / f"{phase_id}.log").open("a", encoding="utf-8")


def _tee(sink: OutputSink, transcript: TextIO | None) -> OutputSink:
    def both(stream: Stream, lines: list[str]) -> None:
        if transcript is not None:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            transcript.writelines(f"{stamp} {_PREFIX[stream]}{line}\n" for line in lines)
            transcript.flush()
        sink(stream, lines)

    return both


def _describe(exc: BaseException) -> str:
    """A one-line, operator-facing description of a failure (never a bare traceback)."""
    if isinstance(exc, CredentialsError):
        return f"database credentials: {exc}"
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("pymysql"):
        args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
        if len(args) == 2 and isinstance(args[0], int):
            return f"MySQL error {args[0]}: {args[1]}"
    if module.startswith("todobox_deploy.remote"):
        return str(exc)
    return f"{name}: {exc}"

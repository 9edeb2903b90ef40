"""Fakes for TUI tests: a real DeployFlow over scripted phases, a frozen clock, a real journal on disk."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.journal.journal import Journal
from todobox_deploy.tui.app import DeployApp, make_app

FROZEN = datetime(2026, 11, 24, 9, 30, 0, tzinfo=UTC)


@dataclass
class Script:
    """What the scripted body of one phase does."""

    lines: int = 20
    stderr: tuple[str, ...] = ()
    outcome: PhaseOutcome | None = None
    block_until_cancel: bool = False
    raise_error: Exception | None = None
    establish: dict[str, Any] = field(default_factory=dict)  # deploy context fields the phase sets


@dataclass
class ScriptedPhases:
    """One PhaseSpec per checklist phase whose body emits numbered lines in batches and returns a scripted
    outcome; phases in ``manual`` have no body (not automated yet: the operator does them by hand)."""

    scripts: dict[str, Script] = field(default_factory=dict)
    manual: set[str] = field(default_factory=set)
    runs: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def specs(self) -> dict[str, PhaseSpec]:
        return {  # what each phase does to the host is the real registry's (rollback and gates read it)
            phase_id: PhaseSpec(
                phase_id,
                phase_id,
                None if phase_id in self.manual else self._body(phase_id),
                changes_host=PHASES[phase_id].changes_host,
                idle_when=PHASES[phase_id].idle_when,
            )
            for phase_id in CHECKLIST.phases()
        }

    def _body(self, phase_id: str) -> Callable[[PhaseCall], PhaseOutcome]:
        return lambda call: self.run(phase_id, call)

    def run(self, phase_id: str, call: PhaseCall) -> PhaseOutcome:
        self.runs.append(phase_id)
        sink, cancel = call.sink, call.cancel
        script = self.scripts.get(phase_id, Script())
        batch: list[str] = []
        for i in range(script.lines):
            batch.append(f"{phase_id} line {i}")
            if len(batch) == 100:
                sink("stdout", batch)
                batch = []
        if batch:
            sink("stdout", batch)
        if script.stderr:
            sink("stderr", list(script.stderr))
        if script.establish:
            call.establish(**script.establish)
        self.started.set()
        if script.raise_error is not None:
            raise script.raise_error
        if script.block_until_cancel:
            cancel.wait(10)
            if cancel.is_set():
                sink("info", ["cancelled by operator"])
                return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled by operator")
        if script.outcome is not None:
            return script.outcome
        return PhaseOutcome(
            PhaseStatus.OK, f"{phase_id} done", (("phase", phase_id), ("lines", str(script.lines)))
        )


class JournalView:
    """The session journal's entries as a list, read back from disk on every access."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[dict[str, Any]]:
        return Journal(self.path, operator="-", host="-").read()

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.entries()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.entries())


DEMO_CONFIG = DeployConfig(
    target=TargetConfig(host="prod-app-1.example.com"),
    app=AppConfig(path="/srv/todobox"),
    database=DatabaseConfig(name="todobox", user="todobox"),
    migration=MigrationConfig(expected_head="d1f2e3c4b5a6"),
    backup=BackupConfig(directory="/var/backups/todobox"),
)


@pytest.fixture
def scripted() -> ScriptedPhases:
    return ScriptedPhases()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.jsonl"


@pytest.fixture
def journal(journal_path: Path) -> JournalView:
    return JournalView(journal_path)


@pytest.fixture
def build_app(scripted: ScriptedPhases, journal_path: Path) -> Callable[..., DeployApp]:
    """``build_app(operator=, config=, journal=, transcript_dir=, max_log_lines=, session=, context=,
    session_dir=)``: the app over a real DeployFlow (no session by default: the scripted bodies need none;
    a ``FakeHost`` stands in for one where the TUI reads the host), journaling to ``journal_path``."""

    def build(
        *,
        operator: str = "alice",
        config: DeployConfig | None = None,
        journal: Any = None,
        transcript_dir: Path | None = None,
        max_log_lines: int = 10_000,
        session: Any = None,
        context: DeployContext | None = None,
        session_dir: Path | None = None,
    ) -> DeployApp:
        host = config.target.host if config is not None else None
        flow = DeployFlow(
            CHECKLIST,
            scripted.specs(),
            session=session,
            operator=operator,
            host=host,
            journal=journal or Journal(journal_path, operator=operator, host=host or "-"),
            transcript_dir=transcript_dir,
            clock=lambda: FROZEN,
            context=context,
        )
        flow.session_dir = session_dir
        return make_app(flow, clock=lambda: FROZEN, max_log_lines=max_log_lines)

    return build


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(Input, "cursor_blink", False)
    yield


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Pause until ``predicate()`` holds (or fail after ``timeout`` seconds)."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool]) -> Callable[..., bool]:
    """pytest-textual-snapshot's ``snap_compare``, each run starting once the wizard is whole: its details'
    Markdown mounts right after the first frame, and a snapshot must not depend on when it is taken."""

    def compare(app: DeployApp, *, run_before: Callable[[Any], Any] | None = None, **kwargs: Any) -> bool:
        async def whole_then(pilot: Any) -> None:
            await wait_for(pilot, lambda: app.wizard is not None and app.wizard.details_body is not None)
            if run_before is not None:
                await run_before(pilot)

        return snap_compare(app, run_before=whole_then, **kwargs)

    return compare

"""Fakes for TUI tests: a scripted PhaseRunner, a frozen clock, a list journal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
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
from todobox_deploy.engine.events import OutputSink, PhaseOutcome, PhaseStatus
from todobox_deploy.tui.app import DeployApp, make_app

FROZEN = datetime(2026, 11, 24, 9, 30, 0, tzinfo=UTC)


@dataclass
class Script:
    """What the fake does for one phase."""

    lines: int = 20
    stderr: tuple[str, ...] = ()
    outcome: PhaseOutcome | None = None
    block_until_cancel: bool = False
    raise_error: Exception | None = None


@dataclass
class FakeRunner:
    """A PhaseRunner that emits numbered lines in batches and returns a scripted outcome."""

    scripts: dict[str, Script] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    runs: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    closed: bool = False

    def can_run(self, phase_id: str) -> bool:
        return phase_id not in self.refused

    def run(self, phase_id: str, sink: OutputSink, cancel: threading.Event) -> PhaseOutcome:
        self.runs.append(phase_id)
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

    def close(self) -> None:
        self.closed = True


DEMO_CONFIG = DeployConfig(
    target=TargetConfig(host="prod-app-1.example.com"),
    app=AppConfig(path="/srv/todobox"),
    database=DatabaseConfig(name="todobox", user="todobox"),
    migration=MigrationConfig(expected_head="d1f2e3c4b5a6"),
    backup=BackupConfig(directory="/var/backups/todobox"),
)


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def journal() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def build_app(runner: FakeRunner, journal: list[dict[str, Any]]) -> Callable[..., DeployApp]:
    def build(**kwargs: Any) -> DeployApp:
        kwargs.setdefault("operator", "alice")
        kwargs.setdefault("journal", journal.append)
        kwargs.setdefault("clock", lambda: FROZEN)
        return make_app(CHECKLIST, runner, **kwargs)

    return build


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(Input, "cursor_blink", False)
    yield

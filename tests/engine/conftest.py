"""Run one engine phase against a real target through the deploy flow, collecting what it streamed and
its transcript."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import DeployConfig
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.phases.spec import PhaseSpec
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection

RunPhase = Callable[..., tuple[PhaseOutcome, list[tuple[Stream, str]], Path]]


def by_hand_before(phase_id: str, phases: Mapping[str, PhaseSpec] = PHASES) -> dict[str, PhaseSpec]:
    """The registry as a single-phase test runs it: ``phase_id`` and every phase after it as registered,
    every phase before it not automated, since the test (not the engine) carried those out."""
    order = CHECKLIST.phases()
    earlier = set(order[: order.index(phase_id)])
    return {p: dataclasses.replace(spec, body=None) if p in earlier else spec for p, spec in phases.items()}


def arranged_before(flow: DeployFlow, phase_id: str) -> None:
    """Put every phase before ``phase_id`` behind the flow as carried out by hand and confirmed.

    A single-phase test arranges the host state those phases would leave itself (or needs none), so on
    the flow's record they are what they are: done outside the engine (the flow runs them with
    :func:`by_hand_before`). Goes through the flow's own gate, as a front end's by-hand path does; the
    phase under test still meets its own gate, ``needs`` included."""
    for earlier in flow.order[: flow.order.index(phase_id)]:
        assert not flow.can_run(earlier), f"{earlier} is automated in this flow: run it instead"
        flow.by_hand(earlier)
        assert flow.confirm(earlier, True).accepted


@pytest.fixture
def run_phase(tmp_path: Path) -> RunPhase:
    """``run_phase(phase_id, config, environ=None, context=None) -> (outcome, [(stream, line)],
    transcript path)``: the real phase body, run by a DeployFlow over a fresh session."""

    def run(
        phase_id: str,
        config: DeployConfig,
        environ: dict[str, str] | None = None,
        context: DeployContext | None = None,
    ) -> tuple[PhaseOutcome, list[tuple[Stream, str]], Path]:
        def connect() -> SshConnection:
            return SshConnection(config.target, pinned_known_hosts=tmp_path / "pins")

        session = DeploySession(config, connection_factory=connect, environ=environ or {})
        flow = DeployFlow(
            CHECKLIST,
            by_hand_before(phase_id),
            session=session,
            operator="tester",
            host=config.target.host,
            transcript_dir=tmp_path / "transcripts",
            context=context,
        )
        seen: list[tuple[Stream, str]] = []
        try:
            arranged_before(flow, phase_id)
            outcome = flow.run(phase_id, lambda s, lines: seen.extend((s, ln) for ln in lines))
        finally:
            flow.close(0, "the test ended")
            session.close()
        return outcome, seen, tmp_path / "transcripts" / f"{phase_id}.log"

    return run

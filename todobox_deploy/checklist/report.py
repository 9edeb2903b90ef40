"""The sign-off's snapshot of a session (``DeployProgress.report``): every phase and manual item with its
confirmation. A module of its own: the wizard's first frame does not need it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from todobox_deploy.checklist.model import ChecklistNode
from todobox_deploy.checklist.progress import Confirmation
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus


@dataclass(frozen=True)
class PhaseReport:
    node: ChecklistNode
    status: PhaseStatus
    outcome: PhaseOutcome | None
    confirmation: Confirmation | None


@dataclass(frozen=True)
class ItemReport:
    node: ChecklistNode
    confirmation: Confirmation | None


@dataclass(frozen=True)
class SignOffReport:
    """An immutable snapshot for the sign-off screen."""

    title: str
    operator: str
    host: str | None
    generated_at: datetime
    phases: tuple[PhaseReport, ...]
    post_deploy: tuple[ItemReport, ...]
    success: tuple[ItemReport, ...]
    other_manual: tuple[ItemReport, ...]

    @property
    def complete(self) -> bool:
        return all(p.confirmation is not None and p.confirmation.accepted for p in self.phases)

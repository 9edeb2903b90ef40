"""Where a deploy session stands: phase outcomes, confirmations and the gate between phases.

Pure state (no Textual, no I/O); the deploy flow owns one instance and journals what it records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from todobox_deploy.checklist.model import ChecklistNode, NodeKind
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus

if TYPE_CHECKING:
    from todobox_deploy.checklist.report import ItemReport, SignOffReport

ACCEPTABLE = frozenset({PhaseStatus.OK, PhaseStatus.WARNING, PhaseStatus.SKIPPED})
"""Outcomes an operator may confirm to unlock the next phase; anything else must be re-run."""


@dataclass(frozen=True)
class Confirmation:
    """Who confirmed what, when, and what they saw."""

    node_id: str
    operator: str
    at: datetime
    accepted: bool
    phase: str | None = None
    outcome: PhaseOutcome | None = None
    unattended: bool = False  # given by --yes, not by a person who looked
    by_hand: bool = False  # the phase was carried out by hand, not by the engine


class DeployProgress:
    """Phase statuses and confirmations for one checklist; enforces the confirm-before-next gate."""

    def __init__(self, checklist: ChecklistNode) -> None:
        self.checklist = checklist
        self.order: tuple[str, ...] = checklist.phases()
        self.status: dict[str, PhaseStatus] = dict.fromkeys(self.order, PhaseStatus.PENDING)
        self.outcomes: dict[str, PhaseOutcome] = {}
        self.phase_confirmations: dict[str, Confirmation] = {}
        self.item_confirmations: dict[str, Confirmation] = {}
        self.running: str | None = None

    def is_confirmed(self, phase_id: str) -> bool:
        c = self.phase_confirmations.get(phase_id)
        return c is not None and c.accepted

    def next_phase(self) -> str | None:
        """The first phase not yet confirmed, or None when all are."""
        return next((p for p in self.order if not self.is_confirmed(p)), None)

    def refusal(self, phase_id: str) -> str | None:
        """Why ``phase_id`` may not start now, or None when it may."""
        if phase_id not in self.status:
            return f"{phase_id!r} is not a phase of this checklist"
        if self.running is not None:
            return f"phase {self.running!r} is still running"
        if self.is_confirmed(phase_id):
            return f"phase {phase_id!r} is already confirmed"
        for earlier in self.order[: self.order.index(phase_id)]:
            if not self.is_confirmed(earlier):
                return f"confirm phase {earlier!r} first"
        return None

    def open_items_before(self, phase_id: str) -> tuple[ChecklistNode, ...]:
        """MANUAL items that come before this phase in the checklist and are not confirmed yet."""
        open_items: list[ChecklistNode] = []
        for node in self.checklist.walk():
            if node.phase == phase_id:
                break
            if node.kind is NodeKind.MANUAL and node.id not in self.item_confirmations:
                open_items.append(node)
        return tuple(open_items)

    def start(self, phase_id: str) -> None:
        reason = self.refusal(phase_id)
        if reason is not None:
            raise RuntimeError(reason)
        self.running = phase_id
        self.status[phase_id] = PhaseStatus.RUNNING
        self.phase_confirmations.pop(phase_id, None)

    def finish(self, phase_id: str, outcome: PhaseOutcome) -> None:
        if self.running == phase_id:
            self.running = None
        self.status[phase_id] = outcome.status
        self.outcomes[phase_id] = outcome

    def confirm_phase(
        self,
        phase_id: str,
        operator: str,
        at: datetime,
        accepted: bool,
        *,
        unattended: bool = False,
        by_hand: bool = False,
    ) -> Confirmation:
        """Record the operator's verdict; only an acceptable outcome that they accept unlocks the next."""
        outcome = self.outcomes.get(phase_id)
        if outcome is None or self.running == phase_id:
            raise RuntimeError(f"phase {phase_id!r} has not finished")
        ok = accepted and outcome.status in ACCEPTABLE
        node = self.checklist.find_phase(phase_id)
        node_id = node.id if node else phase_id
        c = Confirmation(
            node_id, operator, at, ok, phase=phase_id, outcome=outcome, unattended=unattended, by_hand=by_hand
        )
        self.phase_confirmations[phase_id] = c
        return c

    def confirm_item(self, node_id: str, operator: str, at: datetime) -> Confirmation:
        """Toggle a MANUAL item: confirm it, or withdraw an earlier confirmation."""
        return self.set_item(node_id, operator, at, node_id not in self.item_confirmations)

    def set_item(
        self, node_id: str, operator: str, at: datetime, confirmed: bool, *, unattended: bool = False
    ) -> Confirmation:
        """Confirm a MANUAL item (or withdraw its confirmation)."""
        node = self.checklist.find(node_id)
        if node is None or node.kind is not NodeKind.MANUAL:
            raise ValueError(f"{node_id!r} is not a manual checklist item")
        self.item_confirmations.pop(node_id, None)
        c = Confirmation(node_id, operator, at, accepted=confirmed, unattended=unattended)
        if c.accepted:
            self.item_confirmations[node_id] = c
        return c

    @property
    def all_confirmed(self) -> bool:
        return all(self.is_confirmed(p) for p in self.order)

    def report(self, operator: str, host: str | None, now: datetime) -> SignOffReport:
        from todobox_deploy.checklist.report import ItemReport, PhaseReport, SignOffReport

        def items(section_id: str) -> tuple[ItemReport, ...]:
            section = self.checklist.find(section_id)
            nodes = section.manual_items() if section else ()
            return tuple(ItemReport(n, self.item_confirmations.get(n.id)) for n in nodes)

        listed = {"postdeploy", "success"}
        other = tuple(
            ItemReport(n, self.item_confirmations.get(n.id))
            for n in self.checklist.manual_items()
            if n.id.split(".", 1)[0] not in listed
        )
        phases = tuple(
            PhaseReport(
                node,
                self.status[node.phase],
                self.outcomes.get(node.phase),
                self.phase_confirmations.get(node.phase),
            )
            for node in self.checklist.phase_nodes()
            if node.phase is not None
        )
        return SignOffReport(
            self.checklist.title, operator, host, now, phases, items("postdeploy"), items("success"), other
        )

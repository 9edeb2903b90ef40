"""The phase contract: each automated phase is one typed declaration, run by the deploy flow."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from todobox_deploy.config import DeployConfig
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.core.streams import OutputSink

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession


@dataclass
class PhaseCall:
    """What a phase body gets: the session, where its output goes, the cancel flag and the context.

    A body reads what earlier phases established from ``context`` and records its own facts with
    :meth:`establish`; the flow journals every change."""

    session: DeploySession
    sink: OutputSink
    cancel: threading.Event
    context: DeployContext
    on_change: Callable[[DeployContext, DeployContext], None] | None = None  # (before, after): journal it

    @property
    def config(self) -> DeployConfig:
        return self.session.config

    def establish(self, **changes: object) -> None:
        """Set fields of the deploy context (unknown names raise TypeError)."""
        before = self.context
        self.context = dataclasses.replace(before, **changes)  # type: ignore[arg-type]
        if self.on_change is not None:
            self.on_change(before, self.context)


PhaseBody = Callable[[PhaseCall], PhaseOutcome]


@dataclass(frozen=True)
class PhaseSpec:
    """One automated phase: its id (the checklist's), what it does to the host and what it needs."""

    id: str
    title: str
    body: PhaseBody | None  # None: not automated yet, the operator carries it out by hand
    changes_host: bool = False  # stop, deploy, migrate, restore: never re-run when the host shows it done
    detached: bool = False  # runs on the host detached from the SSH channel (survives a dropped link)
    timeout: float | None = None  # seconds; the flow cancels the phase after it
    needs: tuple[str, ...] = ()  # DeployContext fields an earlier phase must have set
    idle_when: tuple[str, ...] = ()  # DeployContext flags under which it leaves the host as it is

    def __post_init__(self) -> None:
        known = {f.name for f in dataclasses.fields(DeployContext)}
        unknown = [n for n in (*self.needs, *self.idle_when) if n not in known]
        if unknown:
            raise ValueError(f"phase {self.id}: names unknown context field(s) {unknown}")

    def changes_host_now(self, context: DeployContext) -> bool:
        """Whether running it now changes the host: it is a changing phase and no ``idle_when`` flag is
        set (e.g. the stop, when the online migration was chosen or there is nothing to deploy)."""
        return self.changes_host and not any(getattr(context, flag) for flag in self.idle_when)

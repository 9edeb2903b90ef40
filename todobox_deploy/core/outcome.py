"""What a phase concluded: its status, a one-line summary and the evidence it showed.

Each piece of evidence says how it was obtained (:class:`Fact`): *observed* by a probe that got a
definite answer, *cannot verify* (the value says why), or *assumed* (taken from the config or an earlier
phase, not looked at now). A phase whose decisive fact is not observed cannot end OK
(:meth:`PhaseOutcome.fail_closed`, applied by the flow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

How = Literal["observed", "cannot verify", "assumed"]
HOWS: tuple[How, ...] = ("observed", "cannot verify", "assumed")


class PhaseStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    WARNING = "warning"  # ran, but the evidence needs the operator's attention
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (PhaseStatus.PENDING, PhaseStatus.RUNNING)


@dataclass(frozen=True)
class Fact:
    """One piece of evidence: what it is, its value, how it was obtained and by which probe (``source``).

    ``decisive``: the phase's conclusion rests on it, so it must be observed for the phase to pass."""

    label: str
    value: str
    how: How
    source: str = ""
    decisive: bool = False

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ValueError(f"fact {self.label!r}: how must be one of {', '.join(HOWS)}, not {self.how!r}")

    @property
    def pair(self) -> tuple[str, str]:
        return (self.label, self.value)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fact | None:
        """A journaled fact, or None when the entry is not one."""
        how = data.get("how")
        if how not in HOWS or "label" not in data:
            return None
        return cls(
            str(data["label"]),
            str(data.get("value", "")),
            how,
            str(data.get("source") or ""),
            bool(data.get("decisive")),
        )


def observed(label: str, value: str, source: str = "", *, decisive: bool = False) -> Fact:
    return Fact(label, value, "observed", source, decisive)


def cannot_verify(label: str, why: str, source: str = "", *, decisive: bool = False) -> Fact:
    return Fact(label, why, "cannot verify", source, decisive)


def assumed(label: str, value: str, source: str = "", *, decisive: bool = False) -> Fact:
    return Fact(label, value, "assumed", source, decisive)


@dataclass(frozen=True)
class PhaseOutcome:
    """A status, a one-line summary, and the evidence the operator confirms.

    ``facts`` is the (label, value) view every front end and the journal read; ``evidence`` holds the
    typed facts (how each was obtained). Given only ``evidence``, ``facts`` is derived from it; build a
    mixed list with :meth:`of`."""

    status: PhaseStatus
    summary: str
    facts: tuple[tuple[str, str], ...] = field(default=())
    evidence: tuple[Fact, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.evidence and not self.facts:
            object.__setattr__(self, "facts", tuple(f.pair for f in self.evidence))

    @classmethod
    def of(
        cls, status: PhaseStatus, summary: str, items: Iterable[Fact | tuple[str, str]] = ()
    ) -> PhaseOutcome:
        """An outcome from Facts and plain (label, value) pairs, in the order shown."""
        listed = tuple(items)
        return cls(
            status,
            summary,
            tuple(i.pair if isinstance(i, Fact) else i for i in listed),
            tuple(i for i in listed if isinstance(i, Fact)),
        )

    def fact(self, key: str) -> str | None:
        return dict(self.facts).get(key)

    def how(self, key: str) -> Fact | None:
        """The typed evidence behind the fact ``key`` (None for a plain pair)."""
        return next((f for f in self.evidence if f.label == key), None)

    def rows(self) -> tuple[tuple[str, str, str], ...]:
        """(label, value, how) for each fact, in order; ``how`` is "" for a plain pair."""
        typed = {f.label: f.how for f in self.evidence}
        return tuple((label, value, typed.get(label, "")) for label, value in self.facts)

    def replaced(self, status: PhaseStatus, summary: str) -> PhaseOutcome:
        """The same evidence under another status and summary."""
        return dataclasses.replace(self, status=status, summary=summary)

    def unverified_decisive(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.evidence if f.decisive and f.how != "observed")

    def fail_closed(self) -> PhaseOutcome:
        """OK or WARNING resting on a decisive fact that was not observed becomes FAILED "cannot verify"."""
        weak = self.unverified_decisive()
        if self.status not in (PhaseStatus.OK, PhaseStatus.WARNING) or not weak:
            return self
        reasons = "; ".join(
            f"{f.label}: {f.value.removeprefix('cannot verify: ')}"
            if f.how == "cannot verify"
            else f"{f.label}: assumed ({f.value}), not observed"
            for f in weak
        )
        return self.replaced(PhaseStatus.FAILED, f"cannot verify: {reasons} (was: {self.summary})")

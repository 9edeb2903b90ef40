"""The sign-off: the post-deployment checklist and the success criteria, each with its evidence.

An item passes on evidence a phase observed (the migration verified, the app started, the log scanned,
the ORM query run); otherwise it is what a person said (by hand, or unattended under ``--yes``) or it has
no evidence. The sign-off never says complete while a phase was done by hand or an item lacks evidence.
Written as ``signoff.md`` and ``signoff.json`` beside the journal; the signature is journaled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from todobox_deploy.checklist.progress import Confirmation
from todobox_deploy.checklist.report import ItemReport
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.text import inert
from todobox_deploy.engine.flow import DeployFlow

Verdict = Literal["pass", "fail", "by hand", "unattended", "no evidence"]

# item id (without its section) -> (phase, fact label prefix or None for the phase's own status)
_EVIDENCE: dict[str, tuple[str, str | None]] = {
    "migration": ("verify_migration", None),
    "app_starts": ("start_app", None),
    "no_unknown_column": ("post_verify", "Test 2: log"),
    "db_queries": ("post_verify", "Test 4"),
    "api_token": ("post_verify", "Test 5"),
}


@dataclass(frozen=True)
class SignoffItem:
    id: str
    title: str
    verdict: Verdict
    evidence: str


@dataclass(frozen=True)
class SignoffPhase:
    id: str
    title: str
    status: str
    summary: str
    confirmed_by: str
    confirmed_at: str
    by_hand: bool
    unattended: bool
    skipped: bool = False  # the operator skipped it (a read-only step, with a reason): its check never ran


@dataclass(frozen=True)
class Signoff:
    title: str
    operator: str
    host: str
    session: str
    generated_at: str
    downtime: str
    phases: tuple[SignoffPhase, ...]
    post_deploy: tuple[SignoffItem, ...]
    success: tuple[SignoffItem, ...]
    signed_by: str | None = None

    @property
    def problems(self) -> list[str]:
        """Why this sign-off is not complete (empty when it is)."""
        out = [f"phase {p.title}: not confirmed" for p in self.phases if not p.confirmed_by]
        out += [f"phase {p.title}: done by hand, no evidence" for p in self.phases if p.by_hand]
        out += [f"phase {p.title}: skipped, no evidence ({p.summary})" for p in self.phases if p.skipped]
        items = (*self.post_deploy, *self.success)
        out += [f"{i.title}: {i.verdict}" for i in items if i.verdict not in ("pass", "by hand")]
        return out

    @property
    def complete(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["complete"], data["problems"] = self.complete, self.problems
        return data


def _judge(item_id: str, outcomes: dict[str, PhaseOutcome], c: Confirmation | None) -> tuple[Verdict, str]:
    key = item_id.split(".", 1)[1]
    source = _EVIDENCE.get(key)
    if source is not None and source[0] in outcomes:
        phase, prefix = source
        outcome = outcomes[phase]
        if prefix is None:
            ok = outcome.status in (PhaseStatus.OK, PhaseStatus.WARNING)
            return ("pass" if ok else "fail"), f"{phase}: {outcome.status.value}: {outcome.summary}"
        facts = [(k, v) for k, v in outcome.facts if k.startswith(prefix)]
        if facts:
            bad = any(
                ("cannot verify" in v or "failed" in v or "exit" in v and "exit 0" not in v) for _, v in facts
            )
            text = "; ".join(f"{k}: {v}" for k, v in facts)
            return ("fail" if bad else "pass"), f"{phase}: {text}"
    if c is None or not c.accepted:
        return "no evidence", "not confirmed"
    if c.unattended:
        return (
            "unattended",
            f"confirmed unattended (--yes) by {c.operator} at {c.at.isoformat(timespec='seconds')}",
        )
    return "by hand", f"confirmed by {c.operator} at {c.at.isoformat(timespec='seconds')}"


def _downtime(flow: DeployFlow) -> str:
    ctx = flow.context
    if not ctx.app_down_at:
        return "the app was not stopped"
    if not ctx.app_up_at:
        return f"down since {ctx.app_down_at} (not healthy again yet)"
    seconds = (
        datetime.fromisoformat(ctx.app_up_at) - datetime.fromisoformat(ctx.app_down_at)
    ).total_seconds()
    return f"{seconds:.1f} s (stopped {ctx.app_down_at}, healthy {ctx.app_up_at})"


def build_signoff(flow: DeployFlow, signed_by: str | None = None) -> Signoff:
    """The sign-off of ``flow`` as it stands (a preview until every phase is confirmed)."""
    report = flow.report()
    outcomes = flow.progress.outcomes
    phases = tuple(
        SignoffPhase(
            p.node.phase or p.node.id,
            p.node.title,
            p.status.value,
            p.outcome.summary if p.outcome else "",
            p.confirmation.operator if p.confirmation and p.confirmation.accepted else "",
            p.confirmation.at.isoformat(timespec="seconds") if p.confirmation else "",
            bool(p.confirmation and p.confirmation.by_hand),
            bool(p.confirmation and p.confirmation.unattended),
            bool(p.outcome and p.outcome.fact("skipped by")),
        )
        for p in report.phases
    )

    def items(reports: tuple[ItemReport, ...]) -> tuple[SignoffItem, ...]:
        judged = ((r.node, _judge(r.node.id, outcomes, r.confirmation)) for r in reports)
        return tuple(SignoffItem(node.id, node.title, v, evidence) for node, (v, evidence) in judged)

    return Signoff(
        report.title,
        flow.operator,
        flow.host or "",
        str(flow.session_dir or ""),
        datetime.now(UTC).isoformat(timespec="seconds"),
        _downtime(flow),
        phases,
        items(report.post_deploy),
        items(report.success),
        signed_by,
    )


Escape = Callable[[str], str]
"""Makes a value from the host or the journal literal Markdown (one line, safe in a table cell)."""

VERDICT_LABELS: dict[str, str] = {
    "pass": "✔ pass",
    "fail": "**✘ fail**",
    "by hand": "✎ by hand",
    "unattended": "**⚠ unattended**",
    "no evidence": "**∅ no evidence**",
}


def how_confirmed(p: SignoffPhase) -> str:
    """How a phase came to be confirmed, in words (Markdown)."""
    if not p.confirmed_by:
        return "**not confirmed**"
    if p.by_hand:
        return "by hand, no evidence"
    if p.unattended:
        return "unattended (--yes)"
    return "evidence skipped on purpose" if p.status == "skipped" else "evidence reviewed"


def signoff_facts(s: Signoff, escape: Escape) -> list[str]:
    """Host, operator, session, downtime and signature, as a Markdown list."""
    return [
        f"- Host: {escape(s.host or '-')}",
        f"- Operator: {escape(s.operator)}",
        f"- Session: {escape(s.session or '-')}",
        f"- Downtime: {escape(s.downtime)}",
        f"- Signed by: {escape(s.signed_by) if s.signed_by else 'not signed yet'}",
    ]


def signoff_tables(s: Signoff, escape: Escape) -> list[str]:
    """The phases with how each was confirmed, then the post-deployment checklist and the success criteria
    with their verdicts and evidence, as Markdown tables."""
    lines = [
        "",
        "## Phases",
        "",
        "| Phase | Status | Confirmed by | At | How | Summary |",
        "|---|---|---|---|---|---|",
    ]
    for p in s.phases:
        cells = (
            escape(p.title),
            escape(p.status),
            escape(p.confirmed_by) or "-",
            escape(p.confirmed_at) or "-",
        )
        lines.append(f"| {' | '.join(cells)} | {how_confirmed(p)} | {escape(p.summary) or '-'} |")
    for heading, items in (("Post-Deployment Checklist", s.post_deploy), ("Success Criteria", s.success)):
        lines += ["", f"## {heading}", ""]
        if not items:
            lines.append("*none*")
            continue
        lines += ["| Item | Verdict | Evidence |", "|---|---|---|"]
        for i in items:
            verdict = VERDICT_LABELS.get(i.verdict, escape(i.verdict))
            lines.append(f"| {escape(i.title)} | {verdict} | {escape(i.evidence)} |")
    return lines


def _cell(text: str) -> str:
    """The file's escape: control characters shown as escapes, ``|`` kept inside its table cell."""
    return inert(text).replace("|", "\\|")


def signoff_markdown(s: Signoff) -> str:
    """``signoff.md``: the title, where it stands (every problem named), the facts, when it was written,
    and the tables (the screen shows the same facts and tables: ``signoff_tables``)."""
    state = "**COMPLETE**" if s.complete else "**NOT COMPLETE**: " + "; ".join(_cell(p) for p in s.problems)
    lines = [f"# Sign-off: {_cell(s.title)}", "", state, "", *signoff_facts(s, _cell)]
    lines += [f"- Written: {s.generated_at}", *signoff_tables(s, _cell)]
    return "\n".join(lines) + "\n"


def write_signoff(s: Signoff, directory: Path) -> tuple[Path, Path]:
    """``signoff.md`` and ``signoff.json`` in ``directory`` (the session folder)."""
    md, js = directory / "signoff.md", directory / "signoff.json"
    md.write_text(signoff_markdown(s), encoding="utf-8")
    js.write_text(json.dumps(s.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return md, js


def sign(flow: DeployFlow, name: str | None) -> tuple[Signoff, tuple[Path, Path] | None]:
    """Build the sign-off, journal the signature (or that it was not signed), write it beside the journal."""
    s = build_signoff(flow, signed_by=name)
    flow.record(
        "signed_off" if name else "signoff_written",
        signed_by=name,
        complete=s.complete,
        problems=s.problems,
    )
    paths = write_signoff(s, flow.session_dir) if flow.session_dir else None
    return s, paths

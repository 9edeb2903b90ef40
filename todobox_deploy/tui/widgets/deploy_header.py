"""The wizard's header line: target host, commit from -> to, the DB revision now, elapsed time, and the
downtime clock (red while the app is down, from ``app_down_at`` until ``app_up_at``)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal, NamedTuple

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from todobox_deploy.core.context import DeployContext
from todobox_deploy.tui.text import for_display

Downtime = Literal["none", "down", "up"]


def clock_text(seconds: float) -> str:
    """``HH:MM:SS`` (negative durations, from clock skew, show as 00:00:00)."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"


def _parse(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None


class HeaderFacts(NamedTuple):
    facts: str  # host │ commit │ db
    elapsed: str
    downtime: str
    state: Downtime


def header_facts(
    host: str | None, context: DeployContext, started: datetime, now: datetime, *, compact: bool = False
) -> HeaderFacts:
    """What the header shows (plain text; host values made inert by the widget). ``compact`` (a narrow
    terminal): the same facts without their labels."""
    before = (context.commit_before or "")[:7] or "?"
    after = (context.commit_after or context.commit_target or "")[:7] or "?"
    revision = context.db_revision_after or context.db_revision_before or "-"
    if compact:  # a value unknown yet keeps its label, to say what is missing
        commit = "commit -" if before == after == "?" else f"{before}→{after}"
        facts = f"{host or '-'}│{commit}│{'db -' if revision == '-' else revision}"
    else:
        commit = "commit -" if before == after == "?" else f"{before} → {after}"
        facts = f"{host or '-'} │ {commit} │ db {revision}"
    elapsed = clock_text((now - started).total_seconds())
    elapsed = elapsed if compact else f"elapsed {elapsed}"
    down, up = _parse(context.app_down_at), _parse(context.app_up_at)
    if context.app_down_at is None:
        return HeaderFacts(facts, elapsed, "", "none")
    if down is None:
        return HeaderFacts(facts, elapsed, "DOWN since ?", "down")
    if context.app_up_at is None or up is None:
        arrow = "" if compact else "▼ "
        return HeaderFacts(facts, elapsed, f"{arrow}DOWN {clock_text((now - down).total_seconds())}", "down")
    return HeaderFacts(facts, elapsed, f"downtime {(up - down).total_seconds():.1f} s", "up")


class DeployHeader(Widget):
    """One line at the top of the wizard, one widget: the facts at the left (cut with an ellipsis when the
    terminal is narrow), the elapsed time and the downtime clock at the right. :meth:`show` repaints it
    (the screen calls it every second)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "deploy-header--elapsed",
        "deploy-header--down",
        "deploy-header--up",
    }
    DEFAULT_CSS = """
    DeployHeader { height: 1; }
    DeployHeader > .deploy-header--elapsed { color: $text-muted; }
    DeployHeader > .deploy-header--down { background: $error; color: $text; text-style: bold; }
    DeployHeader > .deploy-header--up { background: $success 30%; color: $text; }
    """

    facts: reactive[HeaderFacts | None] = reactive(None)
    """What is shown (None before the first :meth:`show`)."""

    def show(self, facts: HeaderFacts) -> None:
        self.facts = facts

    def render(self) -> Text:
        facts = self.facts
        if facts is None:
            return Text()
        right = Text.assemble((f" {facts.elapsed} ", self.get_component_rich_style("deploy-header--elapsed")))
        if facts.state != "none":
            style = self.get_component_rich_style(f"deploy-header--{facts.state}")
            right.append(f" {facts.downtime} ", style)
        room = max(0, self.size.width - right.cell_len)
        left = Text(for_display(" " + facts.facts), no_wrap=True, overflow="ellipsis", end="")
        left.truncate(room, overflow="ellipsis", pad=True)
        return Text.assemble(left, right, no_wrap=True, end="")

"""A read-only sign-off: each phase's outcome, who confirmed what and when, the post-deploy checklist."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from todobox_deploy.checklist.progress import Confirmation, ItemReport, SignOffReport
from todobox_deploy.tui.text import for_display

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _who(c: Confirmation | None) -> tuple[Text, Text]:
    if c is None:
        return Text("not confirmed", style="italic"), Text("")
    verdict = "" if c.accepted else " (acknowledged, not accepted)"
    verdict += " by hand" if c.by_hand else ""
    verdict += " UNATTENDED (--yes)" if c.unattended else ""
    return Text(for_display(c.operator + verdict)), Text(c.at.strftime(TIME_FORMAT).strip())


def _clip(text: str, width: int) -> str:
    """Inert, then clipped (never inside an escape's text before it is made)."""
    text = for_display(text)
    return text if len(text) <= width else text[: width - 1] + "…"


class SignOffScreen(Screen[None]):
    """Renders a frozen ``SignOffReport`` with non-editing widgets only; ``escape`` goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="signoff.back"),
    ]
    AUTO_FOCUS = "#signoff-body"

    def __init__(self, report: SignOffReport) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        r = self.report
        yield Header()
        with VerticalScroll(id="signoff-body"):
            state = "COMPLETE: all phases confirmed" if r.complete else "PREVIEW: phases still open"
            classes = "-complete" if r.complete else ""
            yield Static(Text(f"{for_display(r.title)}\n{state}"), id="signoff-state", classes=classes)
            yield Static("Phases", classes="signoff-heading")
            yield self._phases_table()
            yield Static("Post-Deployment Checklist", classes="signoff-heading")
            yield self._items_table("signoff-postdeploy", r.post_deploy)
            yield Static("Success Criteria", classes="signoff-heading")
            yield self._items_table("signoff-success", r.success)
            yield Static("Other manual items", classes="signoff-heading")
            yield self._items_table("signoff-other", r.other_manual)
            meta = (
                f"Deployment Date: {r.generated_at.isoformat(timespec='seconds')}\n"
                f"Deployed By: {for_display(r.operator)}\n"
                f"Host: {for_display(r.host or '-')}\n"
                f"Status: {'Deployed and signed off' if r.complete else 'In progress'}"
            )
            yield Static(Text(meta), id="signoff-meta")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Sign-off" if self.report.complete else "Sign-off (preview)"
        self.sub_title = for_display(f"operator {self.report.operator}")

    def _phases_table(self) -> DataTable[Text]:
        table: DataTable[Text] = DataTable(id="signoff-phases", cursor_type="row", zebra_stripes=True)
        table.add_columns("Phase", "Status", "Confirmed by", "At", "Summary", "Evidence")
        for p in self.report.phases:
            summary = _clip(p.outcome.summary if p.outcome else "", 70)
            facts = _clip("; ".join(f"{k}={v}" for k, v in p.outcome.facts) if p.outcome else "", 40)
            table.add_row(
                Text(for_display(p.node.title)),
                Text(p.status.value),
                *_who(p.confirmation),
                Text(summary),
                Text(facts),
            )
        return table

    @staticmethod
    def _items_table(table_id: str, items: tuple[ItemReport, ...]) -> DataTable[Text]:
        table: DataTable[Text] = DataTable(id=table_id, cursor_type="row", zebra_stripes=True)
        table.add_columns("Item", "Done", "Confirmed by", "At")
        for item in items:
            done = Text("☑" if item.confirmation else "☐")
            table.add_row(Text(for_display(item.node.title)), done, *_who(item.confirmation))
        return table

"""The read-only sign-off: the post-deployment checklist and the success criteria with their evidence, the
phases with how each was confirmed, and the operator's signature.

Nothing here changes the deploy: no toggles, no phase actions (the app disables them on this screen), and
escape leaves. The one thing written is the signature (``engine.signoff.sign``: signoff.md/.json and the
journal). It never says complete while ``Signoff.complete`` is False: the problems are listed instead.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Markdown, Static

from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.signoff import Signoff, build_signoff, sign, signoff_facts, signoff_tables
from todobox_deploy.tui.bundle import write_bundle_in_background
from todobox_deploy.tui.text import for_display, for_markdown
from todobox_deploy.tui.widgets.footer import DeployFooter
from todobox_deploy.tui.widgets.ordered_input import OrderedInput

PROBLEMS_SHOWN = 8


def signoff_view(s: Signoff) -> str:
    """The sign-off as Markdown for the screen: the facts, why it is not complete (what was done by hand
    or failed first), and the tables the file has too. Every value from the host or the journal is inert."""
    lines = signoff_facts(s, for_markdown)
    if s.problems:
        urgent = sorted(s.problems, key=lambda p: not p.endswith(("done by hand, no evidence", ": fail")))
        shown = urgent[:PROBLEMS_SHOWN]
        lines += ["", "## Not complete because", ""]
        lines += [f"- {for_markdown(p)}" for p in shown]
        if len(s.problems) > len(shown):
            lines.append(f"- … and {len(s.problems) - len(shown)} more: see each verdict below")
    return "\n".join([*lines, *signoff_tables(s, for_markdown)]) + "\n"


def banner(s: Signoff) -> Text:
    """Where the sign-off stands (never "complete" while it is not), inert."""
    if not s.complete:
        n = len(s.problems)
        state = f"NOT COMPLETE: {n} problem{'s' if n != 1 else ''} (listed below)"
    else:
        state = "COMPLETE: every phase confirmed on evidence, every item passed"
    signed = f"signed by {s.signed_by}" if s.signed_by else "not signed yet"
    return Text("\n").join(Text(for_display(part)) for part in (s.title, f"{state} · {signed}"))


class SignOffScreen(Screen[None]):
    """Renders ``build_signoff(flow)``; the operator signs with their name (Input prefilled, Sign button)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="signoff.back"),
        Binding("b", "bundle", "Support bundle", id="signoff.bundle", show=False),
    ]
    AUTO_FOCUS = "#signoff-body"
    CSS_PATH = "signoff.tcss"

    def __init__(self, flow: DeployFlow) -> None:
        super().__init__()
        self.flow = flow
        self.signoff = build_signoff(flow)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="signoff-body"):
            yield Static(id="signoff-state")
            yield Markdown(id="signoff-doc", open_links=False)
        with Horizontal(id="signoff-sign"):
            yield Label("Sign as", id="signoff-sign-label")
            yield OrderedInput(self.flow.operator, id="signoff-name", placeholder="your name")
            yield Button("Sign", variant="primary", id="signoff-sign-button", compact=True)
        yield DeployFooter()

    def on_mount(self) -> None:
        self.title = "Sign-off"
        self.sub_title = for_display(f"operator {self.flow.operator}")
        self._render_signoff()

    def _render_signoff(self) -> None:
        s = self.signoff
        state = self.query_one("#signoff-state", Static)
        state.update(banner(s))
        state.set_class(s.complete, "-complete")
        state.set_class(not s.complete, "-incomplete")
        self.query_one("#signoff-doc", Markdown).update(signoff_view(s))

    @on(Input.Submitted, "#signoff-name")
    @on(Button.Pressed, "#signoff-sign-button")
    def _sign(self) -> None:
        name = " ".join(self.query_one("#signoff-name", Input).value.split())
        if not name:
            self.notify("Type your name to sign.", severity="warning")
            return
        self.signoff, paths = sign(self.flow, name)
        self._render_signoff()
        where = f"written to {paths[0]} and {paths[1].name}" if paths else "not written: no session folder"
        state = "complete" if self.signoff.complete else "NOT complete"
        self.notify(
            for_display(f"Signed by {name} ({state}); {where}"),
            title="Sign-off",
            severity="information" if self.signoff.complete else "warning",
            timeout=10,
            markup=False,
        )

    def action_bundle(self) -> None:
        write_bundle_in_background(self, self.flow)

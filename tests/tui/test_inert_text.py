"""Remote text is inert everywhere it is shown: escape sequences, an OSC title, Rich/Textual markup, a ``\\r``
overwrite and Markdown in host text reach the log pane, the details panel, the confirmation, notifications,
the question modal, the sign-off, the plain front end and the transcript as visible text, never obeyed;
the journal keeps the exact text (escaped by JSON)."""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

from rich.segment import Segment
from textual.app import App
from textual.content import Content

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import Unterminated
from todobox_deploy.core.text import inert
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.transcript import NO_NEWLINE, Transcript
from todobox_deploy.journal.journal import Journal
from todobox_deploy.plain import Console, PlainRun
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.screens.ask import AskScreen
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.signoff import SignOffScreen
from todobox_deploy.tui.screens.wizard import WizardScreen
from todobox_deploy.tui.text import for_display, for_markdown, for_markup, lines_for_display

from .conftest import FROZEN, JournalView, Script, ScriptedPhases, wait_for
from .test_wizard import wizard

ESCAPES = "\x1b]0;TITLE\x07\x1b[2J\x1b[H\x1b[32mALL CHECKS PASSED\x1b[0m"
OSC_TITLE = "\x1b]2;owned\x1b\\ title set"
MARKUP = "[bold]b[/bold] [red]r[/red] [link=https://evil.example]L[/link] [@click=app.quit]q[/]"
OVERWRITE = "3 checks FAILED\rALL CHECKS PASSED"
MARKDOWN = "[l](http://evil.example) **b** `c` <b>h</b> &amp; | cell | # h"
SEPARATOR = "x\u2028✘ forged error line \u202eevil"
HOSTILE = (ESCAPES, OSC_TITLE, MARKUP, OVERWRITE, MARKDOWN, SEPARATOR)

SHOWN = {  # what each looks like on the screen: every character visible, in order
    ESCAPES: "\\x1b]0;TITLE\\x07\\x1b[2J\\x1b[H\\x1b[32mALL CHECKS PASSED\\x1b[0m",
    OSC_TITLE: "\\x1b]2;owned\\x1b\\ title set",
    MARKUP: MARKUP,
    OVERWRITE: "3 checks FAILED\\x0dALL CHECKS PASSED",
    MARKDOWN: MARKDOWN,
    SEPARATOR: "x\\u2028✘ forged error line \\u202eevil",
}
OBEYED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # in a widget
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # what a terminal obeys (plain output, files)
SIZE = (220, 60)


# -- the helpers ------------------------------------------------------------------------------------------


def test_for_display_shows_every_control_character() -> None:
    for text in HOSTILE:
        assert for_display(text) == SHOWN[text] and not OBEYED.search(for_display(text))
    assert for_display("tab\tstays, ünïcode and 🚀 too") == "tab\tstays, ünïcode and 🚀 too"
    assert lines_for_display(list(HOSTILE)) == [SHOWN[t] for t in HOSTILE]
    assert lines_for_display(["plain", "lines"]) == ["plain", "lines"]


def test_for_markup_round_trips_any_text_through_textual_markup() -> None:
    rng = random.Random(4)
    alphabet = "[]\\/@$=#abc x\x1b\r"
    samples = [*HOSTILE, "\\", "x\\", "\\[red]", "[", "]"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))) for _ in range(3000)]
    for text in samples:
        assert Content.from_markup(for_markup(text)).plain == for_display(text), repr(text)


def test_for_markdown_is_one_literal_line() -> None:
    for text in HOSTILE:
        md = for_markdown(text)
        assert "\n" not in md and not OBEYED.search(md)
        assert re.sub(r"\\(.)", r"\1", md) == SHOWN[text]  # unescaped, it is exactly what is shown


# -- the TUI, with a scripted flow ------------------------------------------------------------------------


def screen_lines(app: App[Any]) -> list[str]:
    """The active screen as the terminal would get it, one string per row; fails on anything obeyable."""
    rows = []
    for strip in app.screen._compositor.render_strips():
        for segment in strip:
            assert isinstance(segment, Segment)
            assert not OBEYED.search(segment.text), repr(segment.text)
            meta = segment.style.meta if segment.style else {}
            assert "evil" not in str(meta.get("@click", "")), meta  # no link from host text
            assert segment.style is None or segment.style.link is None
        rows.append(strip.text)
    return rows


def shows(app: App[Any], *texts: str) -> bool:
    screen = "\n".join(screen_lines(app))
    return all(t in screen for t in texts)


HOSTILE_OUTCOME = PhaseOutcome(
    PhaseStatus.OK,
    f"fast-forwarded: {ESCAPES}",
    (("commit subject", OVERWRITE), ("file", MARKUP), ("title", OSC_TITLE), ("markdown", MARKDOWN)),
)


async def test_log_pane_details_confirm_notify_and_signoff_show_host_text_inert(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView, tmp_path: Path
) -> None:
    scripted.scripts["backup"] = Script(lines=1, stderr=HOSTILE, outcome=HOSTILE_OUTCOME)
    app = build_app(transcript_dir=tmp_path / "transcripts")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        # the confirmation: summary and evidence table
        await wait_for(
            pilot, lambda: shows(app, SHOWN[ESCAPES], SHOWN[OVERWRITE], MARKUP, SHOWN[OSC_TITLE], MARKDOWN)
        )
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: pane.pending_count == 0 and pane.log_widget.line_count == 1 + 6 + 1)
        # the log pane: one line per host line, gutter first, every character visible
        assert list(pane.log_widget.lines[1:7]) == ["! " + SHOWN[t] for t in HOSTILE]
        assert not any(line.startswith("✘") for line in pane.log_widget.lines)  # U+2028 forged no line
        assert shows(app, "! " + SHOWN[ESCAPES], "! " + SHOWN[OVERWRITE], "! " + MARKUP)
        # the details panel (Markdown) and the notification of the outcome (a toast)
        assert shows(app, f"OK: fast-forwarded: {SHOWN[ESCAPES]}", SHOWN[OSC_TITLE], MARKUP, MARKDOWN)
        [note] = [n for n in app._notifications if "fast-forwarded" in n.message]
        assert not note.markup and note.message == "fast-forwarded: " + SHOWN[ESCAPES]
        # the sign-off preview: summary and evidence columns
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        await wait_for(pilot, lambda: shows(app, "fast-forwarded: \\x1b]0;TITLE\\x07"))
        screen_lines(app)
    # the journal keeps the exact text (its JSON escapes control characters: the file is plain ASCII)
    finished = [e for e in journal if e["event"] == "phase_finished"]
    assert finished[0]["summary"] == HOSTILE_OUTCOME.summary
    assert finished[0]["facts"] == dict(HOSTILE_OUTCOME.facts)
    assert not OBEYED.search(journal.path.read_text(encoding="ascii").replace("\n", ""))
    # the transcript keeps the exact text, escaped
    transcript = (tmp_path / "transcripts" / "backup.log").read_text()
    assert not CONTROL.search(transcript.replace("\n", ""))
    assert all(f"! {inert(t)}\n" in transcript for t in HOSTILE)


async def test_markup_in_a_crash_message_neither_styles_nor_breaks_the_toast(
    build_app: Callable[..., DeployApp],
) -> None:
    app = build_app()
    message = f"{MARKUP} [link=https://e]unclosed {ESCAPES}"  # invalid as markup: would raise MarkupError

    def crash(phase_id: str, sink: Any, cancel: Any = None) -> PhaseOutcome:
        raise ConnectionError(message)

    async with app.run_test(size=SIZE) as pilot:
        with patch.object(app.flow, "execute", crash):
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        shown = f"ConnectionError: {for_display(message)}"
        assert any(n.message == shown and not n.markup for n in app._notifications)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: pane.log_widget.lines[-1:] == [f"✘ phase crashed: {shown}"])
        await wait_for(pilot, lambda: shows(app, "[bold]b[/bold] [red]r[/red]", "\\x1b]0;TITLE"))


async def test_the_question_modal_shows_its_text_inert(build_app: Callable[..., DeployApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(AskScreen(f"Migrate {OSC_TITLE}?", " ".join(HOSTILE), yes="Yes", no="No"))
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        await wait_for(
            pilot, lambda: shows(app, f"Migrate {SHOWN[OSC_TITLE]}?", "[bold]b[/bold] [red]r[/red]")
        )


async def test_operator_search_text_is_no_markup(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["backup"] = Script(lines=3, stderr=(MARKUP,))
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: pane.pending_count == 0)
        assert pane.search("[link=https://e") is not None  # the status line shows it literally
        await wait_for(pilot, lambda: shows(app, "/[link=https://e:"))


# -- the plain front end and the transcript ---------------------------------------------------------------


def test_plain_front_end_shows_host_text_inert(scripted: ScriptedPhases, tmp_path: Path) -> None:
    scripted.scripts["backup"] = Script(lines=1, stderr=HOSTILE, outcome=HOSTILE_OUTCOME)
    scripted.manual = set(CHECKLIST.phases()) - {"backup"}
    flow = DeployFlow(
        CHECKLIST,
        scripted.specs(),
        session=None,
        operator="alice",
        host="prod",
        journal=Journal(tmp_path / "journal.jsonl", operator="alice", host="prod"),
        clock=lambda: FROZEN,
    )
    out = io.StringIO()
    PlainRun(flow, Console(yes=True, stdin=io.StringIO(""), stdout=out)).run()
    text = out.getvalue()
    assert not CONTROL.search(text.replace("\n", ""))
    assert all(f"err| {inert(t)}\n" in text for t in HOSTILE)  # the live output
    assert f"OK: fast-forwarded: {SHOWN[ESCAPES]}\n" in text  # the evidence
    assert re.search(r"commit subject +" + re.escape(SHOWN[OVERWRITE]) + "\n", text)
    assert re.search(r"file +" + re.escape(MARKUP) + "\n", text)


def test_transcript_escapes_and_marks_a_missing_newline(tmp_path: Path) -> None:
    t = Transcript(tmp_path, "p")
    t.write_lines("stdout", [*HOSTILE, Unterminated("last, no newline")])
    t.write_text(f"Traceback\n  {ESCAPES}\n")
    t.close()
    text = (tmp_path / "p.log").read_text()
    assert not CONTROL.search(text.replace("\n", ""))
    lines = text.split("\n")
    stamp = r"\d\d:\d\d:\d\d "
    assert [line[9:] for line in lines[:6]] == ["  " + inert(t) for t in HOSTILE]
    assert re.fullmatch(stamp + "  last, no newline", lines[6])
    assert re.fullmatch(stamp + "# " + re.escape(NO_NEWLINE), lines[7])
    assert lines[8:] == ["Traceback", "  " + SHOWN[ESCAPES], ""]

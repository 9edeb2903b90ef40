"""Every key of the app, screen by screen: read from the bindings of each of this package's screens and
widgets (so a new screen's keys show up here without editing this file)."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Iterator
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Label, Static

PACKAGE = "todobox_deploy.tui"
ORDER = ("DeployApp", "WizardScreen", "ChecklistTree", "LogPane", "SearchInput", "ConfirmPhase")
TITLES: dict[str, str] = {
    "DeployApp": "Everywhere",
    "WizardScreen": "Wizard",
    "ChecklistTree": "Checklist tree",
    "LogPane": "Log pane",
    "SearchInput": "Log search",
    "ConfirmPhase": "Phase gate (after a phase)",
    "DestructiveConfirm": "Destructive step (stop, migrate, database restore)",
    "SkipReason": "Skip a read-only phase",
    "RollbackOffer": "Rollback offer",
    "AskScreen": "Question",
    "SignOffScreen": "Sign-off",
    "HelpScreen": "This help",
}
NAVIGATION: tuple[tuple[str, str], ...] = (
    ("↑ ↓ ← →, enter", "move in the checklist, open or select a node"),
    ("tab, shift+tab", "next / previous area (checklist, details, log)"),
    ("^p", "command palette: every action by name, and the theme (dark or light)"),
)


def _title(name: str) -> str:
    """A section title: the known one, else the class name in words ("MonitorScreen" -> "Monitor")."""
    if name in TITLES:
        return TITLES[name]
    words = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", name.removesuffix("Screen")) or [name]
    return " ".join([words[0], *(w.lower() for w in words[1:])])


def _classes(root: type[DOMNode]) -> Iterator[type[DOMNode]]:
    for sub in root.__subclasses__():
        yield sub
        yield from _classes(sub)


def _own_bindings(cls: type[DOMNode]) -> list[Binding]:
    declared: list[BindingType] = list(cls.__dict__.get("BINDINGS", []))
    return [b for b in Binding.make_bindings(declared) if not b.system]


def _describe(binding: Binding) -> str:
    text = binding.description or binding.action
    return f"{text}: {binding.tooltip}" if binding.tooltip else text


def _import_all() -> None:
    """Import every module of the package: screens that load on first use have keys to list too."""
    package = importlib.import_module(PACKAGE)
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        importlib.import_module(info.name)


def key_sections(app_class: type[DOMNode]) -> list[tuple[str, list[tuple[Binding, str]]]]:
    """(section title, [(binding, description)]) for the app and every screen and widget of this package
    that declares bindings of its own, in a stable order."""
    _import_all()
    found = {
        c.__name__: c for c in _classes(DOMNode) if c.__module__.startswith(PACKAGE) and _own_bindings(c)
    }
    found[app_class.__name__] = app_class
    names = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    sections = []
    for name in names:
        rows = [(b, _describe(b)) for b in _own_bindings(found[name])]
        if rows:
            sections.append((_title(name), rows))
    return sections


class HelpScreen(ModalScreen[None]):
    """The keys, grouped by where they work (escape, q, f1 or ? closes it)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "app.pop_screen", "Close", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 100; max-width: 100%; height: 100%; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; color: $primary; }
    HelpScreen #help-body { height: 1fr; }
    HelpScreen .help-heading { text-style: bold; margin-top: 1; color: $accent; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys (escape closes)", id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static("Navigation", classes="help-heading")
                yield Static(self._table(NAVIGATION))
                for title, rows in key_sections(type(self.app)):
                    keys: dict[str, list[str]] = {}
                    for binding, text in rows:
                        plain = dataclasses.replace(binding, key_display=None)  # each key as itself
                        keys.setdefault(text, []).append(self.app.get_key_display(plain))
                    yield Static(title, classes="help-heading")
                    yield Static(self._table(tuple((", ".join(k), text) for text, k in keys.items())))

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    @staticmethod
    def _table(rows: tuple[tuple[str, str], ...]) -> Table:
        table = Table(show_header=False, box=None, expand=True, padding=(0, 1))
        table.add_column("Key", style="bold", no_wrap=True, min_width=16)
        table.add_column("What", ratio=1)
        for key, text in rows:
            table.add_row(Text(key), Text(text))
        return table

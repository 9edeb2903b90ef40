"""The checklist as an interactive tree with a status icon on each node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from todobox_deploy.checklist.model import ChecklistNode, NodeKind
from todobox_deploy.core.outcome import PhaseStatus

ICONS: dict[str, tuple[str, str]] = {
    # state: (glyph, theme variable for its colour)
    "pending": ("○", "foreground-muted"),
    "running": ("◐", "primary"),
    "ok": ("✔", "success"),
    "warning": ("⚠", "warning"),
    "failed": ("✘", "error"),
    "cancelled": ("⊘", "warning"),
    "skipped": ("↷", "foreground-muted"),
    "confirmed": ("☑", "success"),
    "todo": ("☐", "foreground-muted"),
    "reference": ("·", "foreground-muted"),
}


class ChecklistTree(Tree[ChecklistNode]):
    """Every section of the checklist; AUTOMATED nodes show their phase status, MANUAL ones a checkbox."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "confirm_item", "Confirm item", id="tree.confirm_item", show=False),
    ]
    DEFAULT_CSS = """
    ChecklistTree { scrollbar-size-vertical: 1; }
    """

    class ConfirmRequested(Message):
        """The operator asked to confirm (or un-confirm) a MANUAL item."""

        def __init__(self, item: ChecklistNode) -> None:
            super().__init__()
            self.item = item

    def __init__(self, checklist: ChecklistNode, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(Text(checklist.title), data=checklist, id=id)
        self.auto_expand = False
        self.guide_depth = 3
        self.phase_status: dict[str, PhaseStatus] = {}
        self.confirmed: set[str] = set()
        self._by_id: dict[str, TreeNode[ChecklistNode]] = {}
        self._styled_for: object = None  # the theme variables the icon styles were parsed for
        self._icon_styles: dict[str, Style] = {}
        self._build_nodes(self.root, checklist)
        self.root.expand()

    def _build_nodes(self, parent: TreeNode[ChecklistNode], node: ChecklistNode) -> None:
        for child in node.children:
            expand = child.kind is NodeKind.SECTION and child.id.count(".") == 0
            expand = expand and child.id in ("predeploy", "deploy")
            if child.children:
                tree_node = parent.add(Text(child.title), data=child, expand=expand)
                self._build_nodes(tree_node, child)
            else:
                tree_node = parent.add_leaf(Text(child.title), data=child)
            self._by_id[child.id] = tree_node

    def node_for(self, node_id: str) -> TreeNode[ChecklistNode] | None:
        return self._by_id.get(node_id)

    def state_of(self, node: ChecklistNode) -> str | None:
        """The icon key for a checklist node, or None for sections."""
        if node.kind is NodeKind.AUTOMATED and node.phase is not None:
            if node.id in self.confirmed:
                return "confirmed"
            return self.phase_status.get(node.phase, PhaseStatus.PENDING).value
        if node.kind is NodeKind.MANUAL:
            return "confirmed" if node.id in self.confirmed else "todo"
        if node.kind is NodeKind.REFERENCE:
            return "reference"
        return None

    def update_state(self, phase_status: Mapping[str, PhaseStatus], confirmed: set[str]) -> None:
        """Adopt new statuses and confirmed node ids, and repaint."""
        self.phase_status = dict(phase_status)
        self.confirmed = set(confirmed)
        self._refresh_labels()

    def _refresh_labels(self) -> None:
        for tree_node in self._by_id.values():
            tree_node.refresh()

    def select_id(self, node_id: str) -> None:
        """Move the cursor to a node (expanding its ancestors)."""
        tree_node = self._by_id.get(node_id)
        if tree_node is None:
            return
        parent = tree_node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        _ = self.last_line  # lays the lines out again now: an expanded section's nodes get their line numbers
        self.move_cursor(tree_node)

    def render_label(self, node: TreeNode[ChecklistNode], base_style: Style, style: Style) -> Text:
        label = super().render_label(node, base_style, style)
        data = node.data
        state = self.state_of(data) if data is not None else None
        if state is None:
            return label
        glyph, variable = ICONS[state]
        return Text.assemble(Text(glyph + " ", style=self._icon_style(variable)), label)

    def _icon_style(self, variable: str) -> Style:
        """The colour of a theme variable, parsed once per theme."""
        variables = self.app.theme_variables
        if variables is not self._styled_for:
            self._styled_for, self._icon_styles = variables, {}
        style = self._icon_styles.get(variable)
        if style is None:
            value = variables.get(variable)
            style = self._icon_styles[variable] = (
                Style(color=Color.parse(value).rich_color) if value else Style()
            )
        return style

    def get_label_width(self, node: TreeNode[ChecklistNode]) -> int:
        """What ``render_label`` draws, measured without drawing it: the tree measures every line it
        lays out (Textual's documented hook for a cheaper measure)."""
        data = node.data
        icon = 2 if data is not None and self.state_of(data) is not None else 0
        toggle = (
            cell_len(self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE)
            if node.allow_expand
            else 0
        )
        label = node.label
        return icon + toggle + cell_len(label.plain if isinstance(label, Text) else label)

    def action_confirm_item(self) -> None:
        tree_node = self.cursor_node
        if tree_node is None or tree_node.data is None:
            return
        if tree_node.data.kind is NodeKind.MANUAL:
            self.post_message(self.ConfirmRequested(tree_node.data))
        elif tree_node.allow_expand:
            tree_node.toggle()

"""The checklist as plain data: a tree of frozen nodes (no Textual, no I/O)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum


class NodeKind(Enum):
    """What a checklist node asks of the operator or the engine."""

    SECTION = "section"  # groups other nodes
    AUTOMATED = "automated"  # a phase the engine runs on the host
    MANUAL = "manual"  # an item the operator confirms by hand
    REFERENCE = "reference"  # content only: commands, tables, contacts


@dataclass(frozen=True)
class ChecklistNode:
    """One node of the checklist; ``phase`` names the engine phase of an AUTOMATED node."""

    id: str
    title: str
    kind: NodeKind
    body: str = ""
    children: tuple[ChecklistNode, ...] = ()
    phase: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is NodeKind.AUTOMATED) != (self.phase is not None):
            raise ValueError(f"{self.id}: only AUTOMATED nodes carry a phase id, and they must")

    def walk(self) -> Iterator[ChecklistNode]:
        """This node and all its descendants, depth first, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, node_id: str) -> ChecklistNode | None:
        """The node with this id, or None."""
        return next((n for n in self.walk() if n.id == node_id), None)

    def find_phase(self, phase_id: str) -> ChecklistNode | None:
        """The AUTOMATED node that runs this phase, or None."""
        return next((n for n in self.walk() if n.phase == phase_id), None)

    def phases(self) -> tuple[str, ...]:
        """Phase ids in the order the checklist runs them."""
        return tuple(n.phase for n in self.walk() if n.phase is not None)

    def phase_nodes(self) -> tuple[ChecklistNode, ...]:
        """The AUTOMATED nodes, in order."""
        return tuple(n for n in self.walk() if n.kind is NodeKind.AUTOMATED)

    def manual_items(self) -> tuple[ChecklistNode, ...]:
        """The MANUAL nodes, in order."""
        return tuple(n for n in self.walk() if n.kind is NodeKind.MANUAL)


def check_ids(root: ChecklistNode) -> None:
    """Raise ValueError when ids repeat or a child's id does not extend its parent's."""
    seen: set[str] = set()
    for node in root.walk():
        if node.id in seen:
            raise ValueError(f"duplicate checklist id {node.id!r}")
        seen.add(node.id)
        for child in node.children:
            if node is not root and not child.id.startswith(node.id + "."):
                raise ValueError(f"{child.id!r} is not under its parent {node.id!r}")

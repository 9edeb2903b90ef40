"""The deploy checklist as data (no Textual): the node model, the seed tree and session progress."""

from todobox_deploy.checklist.data import CHECKLIST, PHASES, build_checklist
from todobox_deploy.checklist.model import ChecklistNode, NodeKind
from todobox_deploy.checklist.progress import DeployProgress

__all__ = [
    "CHECKLIST",
    "PHASES",
    "ChecklistNode",
    "DeployProgress",
    "NodeKind",
    "build_checklist",
]

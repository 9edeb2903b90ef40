"""The checklist tree covers every part of the seed markdown, with unique, stable ids and intended kinds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from todobox_deploy.checklist import CHECKLIST, PHASES, ChecklistNode, NodeKind, build_checklist
from todobox_deploy.checklist.model import check_ids

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "DEPLOYMENT_CHECKLIST.md"  # beside the repo
LOCAL_SEED = Path(__file__).parent / "DEPLOYMENT_CHECKLIST.md"  # a copy, for a clone without shared/


def _seed_text() -> str:
    for path in (SEED, LOCAL_SEED):
        if path.exists():
            return path.read_text(encoding="utf-8")
    pytest.skip("seed DEPLOYMENT_CHECKLIST.md not available")


def _norm(text: str) -> str:
    text = re.sub(r"[*`]", "", text).strip()
    return re.sub(r"\s+", " ", text).rstrip(":").strip()


def _parse_seed(text: str) -> dict[str, list[str]]:
    """Headings (## / ###), checkbox items, common-issue table rows and success criteria, outside code."""
    found: dict[str, list[str]] = {"h2": [], "h3": [], "checkbox": [], "table": [], "success": []}
    in_code = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if m := re.match(r"^(#{2,3}) (.+)$", line):
            found["h2" if len(m.group(1)) == 2 else "h3"].append(_norm(m.group(2)))
        elif m := re.match(r"^- \[ \] (.+)$", line):
            found["checkbox"].append(_norm(m.group(1)))
        elif line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] != "Issue":
                found["table"].append(_norm(cells[0]))
        elif line.startswith("✅"):
            found["success"].append(_norm(line.lstrip("✅")))
    return found


def _titles(kind: NodeKind | None = None) -> set[str]:
    return {_norm(n.title) for n in CHECKLIST.walk() if kind is None or n.kind is kind}


def test_seed_parse_sanity() -> None:
    found = _parse_seed(_seed_text())
    assert len(found["h2"]) == 7
    assert len(found["h3"]) == 11
    assert len(found["checkbox"]) == 5 + 7
    assert len(found["table"]) == 4
    assert len(found["success"]) == 5


def test_every_heading_has_a_node() -> None:
    found = _parse_seed(_seed_text())
    titles = _titles()
    missing = [h for h in found["h2"] + found["h3"] if h not in titles]
    assert not missing


def test_every_checkbox_item_has_a_node() -> None:
    titles = _titles()
    for item in _parse_seed(_seed_text())["checkbox"]:
        assert any(t.startswith(item) or item.startswith(t) for t in titles), item


def test_every_common_issue_row_and_success_criterion_has_a_node() -> None:
    found = _parse_seed(_seed_text())
    assert set(found["table"]) <= _titles(NodeKind.REFERENCE)
    assert set(found["success"]) <= _titles(NodeKind.MANUAL)


def test_ids_unique_and_stable() -> None:
    ids = [n.id for n in CHECKLIST.walk()]
    assert len(ids) == len(set(ids))
    check_ids(CHECKLIST)
    assert [n.id for n in build_checklist().walk()] == ids
    assert [c.id for c in CHECKLIST.children] == [
        "predeploy", "deploy", "monitoring", "postdeploy", "reference", "support", "success",
    ]  # fmt: skip


def test_duplicate_ids_are_rejected() -> None:
    leaf = ChecklistNode("a.x", "X", NodeKind.REFERENCE)
    root = ChecklistNode("r", "R", NodeKind.SECTION, children=(
        ChecklistNode("a", "A", NodeKind.SECTION, children=(leaf, leaf)),
    ))  # fmt: skip
    with pytest.raises(ValueError, match="duplicate"):
        check_ids(root)


EXPECTED_PHASES = {
    "predeploy.backup": "backup",
    "predeploy.preflight": "preflight",
    "predeploy.staging_test": "rehearsal",
    "predeploy.notify_team": "notify",
    "deploy.stop": "stop_app",
    "deploy.code": "deploy_code",
    "deploy.verify_files": "verify_files",
    "deploy.db_check": "db_check",
    "deploy.migrate": "migrate",
    "deploy.verify_migration": "verify_migration",
    "deploy.start": "start_app",
    "deploy.post_verify": "post_verify",
}


def test_automated_phases_in_order() -> None:
    assert tuple(EXPECTED_PHASES.values()) == PHASES
    for node_id, phase in EXPECTED_PHASES.items():
        node = CHECKLIST.find(node_id)
        assert node is not None and node.kind is NodeKind.AUTOMATED and node.phase == phase
        assert CHECKLIST.find_phase(phase) is node
    assert CHECKLIST.find("deploy.db_check").title.startswith("4. Check Database")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "node_id",
    [
        "predeploy.read_summary",
        "predeploy.read_analysis",
        "deploy.post_verify.login",
        "postdeploy.login",
        "postdeploy.team_notified",
        "success.migration",
    ],
)
def test_manual_items(node_id: str) -> None:
    node = CHECKLIST.find(node_id)
    assert node is not None and node.kind is NodeKind.MANUAL and node.phase is None


def test_reference_content_and_fences() -> None:
    kinds = {n.id: n.kind for n in CHECKLIST.walk()}
    assert kinds["monitoring.issues.unknown_column"] is NodeKind.REFERENCE
    assert kinds["reference.alembic_version"] is NodeKind.REFERENCE
    assert sum(1 for n in CHECKLIST.walk() if n.id.startswith("monitoring.rollback.")) == 6
    assert "flask db upgrade" in CHECKLIST.find("deploy.migrate").body  # type: ignore[union-attr]
    for node in CHECKLIST.walk():
        fences = re.findall(r"^```(\w*)$", node.body, flags=re.M)
        assert len(fences) % 2 == 0, node.id
        assert all(lang == "" for lang in fences[1::2]), node.id  # closing fences carry no language
        assert all(lang in ("bash", "python") for lang in fences[0::2]), node.id


def test_phase_node_invariant() -> None:
    with pytest.raises(ValueError):
        ChecklistNode("x", "X", NodeKind.MANUAL, phase="p")
    with pytest.raises(ValueError):
        ChecklistNode("x", "X", NodeKind.AUTOMATED)


GOLDEN_IDS = """
checklist predeploy predeploy.read_summary predeploy.read_analysis predeploy.backup
predeploy.preflight predeploy.staging_test predeploy.notify_team deploy deploy.stop deploy.code
deploy.verify_files deploy.db_check deploy.migrate deploy.verify_migration deploy.start deploy.post_verify
deploy.post_verify.http deploy.post_verify.logs deploy.post_verify.login deploy.post_verify.db_query
deploy.post_verify.api_token monitoring monitoring.logs monitoring.issues
monitoring.issues.unknown_column monitoring.issues.wont_start monitoring.issues.slow_db
monitoring.issues.connection_refused monitoring.rollback monitoring.rollback.stop
monitoring.rollback.restore_db monitoring.rollback.downgrade monitoring.rollback.previous_code
monitoring.rollback.start monitoring.rollback.verify postdeploy postdeploy.app_starts
postdeploy.login postdeploy.no_unknown_column postdeploy.db_queries postdeploy.api_token
postdeploy.user_features postdeploy.team_notified reference reference.migration_status
reference.history reference.branches reference.column reference.index reference.alembic_version
support support.check_logs support.troubleshooting support.restore support.contact success
success.migration success.app_starts success.no_unknown_column success.db_queries success.features
""".split()  # noqa: SIM905 - readable as a block


def test_ids_match_the_golden_list() -> None:
    """Ids are written to journals: renaming or reordering one must be a deliberate change here too."""
    assert [n.id for n in CHECKLIST.walk()] == GOLDEN_IDS


def test_local_seed_copy_matches_the_shared_spec() -> None:
    if not SEED.exists():
        pytest.skip("no shared/ beside the repo")
    assert LOCAL_SEED.read_text(encoding="utf-8") == SEED.read_text(encoding="utf-8")

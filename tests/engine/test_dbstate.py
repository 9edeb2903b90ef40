"""The revision graph read from files, and the database classified against what the revisions claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from todobox_deploy.config import ExpectedSchema
from todobox_deploy.engine import dbstate
from todobox_deploy.engine.alembic_graph import MigrationFileError, RevisionGraph, parse_revision
from todobox_deploy.engine.dbstate import LiveSchema, classify

APP = Path(__file__).resolve().parents[2] / "todobox_deploy" / "sandbox" / "todobox_app"
FILES = {str(p): p.read_text() for p in APP.glob("*/migrations/versions/*.py")}
GRAPH = RevisionGraph.from_files(FILES)
HEAD = "d1f2e3c4b5a6"
EXPECT = (ExpectedSchema("user", "api_token", "varchar(64)", "ix_user_api_token", True),)
BASE_COLUMNS = dict.fromkeys(["id", "username", "email", "password_hash", "oauth_provider", "oauth_id"], "x")
BASE_INDEXES = {"ix_user_username": (("username",), True), "ix_user_email": (("email",), True)}


def live(*, column: bool, index: bool, alembic: tuple[str, ...] = ("c682ef478e45",)) -> LiveSchema:
    columns = dict(BASE_COLUMNS, **({"api_token": "varchar(64)"} if column else {}))
    indexes = dict(BASE_INDEXES, **({"ix_user_api_token": (("api_token",), True)} if index else {}))
    return LiveSchema({"user": columns}, {"user": indexes}, alembic)


def test_graph_from_the_files_alone() -> None:
    assert GRAPH.problems == () and GRAPH.heads() == [HEAD]
    chain = [r.revision for r in GRAPH.path(None, HEAD) or []]
    assert chain == ["6793349c088c", "366e5694a9ad", "3e5106ee570c", "c682ef478e45", HEAD]
    rev = GRAPH.revisions["3e5106ee570c"]
    assert ("user", "api_token") in rev.adds_columns
    assert ("user", "ix_user_api_token", ("api_token",), True) in rev.adds_indexes
    assert GRAPH.revisions[HEAD].conditional  # the idempotent repair looks at the live schema


def test_the_seed_bug_is_stamped_but_not_applied_and_the_repair_re_stamps() -> None:
    v = classify(GRAPH, live(column=False, index=False), EXPECT, HEAD)
    assert v.state == dbstate.STAMPED_NOT_APPLIED
    assert "3e5106ee570c" in v.detail and "user.api_token" in v.detail
    assert v.plan == (("stamp", "366e5694a9ad"), ("upgrade", HEAD))
    assert "after the backup" in v.action


def test_column_without_index_is_half_applied_and_the_repair_upgrades() -> None:
    v = classify(GRAPH, live(column=True, index=False), EXPECT, HEAD)
    assert v.state == dbstate.HALF_APPLIED and v.plan == (("upgrade", HEAD),)
    assert "unique index ix_user_api_token missing" in v.detail


def test_ddl_done_without_the_stamp_is_applied_but_unstamped() -> None:
    v = classify(GRAPH, live(column=True, index=True), EXPECT, HEAD)
    assert v.state == dbstate.APPLIED_UNSTAMPED and v.plan == (("stamp", HEAD),)


def test_already_done() -> None:
    v = classify(GRAPH, live(column=True, index=True, alembic=(HEAD,)), EXPECT, HEAD)
    assert v.state == dbstate.ALREADY_DONE and v.plan == ()


def test_a_clean_database_one_revision_behind_needs_migration() -> None:
    # a database where c682 really ran (token_created_at gone, api_token and index present) and the
    # expected schema asks for one more column the new head adds unconditionally
    files = dict(FILES)
    files["new.py"] = (
        "revision = 'e0e0e0e0e0e0'\ndown_revision = 'd1f2e3c4b5a6'\n"
        "def upgrade():\n    op.add_column('user', sa.Column('nickname', sa.String(32)))\n"
    )
    graph = RevisionGraph.from_files(files)
    expect = (*EXPECT, ExpectedSchema("user", "nickname"))
    v = classify(graph, live(column=True, index=True, alembic=(HEAD,)), expect, "e0e0e0e0e0e0")
    assert v.state == dbstate.NEEDS_MIGRATION and v.plan == (("upgrade", "e0e0e0e0e0e0"),)
    # stamped at d1f2e3c4b5a6 without api_token: the stamp lies, whatever the new head adds
    lying = classify(graph, live(column=False, index=False, alembic=(HEAD,)), expect, "e0e0e0e0e0e0")
    assert lying.state == dbstate.STAMPED_NOT_APPLIED and lying.plan is not None
    assert lying.plan[0] == ("stamp", "366e5694a9ad")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"branch.py": "revision = 'b1'\ndown_revision = 'c682ef478e45'\n"}, "2 heads"),
        ({"orphan.py": "revision = 'o1'\ndown_revision = 'nowhere'\n"}, "has no migration file"),
        ({"broken.py": "revision = (\n"}, "not valid Python"),
    ],
)
def test_a_broken_graph_blocks(change: dict[str, str], needle: str) -> None:
    v = classify(RevisionGraph.from_files({**FILES, **change}), live(column=False, index=False), EXPECT, HEAD)
    assert v.blocked and needle in v.detail


def test_unknown_or_several_applied_revisions_block() -> None:
    assert "not a revision" in classify(GRAPH, live(column=False, index=False, alembic=("feedface0000",)),
                                        EXPECT, HEAD).detail  # fmt: skip
    two = classify(GRAPH, live(column=False, index=False, alembic=("a", "b")), EXPECT, HEAD)
    assert two.blocked and "2 rows" in two.detail


def test_missing_migration_file_for_the_head_blocks() -> None:
    files = {k: v for k, v in FILES.items() if HEAD not in k}
    v = classify(RevisionGraph.from_files(files), live(column=False, index=False), EXPECT, HEAD)
    assert v.blocked and "c682ef478e45" in v.detail


def test_a_file_without_revision_is_reported() -> None:
    with pytest.raises(MigrationFileError):
        parse_revision("down_revision = None\n", "x.py")

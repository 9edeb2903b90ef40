"""Rollback decisions, pure: one database action that fits the state found, never two, never ``-1``."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.checklist.model import NodeKind
from todobox_deploy.checklist.rollback import ROLLBACK_CHECKLIST, build_rollback_checklist
from todobox_deploy.config import ExpectedSchema
from todobox_deploy.core.context import BackupRecord, DeployContext
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.engine import rollback as rb
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.phases.rollback import (
    _COUNT_ROWS,
    ROLLBACK_PHASES,
    rollback_code,
    rollback_db,
    rollback_preview,
)
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.resume import read_entries, read_journal_state
from todobox_deploy.engine.rollback_launch import (
    ROLLBACK_KIND,
    deploy_context,
    find_deploy_session,
    find_unfinished_rollback,
)
from todobox_deploy.journal.journal import Journal

from .test_phase_logic import Result, ScriptedSession

HEAD, PREV = "d1f2e3c4b5a6", "c682ef478e45"
BEFORE, AFTER = "a" * 40, "b" * 40
EXPECT = (ExpectedSchema("user", "api_token", "varchar(64)", "ix_user_api_token", True),)
BASE_COLUMNS = {"id": "int(11)", "username": "varchar(64)"}
RECORD = BackupRecord("/srv/backups/todobox-20250101T000000Z.sql.gz", 100, "f" * 64, True, "2025-01-01")


def schema(
    column: bool, index: bool, unique: bool = True, ctype: str = "varchar(64)"
) -> tuple[rb.ItemState, ...]:
    columns = {"user": dict(BASE_COLUMNS, **({"api_token": ctype} if column else {}))}
    indexes = {"user": {"ix_user_api_token": (("api_token",), unique)} if index else {}}
    return rb.item_states(columns, indexes, EXPECT)


ABSENT, PARTIAL, PRESENT = schema(False, False), schema(True, False), schema(True, True)


def backup(
    items: tuple[rb.ItemState, ...] | None = ABSENT,
    *,
    record: BackupRecord | None = RECORD,
    intact: bool = True,
    revision: str | None = PREV,
) -> rb.BackupFacts:
    return rb.BackupFacts(record, intact, None if intact else "sha256 differs", revision, items)


def found(alembic: tuple[str, ...] | None, items: tuple[rb.ItemState, ...] | None, **kw: object) -> rb.Found:
    values: dict[str, object] = {"head": AFTER, "dirty": False, "app_up": True, **kw}
    return rb.Found(alembic, items, **values)  # type: ignore[arg-type]


def deploy(
    b: rb.BackupFacts | None = None, *, before: str | None = BEFORE, rev: str | None = PREV
) -> rb.DeployFacts:
    return rb.DeployFacts(before, AFTER, rev, "user=1", b or backup())


def decide(f: rb.Found, d: rb.DeployFacts | None = None, previous: str | None = PREV) -> rb.RollbackPlan:
    return rb.decide(f, d or deploy(), expected_head=HEAD, configured_previous=previous)


# -- the database action --------------------------------------------------------------------------


def test_at_head_intact_downgrades_to_the_explicit_revision() -> None:
    plan = decide(found((HEAD,), PRESENT))
    assert (plan.db, plan.db_target, plan.expected_revision) == ("downgrade", PREV, PREV)
    assert "-1" not in plan.db_reason and PREV in plan.db_reason


def test_the_previous_revision_comes_from_the_deploy_when_the_config_has_none() -> None:
    plan = decide(found((HEAD,), PRESENT), deploy(rev="0ld0ld0ld0ld"), previous=None)
    assert (plan.db, plan.db_target) == ("downgrade", "0ld0ld0ld0ld")
    assert any("db_revision_before" in n for n in plan.notes)


def test_no_explicit_previous_revision_refuses_rather_than_minus_one() -> None:
    plan = decide(found((HEAD,), PRESENT), deploy(backup(revision=None), rev=None), previous=None)
    assert plan.db == "refused" and plan.refused and "-1" in plan.db_reason


def test_half_applied_restores_the_verified_backup() -> None:
    plan = decide(found((PREV,), PARTIAL))
    assert (plan.db, plan.db_target) == ("restore", RECORD.path)
    assert plan.expected_revision == PREV and "partially changed" in plan.db_reason


def test_stamped_head_with_a_broken_schema_restores() -> None:
    for items in (ABSENT, PARTIAL, schema(True, True, unique=False), schema(True, True, ctype="varchar(32)")):
        plan = decide(found((HEAD,), items))
        assert plan.db == "restore", items
        assert "broken" in plan.db_reason


def test_an_unknown_or_several_revisions_restore() -> None:
    for alembic in (("3e5106ee570c",), (), (PREV, HEAD)):
        assert decide(found(alembic, PRESENT)).db == "restore"


@pytest.mark.parametrize(
    ("b", "why"),
    [
        (backup(record=None), "recorded no backup"),
        (backup(record=BackupRecord("/b.sql.gz", 1, "0" * 64, False)), "not verified"),
        (backup(intact=False), "sha256 differs"),
        (backup(revision=HEAD), f"holds alembic_version {HEAD}"),
        (backup(revision=None), "no single alembic_version row"),
    ],
)
def test_damaged_without_a_usable_backup_is_refused_with_the_reason(b: rb.BackupFacts, why: str) -> None:
    plan = decide(found((PREV,), PARTIAL), deploy(b))
    assert plan.db == "refused" and plan.db_target is None
    assert why in plan.db_reason and "partially changed" in plan.db_reason


def test_already_at_previous_with_the_pre_deploy_schema_does_nothing() -> None:
    plan = decide(found((PREV,), ABSENT))
    assert (plan.db, plan.expected_revision) == ("none", PREV) and "pre-deploy schema" in plan.db_reason
    # the pre-deploy schema had the column without the index (the backup says so): still nothing to do
    assert decide(found((PREV,), PARTIAL), deploy(backup(PARTIAL))).db == "none"
    # no backup to say what the schema was: absent objects mean the migration never ran
    assert decide(found((PREV,), ABSENT), deploy(backup(None))).db == "none"


def test_objects_kept_by_a_no_op_downgrade_are_not_restored_away() -> None:
    plan = decide(found((PREV,), PRESENT))
    assert plan.db == "none" and "remain" in plan.db_reason


def test_a_lost_table_is_damage_not_the_pre_deploy_schema() -> None:
    gone = rb.item_states({}, {}, EXPECT)
    assert gone[0].state == "no table"
    assert decide(found((PREV,), gone)).db == "restore"


def test_unreadable_database_refuses() -> None:
    assert decide(found(None, None, notes=("db down",))).db == "refused"
    assert "db down" in decide(found((HEAD,), None, notes=("db down",))).db_reason


def test_never_both_a_restore_and_a_downgrade() -> None:
    """Every combination yields exactly one database action; a restore never expects a downgrade after it."""
    alembics = [(HEAD,), (PREV,), ("x",), (), (PREV, HEAD), None]
    items = [ABSENT, PARTIAL, PRESENT, None]
    backups = [backup(), backup(record=None), backup(intact=False), backup(PRESENT)]
    for alembic, live, b, prev in itertools.product(alembics, items, backups, (PREV, None)):
        plan = decide(found(alembic, live), deploy(b), previous=prev)
        assert plan.db in ("downgrade", "restore", "none", "refused")
        if plan.db == "restore":
            assert plan.db_target == RECORD.path and plan.expected_revision == b.revision
            assert "downgrade" not in plan.to_pairs()[0][1]
        if plan.db == "downgrade":
            assert plan.db_target == PREV and alembic == (HEAD,)
        assert rb.RollbackPlan.from_pairs(plan.to_pairs()) == plan


# -- the code action --------------------------------------------------------------------------------


def test_code_resets_to_commit_before_or_does_nothing_when_already_there() -> None:
    plan = decide(found((HEAD,), PRESENT))
    assert (plan.code, plan.code_target) == ("reset", BEFORE) and "reset --keep" in plan.code_reason
    assert "HEAD~1" not in plan.code_reason
    plan = decide(found((PREV,), ABSENT, head=BEFORE))
    assert plan.code == "none" and not plan.refused


def test_code_with_local_changes_is_refused() -> None:
    plan = decide(found((HEAD,), PRESENT, dirty=True))
    assert plan.code == "refused" and "local changes" in plan.code_reason and plan.refused
    assert decide(found((HEAD,), PRESENT, dirty=None)).code == "refused"
    assert decide(found((HEAD,), PRESENT, head=None)).code == "refused"
    assert decide(found((HEAD,), PRESENT), deploy(before=None)).code == "refused"


def test_downgrade_when_head_already_is_the_old_code_reads_the_deployed_migrations() -> None:
    plan = decide(found((HEAD,), PRESENT, head=BEFORE))
    assert (plan.db, plan.code, plan.migrations_from) == ("downgrade", "none", AFTER)
    no_after = rb.DeployFacts(BEFORE, None, PREV, None, backup())
    assert decide(found((HEAD,), PRESENT, head=BEFORE), no_after).db == "refused"


# -- schema states, the dump, checksums, the loss ----------------------------------------------------


def test_item_states() -> None:
    assert [i.state for i in (ABSENT + PARTIAL + PRESENT)] == ["absent", "partial", "present"]
    assert "index ix_user_api_token missing" in PARTIAL[0].detail
    assert "not unique" in schema(True, True, unique=False)[0].detail
    assert "type varchar(32)" in schema(True, True, ctype="varchar(32)")[0].detail


MARIADB_DUMP = """\
/*M!999999\\- enable the sandbox mode */
DROP TABLE IF EXISTS `alembic_version`;
CREATE TABLE `alembic_version` (
  `version_num` varchar(32) NOT NULL,
  PRIMARY KEY (`version_num`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO `alembic_version` VALUES
('c682ef478e45');
CREATE TABLE `user` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `username` varchar(64) NOT NULL,
  `api_token` varchar(64) DEFAULT NULL,
  `n` int(10) unsigned DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ix_user_username` (`username`),
  KEY `ix_user_api_token` (`api_token`)
) ENGINE=InnoDB AUTO_INCREMENT=4 DEFAULT CHARSET=utf8mb4;
INSERT INTO `user` VALUES
(1,'a),(b',NULL,NULL),
(2,'it\\'s (x)','t',3),
(3,'c',NULL,NULL);
INSERT INTO `user` VALUES (4,'d',NULL,NULL),(5,'e\\\\',NULL,NULL);
-- Dump completed
"""


def test_parse_dump_schema_reads_mariadb_and_mysql_layouts() -> None:
    dump = rb.parse_dump_schema(MARIADB_DUMP.splitlines())
    assert dump.revisions == (PREV,)
    assert dump.column_order["user"] == ("id", "username", "api_token", "n")
    assert dump.columns["user"]["n"] == "int(10) unsigned"
    assert dump.indexes["user"]["ix_user_api_token"] == (("api_token",), False)
    assert dump.indexes["user"]["primary"] == (("id",), True)
    items = rb.item_states(dump.columns, dump.indexes, EXPECT)
    assert items[0].state == "partial" and "not unique" in items[0].detail
    one_line = rb.parse_dump_schema(["INSERT INTO `alembic_version` VALUES ('c682ef478e45');"])
    assert one_line.revisions == (PREV,)


def test_read_backup_judges_the_file_as_found() -> None:
    lines = ["Z 100", "H " + "f" * 64, *("S " + ln for ln in MARIADB_DUMP.splitlines()), "R 0 0"]
    facts = rb.read_backup(lines, RECORD, EXPECT)
    assert facts.intact and facts.revision == PREV and facts.items is not None
    changed = rb.read_backup(["Z 100", "H " + "0" * 64, "R 0 0"], RECORD, EXPECT)
    assert changed.intact is False and "missing or changed" in (changed.problem or "")
    broken = rb.read_backup(["Z 100", "H " + "f" * 64, "R 1 0"], RECORD, EXPECT)
    assert broken.intact is False


def test_the_row_counter_handles_strings_and_both_insert_layouts(tmp_path: Path) -> None:
    path = tmp_path / "d.sql.gz"
    path.write_bytes(gzip.compress(MARIADB_DUMP.encode()))
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_ROWS, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["C\talembic_version\t1", "C\tuser\t5"]


def test_checksum_verdicts_prove_or_say_cannot_compare() -> None:
    cols = {"user": ("id", "username")}
    kw = {"columns_before": cols, "columns_now": cols, "backup_sums": {}}
    [same] = rb.checksum_verdicts({"user": "1"}, {"user": "1"}, **kw)  # type: ignore[arg-type]
    assert same.ok is True
    [moved] = rb.checksum_verdicts({"user": "1"}, {"user": "2"}, **kw)  # type: ignore[arg-type]
    assert moved.ok is None and "cannot compare" in moved.text and "written since" in moved.text
    [kept] = rb.checksum_verdicts(
        {"user": "1"}, {"user": "2"}, columns_before=cols,
        columns_now={"user": ("id", "username", "api_token")}, backup_sums={},
    )  # fmt: skip
    assert kept.ok is None and "+api_token" in kept.text
    [restored] = rb.checksum_verdicts(
        {"user": "1"}, {"user": "5"}, columns_before={}, columns_now={}, backup_sums={"user": "5"}
    )
    assert (
        restored.ok is True
        and "equal to the backup" in restored.text
        and "between the backup" in restored.text
    )
    [bad] = rb.checksum_verdicts(
        {}, {"user": "6"}, columns_before={}, columns_now={}, backup_sums={"user": "5"}
    )
    assert bad.ok is False
    [none] = rb.checksum_verdicts({"user": "1"}, {"user": None}, **kw)  # type: ignore[arg-type]
    assert none.ok is None
    assert rb.parse_checksums("user=12; alembic_version=NULL") == {"user": "12", "alembic_version": "NULL"}


def test_loss_is_shown_per_table() -> None:
    lost = rb.TableLoss("user", 10, 11, inserted=1, deleted=0, changed=2, values_lost=(("api_token", 3),))
    assert lost.lost is True and "1 inserted, 0 deleted, 2 changed" in lost.describe()
    assert "3 rows have a value in api_token" in lost.describe()
    clean = rb.TableLoss("alembic_version", 1, 1, 0, 0, 0)
    counted = rb.TableLoss("user", 10, 10, note="counts only")
    assert clean.lost is False and counted.lost is None
    assert rb.TableLoss("new", None, 4, in_backup=False).lost is False
    assert rb.loss_summary([clean], "m")[1] is False
    assert rb.loss_summary([clean, counted], "m")[1] is None
    text, anything = rb.loss_summary([clean, lost], "m")
    assert anything is True and "user" in text


# -- checklist, phases, the deploy session ------------------------------------------------------------


def test_the_rollback_checklist_names_the_rollback_phases_in_order() -> None:
    tree = build_rollback_checklist()
    assert tree.title == "Rollback Procedure (If needed)"
    assert tree.phases() == tuple(ROLLBACK_PHASES) == ROLLBACK_CHECKLIST.phases()
    main_ids = {n.id for n in CHECKLIST.walk()}
    assert not main_ids & {n.id for n in tree.walk()}
    assert not set(PHASES) & set(ROLLBACK_PHASES)
    assert all(n.phase in ROLLBACK_PHASES for n in tree.walk() if n.kind is NodeKind.AUTOMATED)
    changing = {p for p, s in ROLLBACK_PHASES.items() if s.changes_host}
    assert changing == {"rollback_stop", "rollback_db", "rollback_code", "rollback_start"}


def test_the_rollback_plan_survives_the_journal() -> None:
    ctx = DeployContext(rollback_plan=(("db", "none"), ("note", "x")))
    assert DeployContext.from_json(ctx.to_json()) == ctx


def _session(root: Path, name: str, *, host: str = "prod", config: str = "c.toml", **kw: object) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    journal = Journal(directory / "journal.jsonl", operator="op", host=host)
    head = {"kind": kw.pop("kind")} if "kind" in kw else {}
    ended = kw.pop("ended", False)
    journal.record("session_started", config=config, **head)
    if kw:
        journal.record("context_updated", changes=kw)
    if ended:
        journal.record("session_ended", exit_code=0)
    return directory


def test_the_newest_deploy_session_with_a_target_is_the_one_rolled_back(tmp_path: Path) -> None:
    _session(tmp_path, "20250101T000000-a", commit_before=BEFORE, db_revision_before=PREV)
    _session(tmp_path, "20250102T000000-b", commit_before="c" * 40, host="other")
    _session(tmp_path, "20250103T000000-c")  # recorded nothing
    _session(tmp_path, "20250104T000000-d", kind=ROLLBACK_KIND, commit_before="d" * 40)
    found = find_deploy_session(tmp_path, "prod", "c.toml")
    assert found is not None and found.path.parent.name == "20250101T000000-a"
    ctx = deploy_context(found)
    assert (ctx.commit_before, ctx.db_revision_before) == (BEFORE, PREV)
    assert ctx.rollback_plan == (("deploy_session", str(found.path.parent)),)
    assert find_deploy_session(tmp_path, "prod", "other.toml") is None
    entries = read_entries(found.path)
    assert read_journal_state(found.path, entries).context.commit_before == BEFORE


def test_an_unfinished_rollback_hands_its_run_token_on(tmp_path: Path) -> None:
    _session(tmp_path, "20250101T000000-a", commit_before=BEFORE)
    _session(tmp_path, "20250102T000000-r", kind=ROLLBACK_KIND, rollback_plan=[["token", "feedbeef"]])
    deploy = find_deploy_session(tmp_path, "prod", "c.toml")
    unfinished = find_unfinished_rollback(tmp_path, "prod", "c.toml")
    assert deploy is not None and unfinished is not None
    plan = dict(deploy_context(deploy, unfinished).rollback_plan or ())
    assert plan["token"] == "feedbeef" and plan["unfinished_rollback"].endswith("20250102T000000-r")
    _session(tmp_path, "20250103T000000-r", kind=ROLLBACK_KIND, ended=True)
    assert find_unfinished_rollback(tmp_path, "prod", "c.toml") is None


# -- phases against a scripted host ------------------------------------------------------------------


def _call(session: ScriptedSession, plan: rb.RollbackPlan) -> PhaseCall:
    ctx = DeployContext(commit_before=BEFORE, rollback_plan=plan.to_pairs())
    return PhaseCall(session, lambda s, ls: None, threading.Event(), ctx)  # type: ignore[arg-type]


def test_the_code_phase_refuses_local_changes_and_moves_nothing() -> None:
    plan = decide(found((HEAD,), PRESENT))
    session = ScriptedSession({"rev-parse": Result(0, AFTER), "git status": Result(0, " M app/models.py")})
    outcome = rollback_code(_call(session, plan))
    assert outcome.status is PhaseStatus.FAILED and "local changes" in outcome.summary
    assert not any("reset" in c for c in session.ran)


def test_the_code_phase_resets_with_keep_to_commit_before() -> None:
    heads = iter([AFTER, BEFORE])

    class Moving(ScriptedSession):
        def capture(self, argv: Sequence[str] | str, *, display: str | None = None, **_: Any) -> Result:
            if display and display.startswith("git rev-parse"):
                self.ran.append(display)
                return Result(0, next(heads))
            return super().capture(argv, display=display)

    plan = decide(found((HEAD,), PRESENT))
    session = Moving({"git status": Result(0), "cat-file": Result(0), "symbolic-ref": Result(0, "master"),
                      "git reset --keep": Result(0)})  # fmt: skip
    outcome = rollback_code(_call(session, plan))
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert f"git reset --keep {BEFORE[:12]}" in session.ran
    assert not any("HEAD~1" in c or "checkout" in c for c in session.ran)


def test_the_database_phase_refuses_a_refused_plan_and_skips_none() -> None:
    refused = decide(found((PREV,), PARTIAL), deploy(backup(record=None)))
    outcome = rollback_db(_call(ScriptedSession({}), refused))
    assert outcome.status is PhaseStatus.FAILED and "no backup" in outcome.summary
    preview = rollback_preview(_call(ScriptedSession({}), decide(found((HEAD,), PRESENT))))
    assert preview.status is PhaseStatus.SKIPPED

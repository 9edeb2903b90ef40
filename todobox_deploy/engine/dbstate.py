"""Where the database stands against what its revisions claim, and the exact next action.

``alembic_version`` alone is not the truth: MySQL DDL is not transactional, so a revision can be stamped
without its columns (the seed's own bug), or its DDL can be applied without the stamp. The live schema is
compared with what the applied revisions claim and with the schema the deploy must reach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from todobox_deploy.config import ExpectedSchema
from todobox_deploy.engine.alembic_graph import Revision, RevisionGraph

NEEDS_MIGRATION = "needs migration"
ALREADY_DONE = "already done"
HALF_APPLIED = "half-applied"
APPLIED_UNSTAMPED = "applied but unstamped"
STAMPED_NOT_APPLIED = "stamped but not applied"
BLOCKED = "blocked"

Step = tuple[str, str]


@dataclass(frozen=True)
class LiveSchema:
    """What the server shows: columns and indexes per table (lower-case names) and alembic_version rows."""

    columns: Mapping[str, Mapping[str, str]]  # table -> column -> COLUMN_TYPE
    indexes: Mapping[str, Mapping[str, tuple[tuple[str, ...], bool]]]  # table -> name -> (columns, unique)
    alembic: tuple[str, ...]

    def has_column(self, table: str, column: str) -> bool:
        return column.lower() in self.columns.get(table.lower(), {})

    def index(self, table: str, name: str) -> tuple[tuple[str, ...], bool] | None:
        return self.indexes.get(table.lower(), {}).get(name.lower())


@dataclass(frozen=True)
class Verdict:
    """The classification, in plain words, with the next action and the Alembic steps that take it."""

    state: str
    detail: str
    action: str
    plan: tuple[Step, ...] | None  # None: no automatic path (blocked)
    problems: tuple[str, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        return self.plan is None


def _expected_status(live: LiveSchema, expected: Sequence[ExpectedSchema]) -> tuple[list[str], list[str]]:
    """(present, missing) descriptions of every expected column and index."""
    present: list[str] = []
    missing: list[str] = []
    for e in expected:
        name = f"{e.table}.{e.column}"
        (present if live.has_column(e.table, e.column) else missing).append(name)
        if e.index:
            ix = live.index(e.table, e.index)
            ok = ix is not None and ix[0] == (e.column.lower(),) and (ix[1] or not e.unique)
            (present if ok else missing).append(f"{'unique ' if e.unique else ''}index {e.index}")
    return present, missing


def _claimed_absent(chain: Sequence[Revision], live: LiveSchema) -> tuple[Revision | None, list[str]]:
    """Replay what the applied revisions claim; the first revision whose claims the live schema lacks."""
    state: dict[tuple[str, str], tuple[Revision, bool]] = {}
    for rev in chain:
        if rev.conditional:
            continue
        for t, c in rev.adds_columns:
            state[(t.lower(), "col:" + c.lower())] = (rev, True)
        for t, c in rev.drops_columns:
            state[(t.lower(), "col:" + c.lower())] = (rev, False)
        for t, name, _cols, _u in rev.adds_indexes:
            state[(t.lower(), "ix:" + name.lower())] = (rev, True)
        for t, name in rev.drops_indexes:
            state[(t.lower(), "ix:" + name.lower())] = (rev, False)
    absent: list[tuple[int, Revision, str]] = []
    order = {r.revision: i for i, r in enumerate(chain)}
    for (table, key), (rev, should_exist) in state.items():
        if not should_exist or table not in live.columns:
            continue
        kind, name = key.split(":", 1)
        exists = live.has_column(table, name) if kind == "col" else live.index(table, name) is not None
        if not exists:
            absent.append((order[rev.revision], rev, f"{table}.{name}" if kind == "col" else f"index {name}"))
    if not absent:
        return None, []
    absent.sort(key=lambda a: a[0])
    return absent[0][1], [what for _, _, what in absent]


def _replay_safe(revisions: Sequence[Revision], live: LiveSchema) -> bool:
    """Re-running these revisions will not trip over what exists (no add of a present column/index)."""
    for rev in revisions:
        if rev.conditional:
            continue
        for t, c in rev.adds_columns:
            if live.has_column(t, c) and not any((t, c) == d for r in revisions for d in r.drops_columns):
                return False
        for t, name, _cols, _u in rev.adds_indexes:
            if live.index(t, name) is not None:
                return False
    return True


def classify(
    graph: RevisionGraph, live: LiveSchema, expected: Sequence[ExpectedSchema], head: str
) -> Verdict:
    """Classify the database for a deploy whose target head is ``head``."""
    if graph.problems:
        return Verdict(
            BLOCKED, "; ".join(graph.problems), "fix the migration files first", None, graph.problems
        )
    heads = graph.heads()
    if heads != [head]:
        found = {0: "no head", 1: f"the head {heads[0] if heads else ''}"}.get(
            len(heads), f"{len(heads)} heads ({', '.join(heads)})"
        )
        why = f"the migration files have {found}, expected {head}"
        action = "merge the heads (flask db merge) and commit" if len(heads) > 1 else "check expected_head"
        return Verdict(BLOCKED, why, action, None, (why,))
    if len(live.alembic) > 1:
        why = (
            f"alembic_version has {len(live.alembic)} rows ({', '.join(live.alembic)}): several heads applied"
        )
        return Verdict(BLOCKED, why, "repair alembic_version by hand", None, (why,))
    current = live.alembic[0] if live.alembic else None
    present, missing = _expected_status(live, expected)
    if current is not None and current not in graph.revisions:
        why = f"alembic_version {current} is not a revision of the target commit's migrations"
        return Verdict(BLOCKED, why, "find where that revision came from before migrating", None, (why,))
    pending = graph.path(current, head)
    if pending is None:
        why = f"alembic_version {current} is not an ancestor of {head}: the database is ahead or on a branch"
        return Verdict(BLOCKED, why, "do not migrate: compare the branches", None, (why,))
    if not pending:
        if not missing:
            return Verdict(ALREADY_DONE, f"at {head}; {', '.join(present)} present", "nothing to migrate", ())
        detail = f"alembic_version says {head} but {', '.join(missing)} missing"
        return Verdict(STAMPED_NOT_APPLIED, detail, "repair by hand or restore the backup", None)
    repairs = all(r.conditional for r in pending)  # the pending revisions look at the live schema
    have, lack = _pending_claims(pending, live)
    if not have and not lack:  # nothing claimed up front: measure against the schema the deploy must reach
        have, lack = present, missing
    if have and lack:
        detail = f"{', '.join(have)} present, {', '.join(lack)} missing (alembic_version {current})"
        if repairs or _replay_safe(pending, live):
            action = f"after the backup: upgrade to {head} (the pending revisions add only what is missing)"
            return Verdict(HALF_APPLIED, detail, action, (("upgrade", head),))
        return Verdict(HALF_APPLIED, detail, "repair by hand or restore the backup", None)
    if have and not missing:
        detail = f"{', '.join(have)} present while alembic_version is {current}"
        return Verdict(APPLIED_UNSTAMPED, detail, f"after the backup: stamp {head}", (("stamp", head),))
    applied = graph.path(None, current) if current else []
    stale, lacking = _claimed_absent(applied or [], live)
    if stale is not None and applied:
        redo = applied[[r.revision for r in applied].index(stale.revision) :]
        back = stale.down_revisions[0] if stale.down_revisions else "base"
        gone = ", ".join(lacking)
        detail = f"alembic_version says {current}, but {gone} (claimed by {stale.revision}) are absent"
        if len(stale.down_revisions) <= 1 and _replay_safe([*redo, *pending], live):
            action = (
                f"after the backup: stamp {back}, then upgrade to {head} (re-runs {stale.revision} onward)"
            )
            return Verdict(STAMPED_NOT_APPLIED, detail, action, (("stamp", back), ("upgrade", head)))
        if repairs:
            action = f"after the backup: upgrade to {head} (the pending revisions repair what is missing)"
            return Verdict(STAMPED_NOT_APPLIED, detail, action, (("upgrade", head),))
        return Verdict(
            STAMPED_NOT_APPLIED, detail, "repair by hand: re-running would trip over existing DDL", None
        )
    detail = f"alembic_version {current or '(empty)'}; {', '.join(missing)} to add"
    return Verdict(NEEDS_MIGRATION, detail, f"after the backup: upgrade to {head}", (("upgrade", head),))


def _pending_claims(revisions: Sequence[Revision], live: LiveSchema) -> tuple[list[str], list[str]]:
    """(present, absent) of what the pending revisions add unconditionally."""
    have: list[str] = []
    lack: list[str] = []
    for rev in revisions:
        if rev.conditional:
            continue
        for t, c in rev.adds_columns:
            (have if live.has_column(t, c) else lack).append(f"{t}.{c}")
        for t, name, _c, _u in rev.adds_indexes:
            (have if live.index(t, name) is not None else lack).append(f"index {name}")
    return have, lack

"""Rollback that fits the state found: exactly one database action, the code action, and the evidence.

Pure decisions (:func:`decide`, :func:`item_states`, :func:`checksum_verdicts`, the dump parsers) plus
:func:`probe`, which asks the host read-only for what they need. The database action is one of

* ``downgrade`` to the explicit previous revision (never ``-1``): the DB is at the new head, schema intact;
* ``restore`` the deploy's verified backup: the DB is damaged or half-applied (a restore brings its own
  ``alembic_version`` back, so no downgrade ever follows it);
* ``none``: the DB already is at the previous revision with a schema the previous code works with, or
  it is at the head as the deploy found it before it ran (that deploy migrated nothing);
* ``refused``: no safe action (the reason says why, e.g. damaged and no verified backup).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from todobox_deploy.config import DeployConfig, ExpectedSchema
from todobox_deploy.core.context import BackupRecord, DeployContext
from todobox_deploy.remote import quoting

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession

DbAction = Literal["downgrade", "restore", "none", "refused"]
CodeAction = Literal["reset", "none", "refused"]
ItemKind = Literal["present", "absent", "partial", "no table"]
Columns = Mapping[str, Mapping[str, str]]  # table -> column -> type (lower-case)
Indexes = Mapping[str, Mapping[str, tuple[tuple[str, ...], bool]]]  # table -> name -> (columns, unique)


@dataclass(frozen=True)
class ItemState:
    """One expected column (with its index) as a schema shows it."""

    name: str  # "user.api_token"
    state: ItemKind
    detail: str


def item_states(
    columns: Columns, indexes: Indexes, expected: Sequence[ExpectedSchema]
) -> tuple[ItemState, ...]:
    """Each expected column/index: present (as the deploy leaves it), absent, partial, or its table gone."""
    out: list[ItemState] = []
    for e in expected:
        table, column = e.table.lower(), e.column.lower()
        name = f"{e.table}.{e.column}"
        if table not in columns:
            out.append(ItemState(name, "no table", f"table {e.table} missing"))
            continue
        ctype = columns[table].get(column)
        ix = indexes.get(table, {}).get(e.index.lower()) if e.index else None
        if ctype is None and ix is None:
            out.append(
                ItemState(
                    name, "absent", "column missing" + (f", index {e.index} missing" if e.index else "")
                )
            )
            continue
        problems: list[str] = []
        if ctype is None:
            problems.append("column missing")
        elif e.type and ctype != e.type.lower():
            problems.append(f"type {ctype}, expected {e.type.lower()}")
        if e.index:
            if ix is None:
                problems.append(f"index {e.index} missing")
            elif ix[0] != (column,):
                problems.append(f"index {e.index} on ({', '.join(ix[0])})")
            elif e.unique and not ix[1]:
                problems.append(f"index {e.index} not unique")
        if problems:
            out.append(ItemState(name, "partial", "; ".join(problems)))
        else:
            shown = f"{ctype}" + (f", {'unique ' if e.unique else ''}index {e.index}" if e.index else "")
            out.append(ItemState(name, "present", shown))
    return tuple(out)


# -- what the probe finds -----------------------------------------------------------------------


@dataclass(frozen=True)
class BackupFacts:
    """The deploy's backup as found on the host now."""

    record: BackupRecord | None
    intact: bool | None = None  # size and sha256 re-read equal to the record; None: not checked
    problem: str | None = None
    revision: str | None = None  # the dump's alembic_version row
    items: tuple[ItemState, ...] | None = None  # the expected items in the dump's CREATE TABLEs
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # table -> columns, pre-deploy


@dataclass(frozen=True)
class Found:
    """What the host shows now; None where a probe got no definite answer (the reason is in notes)."""

    alembic: tuple[str, ...] | None
    items: tuple[ItemState, ...] | None
    head: str | None
    dirty: bool | None
    app_up: bool | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployFacts:
    """What the deploy being rolled back recorded (its journal's context) and its backup on the host."""

    commit_before: str | None
    commit_after: str | None
    db_revision_before: str | None
    checksum_before: str | None
    backup: BackupFacts

    @classmethod
    def of(cls, ctx: DeployContext, backup: BackupFacts) -> DeployFacts:
        return cls(
            ctx.commit_before,
            ctx.commit_after or ctx.commit_target,
            ctx.db_revision_before,
            ctx.checksum_before,
            backup,
        )


@dataclass(frozen=True)
class RollbackPlan:
    """One database action (never two), the code action, and what alembic_version must read afterwards."""

    db: DbAction
    db_target: str | None  # the revision to downgrade to, or the backup file to restore
    db_reason: str
    code: CodeAction
    code_target: str | None  # the commit to reset the branch to
    code_reason: str
    expected_revision: str | None  # alembic_version after the rollback
    migrations_from: str | None = None  # downgrade: read the migrations of this commit (HEAD lacks them)
    notes: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return self.db == "refused" or self.code == "refused"

    def to_pairs(self) -> tuple[tuple[str, str], ...]:
        pairs = [
            ("db", self.db),
            ("db_target", self.db_target or ""),
            ("db_reason", self.db_reason),
            ("code", self.code),
            ("code_target", self.code_target or ""),
            ("code_reason", self.code_reason),
            ("expected_revision", self.expected_revision or ""),
            ("migrations_from", self.migrations_from or ""),
        ]
        return tuple(pairs) + tuple(("note", n) for n in self.notes)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> RollbackPlan | None:
        """The plan stored by :meth:`to_pairs` (other keys ignored); None when there is none."""
        pairs = list(pairs)
        values = dict(pairs)
        if values.get("db") not in ("downgrade", "restore", "none", "refused"):
            return None
        if values.get("code") not in ("reset", "none", "refused"):
            return None
        return cls(
            values["db"],  # type: ignore[arg-type]
            values.get("db_target") or None,
            values.get("db_reason", ""),
            values["code"],  # type: ignore[arg-type]
            values.get("code_target") or None,
            values.get("code_reason", ""),
            values.get("expected_revision") or None,
            values.get("migrations_from") or None,
            tuple(v for k, v in pairs if k == "note"),
        )


# -- the decision -------------------------------------------------------------------------------


def previous_revision(configured: str | None, deploy: DeployFacts) -> tuple[str | None, tuple[str, ...]]:
    """The explicit revision to go back to: ``[migration] previous_revision``, else the deploy's
    ``db_revision_before``, else the backup's alembic_version row; notes on where it came from."""
    seen = deploy.db_revision_before or deploy.backup.revision
    if configured:
        notes: tuple[str, ...] = ()
        if seen and seen != configured:
            notes = (
                f"[migration] previous_revision is {configured} but the deploy saw {seen} before it: "
                f"the rollback goes back to {configured}",
            )
        return configured, notes
    if deploy.db_revision_before:
        return deploy.db_revision_before, ("previous revision taken from the deploy's db_revision_before",)
    if deploy.backup.revision:
        return deploy.backup.revision, ("previous revision taken from the backup's alembic_version row",)
    return None, ()


def _names(items: Sequence[ItemState], *kinds: ItemKind) -> str:
    return ", ".join(f"{i.name} ({i.detail})" for i in items if i.state in kinds)


DbChoice = tuple[DbAction, str | None, str]


def _refuse(reason: str) -> DbChoice:
    return "refused", None, reason


def _restore(backup: BackupFacts, why: str, previous: str | None) -> DbChoice:
    record = backup.record
    if record is None:
        return _refuse(f"{why}; a restore is needed but the deploy recorded no backup")
    path = record.path
    if not record.verified:
        return _refuse(f"{why}; a restore is needed but the deploy's backup {path} was not verified")
    if backup.intact is not True:
        return _refuse(
            f"{why}; the backup {path} cannot be used: {backup.problem or 'it was not re-checked'}"
        )
    if backup.revision is None:
        return _refuse(f"{why}; the backup {path} holds no single alembic_version row")
    if previous is not None and backup.revision != previous:
        return _refuse(
            f"{why}; the backup {path} holds alembic_version {backup.revision}, not the previous revision "
            f"{previous}: it is not the state before this deploy"
        )
    text = (
        f"{why}: restore the verified backup {path} (it brings alembic_version {backup.revision} back "
        "with it; no downgrade follows a restore)"
    )
    return "restore", path, text


def _at_head(live: Sequence[ItemState], deploy: DeployFacts, head: str, previous: str | None) -> DbChoice:
    intact = all(i.state == "present" for i in live)
    if intact and deploy.db_revision_before == head:
        why = (
            f"alembic_version is the head {head}, as the deploy found it before it ran (it migrated "
            f"nothing), and {_names(live, 'present')} intact: nothing is undone on the database"
        )
        return "none", None, why
    if not intact:
        broken = _names(live, "absent", "partial", "no table")
        return _restore(
            deploy.backup,
            f"alembic_version says the new head {head} but the schema is broken: {broken}",
            previous,
        )
    if previous is None:
        return _refuse(
            f"alembic_version is the new head {head} with its schema intact, but no explicit previous "
            "revision is known ([migration] previous_revision, the deploy's db_revision_before): a relative "
            "downgrade (-1) is never used"
        )
    if previous == head:
        return _refuse(f"the previous revision {previous} is the new head itself")
    text = (
        f"alembic_version is the new head {head} and {_names(live, 'present')} intact: downgrade to the "
        f"explicit previous revision {previous}"
    )
    return "downgrade", previous, text


def _at_previous(live: Sequence[ItemState], deploy: DeployFacts, previous: str) -> DbChoice:
    before = deploy.backup.items
    at = f"already at the previous revision {previous}"
    if before is not None and [(i.name, i.state) for i in before] == [(i.name, i.state) for i in live]:
        return "none", None, f"{at} with the pre-deploy schema (the migration never ran, or was rolled back)"
    if all(i.state == "present" for i in live):
        kept = _names(live, "present")
        why = (
            f"{at}; {kept} remain (the downgrade keeps them, or the DDL ran without the stamp): the previous "
            "code works with them, so nothing is undone on the database"
        )
        return "none", None, why
    if before is None and all(i.state == "absent" for i in live):
        return "none", None, f"{at} and the migration's objects are absent (the migration never ran)"
    changed = _names(live, "present", "partial", "no table", "absent")
    why = (
        f"alembic_version is the previous revision {previous} but the schema was partially changed: {changed}"
    )
    return _restore(deploy.backup, why, previous)


def _db_action(found: Found, deploy: DeployFacts, head: str, previous: str | None) -> DbChoice:
    if found.alembic is None:
        return _refuse("cannot verify alembic_version: " + ("; ".join(found.notes) or "no answer"))
    if found.items is None:
        return _refuse("cannot verify the schema: " + ("; ".join(found.notes) or "no answer"))
    revs = found.alembic
    current = revs[0] if len(revs) == 1 else None
    if current == head:
        return _at_head(found.items, deploy, head, previous)
    if current is not None and current == previous:
        return _at_previous(found.items, deploy, previous)
    why = (
        f"alembic_version is {', '.join(revs) or '(empty)'}: neither the previous revision "
        f"{previous or '(unknown)'} nor the new head {head} (damaged or half-applied)"
    )
    return _restore(deploy.backup, why, previous)


def _code_action(found: Found, deploy: DeployFacts) -> tuple[CodeAction, str | None, str]:
    before = deploy.commit_before
    if before is None:
        return "refused", None, "the deploy recorded no commit_before: the previous code is unknown"
    if found.head is None:
        return "refused", before, "cannot verify the work tree's HEAD"
    if found.head == before:
        return "none", before, f"HEAD already is the previous commit {before[:12]}"
    if found.dirty is None:
        return "refused", before, "cannot verify that the work tree has no local changes"
    if found.dirty:
        why = (
            "the work tree has local changes: commit or stash them on the host first, then run the rollback "
            "again (they are never overwritten)"
        )
        return "refused", before, why
    return "reset", before, f"git reset --keep {before[:12]} (HEAD is {found.head[:12]})"


def decide(
    found: Found, deploy: DeployFacts, *, expected_head: str, configured_previous: str | None
) -> RollbackPlan:
    """The rollback that fits what the host shows and what the deploy recorded."""
    previous, notes = previous_revision(configured_previous, deploy)
    db, target, reason = _db_action(found, deploy, expected_head, previous)
    if db == "none" and deploy.db_revision_before == expected_head:
        notes = ()  # no previous revision is gone back to: the deploy migrated nothing
    code, commit, code_reason = _code_action(found, deploy)
    expected = {"downgrade": target, "restore": deploy.backup.revision}.get(db, previous)
    if db == "none" and found.alembic:
        expected = found.alembic[0]
    source: str | None = None
    if db == "downgrade" and code == "none":
        # HEAD is the previous code already: its migrations lack the head revision; read the deployed ones
        source = deploy.commit_after
        if source is None:
            db, target, reason = _refuse(
                f"{reason}; but HEAD already is the previous commit, whose migrations lack "
                f"{expected_head}, and the deploy recorded no commit_after to read them from"
            )
    return RollbackPlan(db, target, reason, code, commit, code_reason, expected, source, notes)


# -- after the rollback: CHECKSUM TABLE ---------------------------------------------------------


def parse_checksums(text: str | None) -> dict[str, str]:
    """``user=123; x=NULL`` (the pre-flight's ``checksum_before``) as {table: value}."""
    out: dict[str, str] = {}
    for part in (text or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out[name] = value
    return out


@dataclass(frozen=True)
class ChecksumVerdict:
    table: str
    ok: bool | None  # True: proven equal; False: a restore that did not restore; None: cannot compare
    text: str


def checksum_verdicts(
    before: Mapping[str, str],
    now: Mapping[str, str | None],
    *,
    columns_before: Mapping[str, Sequence[str]],
    columns_now: Mapping[str, Sequence[str]],
    backup_sums: Mapping[str, str],
) -> list[ChecksumVerdict]:
    """Compare each table's CHECKSUM TABLE now with the backup's (after a restore) and the pre-flight's.

    Equal to the pre-flight's is proof. Otherwise it can only be compared when nothing was written since:
    different columns, or rows the app wrote since the pre-flight, make it "cannot compare", never a pass.
    """
    out: list[ChecksumVerdict] = []
    for table in sorted(set(before) | set(backup_sums)):
        value = now.get(table)
        if value is None:
            out.append(ChecksumVerdict(table, None, "cannot compare: CHECKSUM TABLE gave no value now"))
            continue
        pre = before.get(table)
        pre_text = (
            "equal to the pre-flight's checksum_before"
            if pre == value
            else f"pre-flight's checksum_before {pre or '(none)'}"
        )
        if table in backup_sums:
            if backup_sums[table] != value:
                out.append(
                    ChecksumVerdict(
                        table,
                        False,
                        f"{value} differs from the backup's {backup_sums[table]}: the restore is not exact",
                    )
                )
                continue
            extra = (
                ""
                if pre == value
                else (
                    "; differs from the pre-flight's: rows were written between the backup and the pre-flight"
                )
            )
            out.append(
                ChecksumVerdict(
                    table, True, f"{value} equal to the backup's (scratch restore); {pre_text}{extra}"
                )
            )
            continue
        if pre is not None and pre == value:
            out.append(ChecksumVerdict(table, True, f"{value} {pre_text}"))
            continue
        was, has = list(columns_before.get(table, ())), list(columns_now.get(table, ()))
        if was and was != has:
            gained = [c for c in has if c not in was]
            lost = [c for c in was if c not in has]
            diff = ", ".join([*(f"+{c}" for c in gained), *(f"-{c}" for c in lost)]) or "column order"
            out.append(
                ChecksumVerdict(
                    table,
                    None,
                    f"cannot compare: {value} vs {pre_text}; the columns differ from before ({diff})",
                )
            )
            continue
        out.append(
            ChecksumVerdict(
                table,
                None,
                f"cannot compare: {value} vs {pre_text}; rows were written since the pre-flight (the app "
                "ran) or the data changed: nothing here tells which",
            )
        )
    return out


# -- before a restore: what it would lose ---------------------------------------------------------


@dataclass(frozen=True)
class TableLoss:
    """One table of the backup against production: the writes since the backup a restore throws away.

    ``inserted``/``deleted``/``changed`` are by primary key against a scratch restore of the backup; None
    where they could not be counted (no primary key, or only the dump's row count was available)."""

    table: str
    rows_backup: int | None
    rows_now: int | None  # None: the table is missing in production
    inserted: int | None = None
    deleted: int | None = None
    changed: int | None = None
    values_lost: tuple[tuple[str, int], ...] = ()  # (column the backup lacks, rows with a value in it)
    note: str = ""
    in_backup: bool = True  # False: a table the backup does not hold; the restore leaves it alone

    @property
    def lost(self) -> bool | None:
        """Whether the restore throws writes away (None: cannot tell)."""
        if self.rows_now is None or not self.in_backup:
            return False
        if self.inserted is not None and self.deleted is not None and self.changed is not None:
            return bool(self.inserted or self.deleted or self.changed or any(n for _, n in self.values_lost))
        if self.rows_backup is not None and self.rows_backup != self.rows_now:
            return True
        return None

    def describe(self) -> str:
        if not self.in_backup:
            return f"not in the backup: the restore leaves it as it is ({self.rows_now} rows)"
        if self.rows_now is None:
            return f"missing in production: the restore re-creates it ({self.rows_backup} rows)"
        backup = "?" if self.rows_backup is None else str(self.rows_backup)
        text = f"{self.rows_now} rows now, {backup} in the backup"
        if self.inserted is not None:
            text += f"; since the backup: {self.inserted} inserted, {self.deleted} deleted, "
            text += f"{self.changed} changed"
        for column, n in self.values_lost:
            text += f"; {n} rows have a value in {column}, which the backup lacks"
        return text + (f" ({self.note})" if self.note else "")


def loss_summary(losses: Sequence[TableLoss], method: str) -> tuple[str, bool | None]:
    """(one line, whether anything would be lost: None when it cannot be told for some table)."""
    lost = [t.table for t in losses if t.lost]
    unknown = [t.table for t in losses if t.lost is None]
    if lost:
        return f"the restore would throw away writes since the backup in {', '.join(lost)} ({method})", True
    if unknown:
        return (
            f"cannot tell whether writes since the backup would be lost in {', '.join(unknown)} ({method})",
            None,
        )
    return f"nothing written since the backup would be lost ({method})", False


# -- the backup's content (parsed from its CREATE TABLEs and its alembic_version INSERT) ----------

_CREATE = re.compile(r"CREATE TABLE `((?:[^`]|``)+)`")
_COLUMN = re.compile(r"\s+`((?:[^`]|``)+)`\s+([A-Za-z]+(?:\([^)]*\))?(?:\s+unsigned)?)", re.IGNORECASE)
_KEY = re.compile(
    r"\s+(PRIMARY |UNIQUE |FULLTEXT |SPATIAL )?KEY\s*(?:`((?:[^`]|``)+)`)?\s*\((.*)\)", re.IGNORECASE
)


def _ident(text: str) -> str:
    return text.replace("``", "`")


@dataclass(frozen=True)
class DumpSchema:
    columns: dict[str, dict[str, str]]
    indexes: dict[str, dict[str, tuple[tuple[str, ...], bool]]]
    column_order: dict[str, tuple[str, ...]]
    revisions: tuple[str, ...]


def parse_dump_schema(lines: Iterable[str]) -> DumpSchema:
    """Tables, columns, keys and alembic_version rows from a dump's ``CREATE TABLE`` / INSERT lines."""
    columns: dict[str, dict[str, str]] = {}
    order: dict[str, list[str]] = {}
    indexes: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {}
    revisions: list[str] = []
    table: str | None = None
    in_versions = False  # inside alembic_version's INSERT (MariaDB writes one row per line)
    for line in lines:
        m = _CREATE.match(line)
        if m:
            table = _ident(m.group(1)).lower()
            columns[table], order[table], indexes[table] = {}, [], {}
            continue
        if in_versions or line.startswith("INSERT INTO `alembic_version`"):
            revisions += re.findall(r"\('([^'\\]+)'\)", line)
            in_versions = not line.rstrip().endswith(";")
            continue
        if table is None:
            continue
        if line.startswith(")"):
            table = None
            continue
        key = _KEY.match(line)
        if key:
            kind = (key.group(1) or "").strip().upper()
            name = "primary" if kind == "PRIMARY" else _ident(key.group(2) or "").lower()
            cols = tuple(_ident(c).lower() for c in re.findall(r"`((?:[^`]|``)+)`", key.group(3)))
            indexes[table][name] = (cols, kind in ("PRIMARY", "UNIQUE"))
            continue
        col = _COLUMN.match(line)
        if col:
            name = _ident(col.group(1)).lower()
            columns[table][name] = re.sub(r"\s+", " ", col.group(2).lower())
            order[table].append(name)
    return DumpSchema(columns, indexes, {t: tuple(c) for t, c in order.items()}, tuple(revisions))


_SCHEMA_AWK = (
    "/^CREATE TABLE `/ { inside = 1 } /^INSERT INTO `alembic_version`/ { rev = 1 } "
    'inside || rev { print "S " substr($0, 1, 400) } '
    "inside && /^\\)/ { inside = 0 } rev && /;$/ { rev = 0 }"
)


def backup_read_script(path: str) -> str:
    """Shell text: ``Z <size>``, ``H <sha256>``, the ``S`` lines of the schema, then ``R <gzip> <awk>``."""
    q = shlex.quote(quoting.operand(path, "backup file"))
    awk = "LC_ALL=C awk " + shlex.quote(_SCHEMA_AWK)
    reader = f"gzip -dc -- {q}" if path.endswith(".gz") else f"cat -- {q}"
    return (
        f'echo "Z $(stat -c %s -- {q})"\n'
        f'echo "H $(sha256sum -- {q} | cut -d" " -f1)"\n'
        f"{reader} | {awk}\n"
        'st=("${PIPESTATUS[@]}"); echo "R ${st[0]} ${st[1]}"\n'
    )


def read_backup(
    lines: Sequence[str], record: BackupRecord, expected: Sequence[ExpectedSchema]
) -> BackupFacts:
    """Judge the backup from :func:`backup_read_script`'s output."""
    size = next((ln[2:].strip() for ln in lines if ln.startswith("Z ")), "")
    sha = next((ln[2:].strip() for ln in lines if ln.startswith("H ")), "")
    status = next((ln[2:].split() for ln in lines if ln.startswith("R ")), [])
    if size != str(record.size) or sha != record.sha256:
        problem = (
            f"it is missing or changed on the host (size {size or '?'}, sha256 {sha[:12] or '?'}; "
            f"recorded {record.size}, {record.sha256[:12]})"
        )
        return BackupFacts(record, False, problem)
    if status != ["0", "0"]:
        return BackupFacts(
            record, False, f"reading it back failed (stage statuses {' '.join(status) or '?'})"
        )
    schema = parse_dump_schema(ln[2:] for ln in lines if ln.startswith("S "))
    revision = schema.revisions[0] if len(schema.revisions) == 1 else None
    items = item_states(schema.columns, schema.indexes, expected)
    return BackupFacts(record, True, None, revision, items, dict(schema.column_order))


# -- the probe (read-only) -----------------------------------------------------------------------


def probe(session: DeploySession, ctx: DeployContext) -> tuple[Found, BackupFacts]:
    """Ask the host what the decision needs; never changes anything."""
    from todobox_deploy.db.live import read_live_tables
    from todobox_deploy.engine.flask_cli import app_command
    from todobox_deploy.engine.resume import probe_host

    cfg = session.config
    host = probe_host(session)
    notes = list(host.notes)
    alembic: tuple[str, ...] | None = None
    items: tuple[ItemState, ...] | None = None
    try:
        conn = session.open_db(read_timeout=30)
        try:
            tables = read_live_tables(conn, cfg.database.name)
        finally:
            conn.close()
        alembic = tables.alembic
        if alembic is None:
            notes.append("no alembic_version table is visible")
        items = item_states(tables.columns, tables.indexes, cfg.migration.expected())
    except Exception as exc:
        notes.append(f"schema: cannot verify: {session.secrets.redact(str(exc))}")
    dirty: bool | None = None
    res = session.capture(
        app_command(cfg.app, ["git", "status", "--porcelain", "--untracked-files=no"]),
        display="git status --porcelain --untracked-files=no",
    )
    if res.exit_status == 0:
        dirty = bool(res.stdout.strip())
    else:
        notes.append(f"git status: cannot verify (exit {res.exit_status}): {res.stderr.strip()[:200]}")
    backup = BackupFacts(ctx.backup)
    if ctx.backup is not None:
        out = session.capture(
            backup_read_script(ctx.backup.path), timeout=None, display=f"read back {ctx.backup.path}"
        )
        backup = read_backup(out.stdout.splitlines(), ctx.backup, cfg.migration.expected())
    return Found(alembic, items, host.head, dirty, host.app_up, tuple(notes)), backup


def plan_for(config: DeployConfig, found: Found, ctx: DeployContext, backup: BackupFacts) -> RollbackPlan:
    """:func:`decide` with the deploy config's revisions."""
    mig = config.migration
    return decide(
        found,
        DeployFacts.of(ctx, backup),
        expected_head=mig.expected_head,
        configured_previous=mig.previous_revision,
    )

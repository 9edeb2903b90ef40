"""The deploy context: the typed facts phases establish for later phases (and for a resumed run).

Phases never parse each other's summaries: a phase reads what earlier phases set here and returns a new
context with its own fields set. The flow journals every change, so a resumed session rebuilds it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class BackupRecord:
    """A backup made on the host by this deploy."""

    path: str
    size: int
    sha256: str
    verified: bool
    created_at: str = ""
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployContext:
    """What this deploy knows about the host, set by the phases that observed it."""

    commit_before: str | None = None  # HEAD of the app's work tree before the deploy (rollback target)
    commit_target: str | None = None  # the fetched commit the deploy moves to
    commit_after: str | None = None  # HEAD after the deploy
    db_revision_before: str | None = None  # alembic_version before the migration
    db_revision_after: str | None = None
    backup: BackupRecord | None = None
    backup_run: str | None = None  # detached run id of a dump the backup phase has not concluded yet
    app_down_at: str | None = None  # UTC ISO time the app was stopped (downtime clock)
    app_up_at: str | None = None  # UTC ISO time the app answered healthy again
    migration_run: str | None = None  # the detached run id of the migration on the host
    db_state: str | None = None  # the pre-flight's classification (e.g. "needs migration")
    migration_plan: tuple[tuple[str, str], ...] | None = None  # e.g. (("stamp", rev), ("upgrade", head))
    migrate_mode: str | None = None  # "app" (the app's flask db) or "standalone" (the app never imported)
    migration_additive: bool | None = None  # the rehearsal saw only ADD COLUMN / CREATE INDEX
    online_migration: bool | None = None  # chosen at the stop gate: migrate while the old code serves
    nothing_to_deploy: bool | None = None  # the pre-flight found the target commit deployed, the DB done
    rehearsal_seconds: float | None = None
    checksum_before: str | None = None  # CHECKSUM TABLE of the migrated table before the deploy
    rollback_plan: tuple[tuple[str, str], ...] | None = None  # a rollback session's plan and findings

    def is_set(self, name: str) -> bool:
        return getattr(self, name) is not None

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeployContext:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("backup"), dict):
            raw = dict(values["backup"])
            raw["tables"] = tuple(raw.get("tables", ()))
            values["backup"] = BackupRecord(**raw)
        for name in ("migration_plan", "rollback_plan"):
            if isinstance(values.get(name), list):
                values[name] = tuple(tuple(step) for step in values[name])
        return cls(**values)

    def changes_from(self, before: DeployContext) -> dict[str, Any]:
        """The fields that differ from ``before``, as JSON values."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) != getattr(before, f.name)
        }

    def updated(self, changes: dict[str, Any]) -> DeployContext:
        """This context with journaled ``changes`` applied (unknown fields ignored)."""
        merged = self.to_json()
        merged.update(changes)
        return DeployContext.from_json(merged)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value

"""What a failed phase's gate offers: run it again, skip it (read-only phases), the rollback command."""

from __future__ import annotations

import shlex
from pathlib import Path

from todobox_deploy.engine.flow import SKIPPABLE, DeployFlow
from todobox_deploy.tui.screens.confirm import FailureOptions

DIAGNOSIS_LINES = 6
TOUCHED = ("app_down_at", "commit_after", "migration_run", "db_revision_after")
"""Context fields that say the deploy has changed the app's host (stopped it, moved its code, migrated)."""
ONLY_ADDS_FILES = frozenset({"backup"})
"""Phases that change the host only by adding a file (a dump): their failure leaves nothing to roll back."""


def rollback_command(flow: DeployFlow) -> str:
    """The exact command that starts the rollback session for this deploy's config."""
    source = flow.session.config.source if flow.session is not None else None
    path = shlex.quote(str(Path(source).resolve())) if source else "<your deploy config>"
    return f"todobox-deploy rollback --config {path}"


def failure_options(flow: DeployFlow, phase_id: str, error_lines: list[str]) -> FailureOptions:
    """What a failed phase's gate offers: retry (automated), skip (read-only phases), the rollback (when
    the phase changes the host, or the deploy already has: see TOUCHED; never inside a rollback session)."""
    spec = flow.spec(phase_id)
    ctx = flow.context
    touched = any(ctx.is_set(f) for f in TOUCHED)
    changed = touched or (spec is not None and spec.changes_host and phase_id not in ONLY_ADDS_FILES)
    rollback_session = any(p.startswith("rollback_") for p in flow.order)
    return FailureOptions(
        retry=flow.can_run(phase_id),
        skip=phase_id in SKIPPABLE and spec is not None and not spec.changes_host,
        rollback=rollback_command(flow) if changed and not rollback_session else None,
        diagnosis=tuple(error_lines[-DIAGNOSIS_LINES:]),
    )

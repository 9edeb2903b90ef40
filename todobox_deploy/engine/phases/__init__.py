"""The automated phases: one declaration each, by the phase id the checklist names them with.

Order is the checklist's: everything that can run before the app is stopped does (backup, pre-flight,
rehearsal on a copy, notify), so the downtime is the stop, the fast-forward, the migration and the start.
"""

from __future__ import annotations

from todobox_deploy.engine.phases.backup import backup
from todobox_deploy.engine.phases.db_check import db_check
from todobox_deploy.engine.phases.deploy_code import deploy_code
from todobox_deploy.engine.phases.migrate import migrate
from todobox_deploy.engine.phases.notify import notify
from todobox_deploy.engine.phases.post_verify import post_verify
from todobox_deploy.engine.phases.preflight import preflight
from todobox_deploy.engine.phases.rehearsal import rehearsal
from todobox_deploy.engine.phases.service import start_app, stop_app
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.engine.phases.verify_files import verify_files
from todobox_deploy.engine.phases.verify_migration import verify_migration

__all__ = ["PHASES", "REGISTRY", "PhaseCall", "PhaseSpec"]

REGISTRY: tuple[PhaseSpec, ...] = (
    PhaseSpec("backup", "Back up the database", backup, changes_host=True, detached=True),
    PhaseSpec("preflight", "Pre-flight checks before the stop", preflight, timeout=300),
    PhaseSpec(
        "rehearsal",
        "Rehearse the migration on a copy",
        rehearsal,
        needs=("backup", "commit_target", "migration_plan"),
    ),
    PhaseSpec("notify", "Notify the team", notify, timeout=60),
    PhaseSpec("stop_app", "Stop the application", stop_app, changes_host=True, timeout=120),
    PhaseSpec("deploy_code", "Deploy the new code", deploy_code, changes_host=True, timeout=300),
    PhaseSpec("verify_files", "Verify the migration files", verify_files, timeout=120),
    PhaseSpec("db_check", "Check the database before migrating", db_check, timeout=120),
    PhaseSpec(
        "migrate", "Run the database migration", migrate, changes_host=True, detached=True, needs=("backup",)
    ),
    PhaseSpec("verify_migration", "Verify the migration", verify_migration, timeout=120),
    PhaseSpec("start_app", "Start the application", start_app, changes_host=True, timeout=180),
    PhaseSpec("post_verify", "Post-deployment verification", post_verify, timeout=600),
)

PHASES: dict[str, PhaseSpec] = {spec.id: spec for spec in REGISTRY}

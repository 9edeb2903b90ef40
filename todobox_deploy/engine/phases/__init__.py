"""The automated phases: one declaration each, by the phase id the checklist names them with."""

from __future__ import annotations

from todobox_deploy.engine.phases.db_check import db_check
from todobox_deploy.engine.phases.deploy_code import deploy_code
from todobox_deploy.engine.phases.preflight import preflight
from todobox_deploy.engine.phases.service import start_app, stop_app
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.engine.phases.verify_files import verify_files

__all__ = ["PHASES", "REGISTRY", "PhaseCall", "PhaseSpec"]

REGISTRY: tuple[PhaseSpec, ...] = (
    PhaseSpec("backup", "Back up the production database", None, changes_host=True, detached=True),
    PhaseSpec("preflight", "Pre-flight checks before the stop", preflight, timeout=300, needs=()),
    PhaseSpec("stop_app", "Stop the application", stop_app, changes_host=True, timeout=120),
    PhaseSpec(
        "deploy_code", "Deploy the new code (fast-forward)", deploy_code, changes_host=True, timeout=300
    ),
    PhaseSpec("verify_files", "Verify the migration files", verify_files, timeout=120),
    PhaseSpec("db_check", "Check the database before migrating", db_check, timeout=120),
    PhaseSpec("migrate", "Run the database migration", None, changes_host=True, detached=True),
    PhaseSpec("verify_migration", "Verify the migration", None),
    PhaseSpec("start_app", "Start the application", start_app, changes_host=True, timeout=180),
    PhaseSpec("post_verify", "Post-deployment verification", None),
)

PHASES: dict[str, PhaseSpec] = {spec.id: spec for spec in REGISTRY}

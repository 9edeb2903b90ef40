"""The automated phases: one declaration each, by the phase id the checklist names them with.

Order is the checklist's: everything that can run before the app is stopped does (backup, pre-flight,
rehearsal on a copy, notify), so the downtime is the stop, the fast-forward, the migration and the start.
"""

from __future__ import annotations

import importlib

from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.engine.phases.spec import PhaseBody, PhaseCall, PhaseSpec

__all__ = ["PHASES", "REGISTRY", "PhaseCall", "PhaseSpec"]


def _body(module: str, name: str | None = None) -> PhaseBody:
    """The phase body ``engine.phases.<module>.<name>``, imported on its first run: the registry (and so
    the wizard's first frame) does not load every phase's dependencies."""

    def body(call: PhaseCall) -> PhaseOutcome:
        run: PhaseBody = getattr(importlib.import_module(f"{__name__}.{module}"), name or module)
        return run(call)

    body.__name__ = body.__qualname__ = name or module
    return body


backup = _body("backup")
preflight = _body("preflight")
rehearsal = _body("rehearsal")
notify = _body("notify")
stop_app = _body("service", "stop_app")
deploy_code = _body("deploy_code")
verify_files = _body("verify_files")
db_check = _body("db_check")
migrate = _body("migrate")
verify_migration = _body("verify_migration")
start_app = _body("service", "start_app")
post_verify = _body("post_verify")

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
    PhaseSpec(
        "stop_app",
        "Stop the application",
        stop_app,
        changes_host=True,
        timeout=120,
        idle_when=("nothing_to_deploy", "online_migration"),
    ),
    PhaseSpec(
        "deploy_code",
        "Deploy the new code",
        deploy_code,
        changes_host=True,
        timeout=300,
        idle_when=("nothing_to_deploy",),
    ),
    PhaseSpec("verify_files", "Verify the migration files", verify_files, timeout=120),
    PhaseSpec("db_check", "Check the database before migrating", db_check, timeout=120),
    PhaseSpec(
        "migrate",
        "Run the database migration",
        migrate,
        changes_host=True,
        detached=True,
        needs=("backup",),
        idle_when=("nothing_to_deploy",),
    ),
    PhaseSpec("verify_migration", "Verify the migration", verify_migration, timeout=120),
    PhaseSpec(
        "start_app",
        "Start the application",
        start_app,
        changes_host=True,
        timeout=180,
        idle_when=("nothing_to_deploy",),
    ),
    PhaseSpec("post_verify", "Post-deployment verification", post_verify, timeout=600),
)

PHASES: dict[str, PhaseSpec] = {spec.id: spec for spec in REGISTRY}

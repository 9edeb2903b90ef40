"""The automated phases, by the phase id the checklist names them with."""

from __future__ import annotations

import threading
from collections.abc import Callable

from todobox_deploy.engine.events import OutputSink, PhaseOutcome
from todobox_deploy.engine.phases.db_check import db_check
from todobox_deploy.engine.phases.deploy_code import deploy_code
from todobox_deploy.engine.phases.service import start_app, stop_app
from todobox_deploy.engine.phases.verify_files import verify_files
from todobox_deploy.engine.session import DeploySession

PhaseFn = Callable[[DeploySession, OutputSink, threading.Event], PhaseOutcome]

PHASES: dict[str, PhaseFn] = {
    "stop_app": stop_app,
    "deploy_code": deploy_code,
    "verify_files": verify_files,
    "db_check": db_check,
    "start_app": start_app,
}

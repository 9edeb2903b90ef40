"""Pre-deployment "Notify team about scheduled deployment": a configured local command or webhook.

The message is shown first, then sent: to ``[notify] command`` (run on the operator's machine with
``sh``, the message on its stdin) and/or POSTed as JSON to ``[notify] webhook_url``. Without either, the
phase says so and the operator notifies the team by hand and confirms it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.remote.local import run_local


def message(call: PhaseCall) -> str:
    """What the team is told: the host, the commits and what the deploy does."""
    cfg, ctx = call.config, call.context
    target = (ctx.commit_target or "the new commit")[:12]
    plan = (
        " then ".join(f"{s} {r}" for s, r in ctx.migration_plan or ())
        or f"upgrade to {cfg.migration.expected_head}"
    )
    if ctx.nothing_to_deploy:
        return (
            f"todobox-deploy: {cfg.target.host} already runs {target} and its database is migrated: "
            f"nothing to deploy; the app ({cfg.app.service_name}) stays up and is verified."
        )
    return (
        f"todobox-deploy: deploying {target} to {cfg.target.host} now. The app ({cfg.app.service_name}) "
        f"will be stopped for the database migration ({plan}), then started and verified."
    )


def notify(call: PhaseCall) -> PhaseOutcome:
    cfg, sink = call.config.notify, call.sink
    text = message(call)
    sink("info", ["the message:", f"  {text}"])
    if not cfg.command and not cfg.webhook_url:
        return PhaseOutcome(
            PhaseStatus.SKIPPED,
            "no [notify] command or webhook_url configured: notify the team yourself, then confirm",
            (("message", text),),
        )
    facts: list[tuple[str, str]] = [("message", text)]
    problems: list[str] = []
    if cfg.command:
        sink("info", [f"$ {' '.join(cfg.command)}  (the message on stdin)"])
        rc = run_local(list(cfg.command), sink, cancel=call.cancel, stdin=text + "\n")
        facts.append(("command", f"exit {rc}"))
        if rc != 0:
            problems.append(f"the notify command exited with status {rc}")
    if cfg.webhook_url:
        body = json.dumps({"text": text, "host": call.config.target.host}).encode()
        request = urllib.request.Request(
            cfg.webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"cannot verify the webhook delivery: {exc}")
            status = None
        facts.append(("webhook", f"HTTP {status}" if status is not None else "no answer"))
        if status is not None and not 200 <= status < 300:
            problems.append(f"the webhook answered HTTP {status}")
    if problems:
        return PhaseOutcome(PhaseStatus.FAILED, "; ".join(problems), tuple(facts))
    return PhaseOutcome(PhaseStatus.OK, "the team was notified", tuple(facts))

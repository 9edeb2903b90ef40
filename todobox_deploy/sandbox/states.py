"""The named states the sandbox "production host" can be put in (``sandbox up --state NAME``).

Each state is a database schema, a pair of commits (the deployed pre-fix commit and origin/master's fix
commit, from one of the code lines of ``gitrepo``), where the work tree stands, and whether the app runs.
Every state has the same seeded users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from todobox_deploy.sandbox.appdb import BUG_REVISION, FIX_REVISION

CodeLine = Literal["base", "startup-query", "renamed-wsgi"]
DEFAULT_STATE = "bug"


@dataclass(frozen=True)
class SandboxState:
    """What one named state looks like on the host."""

    name: str
    summary: str
    line: CodeLine  # which commit pair (gitrepo.CODE_LINES) origin/master and the work tree use
    column: bool  # user.api_token VARCHAR(64) NULL exists
    index: bool  # the unique index ix_user_api_token exists
    revision: str  # alembic_version
    at_fix: bool  # the work tree is at the fix commit (as after a deploy), else at the pre-fix commit
    app_up: bool  # gunicorn serves; False: the app cannot import, supervisord gives up, nothing listens
    users_status: int | None  # what GET /users answers; None: nothing answers (connection refused)


STATES: dict[str, SandboxState] = {
    s.name: s
    for s in (
        SandboxState(
            "bug",
            "production bug: alembic c682ef478e45, user.api_token and its index missing, /users 500",
            "base", False, False, BUG_REVISION, False, True, 500,
        ),
        SandboxState(
            "fixed",
            "after a good deploy: fix commit checked out, alembic d1f2e3c4b5a6, column + unique index, "
            "/users 200",
            "base", True, True, FIX_REVISION, True, True, 200,
        ),
        SandboxState(
            "column-no-index",
            "bug state, but user.api_token exists (VARCHAR(64) NULL) without ix_user_api_token",
            "base", True, False, BUG_REVISION, False, True, 200,
        ),
        SandboxState(
            "half-applied",
            "the fix's DDL applied (column + unique index) but alembic_version still c682ef478e45",
            "base", True, True, BUG_REVISION, False, True, 200,
        ),
        SandboxState(
            "import-queries-user",
            "bug state; both commits query User in create_app, so every flask command and gunicorn's "
            "workers die with 1054 at import: the app is down",
            "startup-query", False, False, BUG_REVISION, False, False, None,
        ),
        SandboxState(
            "renamed-wsgi",
            "bug state; the fix commit also renames wsgi.py to serve.py while supervisord runs "
            "`gunicorn wsgi:app`, so the app does not come back after the deploy",
            "renamed-wsgi", False, False, BUG_REVISION, False, True, 500,
        ),
    )
}  # fmt: skip


def state_named(name: str) -> SandboxState:
    """The state called ``name``; SandboxError naming the known states otherwise."""
    from todobox_deploy.sandbox.procs import SandboxError

    try:
        return STATES[name]
    except KeyError:
        raise SandboxError(f"unknown sandbox state {name!r}; known: {', '.join(STATES)}") from None

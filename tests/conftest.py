"""Shared fixtures: real throwaway servers (sshd, MariaDB) and the full sandbox "production host".

Tests that use them are marked ``@pytest.mark.integration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from todobox_deploy.sandbox.manager import (
    SandboxInfo,
    sandbox_down,
    sandbox_restore,
    sandbox_status,
    sandbox_up,
)
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB
from todobox_deploy.sandbox.sshd import ThrowawaySshd


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawaySshd]:
    """A started sshd on 127.0.0.1 (user = current OS user, key = ``client_key``), stopped at the end."""
    server = ThrowawaySshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayMariaDB]:
    """A started MariaDB (root over ``socket`` via ``admin_connect()``), stopped at the end."""
    server = ThrowawayMariaDB(tmp_path_factory.mktemp("mariadb"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


SANDBOX_TEST_USERS = 2000


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """One sandbox "production host" per session (2000 seeded users), taken down at the end.

    Tests that change its state should use ``sandbox_reset`` instead, which restores the bug state.
    """
    directory = tmp_path_factory.mktemp("sandbox")
    info = sandbox_up(directory, users=SANDBOX_TEST_USERS)
    try:
        yield info
    finally:
        sandbox_down(directory)


@pytest.fixture
def sandbox_reset(sandbox: SandboxInfo) -> SandboxInfo:
    """The session sandbox, put back in the bug state first (tables + users, git checkout, app running)."""
    return sandbox_restore(sandbox.directory)


@pytest.fixture
def sandbox_state(sandbox: SandboxInfo) -> Iterator[Callable[[str], SandboxInfo]]:
    """Switch the session sandbox into a named state: ``sandbox_state("half-applied")`` (names in
    ``todobox_deploy.sandbox.states``). Afterwards the bug state is restored if this switched it, or if
    the sandbox is left in another state (e.g. by ``sandbox up --state`` in the test)."""
    switched = False

    def switch(state: str) -> SandboxInfo:
        nonlocal switched
        switched = True
        return sandbox_restore(sandbox.directory, state=state)

    yield switch
    status = sandbox_status(sandbox.directory)
    if switched or status is None or status.state != "bug":
        sandbox_restore(sandbox.directory)

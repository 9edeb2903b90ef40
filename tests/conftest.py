"""Shared fixtures: real throwaway servers (sshd, MariaDB) and the full sandbox "production host".

Tests that use them are marked ``@pytest.mark.integration``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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

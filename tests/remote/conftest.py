"""Fixtures for the remote layer: a connection to the shared throwaway sshd, a fault-injecting proxy."""

from __future__ import annotations

import contextlib
import dataclasses
import select
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from todobox_deploy.config import TargetConfig
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.sshd import ThrowawaySshd

from .sshd_target import make_conn, target_for

__all__ = ["Collector", "CuttableProxy", "make_conn", "target_for"]


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 that can RST every live connection (``cut``) or stop pumping (``freeze``)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([a, b], [], [], 0.1)
                if self.frozen.is_set():
                    continue
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):  # a socket closed by cut() (fd -1)
            return

    def cut(self) -> None:
        """Reset every live connection (the client sees ECONNRESET)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self.listener.close()


@pytest.fixture
def ssh_config_file(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text("")
    return path


@pytest.fixture
def target(sshd_server: ThrowawaySshd, ssh_config_file: Path) -> TargetConfig:
    return target_for(sshd_server, ssh_config=ssh_config_file)


@pytest.fixture
def conn(target: TargetConfig, tmp_path: Path) -> Iterator[SshConnection]:
    c = make_conn(target, tmp_path)
    c.connect()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def proxy(sshd_server: ThrowawaySshd) -> Iterator[CuttableProxy]:
    p = CuttableProxy(sshd_server.port)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def proxied_target(
    sshd_server: ThrowawaySshd, proxy: CuttableProxy, target: TargetConfig, tmp_path: Path
) -> TargetConfig:
    """The sshd reached through the proxy; its key is listed for the proxy's port."""
    kt, b64 = sshd_server.host_key_pub.read_text().split()[:2]
    kh = tmp_path / "proxy_known_hosts"
    kh.write_text(f"[127.0.0.1]:{proxy.port} {kt} {b64}\n")
    return dataclasses.replace(target, port=proxy.port, known_hosts=kh)


class Collector:
    """An OutputSink that keeps every batch (with its arrival time)."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, str, list[str]]] = []
        self._lock = threading.Lock()

    def __call__(self, stream: str, lines: list[str]) -> None:
        import time

        with self._lock:
            self.batches.append((time.monotonic(), stream, list(lines)))

    def lines(self, stream: str = "stdout") -> list[str]:
        return [line for _, s, lines in self.batches if s == stream for line in lines]

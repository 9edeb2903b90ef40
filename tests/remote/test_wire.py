"""The paramiko drop-ins (wire.py) and the secret finder: the same bytes, in order, whatever the
fragmentation; against the real sshd, bulk output through them matches the file byte for byte, across
server-initiated rekeys, without a stall."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paramiko.buffered_pipe import PipeTimeout

from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.secrets import SecretFinder
from todobox_deploy.remote.wire import READ_SIZE, BufferedPacketizer, ChunkPipe

from .sshd_target import RekeyingSshd, counting_rekeys, make_conn, target_for


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(0.1)  # as paramiko's Transport sets it
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _send_in_pieces(sock: socket.socket, data: bytes, rng: random.Random) -> threading.Thread:
    def send() -> None:
        i = 0
        while i < len(data):
            n = rng.choice([1, 3, 16, 700, 32768, 300_000])
            sock.sendall(data[i : i + n])
            i += n
            if rng.random() < 0.05:
                time.sleep(0.002)  # let the reader catch up and wait (a timeout in between)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _read_back(packetizer: BufferedPacketizer, total: int, rng: random.Random) -> bytes:
    out, left = [], total
    while left:
        big = rng.random() < 0.05  # now and then more than the buffer holds
        n = min(left, READ_SIZE + 12345 if big else rng.choice([1, 4, 16, 1000, 32768 + 20]))
        out.append(packetizer.read_all(n))
        left -= n
    return b"".join(out)


def test_buffered_packetizer_returns_the_stream_exactly(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    rng = random.Random(3)
    data = os.urandom(8 * READ_SIZE + 777)
    packetizer = BufferedPacketizer(a)
    sender = _send_in_pieces(b, b"SSH-2.0-OpenSSH_9.2 \xc3\xa9\r\n" + data, rng)
    assert packetizer.readline(5) == "SSH-2.0-OpenSSH_9.2 é"  # the banner, then packets right after it
    assert _read_back(packetizer, len(data), rng) == data
    sender.join()
    assert packetizer.buffered == 0
    b.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        packetizer.read_all(1)


class _RecvOnly:
    """A socket seen through ``recv`` only, like a ProxyJump channel."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, n: int) -> bytes:
        return self._sock.recv(n)

    def close(self) -> None:
        self._sock.close()


def test_buffered_packetizer_over_a_socket_without_recv_into(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    rng = random.Random(4)
    data = os.urandom(2 * READ_SIZE + 5)
    sock: Any = _RecvOnly(a)
    packetizer = BufferedPacketizer(sock)
    sender = _send_in_pieces(b, data, rng)
    assert _read_back(packetizer, len(data), rng) == data
    sender.join()


def test_a_closed_packetizer_ends_a_waiting_read(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    packetizer = BufferedPacketizer(a)
    b.sendall(b"abc")
    threading.Timer(0.3, packetizer.close).start()
    t0 = time.monotonic()
    with pytest.raises(EOFError):
        packetizer.read_all(4)  # three bytes came, the fourth never will
    assert time.monotonic() - t0 < 3


def test_a_banner_that_never_ends_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.sendall(b"SSH-2.0-slow")
    with pytest.raises(TimeoutError):
        BufferedPacketizer(a).readline(0.3)


def test_chunk_pipe_reads_are_the_fed_bytes_in_order() -> None:
    rng = random.Random(5)
    pipe = ChunkPipe()
    fed = [os.urandom(rng.randint(1, 5000)) for _ in range(300)]
    got: list[bytes] = []
    for chunk in fed:
        pipe.feed(chunk)
        while len(pipe) > rng.randint(0, 20000):
            got.append(pipe.read(rng.choice([1, 7, 4096, 32768, 1 << 20])))
    while len(pipe):
        got.append(pipe.read(3000))
    assert b"".join(got) == b"".join(fed)
    assert all(got)


def test_chunk_pipe_waits_times_out_closes_and_sets_its_event() -> None:
    pipe = ChunkPipe()
    event = threading.Event()
    pipe.set_event(event)
    assert not event.is_set() and not pipe.read_ready()
    with pytest.raises(PipeTimeout):
        pipe.read(10, 0.0)
    t0 = time.monotonic()
    with pytest.raises(PipeTimeout):
        pipe.read(10, 0.2)
    assert time.monotonic() - t0 >= 0.19
    threading.Timer(0.2, pipe.feed, args=(b"late",)).start()
    assert pipe.read(10) == b"late"  # a waiting reader wakes when data comes
    pipe.feed(b"abc")
    assert event.is_set() and pipe.read_ready()
    assert pipe.read(2) == b"ab" and event.is_set()
    assert pipe.read(2) == b"c" and not event.is_set()  # drained: cleared, so select() waits
    pipe.feed(b"xyz")
    assert pipe.empty() == b"xyz" and not event.is_set()
    threading.Timer(0.2, pipe.close).start()
    assert pipe.read(10) == b""  # a waiting reader wakes when the channel closes
    assert event.is_set()  # closed: select() reports it readable, recv returns b""


def test_secret_finder_answers_exactly_whatever_the_data() -> None:
    rng = random.Random(9)
    strings = [b"abcab", b"cc", b"dab", b"b" * 6]
    finder = SecretFinder(strings)
    for round_ in range(4000):
        common = b"ab" if round_ % 500 < 250 else b"cd"  # the frequent bytes change: anchors move
        n = rng.choice([0, 1, 10, 200, 5000])
        buf = bytes(rng.choice(common + b"abcdx" + b"x" * 20) for _ in range(n))
        assert finder.found_in(buf) == any(s in buf for s in strings), buf
    assert not SecretFinder([]) and not SecretFinder([]).found_in(b"anything")


# -- against the real sshd ------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_bulk_output_through_the_remote_layer_is_exact(conn: SshConnection, tmp_path: Path) -> None:
    assert isinstance(conn.transport().packetizer, BufferedPacketizer)
    data = tmp_path / "random.bin"  # the remote host is this machine
    blob = os.urandom(24 << 20)
    data.write_bytes(blob)
    out = hashlib.sha256()
    sizes: list[int] = []

    def sink(stream: str, chunk: bytes) -> None:
        assert stream == "stdout"
        out.update(chunk)
        sizes.append(len(chunk))

    assert conn.run_bytes(["cat", str(data)], sink) == 0
    assert sum(sizes) == len(blob) and out.digest() == hashlib.sha256(blob).digest()


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_server_rekeys_during_a_stream_neither_corrupt_nor_stall_it(tmp_path: Path) -> None:
    sshd = RekeyingSshd(tmp_path / "sshd", "4M")
    sshd.start()
    try:
        conn = make_conn(target_for(sshd), tmp_path)
        conn.connect()
        script = "for i in $(seq 1 40); do head -c 1048576 /dev/zero | tr '\\0' \"$((i % 10))\"; done"
        expected = b"".join(bytes([48 + i % 10]) * (1 << 20) for i in range(1, 41))
        got = hashlib.sha256()
        n, last, gap = 0, 0.0, 0.0

        def sink(stream: str, chunk: bytes) -> None:
            nonlocal n, last, gap
            now = time.monotonic()
            gap = max(gap, now - last) if last else 0.0
            last = now
            got.update(chunk)
            n += len(chunk)

        with counting_rekeys() as rekeys:
            assert conn.run_bytes(script, sink) == 0
        conn.close()
        assert n == len(expected) and got.digest() == hashlib.sha256(expected).digest()
        assert rekeys.count >= 5  # 40 MiB, a rekey every 4 MiB each way
        assert gap < 2.0  # paramiko#822 stalled such streams for ~30 s
    finally:
        sshd.stop()

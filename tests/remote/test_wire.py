"""The channel pipe (wire.py) and the secret finder: the same bytes in order, the same answers, whatever
the feeding; against the real sshd, bulk output matches the file byte for byte, across server-initiated
rekeys, without a stall."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest
from paramiko.buffered_pipe import PipeTimeout

from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.secrets import SecretFinder
from todobox_deploy.remote.wire import ChunkPipe

from .sshd_target import RekeyingSshd, counting_rekeys, make_conn, target_for


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

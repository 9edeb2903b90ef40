"""The byte path: ``exec`` passes the remote bytes through exactly (compared with OpenSSH's ``ssh`` on the
same command against the same sshd), redacts secrets across chunk boundaries, and exits quietly on a closed
pipe; the line path never adds a newline and never drops a byte."""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from todobox_deploy.config import TargetConfig
from todobox_deploy.core.streams import Unterminated
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.lines import LineSplitter
from todobox_deploy.remote.secrets import MASK, RedactedBytes, Secrets, StreamRedactor
from todobox_deploy.sandbox.sshd import ThrowawaySshd

from .conftest import CuttableProxy, make_conn
from .sshd_target import openssh_argv

ALL_BYTES = bytes(range(256))
REPO = Path(__file__).resolve().parents[2]


# -- redaction on bytes (unit) ---------------------------------------------------------------------------


def _one_pass(secrets: Secrets, data: bytes) -> bytes:
    return re.compile(b"|".join(re.escape(p) for p in secrets.patterns)).sub(MASK, data)


def _through(redactor: StreamRedactor, chunks: list[bytes]) -> bytes:
    return b"".join(redactor.feed(c) for c in chunks) + redactor.finish()


def test_a_secret_split_across_two_chunks_is_caught() -> None:
    r = StreamRedactor(Secrets(["hunter2"]))
    assert r.feed(b"password: hun") == b"password: "  # only the possible start is held back
    assert r.held == 3
    assert r.feed(b"ter2 and more\n") == b"[REDACTED] and more\n"
    assert r.finish() == b""


def test_nothing_is_held_that_cannot_start_a_secret() -> None:
    r = StreamRedactor(Secrets(["hunter2"]))
    assert r.feed(b"prompt> ") == b"prompt> "  # a prompt is shown at once
    assert r.feed(b"\x00\xff binary h") == b"\x00\xff binary "
    assert r.held == 1
    assert r.feed(b"x") == b"hx"
    assert r.feed(b"hunter") == b"" and r.held == 6  # at most len(longest secret) - 1
    assert r.finish() == b"hunter"  # the stream ended: it was not the secret


def test_redaction_over_any_chunking_equals_one_pass_over_the_whole_stream() -> None:
    pw = "pä ss/wörd!"
    secrets = Secrets([pw, "abcabd", "abc"])  # overlapping secrets, one a prefix of another
    rng = random.Random(5)
    pieces = [pw.encode(), b"abcabd", b"abcab", b"abc", b"ab", os.urandom(7), b"pa%C3%A4", ALL_BYTES]
    for _ in range(200):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 12))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        out = _through(StreamRedactor(secrets), chunks)
        assert out == _one_pass(secrets, data)
        assert pw.encode() not in out


def test_redaction_of_overlapping_secrets_over_any_chunking() -> None:
    secrets = Secrets(["abcabd", "abc", "cab", "bcab", "dd"])
    rng = random.Random(11)
    for _ in range(3000):
        data = bytes(rng.choice(b"abcd") for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 8))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _through(StreamRedactor(secrets), chunks) == _one_pass(secrets, data), (data, cuts)


def test_byte_by_byte_and_binary_data() -> None:
    secrets = Secrets(["s3cr3t"])
    data = ALL_BYTES * 3 + b"s3cr3t" + ALL_BYTES + b"s3cr" + b"3t"
    out = _through(StreamRedactor(secrets), [data[i : i + 1] for i in range(len(data))])
    assert out == ALL_BYTES * 3 + MASK + ALL_BYTES + MASK
    assert _through(StreamRedactor(None), [data]) == data  # no secrets: the bytes themselves


def test_redacted_bytes_keeps_streams_apart() -> None:
    got: list[tuple[str, bytes]] = []
    out = RedactedBytes(lambda s, d: got.append((s, d)), Secrets(["topsecret"]))
    out("stdout", b"a top")
    out("stderr", b"secret b top")
    out("stdout", b"secret")
    out.close()
    joined = {s: b"".join(d for t, d in got if t == s) for s in ("stdout", "stderr")}
    assert joined == {"stdout": b"a [REDACTED]", "stderr": b"secret b top"}


# -- the line path (unit) ---------------------------------------------------------------------------------


def test_line_path_adds_no_newline_and_drops_nothing() -> None:
    sp = LineSplitter()
    lines = (
        sp.feed(b"ok\r\nprogress 10%\rprogress 99%\n\xff\xfe \xc3( \xed\xa0\x80 caf\xc3\xa9\n") + sp.finish()
    )
    assert lines == ["ok", "progress 10%\rprogress 99%", "\\xff\\xfe \\xc3( \\xed\\xa0\\x80 café"]
    assert not any(isinstance(line, Unterminated) for line in lines)
    sp = LineSplitter()
    assert sp.feed(b"abc") == [] and sp.finish() == ["abc"]
    sp = LineSplitter()
    assert sp.feed(b"a\nabc") == ["a"]
    [last] = sp.finish()
    assert isinstance(last, Unterminated) and last == "abc"  # the last line had no newline: marked


def test_line_path_long_binary_line_is_bounded_and_complete() -> None:
    no_newline = ALL_BYTES.replace(b"\n", b"")
    data = b"\x80" * 5000 + no_newline * 20  # continuation bytes without a start byte: never a character
    sp = LineSplitter(max_line=1000)
    pieces = [line for i in range(0, len(data), 700) for line in sp.feed(data[i : i + 700])] + sp.finish()
    assert all(isinstance(p, Unterminated) for p in pieces) and len(pieces) > 5
    assert sp.complete_bytes == len(data)
    assert "".join(pieces).count("\\x80") == 5000 + 20


# -- against the real sshd: exec vs OpenSSH ---------------------------------------------------------------


@dataclass
class Both:
    """One command's stdout, stderr and exit code through OpenSSH ``ssh`` and through ``exec``."""

    ssh: subprocess.CompletedProcess[bytes]
    exec: subprocess.CompletedProcess[bytes]


def _config(tmp_path: Path, sshd: ThrowawaySshd) -> Path:
    cfg = tmp_path / "deploy.toml"
    cfg.write_text(
        f'[target]\nhost = "127.0.0.1"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
        f'identity_file = "{sshd.client_key}"\nssh_config = "/dev/null"\nknown_hosts = "{sshd.known_hosts}"\n'
        f'run_root = "{tmp_path / "runs"}"\n'
        '[app]\npath = "/srv/app"\n[database]\nname = "d"\nuser = "u"\npassword_env = "EXEC_TEST_DB_PW"\n'
        'password_prompt = false\n[migration]\nexpected_head = "abc"\n[backup]\ndirectory = "/tmp/b"\n'
    )
    return cfg


def _ssh(sshd: ThrowawaySshd) -> list[str]:
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("OpenSSH client not installed")
    return openssh_argv(sshd, program=ssh)


class Runner:
    def __init__(self, sshd: ThrowawaySshd, tmp_path: Path) -> None:
        self.sshd, self.tmp = sshd, tmp_path
        self.cfg = _config(tmp_path, sshd)
        self.env = {
            **os.environ,
            "HOME": str(tmp_path / "home"),
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }

    def exec_argv(self, *options: str) -> list[str]:
        return [sys.executable, "-m", "todobox_deploy", "exec", "--config", str(self.cfg), *options, "--"]

    def both(self, script: str, *options: str, env: dict[str, str] | None = None) -> Both:
        def run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                argv,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
                cwd=REPO,
                env=env or self.env,
            )

        return Both(
            run([*_ssh(self.sshd), shlex.join(["bash", "-c", script])]),
            run([*self.exec_argv(*options), "bash", "-c", script]),
        )

    def piped(self, argv: list[str], reader: str) -> tuple[bytes, int, bytes]:
        """``argv | reader`` in bash: (reader's stdout, the writer's exit code, the writer's stderr)."""
        err = self.tmp / f"stderr-{time.monotonic_ns()}"
        line = f'{shlex.join(argv)} 2> {shlex.quote(str(err))} | {reader}; echo "rc=${{PIPESTATUS[0]}}" >&2'
        done = subprocess.run(["bash", "-c", line], capture_output=True, timeout=120, cwd=REPO, env=self.env)
        rc = int(done.stderr.decode().rsplit("rc=", 1)[1])
        return done.stdout, rc, err.read_bytes()


@pytest.fixture
def runner(sshd_server: ThrowawaySshd, tmp_path: Path) -> Runner:
    return Runner(sshd_server, tmp_path)


def _same(both: Both) -> None:
    assert both.exec.stdout == both.ssh.stdout
    assert both.exec.stderr == both.ssh.stderr
    assert both.exec.returncode == both.ssh.returncode


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_exec_output_is_byte_for_byte_what_ssh_shows(runner: Runner, tmp_path: Path) -> None:
    data = tmp_path / "all-bytes.bin"  # the remote host is this machine
    data.write_bytes(ALL_BYTES * 400)
    cases = {
        "every byte value": f"head -c 100000 {shlex.quote(str(data))}; exit 3",
        "every byte value on stderr": f"head -c 100000 {shlex.quote(str(data))} >&2",
        "no trailing newline": "printf abc",
        "CRLF on both streams": r"printf 'a\r\nb\r\n'; printf 'e\r\n' >&2; printf 'lone\rcr'",
        "invalid UTF-8": r"printf '\xff\xfe\xc3( \xed\xa0\x80 caf\xc3\xa9\n\x80'",
        "empty output": "exit 0",
    }
    for name, script in cases.items():
        both = runner.both(script)
        assert both.ssh.stdout or both.ssh.stderr or name == "empty output", name
        _same(both)
    assert runner.both(cases["every byte value"]).exec.stdout == (ALL_BYTES * 400)[:100000]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_50_mb_single_line_arrives_whole(runner: Runner) -> None:
    both = runner.both("head -c 50000000 /dev/zero | tr '\\0' x; printf '\\n' >&2")
    assert len(both.exec.stdout) == 50_000_000 and both.exec.stdout.count(b"\n") == 0
    _same(both)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_detached_is_the_same_byte_path(runner: Runner, tmp_path: Path) -> None:
    data = tmp_path / "all-bytes.bin"
    data.write_bytes(ALL_BYTES * 400)
    script = f"head -c 100000 {shlex.quote(str(data))}; printf 'tail\\r\\nno newline'; exit 4"
    both = runner.both(script, "--detached", "--run-id", f"bytes-{os.getpid()}")
    assert both.exec.returncode == both.ssh.returncode == 4
    assert both.exec.stdout == both.ssh.stdout  # the run's log: stdout and stderr, exactly
    attach = subprocess.run(
        [*runner.exec_argv("--attach", f"bytes-{os.getpid()}", "--offset", "99990")[:-1]],
        capture_output=True,
        timeout=120,
        cwd=REPO,
        env=runner.env,
    )
    assert (attach.returncode, attach.stdout) == (4, both.ssh.stdout[99990:])


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_closed_pipe_exits_quietly_like_ssh(runner: Runner) -> None:
    for script, reader in [
        ("seq 1000000", "head -1"),  # killed by SIGPIPE at its next write: ssh says 255
        ("printf 'a\\nb\\n'; sleep 1; exit 3", "head -1"),  # it writes nothing more: its own exit code
        ("seq 1000000", "head -c 10"),
    ]:
        ssh_out, ssh_rc, ssh_err = runner.piped([*_ssh(runner.sshd), script], reader)
        exec_out, exec_rc, exec_err = runner.piped([*runner.exec_argv(), "bash", "-c", script], reader)
        assert (exec_out, exec_rc) == (ssh_out, ssh_rc), script
        assert exec_err == ssh_err == b"", exec_err.decode(errors="replace")  # no traceback, no message
    for script in ("seq 100000", "echo hi; exit 3"):  # stdout closed from the start: as if /dev/null
        codes = []
        for argv in ([*_ssh(runner.sshd), script], [*runner.exec_argv(), "bash", "-c", script]):
            line = f"{shlex.join(argv)} >&-; echo rc=$?"
            done = subprocess.run(
                ["bash", "-c", line], capture_output=True, timeout=120, cwd=REPO, env=runner.env
            )
            codes.append((done.stdout, done.stderr))
        assert codes[0] == codes[1] and codes[0][0].startswith(b"rc="), (script, codes)
    # detached: following stops, the run goes on on the host and can be re-attached
    out, rc, err = runner.piped(
        [*runner.exec_argv("--detached", "--run-id", "piped"), "seq", "300000"], "head -1"
    )
    assert (out, rc) == (b"1\n", 141) and b"Traceback" not in err
    assert b"--attach piped --offset" in err


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_exec_redacts_unless_told_not_to(runner: Runner) -> None:
    env = {**runner.env, "EXEC_TEST_DB_PW": "Pw-0f-the-DB"}
    # split in the command text (a whole secret there is refused), whole in the output, across two reads
    script = "printf 'pw=Pw-0f'; sleep 0.3; printf -- '-the-DB \\xff\\n'; printf 'Pw-0f''-the-DB' >&2"
    redacted = runner.both(script, env=env).exec
    assert (redacted.stdout, redacted.stderr) == (b"pw=[REDACTED] \xff\n", b"[REDACTED]")
    raw = runner.both(script, "--no-redact", env=env)
    _same(raw)


# -- the byte path in the remote layer ---------------------------------------------------------------------


class Chunks:
    def __init__(self) -> None:
        self.got: list[tuple[float, str, bytes]] = []

    def __call__(self, stream: str, data: bytes) -> None:
        self.got.append((time.monotonic(), stream, data))

    def data(self, stream: str = "stdout") -> bytes:
        return b"".join(d for _, s, d in self.got if s == stream)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_run_bytes_hands_out_output_without_waiting(conn: SshConnection) -> None:
    out = Chunks()
    started = time.monotonic()
    rc = conn.run_bytes(
        "printf 'prompt> '; sleep 1.5; printf 'hun'; sleep 0.3; printf 'ter2'",
        out,
        secrets=Secrets(["hunter2"]),
    )
    assert rc == 0 and out.data() == b"prompt> [REDACTED]"
    first = out.got[0]
    assert first[2] == b"prompt> " and first[0] - started < 1.4  # not held until the command ended


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_detached_bytes_survive_a_dropped_link(
    proxied_target: TargetConfig, proxy: CuttableProxy, tmp_path: Path
) -> None:
    data = tmp_path / "all-bytes.bin"
    data.write_bytes(ALL_BYTES * 4)
    conn = make_conn(proxied_target, tmp_path)
    conn.connect()
    out, info = Chunks(), list[str]()
    threading.Timer(0.8, proxy.cut).start()
    script = f"for i in $(seq 1 150); do head -c 1024 {shlex.quote(str(data))}; sleep 0.01; done; exit 6"
    rc = conn.run_detached_bytes("bytes-rst", script, out, info=info.append)
    assert rc == 6
    assert out.data() == ALL_BYTES * 4 * 150  # no gap, no duplicate
    assert any("link lost" in m for m in info) and any("re-attached" in m for m in info)
    conn.close()

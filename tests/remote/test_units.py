"""Pure parts: redaction, decoding/batching, quoting, known_hosts parsing, ssh config resolution."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import subprocess
from pathlib import Path

import pytest

from todobox_deploy.config import DatabaseConfig, TargetConfig
from todobox_deploy.remote import quoting
from todobox_deploy.remote.errors import (
    ConfigProblem,
    HostKeyChanged,
    HostKeyInfo,
    HostKeyRevoked,
    UnsafeArgument,
)
from todobox_deploy.remote.hostkeys import KnownHosts, fingerprint, pin_host_key
from todobox_deploy.remote.lines import LineBatcher, LineSplitter
from todobox_deploy.remote.mysql import mysql_command, mysql_script_with_input, option_file
from todobox_deploy.remote.secrets import MASK, Secrets
from todobox_deploy.remote.sshconfig import resolve

# -- secrets (§9.28) ---------------------------------------------------------------------------


def _chunks(data: bytes, rng: random.Random, hi: int = 17) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, hi)
        out.append(data[i : i + n])
        i += n
    return out


def test_redaction_catches_secrets_split_across_any_chunking() -> None:
    pw = "s3cr3t/pä ss"
    secrets = Secrets([pw])
    text = f"a {pw} b mysql://u:{__import__('urllib.parse').parse.quote(pw, safe='')}@h/db ü€ {pw}\n" * 20
    data = text.encode()
    rng = random.Random(7)
    for chunking in [[data[i : i + 1] for i in range(len(data))]] + [_chunks(data, rng) for _ in range(100)]:
        sp = LineSplitter(secrets)
        lines = [line for c in chunking for line in sp.feed(c)] + sp.finish()
        out = "\n".join(lines)
        assert "s3cr3t" not in out and "\ufffd" not in out
        assert out.count(MASK.decode()) == 60 and len(lines) == 20
        assert sp.complete_bytes == len(data)


def test_long_lines_are_split_without_leaking_or_breaking_characters() -> None:
    pw = "hunter2hunter2"
    data = ("é" * 3000 + pw + "x" * 5000 + pw).encode()  # no newline at all
    rng = random.Random(1)
    for _ in range(20):
        sp = LineSplitter(Secrets([pw]), max_line=1000)
        pieces = [line for c in _chunks(data, rng, 700) for line in sp.feed(c)] + sp.finish()
        joined = "".join(pieces)
        assert pw not in joined and "hunter" not in joined.replace("[REDACTED]", "")
        assert "\ufffd" not in joined and joined.count("[REDACTED]") == 2 and len(pieces) > 5


def test_long_lines_without_secrets() -> None:
    data = ("日本語" * 2000).encode()
    rng = random.Random(2)
    for _ in range(20):
        sp = LineSplitter(max_line=1000)
        pieces = [line for c in _chunks(data, rng, 700) for line in sp.feed(c)] + sp.finish()
        assert "".join(pieces) == "日本語" * 2000 and sp.complete_bytes == len(data)


def test_multiline_secret_is_masked_line_by_line() -> None:
    sp = LineSplitter(Secrets(["first-part\nsecond-part"]))
    assert sp.feed(b"a first-part\nsecond-part b\n") == ["a [REDACTED]", "[REDACTED] b"]


def test_secrets_repr_and_redact_text() -> None:
    s = Secrets(["hunter2"])
    assert "hunter2" not in repr(s)
    assert s.redact("pw=hunter2!") == "pw=[REDACTED]!"
    assert not Secrets([""])


# -- decoding and batching (§9.15) -------------------------------------------------------------


def test_split_utf8_never_produces_replacement_chars() -> None:
    text = "".join(f"zeile {i}: äöü €uro 🚀 日本\n" for i in range(300))
    data = text.encode()
    rng = random.Random(3)
    for _ in range(30):
        sp = LineSplitter(Secrets(["🚀"]))
        lines: list[str] = []
        for c in _chunks(data, rng, 5):
            lines += sp.feed(c)
        lines += sp.finish()
        assert len(lines) == 300
        assert "\ufffd" not in "".join(lines)
        assert lines[7] == "zeile 7: äöü €uro [REDACTED] 日本"


def test_last_line_without_newline_and_crlf() -> None:
    sp = LineSplitter()
    assert sp.feed(b"a\r\nb") == ["a"]
    assert sp.finish() == ["b"]


def test_batcher_batches_by_size_and_tags_streams() -> None:
    calls: list[tuple[str, list[str]]] = []
    b = LineBatcher(lambda s, lines: calls.append((s, lines)), max_lines=1000, max_delay=10)
    b.feed("stdout", b"".join(b"%d\n" % i for i in range(2500)))
    b.feed("stderr", b"oops\n")
    b.close()
    assert [len(lines) for s, lines in calls if s == "stdout"] == [1000, 1000, 500]
    assert calls[-1] == ("stderr", ["oops"])


def test_batcher_flushes_after_delay() -> None:
    calls: list[tuple[str, list[str]]] = []
    b = LineBatcher(lambda s, lines: calls.append((s, lines)), max_delay=0.0)
    b.feed("stdout", b"x\n")
    assert calls == [("stdout", ["x"])]


# -- quoting (§9.31 unit part) -----------------------------------------------------------------

HOSTILE = ["'; touch pwned; '", "$(id)", "`id`", "-rf", "a\nb", "ä" * 5000, "x\"y'z\\"]


def test_join_round_trips_hostile_values_through_bash(tmp_path: Path) -> None:
    cmd = quoting.join(["printf", "%s\\0", *HOSTILE])
    out = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == HOSTILE
    assert not (tmp_path / "pwned").exists()


def test_unsafe_arguments_are_rejected() -> None:
    with pytest.raises(UnsafeArgument, match="NUL"):
        quoting.join(["echo", "a\x00b"])
    with pytest.raises(UnsafeArgument, match="starts with '-'"):
        quoting.operand("--version", "path")
    with pytest.raises(TypeError):
        quoting.join("echo hi")  # type: ignore[arg-type]
    with pytest.raises(UnsafeArgument):
        quoting.env_prefix({"A-B": "x"})


def test_pipeline_reports_failing_stage() -> None:
    cmd = quoting.pipeline(["printf", "a\\n"], ["sh", "-c", "cat >/dev/null; exit 3"], ["cat"])
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert res.returncode == 3 and res.stderr == "pipeline stage 2 (sh) exited 3\n"
    ok = subprocess.run(["bash", "-c", quoting.pipeline(["printf", "a\\n"], ["cat"])], capture_output=True)
    assert ok.returncode == 0 and ok.stdout == b"a\n"


# -- mysql option file (§9.29, §9.30) ---------------------------------------------------------

DB = DatabaseConfig(name="todobox", user="app", client="mariadb", dump="mariadb-dump")


def test_defaults_extra_file_is_first_and_password_not_in_argv() -> None:
    pw = 'p"w\\ #x'
    argv, stdin = mysql_command(DB, pw, ["-e", "SELECT 1"])
    assert argv[0] == "mariadb" and argv[1] == "--defaults-extra-file=/dev/stdin"
    assert argv[-1] == "todobox"
    assert all(pw not in a for a in argv)
    assert b'password="p\\"w\\\\ #x"' in stdin
    dump_argv, _ = mysql_command(DB, pw, ["--single-transaction"], tool="dump")
    assert dump_argv[:2] == ["mariadb-dump", "--defaults-extra-file=/dev/stdin"]
    with pytest.raises(UnsafeArgument):
        mysql_command(DatabaseConfig(name="-x", user="u"), pw)
    script, _ = mysql_script_with_input(DB, pw, input_file="/tmp/d.sql.gz")
    assert "--defaults-extra-file=/dev/fd/3" in script and pw not in script
    assert option_file(DB, "a\nb").count(b"\n") == 5


# -- known_hosts (§9.5) ------------------------------------------------------------------------


def _info(blob: bytes, host: str = "127.0.0.1", port: int = 2222, kt: str = "ssh-ed25519") -> HostKeyInfo:
    return HostKeyInfo(host, port, kt, fingerprint(blob), base64.b64encode(blob).decode())


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


def test_known_hosts_tolerant_parse(tmp_path: Path) -> None:
    good, other, revoked, ca = b"\x00good", b"\x00other", b"\x00revoked", b"\x00ca"
    salt = b"0123456789abcdefghij"
    hashed = base64.b64encode(hmac.new(salt, b"[10.0.0.9]:2222", hashlib.sha1).digest()).decode()
    text = "\n".join(
        [
            "# a comment",
            "",
            f"@cert-authority *.example.com ssh-ed25519 {_b64(ca)}",
            f"@revoked * ssh-ed25519 {_b64(revoked)}",
            f"[127.0.0.1]:2222,other ssh-ed25519 {_b64(good)} comment here",
            f"*.corp,!bad.corp ssh-ed25519 {_b64(other)}",
            f"|1|{_b64(salt)}|{hashed} ssh-ed25519 {_b64(good)}",
            f"[127.0.0.1]:2222 sk-ssh-ed25519@openssh.com {_b64(b'sk')}",
            "garbage",
            "host ssh-ed25519 !!!notbase64",
            f"@weird host ssh-ed25519 {_b64(good)}",
        ]
    )
    f = tmp_path / "known_hosts"
    f.write_text(text)
    before = f.read_bytes()
    kh = KnownHosts.load([f, tmp_path / "missing"])
    assert kh.check(_info(good))
    assert kh.check(_info(good, "10.0.0.9"))
    assert kh.check(_info(other, "a.corp", 22))
    assert not kh.check(_info(other, "bad.corp", 22))
    assert not kh.check(_info(good, "x.example.com", 22))  # cert-authority lines are skipped
    with pytest.raises(HostKeyRevoked):
        kh.check(_info(revoked))
    with pytest.raises(HostKeyChanged) as exc:
        kh.check(_info(b"\x00new"))
    assert fingerprint(good) in str(exc.value) and "ssh-keygen -R '[127.0.0.1]:2222'" in str(exc.value)
    assert len(kh.warnings) == 3
    assert f.read_bytes() == before


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kt, b64 = (tmp_path / "k.pub").read_text().split()[:2]
    lf = subprocess.run(["ssh-keygen", "-lf", str(key) + ".pub"], capture_output=True, text=True).stdout
    assert fingerprint(base64.b64decode(b64)) == lf.split()[1]


def test_pin_file_is_0600_and_appended(tmp_path: Path) -> None:
    pin = tmp_path / "sub" / "known_hosts"
    pin_host_key(pin, _info(b"\x00k"))
    pin_host_key(pin, _info(b"\x00k", port=22))
    assert pin.stat().st_mode & 0o777 == 0o600
    assert pin.read_text().splitlines()[1].startswith("127.0.0.1 ssh-ed25519 ")
    assert KnownHosts.load([pin]).check(_info(b"\x00k"))


# -- ssh config (§9.7 unit part) ---------------------------------------------------------------


def test_ssh_config_alias_include_and_proxyjump(tmp_path: Path) -> None:
    inc = tmp_path / "inc.conf"
    inc.write_text("Host prod\n  HostName 10.1.2.3\n  Port 2200\n  User deploy\n  IdentityFile ~/k1\n")
    cfg = tmp_path / "config"
    cfg.write_text(
        f"Include {inc}\nHost prod\n  ProxyJump jumper@bastion:2022\nHost bastion\n  HostName 10.9.9.9\n"
    )
    r = resolve(TargetConfig(host="prod", ssh_config=cfg))
    assert (r.target.hostname, r.target.port, r.target.user) == ("10.1.2.3", 2200, "deploy")
    assert r.target.identity_files == (Path("~/k1").expanduser(),)
    assert [(j.hostname, j.port, j.user) for j in r.jumps] == [("10.9.9.9", 2022, "jumper")]
    r2 = resolve(TargetConfig(host="prod", port=22, user="root", ssh_config=cfg))
    assert (r2.target.port, r2.target.user) == (22, "root")


def test_ssh_config_unfollowable_include_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(f"Include {tmp_path}/loop\n")
    (tmp_path / "loop").write_text(f"Include {tmp_path}/loop\n")
    with pytest.raises(ConfigProblem, match="Include"):
        resolve(TargetConfig(host="x", ssh_config=cfg))
    unreadable = tmp_path / "dir.conf"
    unreadable.mkdir()
    cfg.write_text(f"Include {unreadable}\n")
    with pytest.raises(ConfigProblem, match="cannot read"):
        resolve(TargetConfig(host="x", ssh_config=cfg))
    cfg.write_text(f"Include {tmp_path}/missing.conf\nInclude {tmp_path}/none-*.conf\n")
    with pytest.raises(ConfigProblem, match="missing.conf does not exist"):
        resolve(TargetConfig(host="x", ssh_config=cfg))
    cfg.write_text(f"Include {tmp_path}/none-*.conf\n")  # an empty glob is fine, as in OpenSSH
    assert resolve(TargetConfig(host="x", ssh_config=cfg)).target.hostname == "x"
    cfg.write_text("Host x\n  ProxyCommand nc %h %p\n")
    with pytest.raises(ConfigProblem, match="ProxyCommand"):
        resolve(TargetConfig(host="x", ssh_config=cfg))


def test_no_auto_add_policy_anywhere() -> None:
    root = Path(__file__).resolve().parents[2] / "todobox_deploy" / "remote"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "AutoAddPolicy" not in text and "WarningPolicy" not in text, path
        assert "set_missing_host_key_policy" not in text and "save_host_keys" not in text
        assert "get_pty" not in text and "invoke_shell" not in text  # no PTY: it would echo stdin secrets


def test_pid_line_is_stripped_even_when_cut_short() -> None:
    from todobox_deploy.remote.stream import _PidFilter, wrap_command

    f = _PidFilter()
    assert f.feed(b"__todobox_pid__=4") == b"" and f.feed(b"2\nout") == b"out" and f.pid == 42
    cut = _PidFilter()
    assert cut.feed(b"__todobox_pi") == b"" and cut.flush() == b""  # a dropped link mid-marker: no output
    other = _PidFilter()
    assert other.feed(b"motd\n") == b"motd\n" and other.pid is None
    # one single-quoted word with no quote or backslash inside: the same in sh, bash, csh and fish
    cmd = wrap_command("echo 'it''s' \\\\ '$(id)' ü")
    prefix = "exec bash --norc --noprofile -c '"
    assert cmd.startswith(prefix) and cmd.endswith("'")
    assert "'" not in cmd[len(prefix) : -1] and "\\" not in cmd
    for shell in ("sh", "bash"):
        out = subprocess.run([shell, "-c", cmd], capture_output=True, text=True, check=True).stdout
        assert out.split("\n", 1)[1] == "its \\ $(id) ü\n"

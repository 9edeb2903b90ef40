"""Host keys, authentication and connection failures against a real sshd (§9 items 1-5, 7, 9-11)."""

from __future__ import annotations

import base64
import dataclasses
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from todobox_deploy.config import TargetConfig
from todobox_deploy.remote.errors import (
    AuthenticationFailed,
    HostKeyChanged,
    HostKeyInfo,
    HostKeyRevoked,
    HostKeyUnknown,
    HostUnreachable,
    PassphraseRequired,
)
from todobox_deploy.remote.hostkeys import fingerprint
from todobox_deploy.sandbox.sshd import ThrowawaySshd

from .conftest import CuttableProxy, make_conn, target_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _auth_log_lines(sshd: ThrowawaySshd) -> int:
    text = sshd.log_path.read_text(errors="replace")
    return sum(text.count(w) for w in ("Accepted publickey", "Failed publickey", "Postponed publickey"))


def _keygen_fp(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_unknown_host_refused_before_auth_with_fingerprint(
    sshd_server: ThrowawaySshd, target: TargetConfig, tmp_path: Path
) -> None:
    before = _auth_log_lines(sshd_server)
    conn = make_conn(dataclasses.replace(target, known_hosts=None), tmp_path)
    with pytest.raises(HostKeyUnknown) as exc:
        conn.connect()
    info = exc.value.info
    assert info.fingerprint == _keygen_fp(sshd_server.host_key_pub)
    assert (info.host, info.port, info.key_type) == ("127.0.0.1", sshd_server.port, "ssh-ed25519")
    assert info.fingerprint in str(exc.value)
    time.sleep(0.2)
    assert _auth_log_lines(sshd_server) == before  # no credentials were offered
    assert not conn.pin_file.exists()
    refused = make_conn(
        dataclasses.replace(target, known_hosts=None), tmp_path, confirm_host_key=lambda i: False
    )
    with pytest.raises(HostKeyUnknown):
        refused.connect()
    assert not conn.pin_file.exists()


def test_fingerprint_pinned_in_the_config_decides_without_a_prompt(
    sshd_server: ThrowawaySshd, target: TargetConfig, tmp_path: Path
) -> None:
    """Non-interactive runs: host_key_fingerprint in the deploy config trusts that key, and only that key."""
    real = _keygen_fp(sshd_server.host_key_pub)
    pinned = dataclasses.replace(target, known_hosts=None, host_key_fingerprint=real)
    conn = make_conn(pinned, tmp_path)
    conn.connect()
    assert conn.capture(["echo", "ok"]).stdout == "ok\n"
    conn.close()
    assert not conn.pin_file.exists()  # the config is the record; nothing is written
    wrong = "SHA256:" + "A" * 43
    # a wrong pin is a hard stop even though the key is in the configured known_hosts file
    mismatched = make_conn(dataclasses.replace(target, host_key_fingerprint=wrong), tmp_path)
    with pytest.raises(HostKeyChanged) as exc:
        mismatched.connect()
    assert real in str(exc.value) and wrong in str(exc.value)


def test_trust_pins_then_reconnects_against_pin(
    target: TargetConfig, tmp_path: Path, sshd_server: ThrowawaySshd
) -> None:
    asked: list[HostKeyInfo] = []

    def confirm(info: HostKeyInfo) -> bool:
        asked.append(info)
        return True

    t = dataclasses.replace(target, known_hosts=None)
    conn = make_conn(t, tmp_path, confirm_host_key=confirm)
    conn.connect()
    assert len(asked) == 1
    line = conn.pin_file.read_text().strip()
    assert line.startswith(f"[127.0.0.1]:{sshd_server.port} ssh-ed25519 ")
    assert conn.pin_file.stat().st_mode & 0o777 == 0o600
    conn.close()
    again = make_conn(t, tmp_path, confirm_host_key=None)  # non-interactive: the pin alone suffices
    again.connect()
    assert again.capture(["echo", "ok"]).stdout == "ok\n"
    again.close()


def test_changed_host_key_is_a_hard_stop(
    sshd_server: ThrowawaySshd, target: TargetConfig, tmp_path: Path
) -> None:
    other = tmp_path / "other.pub"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)[:-4]], check=True)
    kt, b64 = other.read_text().split()[:2]
    kh = tmp_path / "kh"
    kh.write_text(f"[127.0.0.1]:{sshd_server.port} {kt} {b64}\n")
    before = _auth_log_lines(sshd_server)
    conn = make_conn(dataclasses.replace(target, known_hosts=kh), tmp_path, confirm_host_key=lambda i: True)
    with pytest.raises(HostKeyChanged) as exc:
        conn.connect()
    msg = str(exc.value)
    assert _keygen_fp(sshd_server.host_key_pub) in msg and fingerprint(base64.b64decode(b64)) in msg
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd_server.port}'" in msg
    assert not conn.pin_file.exists()
    assert _auth_log_lines(sshd_server) == before


def test_openssh_known_hosts_with_markers_loads_and_stays_untouched(
    sshd_server: ThrowawaySshd, target: TargetConfig, tmp_path: Path
) -> None:
    kt, b64 = sshd_server.host_key_pub.read_text().split()[:2]
    kh = tmp_path / "user_known_hosts"
    kh.write_text(
        "# my hosts\n"
        f"@cert-authority *.example.com {kt} {b64}\n"
        f"@revoked old.example.com ssh-ed25519 {base64.b64encode(b'x' * 51).decode()}\n"
        "*.internal,!db.internal sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n"
        f"[127.0.0.1]:{sshd_server.port} {kt} {b64}\n"
        "garbage line\n"
    )
    before = kh.read_bytes()
    conn = make_conn(dataclasses.replace(target, known_hosts=None), tmp_path, known_hosts_files=[kh])
    conn.connect()
    conn.close()
    assert kh.read_bytes() == before
    kh.write_text(f"@revoked * {kt} {b64}\n[127.0.0.1]:{sshd_server.port} {kt} {b64}\n")
    with pytest.raises(HostKeyRevoked):
        make_conn(
            dataclasses.replace(target, known_hosts=None),
            tmp_path,
            known_hosts_files=[kh],
            confirm_host_key=lambda i: True,
        ).connect()


def test_wrong_user_and_wrong_key(target: TargetConfig, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationFailed) as exc:
        make_conn(dataclasses.replace(target, user="nobody-here"), tmp_path).connect()
    assert "'nobody-here'" in str(exc.value) and str(target.identity_file) in str(exc.value)
    key = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(AuthenticationFailed, match="user name or the key"):
        make_conn(dataclasses.replace(target, identity_file=key), tmp_path).connect()


def test_encrypted_key_asks_for_passphrase(
    sshd_server: ThrowawaySshd, target: TargetConfig, tmp_path: Path
) -> None:
    key = tmp_path / "enc"
    key.write_bytes(sshd_server.client_key.read_bytes())
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "open sesame", "-f", str(key)], check=True)
    t = dataclasses.replace(target, identity_file=key)
    with pytest.raises(PassphraseRequired):
        make_conn(t, tmp_path).connect()
    with pytest.raises(PassphraseRequired, match="wrong passphrase"):
        make_conn(t, tmp_path, passphrase=lambda p: "nope").connect()
    asked: list[Path] = []
    conn = make_conn(t, tmp_path, passphrase=lambda p: asked.append(p) or "open sesame")
    conn.connect()
    conn.close()
    conn.connect()  # the decrypted key is kept in memory: no second prompt
    conn.close()
    assert asked == [key]


def test_refused_port_says_which(target: TargetConfig, tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(HostUnreachable, match=f"127.0.0.1 port {port}: connection refused"):
        make_conn(dataclasses.replace(target, port=port), tmp_path).connect()


def test_silent_server_times_out(target: TargetConfig, tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    port = listener.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(HostUnreachable, match="handshake failed"):
        make_conn(dataclasses.replace(target, port=port, connect_timeout=1.5), tmp_path).connect()
    assert time.monotonic() - t0 < 5
    listener.close()


def test_ssh_config_alias_and_proxyjump_checks_both_keys(
    sshd_server: ThrowawaySshd, proxy: CuttableProxy, tmp_path: Path
) -> None:
    # the jump host is reached at the proxy's port, so its known_hosts name differs from the target's
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host prod\n  HostName 127.0.0.1\n  Port {sshd_server.port}\n  User {sshd_server.user}\n"
        f"  IdentityFile {sshd_server.client_key}\n  ProxyJump bastion\n"
        f"Host bastion\n  HostName 127.0.0.1\n  Port {proxy.port}\n  User {sshd_server.user}\n"
        f"  IdentityFile {sshd_server.client_key}\n"
    )
    t = TargetConfig(host="prod", ssh_config=cfg)
    with pytest.raises(HostKeyUnknown) as exc:
        make_conn(t, tmp_path).connect()
    assert exc.value.info.port == proxy.port  # the jump host is checked first
    seen: list[HostKeyInfo] = []
    conn = make_conn(t, tmp_path, confirm_host_key=lambda i: seen.append(i) or True)
    conn.connect()
    assert [i.port for i in seen] == [proxy.port, sshd_server.port]  # both keys checked and pinned
    assert len(conn._hops) == 1
    assert conn.capture(["echo", "via jump"]).stdout == "via jump\n"
    conn.close()
    pins = conn.pin_file.read_text().splitlines()
    assert [line.split()[0] for line in pins] == [
        f"[127.0.0.1]:{proxy.port}",
        f"[127.0.0.1]:{sshd_server.port}",
    ]
    again = make_conn(t, tmp_path)  # verified against both pins, no prompt
    again.connect()
    again.close()


def test_agent_auth(
    sshd_server: ThrowawaySshd, target: TargetConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(sock), "PATH": "/usr/bin:/bin"}
        subprocess.run(
            ["ssh-add", "-q", str(sshd_server.client_key)], env=env, check=True, capture_output=True
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no default ~/.ssh/id_* keys
        t = dataclasses.replace(target, identity_file=None)
        with pytest.raises(AuthenticationFailed):
            make_conn(t, tmp_path, allow_agent=False).connect()
        conn = make_conn(t, tmp_path, allow_agent=True)
        conn.connect()
        assert conn.capture(["sh", "-c", "echo ${SSH_AUTH_SOCK:-no-forwarding}"]).stdout == "no-forwarding\n"
        conn.close()
    finally:
        agent.terminate()
        agent.wait(5)


def test_host_key_changed_after_pin_on_reconnect(tmp_path: Path) -> None:
    """A second sshd is pinned, restarted with a new host key, and the reconnect is refused."""
    server = ThrowawaySshd(tmp_path / "sshd2")
    server.start()
    try:
        t = target_for(server, known_hosts=None)
        conn = make_conn(t, tmp_path, confirm_host_key=lambda i: True)
        conn.connect()
        old_fp = _keygen_fp(server.host_key_pub)
        server.stop()
        server.host_key.unlink()
        server.host_key_pub.unlink()
        server.start()  # same port, new host key
        new_fp = _keygen_fp(server.host_key_pub)
        pins_before = conn.pin_file.read_bytes()
        with pytest.raises(HostKeyChanged) as exc:
            conn.capture(["true"])  # the automatic reconnect verifies against the pin
        assert old_fp in str(exc.value) and new_fp in str(exc.value)
        assert conn.pin_file.read_bytes() == pins_before  # nothing written, no override offered
        conn.close()
    finally:
        server.stop()


class _WeakSshd(ThrowawaySshd):
    """The sandbox sshd restricted to algorithms the client refuses (reuses the sandbox launcher)."""

    def __init__(self, directory: Path, extra: str) -> None:
        super().__init__(directory)
        self.extra = extra

    def _config_text(self) -> str:
        return super()._config_text() + self.extra


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ("Ciphers aes128-cbc,3des-cbc\n", "cipher"),
        ("MACs hmac-sha1\nCiphers aes128-ctr\n", "mac"),
        ("KexAlgorithms diffie-hellman-group14-sha1\n", "kex"),
    ],
)
def test_weak_only_server_is_refused_with_a_clear_message(tmp_path: Path, extra: str, what: str) -> None:
    server = _WeakSshd(tmp_path / "weak", extra)
    server.start()
    try:
        with pytest.raises(HostUnreachable, match=f"no acceptable {what}") as exc:
            make_conn(target_for(server), tmp_path).connect()
        assert "weak or legacy algorithms" in str(exc.value)
    finally:
        server.stop()

"""A real SSH session on 127.0.0.1: the client dies, the run does not.

sshd runs from this test with its own host key, config and authorized key, listening on a free
port of the loopback address only, and is killed afterwards. Skipped when openssh-server is
not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY_RING
from conftest import wait_until as wait_for
from gantui.engine import jsonl

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not (Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen")),
                                reason="openssh-server/client not installed (.ci/run installs them)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    port = free_port()
    env_line = " ".join(f"{k}={v}" for k, v in {"PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}.items())
    (d / "environment").write_text(env_line.replace(" ", "\n") + "\n")
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin yes\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitUserEnvironment no\nAllowTcpForwarding no\nX11Forwarding no\nClientAliveInterval 0\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    try:
        wait_for(listening, 30, "sshd to listen")
    except AssertionError:
        proc.kill()
        pytest.skip(f"sshd did not start: {proc.stderr.read().decode(errors='replace')[-300:]}")
    yield {"port": port, "key": d / "client_key", "user": os.environ.get("USER") or "root"}
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def ssh_cmd(sshd, remote: str) -> list[str]:
    return ["ssh", "-tt", "-i", str(sshd["key"]), "-p", str(sshd["port"]), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            f"{sshd['user']}@127.0.0.1", remote]


def test_a_headless_run_survives_its_ssh_client_being_killed(sshd, tmp_path):
    run_dir = tmp_path / "run"
    remote = (f"cd {shlex.quote(str(REPO))} && OMP_NUM_THREADS=1 {shlex.quote(sys.executable)} -m gantui run ring8 "
              f"--headless --steps 200 --run-dir {shlex.quote(str(run_dir))} "
              + " ".join(shlex.quote(a) for a in TINY_RING))
    client = subprocess.Popen(ssh_cmd(sshd, remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(jsonl.read(run_dir / "metrics.jsonl").records) >= 2, what="the run's first records")
        steps_then = jsonl.read(run_dir / "metrics.jsonl").records[-1]["step"]
        assert steps_then < 200
        client.kill()  # the laptop lid closes: the client dies, sshd hangs up the session
        client.wait(30)
        wait_for(lambda: any(e["kind"] == "finished" for e in jsonl.read(run_dir / "events.jsonl").records),
                 timeout=300, what="the run to reach its last step")
    finally:
        client.kill()
    events = jsonl.read(run_dir / "events.jsonl").records
    hangups = [e for e in events if e["kind"] == "hangup"]
    assert hangups, [e["kind"] for e in events]
    assert steps_then <= hangups[0]["step"] < 200
    assert jsonl.read(run_dir / "metrics.jsonl").records[-1]["step"] == 200
    assert (run_dir / "checkpoints" / "latest.safetensors").is_file()
    log = (run_dir / "console.log").read_text()
    assert "hung up" in log and "Traceback" not in log

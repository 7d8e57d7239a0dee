"""A real OpenSSH sshd for the SFTP tests (reference/toolchain.md §2).

asyncssh (``standins.servers.SftpStandin``) is quick, but customers run OpenSSH: its sftp-server
error codes, its refusal to rename onto an existing file, its posix-rename extension. So the
transports are also tested against ``/usr/sbin/sshd -D -e`` started here on a free loopback port,
with host and client keys made by ssh-keygen in a mkdtemp folder. Logins are root by key; the
SFTP session starts in ``root`` (``ForceCommand internal-sftp -d``), so relative paths in a
transport's configuration work as on a customer's server. No ChrootDirectory: it refuses paths
under /tmp.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from standins.servers import free_port

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"


class SshdServer:
    """OpenSSH sshd serving SFTP for root, started in ``start()`` and killed by PID in ``stop()``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.port = 0
        self.user = "root"
        self.dir: Path | None = None
        self.host_key_line = ""
        self.client_key_file: Path | None = None
        self._proc: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> bool:
        """Whether OpenSSH's sshd (package openssh-server) is installed."""
        return SSHD.exists() and shutil.which(SSH_KEYGEN) is not None

    def _prepare(self) -> None:
        if os.geteuid() != 0:
            # Without root sshd can only log in the user running it, and needs PAM for that;
            # CI and this project's machines run the tests as root.
            raise RuntimeError("SshdServer needs root (sshd logs in root by key)")
        self.dir = Path(tempfile.mkdtemp(prefix="caturactl-sshd-"))
        for key in ("host", "client"):
            subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", f"caturactl-test-{key}",
                            "-f", str(self.dir / key)], check=True, timeout=30)
        shutil.copy(self.dir / "client.pub", self.dir / "authorized_keys")
        self.host_key_line = " ".join((self.dir / "host.pub").read_text().split()[:2])
        self.client_key_file = self.dir / "client"
        self.port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.dir / "sshd_config").write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.dir / 'host'}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            # the keys live under /tmp, which is world-writable
            "StrictModes no\n"
            "Subsystem sftp internal-sftp\n"
            f"ForceCommand internal-sftp -d {self.root}\n")
        # sshd as root refuses to start without its privilege-separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    def start(self) -> "SshdServer":
        """Start sshd (on the same port and with the same keys after a stop) and wait until it
        accepts connections; raises RuntimeError with sshd's log when it does not come up."""
        if self._proc is not None:
            return self
        if self.dir is None:
            self._prepare()
        assert self.dir is not None
        log = open(self.dir / "sshd.log", "ab")
        self._proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"sshd exited at start:\n{(self.dir / 'sshd.log').read_text(errors='replace')}")
            if _accepts(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        """Kill sshd and every session it forked (sessions outlive a plain ``kill`` of the
        listener), then wait until the port refuses connections."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> "SshdServer":
        """Stop, then start again on the same port with the same keys."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the keys and configuration."""
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "SshdServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """PIDs of all processes below ``pid``, from /proc (sshd's sessions call setsid, so a
    process-group kill would miss them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name in parentheses may contain spaces; the fields after it are fixed
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found

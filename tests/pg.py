"""A throwaway PostgreSQL server for the test run (reference/toolchain.md §3).

initdb and pg_ctl refuse to run as root, so as root they run as the ``postgres`` user through
runuser, in a mkdtemp folder that user can enter.

The data folder is in memory (``/dev/shm``) when that has room. Every test gets its own database,
a copy of the migrated template, about 560 files; on the ext4 disk of the 2-core machine each
CREATE DATABASE took 400 ms of CPU, nearly all of it the kernel looking for a free inode among the
ones the dropped databases had just freed (perf: ext4 ``recently_deleted``), and 35 ms on tmpfs.
``TEST_PG_TMPDIR`` names another folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from standins.servers import free_port


RAM_DIR = Path("/dev/shm")
RAM_NEEDED = 2 << 30  # bytes free: a server's data stays under 100 MB, its WAL under max_wal_size


def data_parent(ram_dir: Path = RAM_DIR, needed: int = RAM_NEEDED) -> str | None:
    """Where the server's folder goes: TEST_PG_TMPDIR, else ``ram_dir`` when it is writable and has
    ``needed`` bytes free, else the usual temporary folder (None)."""
    given = os.environ.get("TEST_PG_TMPDIR")
    if given:
        return given
    try:
        room = os.statvfs(ram_dir)
    except OSError:
        return None
    if os.access(ram_dir, os.W_OK | os.X_OK) and room.f_bavail * room.f_frsize >= needed:
        return str(ram_dir)
    return None


def _bin_dir() -> Path | None:
    env = os.environ.get("TEST_PG_BIN")
    if env:
        return Path(env)
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists():
            return base
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.dir: Path | None = None
        self.port = 0

    @property
    def available(self) -> bool:
        return self.bin is not None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)

    def start(self) -> "PostgresServer":
        self.dir = Path(tempfile.mkdtemp(prefix="caturactl-pg-", dir=data_parent()))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "30", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                  "-c max_wal_size=256MB", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.dir is None:
            return
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

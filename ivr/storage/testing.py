"""Throwaway PostgreSQL clusters for tests and benchmarks: initdb + pg_ctl in a temporary directory.

Rules for this file:
- Only tests, `bench/` and tools import it; the service never does.
- initdb refuses to run as root, so as root the cluster belongs to the unprivileged `postgres` user (Debian's
  package creates it) and the binaries run through `runuser`; otherwise as the current user. The temporary
  directory is given to that user.
- Loopback only: listens on 127.0.0.1 on a free port, its unix socket inside the temporary directory. Host
  connections need the password (scram-sha-256), so tests exercise the same login path as production.
- `stop()`/`start()` let fault tests take the database away and bring it back on the same port and data.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD = "ivr-test-secret"


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent  # Debian links them from /usr/local/bin; psql sits beside the real ones
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def missing_reason() -> str | None:
    """Why a cluster cannot be made here (None when it can)."""
    if find_pg_bin() is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin; install postgresql"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no unprivileged 'postgres' user to run initdb as"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """One cluster. `url(db)` is a DSN without the password; `password` goes separately."""

    bindir: Path
    root: Path
    port: int
    log: Callable[[str], None] = field(default=lambda _msg: None)
    password: str = PASSWORD
    user: str = SUPERUSER
    running: bool = False

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")

    def init(self) -> None:
        self.log(f"postgres: initdb in {self.datadir}")
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        _give(pwfile)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        pwfile.unlink()

    def start(self) -> None:
        self.log(f"postgres: starting on 127.0.0.1:{self.port}")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=32MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.root / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        self.log("postgres: stopping")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL over the unix socket (trust) as the superuser; returns psql's output."""
        proc = subprocess.run(
            self._cmd(
                str(self.bindir / "psql"),
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _give(path: Path) -> None:
    """As root: hand a path to the postgres user (initdb and the server run as it)."""
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def create_cluster(log: Callable[[str], None] = lambda _msg: None) -> PgCluster:
    """initdb + start a new cluster in a fresh temporary directory. Raises RuntimeError with the reason."""
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bindir = find_pg_bin()
    assert bindir is not None
    # Not under pytest's tmp dirs: those are private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    _give(root)
    cluster = PgCluster(bindir=bindir, root=root, port=free_port(), log=log)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster

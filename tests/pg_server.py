"""A throwaway PostgreSQL server for the test session: initdb + pg_ctl in a temporary directory.

The binaries come from ``PATH``, ``pg_config --bindir`` or ``/usr/lib/postgresql/*/bin``, else from
the ``pgserver`` wheel that ``make test`` installs on a machine with none. The server listens on
127.0.0.1 at a free port, with password (SCRAM) authentication for TCP, so the tests also cover the
password paths. PostgreSQL refuses to run as root: as root, the data directory is given to an
unprivileged user (``postgres`` or ``nobody``) and the server runs as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "ledger"
PASSWORD = "s3cret-pw"  # a test-only password: the tests check it never shows in errors or reprs


def _bindir() -> Path:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            return Path(found)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    try:
        import pgserver  # type: ignore[import-not-found]  # the fallback wheel, installed only where needed
    except ImportError as exc:
        raise RuntimeError("no PostgreSQL binaries: install postgresql, or pip install pgserver") from exc
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server in a temporary directory; ``url(db)`` names a database on it, ``create(db)`` makes one."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            name = "postgres" if _user_exists("postgres") else "nobody"
            entry = pwd.getpwnam(name)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam(_owner(self._as)).pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        self._wait()

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bindir / tool), *args], capture_output=True, text=True,
                              cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, database: str, *, password: bool = True) -> str:
        """A ``postgresql://`` URL for a database on this server (with the password in it, or not)."""
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create(self, database: str) -> str:
        """Create a new, empty database and return its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _owner(prefix: list[str]) -> str:
    uid = int(next(a for a in prefix if a.startswith("--reuid=")).split("=", 1)[1])
    return pwd.getpwuid(uid).pw_name

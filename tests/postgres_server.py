"""A throwaway PostgreSQL server for tests: its own data folder, 127.0.0.1 only, a free port, one database and a
user with a password; stopped (``-m immediate``) and deleted afterwards.

The server refuses to run as root, so as root it runs as the ``postgres`` system user (``runuser``); otherwise as
the current user. Without the server binaries (``initdb``, ``pg_ctl``; on PATH or under /usr/lib/postgresql), the
driver (``pip install -e ".[postgres]"``) or, as root, a ``postgres`` user, the tests skip, and fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import free_port

SERVER_USER = "postgres"
"""The unprivileged system user the server runs as when the tests run as root."""


@dataclass(frozen=True)
class PostgresServer:
    port: int
    database: str
    user: str
    password: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg2 driver) of the test database, password included."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"


def missing(message: str) -> None:
    """Skip the test, or fail it on CI (``CI=true``), where the PostgreSQL tests must run."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message + "; CI=true, so this is a failure, not a skip")
    pytest.skip(message)


def server_binaries() -> dict[str, str] | None:
    """initdb, pg_ctl and psql from PATH, else from the newest /usr/lib/postgresql/<version>/bin; None without."""
    folders = [None, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in folders:
        found = {name: shutil.which(name, path=folder) for name in ("initdb", "pg_ctl", "psql")}
        if all(found.values()):
            return found
    return None


@contextlib.contextmanager
def postgres_server(
    database: str = "optuna", user: str = "searcher", password: str = "s3cret-PW-4-tests"
) -> Iterator[PostgresServer]:
    binaries = server_binaries()
    if binaries is None:
        missing("PostgreSQL server binaries (initdb, pg_ctl, psql) not found; e.g. apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing('the PostgreSQL driver psycopg is not installed: pip install -e ".[postgres]"')
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            missing(f"running as root, and there is no {SERVER_USER!r} user to run the PostgreSQL server as")
        prefix = ["runuser", "-u", SERVER_USER, "--"]
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))  # under /tmp: pytest's tmp_path is closed to other users
    if prefix:
        os.chown(root, account.pw_uid, account.pw_gid)
    data, log = root / "data", root / "server.log"

    def run(*command: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, cwd=root)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}\n{tail}")
        return done

    try:
        run(binaries["initdb"], "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256")
        for attempt in range(3):  # the free port may be taken between choosing it and the server binding it
            port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
            try:
                run(binaries["pg_ctl"], "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        psql = [binaries["psql"], "-h", str(root), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
        run(*psql, "-d", "postgres", "-c", f"CREATE USER {user} WITH PASSWORD '{password}'")
        run(*psql, "-d", "postgres", "-c", f"CREATE DATABASE {database} OWNER {user}")
        yield PostgresServer(port=port, database=database, user=user, password=password)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, binaries["pg_ctl"], "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                cwd=root,
            )
        shutil.rmtree(root, ignore_errors=True)

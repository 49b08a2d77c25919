"""A throwaway PostgreSQL cluster for tests (Debian's postgresql package, NOTES.md).

`initdb` and `pg_ctl` refuse to run as root, so both run as the `postgres` system user on a
data directory it owns; the server listens on loopback only, with trust authentication, and is
stopped (immediate mode) and deleted when the context exits.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL {name} not found: install it with "
                           "`apt-get install -y postgresql` (the Makefile's test target does)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster; yield its Optuna/SQLAlchemy URL (psycopg 3 driver)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    base = Path(tempfile.mkdtemp(prefix="smabm-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(_as_postgres(initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                                    "--no-sync"), **run)
        subprocess.run(_as_postgres(pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-o",
                                    f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off",
                                    "-w", "start"), **run)
    except subprocess.CalledProcessError as e:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {(e.stderr or e.stdout).strip()}") from None
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)

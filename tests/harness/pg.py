"""Stop and restart a running test cluster (from `tests.harness.postgres.postgres_server`).

The sink's tests take the database away mid-run and bring it back. The server is found from
its URL alone: its data directory, port and socket directory are read from the server itself,
and `pg_ctl` runs as the `postgres` user as in `postgres.py`.
"""

from __future__ import annotations

import glob
import os
import subprocess

import psycopg


def dsn(url: str) -> str:
    """libpq spelling of the harness's SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class ServerControl:
    def __init__(self, url: str) -> None:
        with psycopg.connect(dsn(url), autocommit=True) as conn:
            get = lambda name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]  # noqa: E731
            self.data, self.port = get("data_directory"), get("port")
            self.sockets = get("unix_socket_directories")
        self.pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]

    def _run(self, *args: str) -> None:
        cmd = [self.pg_ctl, "-D", self.data, *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        """Fast shutdown: sessions are disconnected, open transactions roll back."""
        self._run("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self._run("-l", os.path.join(os.path.dirname(self.data), "server.log"), "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off",
                  "-w", "start")

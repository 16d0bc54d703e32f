"""Talking to a live run from another process (`gantui stop`, `gantui watch`, `--nproc`'s monitor)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from gantui.engine.runlock import holder
from gantui.engine import protocol


class NotLive(Exception):
    """No live process owns the run directory (finished, stopped, killed, or never started)."""


class LiveClient:
    """One connection to a run's control channel; `request` is safe from several threads."""

    def __init__(self, run_dir: Path, timeout: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._buf = b""

    @classmethod
    def connect(cls, run_dir: Path, timeout: float = 10.0) -> "LiveClient":
        client = cls(run_dir, timeout)
        client._open()
        return client

    def _open(self) -> None:
        pid = holder(self.run_dir)
        live = protocol.read_live(self.run_dir)
        if pid is None or live is None or not isinstance(live.get("socket"), str):
            raise NotLive(f"{self.run_dir}: no live run here (it has ended, or has not started yet)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(live["socket"])
        except OSError as e:
            sock.close()
            raise NotLive(f"{self.run_dir}: the run's control channel does not answer ({e.strerror or e})") from None
        self._sock, self._buf = sock, b""

    def send(self, command) -> dict[str, Any]:
        """A typed engine command (gantui.engine.control), as protocol.request_of writes it; its reply."""
        return self.request(**protocol.request_of(command))

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one command, return its reply (NotLive when the run went away)."""
        with self._lock:
            if self._sock is None:
                self._open()
            try:
                self._sock.sendall(protocol.encode({"cmd": cmd, **fields}))
                while b"\n" not in self._buf:
                    chunk = self._sock.recv(65536)
                    if not chunk:
                        raise OSError("connection closed")
                    self._buf += chunk
            except OSError as e:
                self.close_locked()
                raise NotLive(f"{self.run_dir}: the run's control channel closed ({e})") from None
            line, self._buf = self._buf.split(b"\n", 1)
        try:
            return protocol.decode(line)
        except protocol.BadRequest:
            return {"ok": False, "error": "unreadable reply"}

    def close_locked(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def __enter__(self) -> "LiveClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

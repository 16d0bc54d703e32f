"""The control channel's server, owned by the process that trains (see gantui.engine.protocol).

One accept thread and one short-lived thread per connection; none of them touches torch:
commands go into the trainer's thread-safe `Control`, status comes from `LiveStatus`, a
listener that keeps the latest plain numbers the engine published. Every refusal is answered
and logged (rate-limited) and never reaches the training loop.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any, Callable

from gantui import __version__
from gantui.engine import events as ev
from gantui.engine.control import Command
from gantui.engine import protocol
from gantui.vocab.files import atomic_write

MAX_CLIENTS = 32
IDLE_TIMEOUT_S = 600.0
REFUSALS_PER_MINUTE = 10


class LiveStatus:
    """A listener keeping the newest state as a plain dict (swapped whole: safe to read anywhere)."""

    def __init__(self, name: str = "", total_steps: int = 0) -> None:
        self.current: dict[str, Any] = {"state": ev.STARTING, "step": 0, "total_steps": total_steps,
                                        "name": name, "lr_g": None, "lr_d": None, "n_critic": None,
                                        "steps_per_s": None, "eta_s": None}

    def __call__(self, msg: ev.Message) -> None:
        cur = dict(self.current)
        if isinstance(msg, ev.RunInfo):
            cur.update(name=msg.name, total_steps=msg.total_steps, step=msg.start_step, lr_g=msg.lr_g,
                       lr_d=msg.lr_d, n_critic=msg.n_critic)
        elif isinstance(msg, ev.StateChanged):
            cur.update(state=msg.state, step=msg.step, n_critic=msg.n_critic)
            if msg.state != ev.CRASHED:
                cur.update(lr_g=msg.lr_g, lr_d=msg.lr_d)
        elif isinstance(msg, ev.Snapshot):
            cur.update(step=msg.step, total_steps=msg.total_steps, eta_s=msg.eta_s,
                       steps_per_s=msg.metrics.get("steps_per_s"))
        else:
            return
        self.current = cur


class ChannelServer:
    def __init__(self, run_dir: Path, status: LiveStatus | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.status = status or LiveStatus()
        self.path: Path | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
        self._send: Callable[[Command], None] | None = None
        self._log: Callable[..., None] | None = None
        self._pending: list[Command] = []
        self._lock = threading.Lock()
        self._refusals: list[float] = []
        self.refused = 0

    # --- lifetime ------------------------------------------------------------------------
    def start(self) -> "ChannelServer":
        folder = protocol.socket_dir()
        path = folder / protocol.socket_name(self.run_dir)
        # We hold the run's lock, so a socket at this path is a dead owner's: replace it.
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600, never briefly wider
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.settimeout(0.5)
        self._sock, self.path = sock, path
        self._write_live()
        self._thread = threading.Thread(target=self._accept_loop, name="gantui-channel", daemon=True)
        self._thread.start()
        return self

    def _write_live(self) -> None:
        info = {"pid": os.getpid(), "socket": str(self.path), "started": time.time(), "version": __version__}
        # not durable: live.json describes this process, which a power loss ends anyway
        atomic_write(self.run_dir / protocol.LIVE_FILE, (json.dumps(info) + "\n").encode(), durable=False)

    def attach(self, send: Callable[[Command], None], log: Callable[..., None] | None = None) -> None:
        """Route commands to the trainer from now on (and deliver those that came before)."""
        with self._lock:
            self._send, self._log = send, log
            pending, self._pending = self._pending, []
        for cmd in pending:
            send(cmd)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()
        for p in (self.path, self.run_dir / protocol.LIVE_FILE):
            if p is not None:
                try:
                    os.unlink(p)
                except OSError:
                    pass

    # --- serving -------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                if self._closing.is_set():
                    return
                time.sleep(0.1)
                continue
            if not self._clients.acquire(blocking=False):
                self._refuse(conn, "too many clients")
                continue
            threading.Thread(target=self._serve, args=(conn,), name="gantui-channel-client", daemon=True).start()

    def _peer_uid(self, conn: socket.socket) -> int | None:
        try:
            raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _, uid, _ = struct.unpack("3i", raw)
            return uid
        except (OSError, AttributeError):
            return None

    def _serve(self, conn: socket.socket) -> None:
        try:
            uid = self._peer_uid(conn)
            if uid is not None and uid != os.getuid():
                self._refuse(conn, f"peer uid {uid} is not the run's owner")
                return
            conn.settimeout(IDLE_TIMEOUT_S)
            buf = b""
            while not self._closing.is_set():
                try:
                    chunk = conn.recv(65536)
                except (TimeoutError, socket.timeout, OSError):
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        conn.sendall(protocol.encode(self.handle(line)))
                if len(buf) > protocol.MAX_LINE:
                    self._refuse(conn, f"line longer than {protocol.MAX_LINE} bytes")
                    return
        except OSError:
            return
        finally:
            conn.close()
            self._clients.release()

    def _refuse(self, conn: socket.socket, why: str) -> None:
        try:
            conn.sendall(protocol.encode({"ok": False, "error": why}))
        except OSError:
            pass
        self._note_refusal(why)
        if why == "too many clients":
            conn.close()

    def _note_refusal(self, why: str) -> None:
        self.refused += 1
        now = time.monotonic()
        self._refusals = [t for t in self._refusals if now - t < 60] + [now]
        log = self._log
        if log is not None and len(self._refusals) <= REFUSALS_PER_MINUTE:
            try:
                log("control_refused", reason=why[:200])
            except Exception:  # noqa: BLE001 - a log that fails must not stop the channel
                pass

    def handle(self, line: bytes) -> dict[str, Any]:
        """One request line -> one reply. Never raises."""
        try:
            command = protocol.parse(line)
        except protocol.BadRequest as e:
            self._note_refusal(str(e))
            return {"ok": False, "error": str(e)}
        if command == "ping":
            return {"ok": True, "pid": os.getpid(), "run_dir": str(self.run_dir.resolve()), "version": __version__}
        if command == "status":
            return {"ok": True, **self.status.current}
        with self._lock:
            if self._send is None:
                self._pending.append(command)
                return {"ok": True, "queued": True}
            send = self._send
        send(command)
        return {"ok": True}

"""A webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread that keeps every POSTed
JSON body; POSTs to /hang block until the test releases them (a receiver that never answers)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.hung = 0                 # requests to /hang received (and left hanging)
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                if self.path.startswith("/hang"):
                    owner.hung += 1
                    owner.release.wait(60)
                    return
                owner.bodies.append(json.loads(data))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of(self, run_dir) -> list[dict]:
        return [b for b in self.bodies if b.get("run_dir") == str(run_dir)]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

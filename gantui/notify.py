"""Notifications (`[notify]`): raised alerts, stops, recoveries, the end of a run and crashes, sent
to a command (the event as JSON on its stdin) and/or a webhook (a JSON POST with a `text` field
that Slack-style chat tools display, plus the event's fields).

A shell-level listener: `gantui run` (headless or with the monitor) adds it to the trainer like
its other listeners; the engine never imports this module. The listener only classifies the
event, applies the rate limit and puts it on a bounded queue (never blocks); one background
thread delivers. A slow, failing or hanging receiver therefore never slows or stops training:
each delivery has a timeout, a full queue drops the newest message (counted), and every failure
is written to events.jsonl as a `notify_failed` event.

Safety: the command is an argv list from the preset, run without a shell; nothing in it is built
from run names, messages or any other event text, which travel only as JSON data on stdin.
Standard library only (subprocess, urllib).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from gantui.engine import events as ev
from gantui.engine.jsonl import jsonable

QUEUE_SIZE = 64
ALWAYS = ("stop", "recover", "end", "crash")   # never rate-limited: rare (recover: max_attempts) and decisive
OWN_KINDS = ("notify_failed",)     # our own failure events are never sent (no loops)


def category(event: ev.Event) -> str | None:
    """Which `notify.on` entry an event belongs to, or None when it is not notified."""
    kind, d = event.kind, event.data
    if kind == "alert":
        return "alert" if d.get("state") == "raised" else None
    if kind == "stopped":
        return "stop"
    if kind in ("rolled_back", "recover_failed"):
        return "recover"
    if kind in ("finished", "diverged"):
        return "end"
    if kind == "error" and not d.get("user_error"):
        return "crash"
    return None


def text_of(run: str, event: ev.Event) -> str:
    """One line a chat tool shows."""
    d, step = event.data, event.step
    if event.kind == "alert":
        return f"gantui {run}: alert {d.get('rule')} at step {step}: {d.get('message')} Fix: {d.get('fix')}"
    if event.kind == "stopped":
        why = d.get("rule") or d.get("reason") or "user"
        return f"gantui {run}: stopped at step {step} ({why})" + (f": {d['message']}" if d.get("message") else "")
    if event.kind == "rolled_back":
        return (f"gantui {run}: rolled back from step {d.get('from_step')} to {d.get('to_step')} after "
                f"{d.get('rule')}; fix applied: {d.get('fix') or 'none'} (attempt {d.get('attempt')} of "
                f"{d.get('max_attempts')})")
    if event.kind == "recover_failed":
        return f"gantui {run}: recovery gave up at step {step} ({d.get('rule')}): {d.get('reason')}"
    if event.kind == "finished":
        return f"gantui {run}: finished, {d.get('total_steps', step)} steps"
    if event.kind == "diverged":
        return f"gantui {run}: diverged at step {step} (NaN/Inf); last good checkpoint: {d.get('last_good_checkpoint')}"
    if event.kind == "error":
        return f"gantui {run}: crashed at step {step}: {d.get('message')}"
    return f"gantui {run}: {event.kind} at step {step}"


def payload(run: str, run_dir: str, event: ev.Event, suppressed: int = 0) -> dict[str, Any]:
    body = {"text": text_of(run, event), "run": run, "run_dir": run_dir, "category": category(event),
            **event.record()}
    if suppressed:
        body["suppressed"] = suppressed   # messages the rate limit held back since the last one
    return jsonable(body)


class Notifier:
    """A trainer listener. `log(kind, **data)` records a failure (an events.jsonl writer)."""

    def __init__(self, cfg, run: str, run_dir: Path | str, log: Callable[..., None] | None = None, *,
                 queue_size: int = QUEUE_SIZE, clock: Callable[[], float] = time.monotonic,
                 webhook: str | None = None) -> None:
        self.command = list(cfg.command)
        self.webhook = cfg.webhook if webhook is None else webhook
        self.on = set(cfg.on)
        self.min_interval_s = float(cfg.min_interval_s)
        self.timeout_s = float(cfg.timeout_s)
        self.run, self.run_dir = run, str(run_dir)
        self.log = log or (lambda kind, **data: None)
        self.clock = clock
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._last_sent: float | None = None
        self.suppressed = 0      # held back by the rate limit, not yet reported
        self.dropped = 0         # the queue was full
        self.sent = 0            # delivered to every receiver without error
        self.failed = 0
        self._thread = threading.Thread(target=self._deliver_loop, name="gantui-notify", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return bool(self.command or self.webhook)

    # --- the training thread: classify, rate-limit, enqueue; never blocks ---------------------
    def __call__(self, msg: ev.Message) -> None:
        if not isinstance(msg, ev.Event) or msg.kind in OWN_KINDS:
            return
        cat = category(msg)
        if cat is None or cat not in self.on:
            return
        now = self.clock()
        if (cat not in ALWAYS and self._last_sent is not None
                and now - self._last_sent < self.min_interval_s):
            self.suppressed += 1
            return
        self._last_sent = now
        body = payload(self.run, self.run_dir, msg, self.suppressed)
        self.suppressed = 0
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                self._failure("queue", f"the receivers are too slow: {self.dropped} message(s) dropped", body)

    # --- the delivery thread -------------------------------------------------------------------------
    def _deliver_loop(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                ok = True
                if self.command:
                    ok &= self._run_command(body)
                if self.webhook:
                    ok &= self._post(body)
                if ok:
                    self.sent += 1
            finally:
                self._queue.task_done()

    def _run_command(self, body: dict) -> bool:
        data = json.dumps(body).encode()
        try:
            done = subprocess.run(self.command, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=self.timeout_s, shell=False, close_fds=True, check=False)
        except subprocess.TimeoutExpired:
            return self._failure("command", f"no exit within notify.timeout_s = {self.timeout_s:g} s (killed)", body)
        except OSError as e:
            return self._failure("command", f"cannot run {self.command[0]!r}: {e.strerror or e}", body)
        if done.returncode != 0:
            return self._failure("command", f"exit code {done.returncode}", body)
        return True

    def _post(self, body: dict) -> bool:
        request = urllib.request.Request(self.webhook, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "gantui"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read(65536)
        except urllib.error.HTTPError as e:
            return self._failure("webhook", f"HTTP {e.code} {e.reason}", body)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            return self._failure("webhook", f"{type(e).__name__}: {reason}", body)
        return True

    def _failure(self, receiver: str, error: str, body: dict) -> bool:
        self.failed += 1
        try:
            self.log("notify_failed", receiver=receiver, error=error, event=body.get("kind"),
                     event_step=body.get("step"))
        except Exception:  # noqa: BLE001 - a failure report must never take the thread down
            pass
        return False

    # --- the shell, at the end of the run -------------------------------------------------------------
    def close(self, wait_s: float | None = None) -> bool:
        """Let the queued messages (the run's `end` among them) go out, waiting at most `wait_s`
        (default: one timeout per receiver, at most 10 s each, + 1 s); True when all went. A receiver
        still hanging then is left to its daemon thread: the process exits without it."""
        per = min(self.timeout_s, 10.0)
        budget = (per * (bool(self.command) + bool(self.webhook)) + 1.0) if wait_s is None else wait_s
        deadline = time.monotonic() + budget
        try:
            self._queue.put(None, timeout=max(0.0, budget))
        except queue.Full:
            return False
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(min(0.1, max(0.0, deadline - time.monotonic())))
        return not self._thread.is_alive()


def webhook_url(cfg) -> str:
    """notify.webhook, or the URL in the environment variable notify.webhook_env (a chat webhook's
    URL is its secret: that way it is in no config.toml or checkpoint). UserError when unusable."""
    name = cfg.notify.webhook_env
    if not name or cfg.notify.webhook:
        return cfg.notify.webhook
    import os

    from gantui.config import http_url
    from gantui.errors import UserError

    url = os.environ.get(name, "")
    if not url:
        raise UserError(f"[notify] webhook_env: the environment variable {name} is not set (export it, "
                        f"or set webhook_env = \"\")")
    if http_url(url):
        raise UserError(f"[notify] webhook_env: ${name} is not an http:// or https:// URL")
    return url


def for_trainer(cfg, trainer) -> Notifier | None:
    """The notifier of a run with [notify] command or webhook set, added to `trainer`'s listeners;
    None otherwise. Failures go to the run's events.jsonl (also after the trainer closed it)."""
    url = webhook_url(cfg)
    if not (cfg.notify.command or url):
        return None
    run_dir = Path(trainer.rundir.path)

    def log(kind: str, **data) -> None:
        if trainer.rundir.is_open:
            trainer.record_event(kind, **data)
        else:  # the run has ended and closed its files: append the line ourselves (we still own the run)
            from gantui.engine.jsonl import Appender

            out = Appender(run_dir / "events.jsonl")
            try:
                out.append({"step": trainer.step, "kind": kind, **data})
            finally:
                out.close()

    notifier = Notifier(cfg.notify, cfg.run.name, run_dir, log, webhook=url)
    trainer.add_listener(notifier)
    return notifier

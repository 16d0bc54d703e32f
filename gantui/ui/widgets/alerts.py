"""The alerts pane: the active alerts, then the event log, newest first, all of it scrollable.

Every line starts with a glyph and a word (CRITICAL, WARNING, the event's name), so nothing
depends on colour. Entries wrap to the pane's width instead of being cut: an alert shows its
message, its evidence, its suggested fix ([f] when the `f` key applies it) and "(applied)"
once it was. The log keeps the newest LOG_CAP events (events.jsonl keeps them all).

Keys while the pane has focus (it has it from the start; Tab moves focus): ↑/↓ or k/j one
entry, PgUp/PgDn a page, Home the newest, End the oldest; `a` (anywhere) shows alerts only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.binding import Binding

from gantui.engine import events as ev
from gantui.ui.messages import AlertsChanged, EventsArrived
from gantui.ui.text import SEVERITY_GLYPHS, alert_entry, event_entry, fit_title, wrap
from gantui.ui.widgets.base import Pane

LOG_CAP = 5000          # events kept on screen; an event is a few hundred bytes: ~1-2 MB at most
WRAP_CACHE = 1000       # wrapped entries kept for redraws (only what was on screen gets wrapped)


@dataclass
class ActiveAlert:
    rule: str
    step: int
    data: dict[str, Any]
    applied: bool = False

    @property
    def action(self) -> dict[str, Any] | None:
        """The alert's live fix in its current shape (gantui.diagnostics.actions), or None."""
        from gantui.diagnostics.actions import normalise

        return normalise(self.data.get("action"))


@dataclass
class AlertsModel:
    """Plain state: what is raised now, and every event since the start (the newest LOG_CAP)."""

    active: dict[str, ActiveAlert] = field(default_factory=dict)
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_CAP))
    applied: set = field(default_factory=set)       # (rule, step) of raises whose fix was applied
    dropped: int = 0                                # events that fell off the front of the log
    total: int = 0

    def add(self, event: ev.Event) -> None:
        if event.kind in ("started", "rolled_back"):
            # a new engine life (a resume, a rollback) starts its rules afresh: nothing raised before is active
            self.active.clear()
        if event.kind == "alert":
            rule = str(event.data.get("rule", "?"))
            if event.data.get("state", "raised") == "cleared":
                self.active.pop(rule, None)
            else:
                self.active[rule] = ActiveAlert(rule, event.step, dict(event.data))
        if len(self.log) == self.log.maxlen:
            self.dropped += 1
        self.log.append(event)
        self.total += 1

    def fixable(self) -> ActiveAlert | None:
        """The newest raised alert whose fix can be applied live and has not been yet."""
        candidates = [a for a in self.active.values() if a.action and not a.applied]
        return max(candidates, key=lambda a: a.step) if candidates else None

    def mark_applied(self, alert: ActiveAlert) -> None:
        alert.applied = True
        self.applied.add((alert.rule, alert.step))

    def is_active(self, event: ev.Event) -> bool:
        """This raise is the one currently active for its rule."""
        a = self.active.get(str(event.data.get("rule", "?")))
        return a is not None and a.step == event.step and event.data.get("state", "raised") != "cleared"

    def is_applied(self, event: ev.Event) -> bool:
        return (str(event.data.get("rule", "?")), event.step) in self.applied


def is_alert(event: ev.Event) -> bool:
    return event.kind in ("alert", "diverged", "error", "rolled_back", "recover_failed")


class AlertsPane(Pane):
    can_focus = True
    BINDINGS = [
        Binding("up,k", "scroll_by(-1)", "newer", show=False),
        Binding("down,j", "scroll_by(1)", "older", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "scroll_to(0)", "newest", show=False),
        Binding("end", "scroll_to_end", "oldest", show=False),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.model = AlertsModel()
        self.alerts_only = False
        self.top = 0                  # index of the entry on the top row
        self._seen = 0                   # model.total when last drawn: new entries shift the view
        self._shown = 1                  # entries on screen at the last draw (a page)
        self._cache: dict[tuple, list[Text]] = {}
        self._glyphs = SEVERITY_GLYPHS
        self.border_title = "Alerts & events"

    # --- the run's messages ----------------------------------------------------------------------
    def on_events_arrived(self, message: EventsArrived) -> None:
        before = self._active_summary()
        for e in message.events:
            self.model.add(e)
        self.update_title()
        self.refresh()
        after = self._active_summary()
        if after != before:  # the status line and the gauge show what is active: tell them
            self.post_message(AlertsChanged(after))

    def _active_summary(self) -> dict[str, str]:
        return {rule: str(a.data.get("severity")) for rule, a in self.model.active.items()}

    # --- `f`: the newest active alert's live fix ---------------------------------------------------
    def fixable(self) -> ActiveAlert | None:
        return self.model.fixable()

    def mark_applied(self, alert: ActiveAlert) -> None:
        self.model.mark_applied(alert)
        self.refresh()

    # --- content -------------------------------------------------------------------------------
    def entries(self) -> list[tuple[tuple, Any]]:
        """(cache key, thing to render), top to bottom: active alerts, then events newest first."""
        out: list[tuple[tuple, Any]] = []
        fix_target = self.model.fixable()
        for a in sorted(self.model.active.values(), key=lambda a: -a.step):
            out.append((("active", a.rule, a.step, a.applied, a is fix_target), a))
        if not self.model.active:
            out.append((("ok",), None))
        for e in reversed(self.model.log):
            if self.alerts_only and not is_alert(e):
                continue
            live = e.kind == "alert" and self.model.is_active(e)
            out.append((("event", id(e), self.model.is_applied(e), live), e))
        return out

    def _lines(self, key: tuple, item: Any, width: int) -> list[Text]:
        ck = key + (width,)
        lines = self._cache.get(ck)
        if lines is None:
            if key[0] == "ok":
                lines = [Text().append("✔ OK no active alerts", "green")]
            elif key[0] == "active":
                lines = alert_entry(item.data, item.step, self._glyphs, width, fix_key=key[4],
                                    applied=item.applied, active=True)
            elif item.kind == "alert" and item.data.get("state", "raised") != "cleared":
                if key[3]:   # still active: shown in full above, one line here
                    lines = wrap(Text.assemble((f"{self._glyphs.get(str(item.data.get('severity')), '▲')} ", "bold"),
                                               f"raised {item.data.get('rule', 'alert')} (active, above)",
                                               (f" · step {item.step}", "dim")), width)
                else:
                    lines = alert_entry(item.data, item.step, self._glyphs, width, applied=key[2])
            else:
                lines = event_entry(item, width)
            if len(self._cache) > WRAP_CACHE:
                self._cache.clear()
            self._cache[ck] = lines
        return lines

    # --- scrolling --------------------------------------------------------------------------------
    def _follow_new(self) -> None:
        """Newest first: entries that arrived push the view down unless it shows the newest."""
        new = self.model.total - self._seen
        self._seen = self.model.total
        if new > 0 and self.top > 0:
            self.top += new

    def _clamp(self, n: int) -> None:
        self.top = max(0, min(self.top, n - 1))

    def action_scroll_by(self, delta: int) -> None:
        self._follow_new()
        self.top += delta
        self._clamp(len(self.entries()))
        self.refresh()
        self.update_title()

    def action_page(self, direction: int) -> None:
        self.action_scroll_by(direction * max(1, self._shown - 1))

    def action_scroll_to(self, where: int) -> None:
        self._follow_new()
        self.top = where
        self._clamp(len(self.entries()))
        self.refresh()
        self.update_title()

    def action_scroll_to_end(self) -> None:
        self.action_scroll_to(len(self.entries()) - 1)

    def toggle_alerts_only(self) -> None:
        self.alerts_only = not self.alerts_only
        self.top = 0
        self.refresh()
        self.update_title()

    # --- drawing ------------------------------------------------------------------------------------
    def update_title(self) -> None:
        self._follow_new()  # the events that just arrived move the view: say where it is now
        self._clamp(len(self.entries()))
        n = len(self.model.active)
        shown = self.model.log if not self.alerts_only else [e for e in self.model.log if is_alert(e)]
        count = len(shown)
        only = "alerts only · " if self.alerts_only else ""
        where = f" · scrolled {self.top} (Home: top)" if self.top else ""
        events = f"{count} event{'s' if count != 1 else ''}"
        variants = [
            f"Alerts · {n} active · {only}{events}{where}",
            f"Alerts · {n} active · {only}{events}" + (f" · ↓{self.top}" if self.top else ""),
            f"Alerts {n} · {count} ev" + (f" ↓{self.top}" if self.top else ""),
            f"Alerts {n}",
        ]
        self.border_title = fit_title(variants, max(4, self.size.width - 4))

    def draw(self) -> Text:
        h, w = max(1, self.size.height), max(20, self.size.width)
        self._follow_new()
        entries = self.entries()
        self._clamp(len(entries))
        lines: list[Text] = []
        shown = 0
        for key, item in entries[self.top:]:
            if len(lines) >= h:
                break
            lines.extend(self._lines(key, item, w))
            shown += 1
        self._shown = max(1, shown)
        out = Text(no_wrap=True, overflow="crop")
        for i, line in enumerate(lines[:h]):
            if i:
                out.append("\n")
            out.append_text(line)
        return out

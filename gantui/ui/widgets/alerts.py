"""The alerts pane: active diagnostics alerts first, then the recent engine events.

Every line starts with a glyph and a word (CRITICAL, WARNING, INFO, or the event's name),
so nothing depends on colour. An active alert whose suggested fix is a rate change shows
[f]: the `f` key applies it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from gantui.ui.widgets.base import Pane

from gantui.engine import events as ev
from gantui.ui.format import alert_line, event_line, glyphs


@dataclass
class ActiveAlert:
    rule: str
    step: int
    data: dict[str, Any]
    applied: bool = False

    @property
    def action(self) -> dict[str, Any] | None:
        a = self.data.get("action")
        if isinstance(a, dict) and a.get("which") in ("g", "d", "both") and a.get("factor"):
            return a
        return None


@dataclass
class AlertsModel:
    """Plain state: what is raised now and what happened lately (bounded)."""

    active: dict[str, ActiveAlert] = field(default_factory=dict)
    recent: deque = field(default_factory=lambda: deque(maxlen=200))

    def add(self, event: ev.Event) -> None:
        if event.kind == "started":
            # a new engine life (a resume) starts its rules afresh: nothing raised before is active
            self.active.clear()
        if event.kind == "alert":
            rule = str(event.data.get("rule", "?"))
            if event.data.get("state", "raised") == "cleared":
                self.active.pop(rule, None)
            else:
                self.active[rule] = ActiveAlert(rule, event.step, dict(event.data))
        self.recent.appendleft(event)

    def fixable(self) -> ActiveAlert | None:
        """The newest raised alert whose fix is a rate change not yet applied."""
        candidates = [a for a in self.active.values() if a.action and not a.applied]
        return max(candidates, key=lambda a: a.step) if candidates else None


class AlertsPane(Pane):
    def __init__(self, model: AlertsModel, **kw) -> None:
        super().__init__(**kw)
        self.model = model
        self.border_title = "Alerts & events"
        self._glyphs = glyphs()

    def update_title(self) -> None:
        n = len(self.model.active)
        self.border_title = f"Alerts · {n} active" if n else "Alerts & events"

    def draw(self) -> Text:
        h, w = max(1, self.size.height), max(20, self.size.width)
        lines: list[Text] = []
        active = sorted(self.model.active.values(), key=lambda a: -a.step)
        fix_target = self.model.fixable()
        # a long message wraps, but several alerts must still fit: share the height
        per_alert = max(2, min(5, h // max(1, len(active))))
        for a in active:
            rows = alert_line(a.data, a.step, self._glyphs, fix_key=a is fix_target, width=w,
                              max_lines=per_alert)
            if a.applied:
                rows[-1].append(" (applied)", "dim")
            lines.extend(rows)
        if not active:
            lines.append(Text().append("✔ OK no active alerts", "green"))
        for e in self.model.recent:
            if len(lines) >= h:
                break
            if e.kind == "alert" and e.data.get("state", "raised") != "cleared":
                continue  # raised alerts are listed above while active
            lines.append(event_line(e))
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, line in enumerate(lines[:h]):
            if i:
                out.append("\n")
            out.append_text(line)
        return out

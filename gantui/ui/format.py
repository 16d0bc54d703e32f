"""Pure text helpers for the monitor: the status line, alert lines, numbers. No textual.

Kept apart from the widgets so the layout decisions (what to drop at 80 columns, how an
alert reads without colour) are plain functions with plain tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from gantui.engine import events as ev
from gantui.render import format_duration, format_lr

STATE_STYLES = {
    ev.RUNNING: "bold green",
    ev.PAUSED: "bold black on yellow",
    ev.SAVING: "bold cyan",
    ev.DIVERGED: "bold white on red",
    ev.FINISHED: "bold blue",
    ev.STOPPED: "bold",
    ev.CRASHED: "bold white on red",
    ev.STARTING: "dim",
}

# Used until gantui.diagnostics exports GLYPHS; words always accompany the glyph, so an
# alert reads the same on a monochrome terminal or under NO_COLOR.
FALLBACK_GLYPHS = {"critical": "✖", "warning": "▲", "info": "●"}
SEVERITY_WORDS = {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"}
SEVERITY_STYLES = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}


def glyphs() -> dict[str, str]:
    """Severity -> glyph, from the diagnostics module when it provides them."""
    try:
        from gantui import diagnostics
    except Exception:  # noqa: BLE001 - the monitor must not die on a half-written module
        return FALLBACK_GLYPHS
    table = getattr(diagnostics, "GLYPHS", None)
    if not isinstance(table, dict):
        return FALLBACK_GLYPHS
    return {**FALLBACK_GLYPHS, **{str(k): str(v) for k, v in table.items()}}


def cleared_glyph() -> str:
    try:
        from gantui import diagnostics
    except Exception:  # noqa: BLE001
        return "✓"
    return str(getattr(diagnostics, "CLEARED_GLYPH", "✓"))


# --- numbers ----------------------------------------------------------------------------------

def fmt_lr(x: float | None) -> str:
    """Scientific notation with one decimal, as the key contract shows: 1.0e-04."""
    return format_lr(x)


def fmt_num(x: float | None, width: int = 7) -> str:
    """A compact number that keeps its width: 0.6931, -12.35, 1.2e+05, nan."""
    if x is None:
        return "--".rjust(width)
    if not math.isfinite(x):
        return str(x).rjust(width)
    a = abs(x)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        s = f"{x:.1e}"
    elif a >= 100:
        s = f"{x:.1f}"
    else:
        s = f"{x:.4f}" if a < 10 else f"{x:.3f}"
    return s.rjust(width)


def fmt_duration(seconds: float | None) -> str:
    return format_duration(seconds)


def fmt_rate(steps_per_s: float | None) -> str:
    if not steps_per_s or not math.isfinite(steps_per_s):
        return "-- it/s"
    if steps_per_s >= 100:
        return f"{steps_per_s:.0f} it/s"
    if steps_per_s >= 1:
        return f"{steps_per_s:.1f} it/s"
    return f"{1 / steps_per_s:.1f} s/it"


# --- the status line ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    text: str
    priority: int          # higher survives longer when the line is too narrow
    style: str = ""


@dataclass
class StatusModel:
    """Everything the status line shows; the app fills it from the bridge."""

    name: str = "gantui"
    device: str = ""
    step: int = 0
    total: int = 0
    steps_per_s: float | None = None
    eta_s: float | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    pending_g: bool = False         # a rate change was sent and is not yet confirmed
    pending_d: bool = False
    n_critic: int | None = None
    state: str = ev.STARTING
    state_note: str = ""            # "PAUSING…", "STOPPING…": the request, before the engine confirms
    last_checkpoint: str = ""
    phase: str = ""                 # "importing torch" while starting


def status_parts(m: StatusModel) -> list[Part]:
    if m.state == ev.STARTING:
        word = m.state_note or f"STARTING… {m.phase}".strip()
    else:
        word = m.state_note or m.state
    total = f"/{m.total}" if m.total else ""
    parts = [
        Part(m.name, 3, "bold"),
        Part(m.device, 2),
        Part(f"step {m.step}{total}", 10, "bold"),
        Part(fmt_rate(m.steps_per_s), 6),
        Part(f"ETA {fmt_duration(m.eta_s)}", 5),
        Part(f"G lr {fmt_lr(m.lr_g)}{'…' if m.pending_g else ''}", 9),
        Part(f"D lr {fmt_lr(m.lr_d)}{'…' if m.pending_d else ''}", 9),
        Part(f"n_critic {m.n_critic}" if m.n_critic else "", 4),
        Part(f"ckpt {m.last_checkpoint}" if m.last_checkpoint else "", 1),
        Part(word, 10, STATE_STYLES.get(m.state, "bold") if not m.state_note else "bold reverse"),
    ]
    return [p for p in parts if p.text]


SEP = " · "


def fit_parts(parts: list[Part], width: int, max_lines: int = 1) -> list[list[Part]]:
    """Lay parts out on at most `max_lines` lines of `width`, in order, dropping the lowest
    priority part (the later one on a tie) until everything fits. The state word and the
    step never go: they are what the contract says the line shows."""
    parts = list(parts)
    while True:
        lines = _wrap(parts, width)
        if len(lines) <= max_lines or len(parts) <= 1:
            return lines[:max_lines]
        lowest = min(range(len(parts)), key=lambda i: (parts[i].priority, -i))
        if parts[lowest].priority >= 10:
            # only essentials left: truncate rather than drop them
            return lines[:max_lines]
        parts.pop(lowest)


def _wrap(parts: list[Part], width: int) -> list[list[Part]]:
    lines: list[list[Part]] = [[]]
    used = 0
    for p in parts:
        need = len(p.text) + (len(SEP) if lines[-1] else 0)
        if lines[-1] and used + need > width:
            lines.append([])
            used = 0
            need = len(p.text)
        lines[-1].append(p)
        used += need
    return lines


def status_text(m: StatusModel, width: int, max_lines: int = 1) -> Text:
    lines = fit_parts(status_parts(m), max(10, width), max_lines)
    out = Text(no_wrap=True, overflow="ellipsis")
    for n, line in enumerate(lines):
        if n:
            out.append("\n")
        for i, p in enumerate(line):
            if i:
                out.append(SEP, "dim")
            out.append(p.text, p.style)
    return out


# --- alerts and events ---------------------------------------------------------------------------

def alert_line(data: dict[str, Any], step: int, glyph_table: dict[str, str] | None = None,
               fix_key: bool = False, width: int | None = None, max_lines: int = 4) -> list[Text]:
    """'▲ WARNING step 1200: D overpowers G (…)' then '  fix [f]: halve D lr', each
    word-wrapped to `width` (indented continuation lines), at most `max_lines` in all."""
    table = glyph_table or FALLBACK_GLYPHS
    severity = str(data.get("severity", "warning"))
    glyph = table.get(severity, "!")
    word = SEVERITY_WORDS.get(severity, severity.upper())
    style = SEVERITY_STYLES.get(severity, "bold")
    head = Text()
    head.append(f"{glyph} {word} ", style)
    head.append(f"step {step}: ", "dim")
    head.append(str(data.get("message") or data.get("rule") or "alert"))
    parts = [head]
    fix = data.get("fix")
    if fix:
        tail = Text("  ")
        tail.append("fix [f]: " if fix_key else "fix: ", "bold" if fix_key else "dim")
        tail.append(str(fix), "italic")
        parts.append(tail)
    if width is None:
        return parts
    wrapped: list[list[Text]] = []
    for part in parts:
        rows = list(part.wrap(_console(), max(10, width - 2), overflow="fold"))
        wrapped.append([row if i == 0 else Text("  ") + row for i, row in enumerate(rows)])
    head_rows, fix_rows = wrapped[0], (wrapped[1] if len(wrapped) > 1 else [])
    if len(head_rows) + len(fix_rows) > max_lines:
        # share the lines: the fix is the actionable part, so it keeps up to half
        n_fix = min(len(fix_rows), max(1, max_lines // 2)) if fix_rows else 0
        n_head = max(1, max_lines - n_fix)
        if len(head_rows) > n_head:
            head_rows = head_rows[:n_head]
            head_rows[-1] = head_rows[-1] + Text("…")
        if len(fix_rows) > n_fix:
            fix_rows = fix_rows[:n_fix]
            fix_rows[-1] = fix_rows[-1] + Text("…")
    return head_rows + fix_rows


_CONSOLE = None


def _console():
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(width=200, color_system=None, force_terminal=False)
    return _CONSOLE


EVENT_GLYPHS = {
    "started": "▶", "paused": "⏸", "resumed": "▶", "lr_changed": "↕", "n_critic_changed": "↕",
    "checkpoint": "■", "diverged": "✖", "finished": "✔", "stopped": "■", "error": "✖", "hangup": "☎",
}


def describe(event: ev.Event) -> str:
    """One short line per engine event (the lead's headless wording where it has one)."""
    d = event.data
    if event.kind == "lr_changed":
        try:
            return f"{str(d.get('which', '?')).upper()} lr {fmt_lr(d.get('old'))} → {fmt_lr(d.get('new'))}"
        except Exception:  # noqa: BLE001
            pass
    if event.kind == "checkpoint":
        path = str(d.get("path", ""))
        return f"checkpoint {path.rsplit('/', 1)[-1]} ({d.get('reason', '')})"
    if event.kind == "started":
        return "started" + (f" (resumed from {d['resumed_from']})" if d.get("resumed_from") else "")
    if event.kind == "alert" and d.get("state") == "cleared":
        return f"alert cleared: {d.get('rule')}"
    try:
        from gantui.headless import describe_event

        text = describe_event(event)
    except Exception:  # noqa: BLE001
        text = None
    return text or event.kind.replace("_", " ")


def event_line(event: ev.Event) -> Text:
    t = Text()
    glyph = EVENT_GLYPHS.get(event.kind, "·")
    if event.kind == "alert" and event.data.get("state") == "cleared":
        glyph = cleared_glyph()
    t.append(f"{glyph} ", "bold")
    t.append(describe(event))
    t.append(f" · step {event.step}", "dim")
    return t


def gauge(ratio: float | None, width: int, limit: float = 5.0) -> Text:
    """|grad D| / |grad G| on a log scale from 1/(2*limit) to 2*limit, with the overpowering
    lines at 1/limit and limit drawn as '┃'. Outside them the dot turns into a word, so the
    warning does not depend on colour."""
    width = max(11, width)
    span = math.log(2 * limit)
    cells = ["─"] * width

    def col(v: float) -> int:
        x = (math.log(v) + span) / (2 * span)
        return min(width - 1, max(0, int(round(x * (width - 1)))))

    cells[col(1 / limit)] = "┃"
    cells[col(limit)] = "┃"
    cells[col(1.0)] = "┼"
    t = Text(no_wrap=True)
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        t.append("".join(cells), "dim")
        return t
    c = col(ratio)
    over = ratio >= limit or ratio <= 1 / limit
    cells[c] = "●"
    line = "".join(cells)
    t.append(line, "dim")
    for i, ch in enumerate(line):          # a handful of spans, not one append per cell
        if ch == "┃":
            t.stylize("bold yellow", i, i + 1)
    t.stylize("bold red" if over else "bold green", c, c + 1)
    return t


def short_path(path: str, keep: int = 2) -> str:
    parts = str(path).rstrip("/").split("/")
    return "/".join(parts[-keep:])


# --- charts ------------------------------------------------------------------------------------

BLOCKS = " ▁▂▃▄▅▆▇█"


def resample(values, width: int) -> list[float]:
    """At most `width` points; each bucket keeps whichever of its min or max lies farther
    from its mean (as render.sparkline does), so a spike survives; NaN if it held one."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n <= width or width < 1:
        return vals
    out = []
    for i in range(width):
        chunk = vals[i * n // width:(i + 1) * n // width]
        finite = [v for v in chunk if math.isfinite(v)]
        if len(finite) < len(chunk) or not finite:
            out.append(math.nan)
            continue
        mean = sum(finite) / len(finite)
        lo, hi = min(finite), max(finite)
        out.append(hi if hi - mean >= mean - lo else lo)
    return out


def column_chart(values, width: int, rows: int, lo: float | None = None,
                 hi: float | None = None) -> list[str]:
    """`rows` lines of `width` cells: a column per point in 1/8-cell steps, newest at the
    right, padded on the left. A non-finite point is a column of '!'."""
    pts = resample(values, width)
    finite = [v for v in pts if math.isfinite(v)]
    lines = [[" "] * width for _ in range(rows)]
    if not pts or rows < 1:
        return ["".join(line) for line in lines]
    lo = min(finite) if lo is None and finite else (0.0 if lo is None else lo)
    hi = max(finite) if hi is None and finite else (1.0 if hi is None else hi)
    span = hi - lo
    offset = width - len(pts)
    for i, v in enumerate(pts):
        x = offset + i
        if not math.isfinite(v):
            for r in range(rows):
                lines[r][x] = "!"
            continue
        eighths = rows * 8 * (v - lo) / span if span > 0 else rows * 4
        eighths = max(1, min(rows * 8, int(round(eighths))))  # the minimum stays visible
        for r in range(rows):
            below = (rows - 1 - r) * 8
            lines[r][x] = BLOCKS[max(0, min(8, eighths - below))]
    return ["".join(line) for line in lines]

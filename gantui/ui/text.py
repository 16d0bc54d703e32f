"""The monitor's words as text: the status line, alert and event lines, numbers, health verdicts,
the exit summary. No textual. (Charts are gantui.ui.charts; pictures and sparklines gantui.render.)

Kept apart from the widgets so the layout decisions (what to drop at 80 columns, how an
alert reads without colour) are plain functions with plain tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from gantui.diagnostics import CLEARED_GLYPH, GLYPHS
from gantui.engine import events as ev
from gantui.humanize import format_duration, format_lr

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

# Words always accompany the glyph, so an alert reads the same on a monochrome terminal or under
# NO_COLOR. The alert glyphs are the diagnostics' own; "info" is the monitor's (notes, not alerts).
SEVERITY_GLYPHS = {**GLYPHS, "info": "●"}
SEVERITY_WORDS = {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"}
SEVERITY_STYLES = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}


# --- numbers ----------------------------------------------------------------------------------

def fmt_num(x: float | None, width: int = 7) -> str:
    """A compact number that keeps its width: 0.6931, -12.35, 1.2e+05, nan."""
    if x is None:
        return "--".rjust(width)
    if not math.isfinite(x):
        return str(x).rjust(width)
    a = abs(x)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        # '-3.5e-4', not '-3.5e-04': one cell shorter, so a column of these keeps a space between
        s = f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e+")
        if len(s) >= width:
            s = f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e+")
    elif a >= 100:
        s = f"{x:.1f}"
    else:
        s = f"{x:.4f}" if a < 10 else f"{x:.3f}"
    return s.rjust(width)


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
    short: str = ""        # a shorter form, taken before any part is dropped


@dataclass
class StatusModel:
    """Everything the status line shows; the status line fills it from the run's messages."""

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
    alerts: int = 0                 # active alerts (counted here too: the pane may not fit)
    alert_severity: str = "warning"  # of the most severe active alert
    saved_at: float | None = None   # time.monotonic() of the last manual (`s`) checkpoint


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
        Part(f"ETA {format_duration(m.eta_s)}", 5),
        Part(f"G lr {format_lr(m.lr_g)}{'…' if m.pending_g else ''}", 9),
        Part(f"D lr {format_lr(m.lr_d)}{'…' if m.pending_d else ''}", 9),
        Part(f"n_critic {m.n_critic}" if m.n_critic else "", 4),
        Part(f"saved ckpt {m.last_checkpoint}", 9, "bold") if _just_saved(m) else
        Part(f"ckpt {m.last_checkpoint}" if m.last_checkpoint else "", 1),
        Part(alert_count(m.alerts, m.alert_severity), 10, SEVERITY_STYLES.get(m.alert_severity, "bold"),
             short=alert_count(m.alerts, m.alert_severity, short=True)),
        Part(word, 10, STATE_STYLES.get(m.state, "bold") if not m.state_note else "bold reverse"),
    ]
    return [p for p in parts if p.text]


SAVED_SHOW_S = 20.0   # a manual checkpoint stays on the status line (over ETA and rates) this long


def _just_saved(m: StatusModel) -> bool:
    import time

    return bool(m.last_checkpoint) and m.saved_at is not None and time.monotonic() - m.saved_at < SAVED_SHOW_S


def alert_count(n: int, severity: str = "warning", short: bool = False) -> str:
    """'▲ 2 alerts' ('▲2' when short; never colour alone); empty when none is active."""
    if n <= 0:
        return ""
    glyph = SEVERITY_GLYPHS.get(severity, "▲")
    return f"{glyph}{n}" if short else f"{glyph} {n} alert{'s' if n != 1 else ''}"


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
        shortable = [i for i, p in enumerate(parts) if p.short]
        if shortable:
            i = min(shortable, key=lambda i: (parts[i].priority, -i))
            parts[i] = Part(parts[i].short, parts[i].priority, parts[i].style)
            continue
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

_CONSOLE = None


def _console():
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(width=200, color_system=None, force_terminal=False)
    return _CONSOLE


def wrap(text: Text, width: int, indent: int = 2) -> list[Text]:
    """Word-wrap to `width` cells, continuation lines indented by `indent`. A word is cut
    only when it alone is wider than a line (then it folds)."""
    width = max(10, width)
    rows = list(text.wrap(_console(), width, overflow="fold"))
    if len(rows) <= 1:
        return rows or [Text()]
    first = rows[0]
    start = len(first.plain)
    plain = text.plain
    while start < len(plain) and plain[start] in " \n":
        start += 1
    out = [first]
    for row in text[start:].wrap(_console(), width - indent, overflow="fold"):
        out.append(Text(" " * indent) + row)
    return out


def _fmt_evidence(evidence: Any) -> str:
    if not isinstance(evidence, dict) or not evidence:
        return ""
    parts = []
    for k, v in evidence.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        parts.append(f"{k} {v}")
    return " · ".join(parts)


def alert_entry(data: dict[str, Any], step: int, glyph_table: dict[str, str] | None, width: int,
                fix_key: bool = False, applied: bool = False, active: bool = False) -> list[Text]:
    """An alert in full, wrapped to `width`: '▲ WARNING d_overpowering · step 1200: message',
    then its evidence and its fix (with [f] when the key applies it, and "(applied)")."""
    table = glyph_table or SEVERITY_GLYPHS
    severity = str(data.get("severity", "warning"))
    style = SEVERITY_STYLES.get(severity, "bold")
    head = Text()
    head.append(f"{table.get(severity, '!')} {SEVERITY_WORDS.get(severity, severity.upper())}", style)
    head.append(f" {data.get('rule', 'alert')}" + ("" if active else " raised"), "bold" if active else "")
    head.append(f" · step {step}: ", "dim")
    head.append(str(data.get("message") or ""))
    lines = wrap(head, width)
    evidence = _fmt_evidence(data.get("evidence"))
    if evidence:
        lines += wrap(Text("  evidence: ", "dim") + Text(evidence), width, indent=4)
    fix = data.get("fix")
    if fix:
        t = Text("  ")
        t.append("fix [f]: " if fix_key else "fix: ", "bold" if fix_key else "dim")
        t.append(str(fix), "italic")
        if applied:
            t.append(" (applied)", "bold")
        lines += wrap(t, width, indent=4)
    return lines


def event_entry(event: ev.Event, width: int) -> list[Text]:
    return wrap(event_line(event), width)


def fit_title(variants: list[str], width: int) -> str:
    """The first variant that fits `width` cells; the last one otherwise (kept short by design)."""
    for v in variants:
        if len(v) <= width:
            return v
    return variants[-1]


EVENT_GLYPHS = {
    "started": "▶", "paused": "⏸", "resumed": "▶", "lr_changed": "↕", "n_critic_changed": "↕",
    "checkpoint": "■", "diverged": "✖", "finished": "✔", "stopped": "■", "error": "✖", "hangup": "☎",
    "rolled_back": "↶", "recover_failed": "✖", "notify_failed": "☎",
}


def describe(event: ev.Event) -> str:
    """One short line per engine event (the lead's headless wording where it has one)."""
    d = event.data
    if event.kind == "lr_changed":
        try:
            return f"{str(d.get('which', '?')).upper()} lr {format_lr(d.get('old'))} → {format_lr(d.get('new'))}"
        except Exception:  # noqa: BLE001
            pass
    if event.kind == "checkpoint":
        path = str(d.get("path", ""))
        return f"checkpoint {path.rsplit('/', 1)[-1]} ({d.get('reason', '')})"
    if event.kind == "started":
        return "started" + (f" (resumed from {d['resumed_from']})" if d.get("resumed_from") else "")
    if event.kind == "alert" and d.get("state") == "cleared":
        msg = d.get("message")
        return f"alert cleared: {d.get('rule')}" + (f": {msg}" if msg else "")
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
        glyph = CLEARED_GLYPH
    t.append(f"{glyph} ", "bold")
    t.append(describe(event))
    t.append(f" · step {event.step}", "dim")
    return t


LEVEL_DOT_STYLES = {"ok": "bold green", "watch": "bold yellow", "alert": "bold red", "off": "dim"}


def gauge(ratio: float | None, width: int, limit: float | None = None, level: str = "ok") -> Text:
    """|grad D| / |grad G| on a log scale with 1 ('┼') in the middle and the d_overpowering
    limit ('┃') when the health verdict gives one. The dot takes the verdict's colour; the
    words next to the gauge carry the verdict, so nothing rests on colour alone."""
    width = max(5, width)
    top = max(10.0, 2 * limit) if limit and limit > 0 else 10.0
    span = math.log(top)
    cells = ["─"] * width

    def col(v: float) -> int:
        x = (math.log(v) + span) / (2 * span)
        return min(width - 1, max(0, int(round(x * (width - 1)))))

    cells[col(1.0)] = "┼"
    if limit and limit > 0:
        cells[col(limit)] = "┃"
    t = Text(no_wrap=True)
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        t.append("".join(cells), "dim")
        return t
    c = col(ratio)
    cells[c] = "●"
    line = "".join(cells)
    t.append(line, "dim")
    if "┃" in line:
        i = line.index("┃")
        t.stylize("bold yellow", i, i + 1)
    t.stylize(LEVEL_DOT_STYLES.get(level, "bold"), c, c + 1)
    return t


def short_path(path: str, keep: int = 2) -> str:
    parts = str(path).rstrip("/").split("/")
    return "/".join(parts[-keep:])


# --- health verdicts (one per alert rule, written by the engine into each metrics record) ------

LEVEL_STYLES = {"ok": "green", "watch": "bold yellow", "alert": "bold red", "off": "dim"}
RULE_SHORT = {"d_overpowering": "D/G", "oscillation": "osc", "mode_collapse": "collapse",
              "mode_dropping": "modes", "vanishing_gradients": "vanish", "exploding_gradients": "explode",
              "divergence": "NaN"}


@dataclass(frozen=True)
class HealthEntry:
    rule: str
    level: str          # ok | watch | alert | off
    word: str
    value: float | None = None
    limit: float | None = None
    glyph: str = "·"
    by: dict | None = None   # d_overpowering: the signal that set the verdict, when not the ratio


def health_entries(record: dict[str, Any] | None) -> list[HealthEntry]:
    """The adapter from a metrics record to the health row and the gauge: `record["health"]` as
    the alert rules wrote it (gantui.diagnostics.health: each rule's level, and the d_overpowering
    gauge's ratio and limit). Words and glyphs are the diagnostics' own, so the screen shows
    exactly the rules' verdict; anything malformed shows nothing rather than a guess."""
    from gantui.diagnostics.health import Health

    h = Health.from_record(record.get("health") if isinstance(record, dict) else None)
    if h is None:
        return []
    out = []
    for rule, v in h.verdicts.items():
        value = limit = by = None
        if rule == "d_overpowering":
            value, limit, by = h.gauge.ratio, h.gauge.limit, h.gauge.by
        out.append(HealthEntry(rule, v.level, v.word, value, limit, v.glyph, by))
    return out


def health_lines(entries: list[HealthEntry], width: int, max_lines: int = 2) -> list[Text]:
    """'health ✔ D/G ok  ✔ osc ok  ▲ collapse 0.08' on at most `max_lines` lines: glyph and
    word per rule (never colour alone); entries that do not fit are counted ('+2'), never cut."""
    if not entries:
        return []
    items = []
    rank = {"alert": 0, "watch": 1}                 # what needs a look first: it survives a narrow pane
    for e in sorted(entries, key=lambda e: rank.get(e.level, 2)):
        t = Text(no_wrap=True)
        t.append(e.glyph, LEVEL_STYLES.get(e.level, ""))
        t.append(f" {RULE_SHORT.get(e.rule, e.rule)} ")
        t.append(e.word, LEVEL_STYLES[e.level] if e.level != "ok" else "")
        items.append(t)
    return pack_items(items, width, max_lines, "health ")


def pack_items(items: list[Text], width: int, max_lines: int, lead: str = "") -> list[Text]:
    """Items two spaces apart on at most `max_lines` lines after `lead` (continuation lines
    indented as far); what does not fit is counted ('+N'), no item is ever cut."""
    indent = len(lead)
    rows: list[list[Text]] = [[]]

    def used(row: list[Text]) -> int:
        return indent + sum(t.cell_len for t in row) + 2 * max(0, len(row) - 1)

    placed = 0
    for it in items:
        if indent + it.cell_len > width:
            break                                    # wider than a whole line: counted, not cut
        need = it.cell_len + (2 if rows[-1] else 0)
        if rows[-1] and used(rows[-1]) + need > width:
            if len(rows) == max_lines:
                break
            rows.append([])
        rows[-1].append(it)
        placed += 1
    more = len(items) - placed
    while more and rows[-1] and used(rows[-1]) + len(f"  +{more}") > width:
        rows[-1].pop()
        more += 1
    out = []
    for i, row in enumerate(rows):
        line = Text(lead if i == 0 else " " * indent, "bold" if i == 0 else "", no_wrap=True)
        for j, it in enumerate(row):
            if j:
                line.append("  ")
            line.append_text(it)
        if i == len(rows) - 1 and more:
            tail = f"  +{more}" if row else f"+{more}"
            if line.cell_len + len(tail) > width:
                line = Text(no_wrap=True)             # a pane too narrow even for the lead word
            line.append(tail, "dim")
        out.append(line)
    return out


@dataclass(frozen=True)
class RatioVerdict:
    value: float | None      # |grad D| / |grad G| shown by the gauge
    limit: float | None      # the rule's limit, when known
    level: str               # ok | watch | alert | off
    word: str                # what the screen says next to the gauge ("" = nothing to say)
    glyph: str = "·"
    by: dict | None = None   # the signal that set a watch/alert verdict, when not the ratio


def ratio_gauge_line(v: RatioVerdict, w: int) -> Text:
    """The gauge line. Its marker shows the signal that set the verdict: the gradient ratio
    `|grad D| / |grad G|` against the rule's limit, or, when another signal did (D's loss, the
    D(x) - D(G(z)) gap, D's accuracy), that signal, named, with its limit on the same mark, so an
    OVERPOWERING dot always sits past the limit at the strong-D end."""
    label, limit_text, value, limit = "D/G ratio ", "", v.value, v.limit
    shown = "--" if value is None or not math.isfinite(value) else f"{value:.2g}×"
    if v.by:
        by_value, by_limit, op = float(v.by["value"]), float(v.by["limit"]), str(v.by["op"])
        label, shown = f"{v.by['label']} ", f"{by_value:.2g}"
        scale = limit if limit and limit > 1 else 5.0   # where the limit mark sits on the gauge
        if by_value > 0 and by_limit > 0:   # how far past its limit, strong-D side to the right
            severity = by_limit / by_value if op in ("below", "at most") else by_value / by_limit
            value, limit = severity * scale, scale
        else:
            value, limit = None, scale
        limit_text = f" ┃{'<' if op in ('below', 'at most') else '>'}{by_limit:.3g}"
    elif v.limit:
        limit_text = f" ┃{v.limit:.3g}×"
    shown = shown.rjust(6)
    verdict = Text(no_wrap=True)
    if v.word:
        verdict.append(" ")
        verdict.append(v.glyph + " " + v.word, LEVEL_STYLES.get(v.level, "bold"))
    gw = w - len(label) - len(shown) - 1 - len(limit_text) - verdict.cell_len
    if gw < 9 and limit_text:
        limit_text = ""
        gw = w - len(label) - len(shown) - 1 - verdict.cell_len
    line = Text(no_wrap=True, overflow="crop")
    line.append(label, "bold")
    line.append(shown)
    if gw >= 5:
        line.append(" ")
        line.append_text(gauge(value, gw, limit, v.level))
        line.append(limit_text, "dim")
    line.append_text(verdict)
    return line


def ratio_verdict(entries: list[HealthEntry], ratio: float | None, active_rules) -> RatioVerdict:
    """One source of truth for the gauge: the d_overpowering verdict when the record has one;
    otherwise the alert's state (raised or not). The screen never judges the ratio itself."""
    for e in entries:
        if e.rule == "d_overpowering":
            return RatioVerdict(e.value if e.value is not None else ratio, e.limit, e.level, e.word, e.glyph,
                                e.by if e.level in ("watch", "alert") else None)
    if "d_overpowering" in active_rules:
        from gantui.diagnostics.health import ALERT, glyph, word

        return RatioVerdict(ratio, None, ALERT, word("d_overpowering", ALERT), glyph("d_overpowering", ALERT))
    return RatioVerdict(ratio, None, "off" if ratio is None else "ok", "")


# --- samples ---------------------------------------------------------------------------------

def samples_title(step: int | None, width: int, kind: str = "", generator: str | None = None,
                  position: tuple[int, int] | None = None) -> str:
    """The samples pane's title, the longest variant that fits `width`; the step always shows.
    `position` = (k, n): the k-th of n saved sample files is shown instead of the live grid."""
    gen = f"{generator} G" if generator else ""
    if step is None:
        return fit_title(["Samples" + (f" · {gen}" if gen else ""), "Samples"], width)
    hist_long = f" · history {position[0]}/{position[1]} (l: live)" if position else ""
    hist_short = f" · {position[0]}/{position[1]}" if position else ""
    variants = []
    for h in (hist_long, hist_short):
        for parts in (["Samples", kind, gen], ["Samples", gen], [gen], []):
            head = " · ".join(p for p in parts if p)
            variants.append((head + " · " if head else "") + f"step {step}{h}")
    variants.append(f"step {step}" + (" ◀" if position else ""))
    return fit_title(variants, width)


def system_text(cpu_pct: float | None, rss_bytes: int | None, gpu_bytes: int | None = None) -> str:
    """'cpu 97% · mem 812M · gpu 3.1G' (the parts that are known)."""
    parts = []
    if cpu_pct is not None:
        parts.append(f"cpu {cpu_pct:.0f}%")
    if rss_bytes is not None:
        parts.append(f"mem {fmt_bytes(rss_bytes)}")
    if gpu_bytes is not None:
        parts.append(f"gpu {fmt_bytes(gpu_bytes)}")
    return " · ".join(parts)


def fmt_bytes(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f}G"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f}M"
    return f"{n / 1024:.0f}K"


# --- leaving the monitor -------------------------------------------------------------------------

def _shown_path(path: Any, cwd: str | None = None) -> str:
    import os
    import shlex

    p = str(path)
    try:
        rel = os.path.relpath(p, cwd or os.getcwd())
        if not rel.startswith(".."):
            p = rel
    except ValueError:
        pass
    return shlex.quote(p)


def exit_lines(*, state: str, step: int, total: int, run_dir: Any, checkpoint: Any = None,
               config_path: Any = None, running: bool = False, code: int = 0,
               cwd: str | None = None, data_root: str | None = None) -> list[str]:
    """What the terminal shows after the monitor closes: where the final checkpoint is and
    the command to resume (or to watch, when the run goes on). Plain words, no colour.
    `data_root`: a folder run's images, which `eval` needs named (it never takes a path from a run)."""
    if run_dir is None:
        return []
    rd = _shown_path(run_dir, cwd)
    where = f"step {step}/{total}" if total else f"step {step}"
    if running:
        return [f"gantui: the run goes on in the background ({where}).",
                f"  watch it: gantui watch {rd}   stop it: gantui stop {rd}"]
    ckpt = _shown_path(checkpoint, cwd) if checkpoint else None
    cfg = _shown_path(config_path, cwd) if config_path else None
    del cfg  # the run's own config is what `--resume` alone continues with
    resume = f"  resume: gantui run --resume {rd}"
    if state == ev.FINISHED:
        lines = [f"gantui: finished at {where}; final checkpoint: {ckpt or 'none'}"]
        if ckpt:
            root = f" --data-root {_shown_path(data_root, cwd)}" if data_root else ""
            lines.append(f"  samples: gantui sample {rd} --ansi   judge it: gantui eval {rd}{root}")
        return lines
    if state == ev.DIVERGED:
        if not ckpt:
            return [f"gantui: diverged at {where}; no good checkpoint was written."]
        return [f"gantui: diverged at {where}; last good checkpoint: {ckpt}",
                f"  resume from it (with lower rates): gantui run --resume {ckpt} "
                f"--set optim.g_lr=LR --set optim.d_lr=LR"]
    word = {ev.STOPPED: "interrupted" if code == 130 else "stopped",
            ev.CRASHED: "crashed"}.get(state, "stopped")
    if not ckpt:
        return [f"gantui: {word} at {where}; no checkpoint was written."]
    return [f"gantui: {word} at {where}; checkpoint: {ckpt}", resume]

"""The monitor's keys, once: the `?` help, the key bar and README's "The monitor's keys" table are
all made from KEYS (tests/test_monitor_keys.py compares the README's table with it, so the three
cannot drift apart). Plain data, no textual: the glyph words come from gantui.diagnostics.health.

Each entry: the key as README writes it (markdown), what it does (the same words in the help and
the README), and, for the key bar, a short word and a priority (the last to go at small widths are
the contract keys), separately for `gantui run` and `gantui watch` (None: not on that bar).
"""

from __future__ import annotations

from dataclasses import dataclass

from gantui.diagnostics.health import ALERT, LEVEL_GLYPHS, OFF, OK, WATCH

FIX_KINDS = "a rate, `n_critic`, label smoothing, instance noise or the penalty's weight"


@dataclass(frozen=True)
class Key:
    readme: str                         # "`[` / `]`"
    does: str                           # README's words (markdown backticks allowed)
    bar: str = ""                       # the key bar's word ("" = not on the bar)
    priority: int = 0
    watch_bar: str | None = ""          # the word in `gantui watch` ("" = the same as `bar`; None = absent)

    @property
    def shown(self) -> str:
        """The key as the help screen and the key bar write it: `[` / `]` -> [ ]."""
        return self.readme.replace("`", "").replace(" / ", " ")

    @property
    def words(self) -> str:
        return self.does.replace("`", "")


KEYS: tuple[Key, ...] = (
    Key("space", "pause / resume", "pause", 10),
    Key("`n`", "one step while paused", "step", 8),
    Key("`[` / `]`", "halve / double the G learning rate", "G lr", 10),
    Key("`{` / `}`", "halve / double the D learning rate", "D lr", 10),
    Key("`s`", "save a checkpoint now (the status line shows `saved ckpt @STEP`)", "save", 9),
    Key("`p`", "the full chart (below)", "plot", 6),
    Key("`f`", f"apply the newest alert's fix when the engine can make it live: {FIX_KINDS} "
               "(logged with `reason = \"fix:<rule>\"`)", "fix", 5),
    Key("`,` / `.`", "older / newer saved sample grid (← / → when the samples pane has focus); `l` back to "
                     "live; with nothing older or newer it says so under the grid", "samples", 3),
    Key("↑ ↓ PgUp PgDn Home End, `j` `k`", "scroll the event log (it has the focus; Tab moves it to the samples)"),
    Key("`a`", "event log: alerts only / everything", "alerts", 2),
    Key("`?`", "help", "help", 9),
    Key("`q`", "save a checkpoint and quit (exit 0); in `gantui watch`: leave, the run goes on", "quit", 10,
        watch_bar="leave"),
    Key("`x`", "in `gantui watch`: stop the run (saves a checkpoint), after a y/n question", "", 7,
        watch_bar="stop run"),
    Key("Ctrl-C", "save a checkpoint and quit as interrupted (exit 130)"),
)


def help_rows() -> list[tuple[str, str]]:
    """(key, words) for the `?` screen."""
    return [(k.shown, k.words) for k in KEYS]


def bar_keys(watching: bool = False) -> list[tuple[str, str, int]]:
    """(key, word, priority) for the key bar of `gantui run` or `gantui watch`."""
    out = []
    for k in KEYS:
        word = k.bar if not watching else (None if k.watch_bar is None else k.watch_bar or k.bar)
        if word:
            out.append((k.shown, word, k.priority))
    return out


def readme_table() -> str:
    """README's table, as it must read."""
    lines = ["| key | does |", "|---|---|"]
    lines += [f"| {k.readme} | {k.does} |" for k in KEYS]
    return "\n".join(lines)


def health_glyphs_text() -> str:
    """'✓ ok, △ watch, ▲ alert, · off': the health row's marks, from the diagnostics' own table."""
    return (f"{LEVEL_GLYPHS[OK]} ok, {LEVEL_GLYPHS[WATCH]} watch, {LEVEL_GLYPHS[ALERT]} and the rule's word while raised, "
            f"{LEVEL_GLYPHS[OFF]} off")

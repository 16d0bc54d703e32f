"""The help screen (?): every key and what each pane shows."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from gantui.ui.keys import health_glyphs_text, help_rows

KEY_HELP = help_rows()  # gantui.ui.keys: the same table as the key bar and README

PANES = [
    ("Losses", "D and G, EMA-smoothed (debiased, as TensorBoard does), with min / last / max "
               "of the raw values; W and GP too for WGAN losses."),
    ("Gradients", "|grad D| and |grad G|, their ratio on a log gauge (┼ at 1, ┃ at the "
                  "d_overpowering limit, the verdict in words), D's mean output on real data D(x) "
                  "and on samples D(G(z)) (critic scores for WGAN); then one health verdict per "
                  f"alert rule ({health_glyphs_text()}) and the live quality metrics."),
    ("Alerts", "active alerts in full (evidence, suggested fix, applied or not), then every "
               "event of the run, newest first, wrapped, scrollable (the newest 5,000)."),
    ("Samples", "the fixed-noise batch from the EMA or live generator (the title says which); "
                "for toy data, real vs generated points over D's score (2-D) or overlaid "
                "histograms (1-D). Its bottom line: the training process's CPU and memory."),
    ("Chart (p)", "any series over the whole run or its last N steps; dotted lines where the "
                  "run was paused or a rate changed (every change is also in events.jsonl)."),
    ("ssh drops", "training carries on headless to the end; progress goes to console.log."),
]


def two_columns(rows) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, words in rows:
        table.add_row(str(key), str(words))
    return table


def rules_text() -> Table | None:
    """The diagnostics' alert rules, when that module provides them."""
    try:
        from gantui.diagnostics import RULES
    except Exception:  # noqa: BLE001 - help must open whatever state diagnostics is in
        return None
    return two_columns(dict(RULES).items())


def help_text() -> Table:
    return two_columns(KEY_HELP)


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "close"),
        Binding("question_mark", "app.pop_screen", "close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("gantui keys", "bold"))
            yield Static(help_text())
            yield Static(Text("\nThe panes", "bold"))
            yield Static(two_columns(PANES))
            rules = rules_text()
            if rules is not None:
                yield Static(Text("\nAlert rules", "bold"))
                yield Static(rules)
            yield Static(Text("\n↑ ↓ scroll · esc or ? closes this help", "dim"))

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()  # so the arrow keys scroll

"""The full chart screen (p): one chosen series (or a pair) over the whole run or its last N
steps, with a log-scale toggle, dotted markers where the run was paused or a rate changed,
and the d_overpowering limit on the gradient ratio when the health verdicts carry it.

The list on the left chooses the series (arrows, or the digit in front of it); `l` toggles the
log scale, `z` zooms to the last N steps (again: closer), `0` shows the whole run again, `e`
smooths. Drawing is `gantui.ui.charts.line_chart`, a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from gantui.history import History, ema_debiased
from gantui.ui.charts import Curve, Mark, RefLine, line_chart
from gantui.ui.widgets.metrics import SMOOTHING
from gantui.vocab.metrics import FIGURES


@dataclass(frozen=True)
class Choice:
    """One entry of the series list: the metrics.jsonl keys it plots, with legend words."""

    id: str
    label: str
    keys: tuple[tuple[str, str], ...]
    log: bool = False                # the scale it opens with
    optional: bool = False           # listed only once a record carried one of its keys


BASE_CHOICES = (
    Choice("losses", "losses", (("d_loss", "D loss"), ("g_loss", "G loss"))),
    Choice("grad_d", "|grad D|", (("grad_norm_d", "|grad D|"),)),
    Choice("grad_g", "|grad G|", (("grad_norm_g", "|grad G|"),)),
    Choice("ratio", "|grad D|/|grad G|", (("grad_ratio", "|grad D| / |grad G|"),)),
    Choice("d_out", "D(x), D(G(z))", (("d_real", "D(x)"), ("d_fake", "D(G(z))"))),
    Choice("spread", "sample_std", (("sample_std", "sample_std"), ("sample_pdist", "sample_pdist"))),
    Choice("lr", "learning rates", (("lr_g", "G lr"), ("lr_d", "D lr")), log=True),
    Choice("speed", "steps/s", (("steps_per_s", "steps/s"),)),
)
QUALITY_CHOICES = tuple(Choice(f.key, f.chart, ((f.key, f.legend),), optional=True) for f in FIGURES)
CRITIC_LABELS = {"d_real": "critic(x)", "d_fake": "critic(G(z))", "d_out": "critic scores"}
MARKS = {"paused": ("paused", "┊", "‖"), "lr_changed": ("lr change", "╎", "↕"),
         "config_changed": ("config change (resume)", "╎", "≠"), "rolled_back": ("rollback", "╎", "↶")}
ZOOM_STEPS = (1_000_000, 500_000, 200_000, 100_000, 50_000, 20_000, 10_000, 5_000, 2_000, 1_000,
              500, 200, 100, 50)


def available_choices(history: History, critic: bool = False) -> list[Choice]:
    """The base series always (they fill in as records arrive), the quality metrics once seen."""
    out = []
    for c in BASE_CHOICES + QUALITY_CHOICES:
        if c.optional and not any(k in history for k, _ in c.keys):
            continue
        if critic and c.id in CRITIC_LABELS:
            c = Choice(c.id, CRITIC_LABELS[c.id], tuple((k, CRITIC_LABELS.get(k, w)) for k, w in c.keys), c.log)
        if critic and c.id == "losses":
            c = Choice(c.id, c.label, c.keys + (("wasserstein", "W estimate"), ("gp", "GP")), c.log)
        out.append(c)
    return out


def zoom_levels(span: int) -> list[int | None]:
    """None (the whole run), then the round step counts shorter than the run, longest first."""
    return [None] + [n for n in ZOOM_STEPS if n < span]


@dataclass
class ChartState:
    choice: str = "losses"
    log: dict | None = None          # choice id -> log scale on
    zoom: int | None = None          # last N steps; None = whole run
    smooth: bool = False

    def is_log(self, choice: Choice) -> bool:
        return (self.log or {}).get(choice.id, choice.log)


def chart_text(history: History, choice: Choice, state: ChartState, width: int, height: int,
               color: str = "truecolor", health: Sequence | None = None) -> Text:
    """Title line + `gantui.ui.charts.line_chart` of the chosen keys."""
    present = [(k, w) for k, w in choice.keys if k in history and len(history.series(k))]
    last = history.last_step
    log = state.is_log(choice)
    first = None if state.zoom is None or last is None else max(0, last - state.zoom)
    title = Text(no_wrap=True, overflow="crop")
    title.append(choice.label, "bold")
    where = "whole run" if first is None else f"last {state.zoom:,} steps"
    title.append(f" · {where} · {'log' if log else 'linear'} scale"
                 + (f" · EMA {SMOOTHING}" if state.smooth else ""), "dim")
    if not present:
        title.append("\n")
        title.append("no records of this series yet: it fills in as the run logs", "dim italic")
        return title
    curves = []
    for key, words in present:
        steps, values = history.series(key).window(first)
        if state.smooth:
            values = ema_debiased(values, SMOOTHING)
        curves.append(Curve(words, steps, values))
    marks = [Mark(m.step, *MARKS[m.kind]) for m in history.markers if m.kind in MARKS]
    refs = []
    if choice.id == "ratio" and health:
        limit = next((e.limit for e in health if e.rule == "d_overpowering"), None)
        if isinstance(limit, (int, float)) and limit > 0:
            refs.append(RefLine(float(limit), f"limit {limit:.3g}× (d_overpowering)"))
    x_range = None
    if last is not None:
        x_range = (first if first is not None else min(c.steps[0] for c in curves if len(c.steps)), last)
    body = line_chart(curves, width, height - 1, log=log, marks=marks, refs=refs, color=color,
                      x_range=x_range)
    title.append("\n")
    title.append_text(body)
    return title


class ChartView(Widget):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.text_fn: Callable[[int, int], Text] | None = None

    def render(self) -> Text:
        if self.text_fn is None:
            return Text()
        try:
            return self.text_fn(self.size.width, self.size.height)
        except Exception as e:  # noqa: BLE001 - a plotting bug must not take the monitor down
            return Text(f"cannot draw the chart: {type(e).__name__}: {e}", "red")


def keys_text(state: ChartState, choice: Choice | None, width: int) -> Text:
    from gantui.ui.widgets.status import key_text

    log = state.is_log(choice) if choice else False
    zoom = "all" if state.zoom is None else f"last {state.zoom:,}"
    keys = [("↑↓", "series", 8), ("l", f"log scale: {'on' if log else 'off'}", 10),
            ("z", f"zoom: {zoom}", 9), ("0", "whole run", 5), ("e", f"smooth: {'on' if state.smooth else 'off'}", 4),
            ("p", "back", 10), ("q", "quit", 10)]
    return key_text(width, keys)


class ChartScreen(Screen):
    """Full-screen chart; the app's poll calls `tick()` about once a second while it is open."""

    BINDINGS = [
        Binding("p", "app.pop_screen", "back"), Binding("escape", "app.pop_screen", "back"),
        Binding("l", "toggle_log", "log scale"), Binding("z", "zoom", "zoom in"),
        Binding("0", "whole_run", "whole run"), Binding("e", "toggle_smooth", "smooth"),
    ] + [Binding(str(i), f"pick({i})", show=False) for i in range(1, 10)]

    def __init__(self, history: History, color: str = "truecolor", critic: bool = False,
                 health: Callable[[], Sequence | None] | None = None, state: ChartState | None = None) -> None:
        super().__init__()
        self.history = history
        self.color = color
        self.critic = critic
        self.health = health or (lambda: None)
        self.state = state or ChartState()
        self.choices: list[Choice] = available_choices(history, critic)
        self._list_synced = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="chart-body"):
            yield OptionList(*self._options(), id="series")
            view = ChartView(id="chart")
            view.text_fn = self._text
            yield view
        yield Static(id="chart-keys")

    def _options(self) -> list[Option]:
        return [Option(f"{i + 1 if i < 9 else ' '} {c.label}", id=c.id) for i, c in enumerate(self.choices)]

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.border_title = "series"
        ids = [c.id for c in self.choices]
        ol.highlighted = ids.index(self.state.choice) if self.state.choice in ids else 0
        self._list_synced = True
        ol.focus()
        self._update_keys()

    def current(self) -> Choice | None:
        """The highlighted entry. Read from the list itself: its 'highlighted' message may still be
        queued behind a key that acts on the choice (tmux delivers '2 l' in one read). Not before
        on_mount has set it from the kept state: a new list highlights its first entry, and a
        redraw in between (the app's poll) would reset the remembered choice to it."""
        index = None
        if self._list_synced:
            try:
                index = self.query_one(OptionList).highlighted
            except Exception:  # noqa: BLE001 - already removed
                index = None
        if index is not None and 0 <= index < len(self.choices):
            self.state.choice = self.choices[index].id
            return self.choices[index]
        return next((c for c in self.choices if c.id == self.state.choice), self.choices[0] if self.choices else None)

    def _text(self, width: int, height: int) -> Text:
        choice = self.current()
        if choice is None:
            return Text()
        return chart_text(self.history, choice, self.state, width, height, self.color, self.health())

    def _update_keys(self) -> None:
        for keys in self.query("#chart-keys").results(Static):
            keys.update(keys_text(self.state, self.current(), max(20, self.size.width - 2)))

    def redraw(self) -> None:
        # the app's poll can come before the children are mounted: nothing to redraw yet (their
        # first paint draws the kept choice)
        for view in self.query(ChartView):
            view.refresh()
        self._update_keys()

    def tick(self) -> None:
        """New records arrived: pick up newly present quality metrics, redraw."""
        fresh = available_choices(self.history, self.critic)
        if [c.id for c in fresh] != [c.id for c in self.choices]:
            self.choices = fresh
            ids = [c.id for c in fresh]
            for ol in self.query(OptionList):  # none yet before mount: on_mount fills it from self.choices
                ol.clear_options()
                ol.add_options(self._options())
                ol.highlighted = ids.index(self.state.choice) if self.state.choice in ids else 0
        self.redraw()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.state.choice:
            self.state.choice = event.option.id
            self.redraw()

    def on_resize(self) -> None:
        self._update_keys()

    def action_pick(self, n: int) -> None:
        if 1 <= n <= len(self.choices):
            self.query_one(OptionList).highlighted = n - 1

    def action_toggle_log(self) -> None:
        choice = self.current()
        if choice is None:
            return
        self.state.log = dict(self.state.log or {})
        self.state.log[choice.id] = not self.state.is_log(choice)
        self.redraw()

    def action_zoom(self) -> None:
        last = self.history.last_step or 0
        levels = zoom_levels(last)
        i = levels.index(self.state.zoom) if self.state.zoom in levels else 0
        self.state.zoom = levels[(i + 1) % len(levels)]
        self.redraw()

    def action_whole_run(self) -> None:
        self.state.zoom = None
        self.redraw()

    def action_toggle_smooth(self) -> None:
        self.state.smooth = not self.state.smooth
        self.redraw()

"""The samples pane: the fixed-noise batch as half-block images, or for toy data the real
vs generated points over the discriminator's field (2-D) or overlaid histograms (1-D).

Rendering a grid costs milliseconds, so it happens only when new samples arrive or the
pane changes size; a cached Text is returned otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.text import Text
from textual.binding import Binding

from gantui.engine import events as ev
from gantui.ui.description import RunDescription
from gantui.ui.messages import PhaseChanged, RunInfoArrived, SamplesArrived, SystemSampled
from gantui.ui.text import samples_title
from gantui.ui.widgets.base import Pane


def color_mode(no_color: bool, environ=os.environ) -> str:
    """truecolor where the terminal says so (COLORTERM), else the 256-colour palette
    (tmux and ssh without Tc); none under NO_COLOR."""
    if no_color or "NO_COLOR" in environ:
        return "none"
    if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "truecolor"
    return "256"


def _square_cells(extent, width: int, height: int) -> tuple[int, int]:
    """Cells for a plot of `extent` whose x and y units look the same size: a terminal cell
    is about twice as tall as it is wide. The last line is the legend."""
    if extent is None or height < 4:
        return width, height
    xmin, xmax, ymin, ymax = extent
    ratio = (xmax - xmin) / (ymax - ymin) if ymax > ymin else 1.0
    plot_h = height - 1
    w = int(round(2 * plot_h * ratio))
    if w <= width:
        return max(1, w), height
    return width, max(2, int(round(width / (2 * ratio))) + 1)


def _center(text: Text, width: int, used: int) -> Text:
    pad = (width - used) // 2
    if pad <= 0:
        return text
    out = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(text.split("\n", allow_blank=True)):
        if i:
            out.append("\n")
        out.append(" " * pad)
        out.append_text(line)
    return out


def n_classes_of(samples: ev.Samples) -> int:
    labels = getattr(samples, "labels", None)
    if labels is None or not len(labels):
        return 0
    return int(max(labels)) + 1


def render_samples(samples: ev.Samples, width: int, height: int, color: str,
                   conditional: bool = False, first_class: int = 0) -> tuple[Text, tuple[int, int, int] | None]:
    """One picture of the samples that fits width x height cells, and for a conditional
    model (first class shown, classes shown, classes in all)."""
    from gantui import render  # numpy: imported with the first samples, not before the first frame

    images = samples.images
    if images is None or width < 1 or height < 1:
        return Text(), None
    if getattr(images, "ndim", 0) == 2:                       # toy points (N, dim)
        dim = images.shape[1]
        real = samples.real if samples.real is not None else images[:0]
        if dim == 1:
            return render.histogram_1d(real, images, width, height, color=color), None
        w, h = _square_cells(samples.extent, width, height)
        text = render.density_plot(real, images[:, :2], w, h, extent=samples.extent,
                                   field=samples.field, color=color)
        return _center(text, width, w), None
    n, _, img_h, img_w = images.shape
    k = n_classes_of(samples) if conditional else 0
    if k:
        per_class = max(1, -(-n // k))
        layout = render.fit_class_grid(k, per_class, width, height, img_h, img_w)
        if layout is not None:
            first = max(0, min(first_class, k - layout.classes))
            text = render.class_grid(images, samples.labels, layout, color, first, k)
            used = len(text.plain.split("\n", 1)[0])
            return _center(text, width, used), (first, layout.classes, k)
    cols, rows, cell_w, cell_h = render.fit_grid(n, width, height, img_h, img_w)
    if cols == 0:
        return Text(), None
    grid = render.image_grid(images, cols, rows, cell_w, cell_h, color)
    return _center(grid, width, cols * cell_w + (cols - 1)), None


class SamplesPane(Pane):
    """Rendered once per batch (and per size): a grid has a style per cell, so its strips
    are worth keeping until the next batch arrives.

    Sample history: the engine saves the fixed-noise batch as `<run-dir>/samples/step_N.npz`
    every `log.sample_every` steps. `,` / `.` (or ← / → while this pane has focus) step
    through those files; the title says which one is shown; `l` goes back to the live grid.
    For a conditional model ↑ / ↓ (with focus) scroll the classes when not all fit."""

    can_focus = True
    BINDINGS = [
        Binding("left", "app.sample_history(-1)", "older samples", show=False),
        Binding("right", "app.sample_history(1)", "newer samples", show=False),
        Binding("up", "classes(-1)", "classes", show=False),
        Binding("down", "classes(1)", "classes", show=False),
    ]

    def __init__(self, run: RunDescription, color: str = "truecolor", folder: Path | None = None, **kw) -> None:
        """`folder`: where the run saves its sample files (none: no history to step through)."""
        super().__init__(**kw)
        self.samples: ev.Samples | None = None       # what is drawn
        self.live: ev.Samples | None = None          # the newest from the engine
        self.position: tuple[int, int] | None = None  # (k, n) of the saved file shown; None = live
        self.color = color
        self.folder = folder
        self.placeholder = "starting… importing torch"
        self.generator: str | None = run.generator   # "EMA" / "live"
        self.conditional = run.conditional
        self.first_class = 0
        self.class_view: tuple[int, int, int] | None = None
        self._text_key: tuple | None = None
        self._text: Text | None = None
        self.render_ms = 0.0
        self.border_title = "Samples"

    # --- the run's messages ----------------------------------------------------------------------
    def on_run_info_arrived(self, message: RunInfoArrived) -> None:
        self.placeholder = "waiting for the first samples…"

    def on_phase_changed(self, message: PhaseChanged) -> None:
        self.placeholder = f"starting… {message.phase}"
        self.refresh()

    def on_samples_arrived(self, message: SamplesArrived) -> None:
        self.set_samples(message.samples)

    def on_system_sampled(self, message: SystemSampled) -> None:
        self.show_system(message.text)

    # --- the sample history (`,` `.` `l`) -----------------------------------------------------------
    def browse(self, delta: int) -> None:
        """Step through the saved sample files (older: -1, newer: +1); past the newest: live."""
        from gantui.engine import sample_files

        steps = sample_files.steps(self.folder) if self.folder is not None else []
        if not steps:
            self._answer("no saved samples yet (every log.sample_every steps)")
            return
        shown = self.samples.step if self.samples is not None else None
        if self.position is None:
            # from live: the newest saved file that is older than the live grid
            older = [s for s in steps if shown is None or s < shown] if delta < 0 else []
            if not older:
                if delta < 0:
                    self._answer("no older saved samples")
                return
            target = older[-1]
        else:
            current = self.samples.step
            if delta < 0:
                older = [s for s in steps if s < current]
                if not older:
                    self._answer("this is the oldest saved grid")
                    return
                target = older[-1]
            else:
                newer = [s for s in steps if s > current]
                if not newer or (self.live is not None and newer[0] >= self.live.step):
                    self.show_live()
                    return
                target = newer[0]
        try:
            saved = sample_files.load(sample_files.path_for(self.folder, target))
        except (OSError, ValueError, KeyError) as e:
            self.notify(f"cannot read the samples of step {target}: {e}", timeout=3)
            return
        self.show_saved(saved, (steps.index(target) + 1, len(steps)))

    def back_to_live(self) -> None:
        if self.position is not None:
            self.show_live()

    def _answer(self, text: str) -> None:
        self.notify(text, timeout=3)
        self.say(text)

    def set_samples(self, samples: ev.Samples) -> None:
        """New live samples from the engine (shown unless a saved step is being looked at)."""
        self.live = samples
        if self.position is None:
            self.samples = samples
            self.refresh()
        self.update_title()

    def show_saved(self, samples: ev.Samples, position: tuple[int, int]) -> None:
        self.samples, self.position = samples, position
        self.refresh()
        self.update_title()

    def show_live(self) -> None:
        self.position = None
        if self.live is not None:
            self.samples = self.live
        self.refresh()
        self.update_title()

    _said: str | None = None      # a key's answer showing under the grid
    _system: str = ""             # the machine's figures, shown there otherwise

    def say(self, text: str, seconds: float = 5.0) -> None:
        """A short answer to a key (`,` with nothing older) under the grid, where the eyes are;
        kept for `seconds` (a toast alone was easy to miss), then the machine's figures again."""
        self._said = text
        self.border_subtitle = text
        timer = getattr(self, "_say_timer", None)
        if timer is not None:
            timer.stop()
        self._say_timer = self.set_timer(seconds, self._unsay)

    def _unsay(self) -> None:
        self._said = None
        self.border_subtitle = self._system

    def show_system(self, text: str) -> None:
        """The machine's figures under the grid; they wait while a key's answer is showing (a
        refresh of these once wiped the answer within milliseconds of the key)."""
        self._system = text
        if self._said is None:
            self.border_subtitle = text

    def update_title(self) -> None:
        s = self.samples
        kind = ""
        if s is not None:
            kind = "fixed noise" if getattr(s.images, "ndim", 0) == 4 else "real vs generated"
        title = samples_title(None if s is None else s.step, max(8, self.size.width - 4), kind,
                              self.generator, self.position)
        if self.class_view and self.class_view[1] < self.class_view[2]:
            first, shown, total = self.class_view
            extra = f" · classes {first}-{first + shown - 1} of {total} ↑↓"
            if len(title) + len(extra) <= self.size.width - 4:
                title += extra
        self.border_title = title

    def action_classes(self, delta: int) -> None:
        if not self.class_view:
            return
        first, shown, total = self.class_view
        self.first_class = max(0, min(total - shown, first + delta))
        self.refresh()

    def draw(self) -> Text:
        if self.samples is None:
            return Text().append(self.placeholder, "dim italic")
        key = (id(self.samples), self.size.width, self.size.height, self.color, self.first_class,
               self.conditional)
        if key != self._text_key:
            t0 = time.perf_counter()
            try:
                self._text, classes = render_samples(self.samples, self.size.width, self.size.height,
                                                     self.color, self.conditional, self.first_class)
            except Exception as e:  # noqa: BLE001 - a bad batch must not take the monitor down
                self._text, classes = Text(f"cannot draw these samples: {e}", "red"), None
            if classes != self.class_view:
                self.class_view = classes
                self.call_later(self.update_title)
            self._text_key = key
            self.render_ms = (time.perf_counter() - t0) * 1000
        return self._text

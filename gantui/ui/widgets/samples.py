"""The samples pane: the fixed-noise batch as half-block images, or for toy data the real
vs generated points over the discriminator's field (2-D) or overlaid histograms (1-D).

Rendering a grid costs milliseconds, so it happens only when new samples arrive or the
pane changes size; a cached Text is returned otherwise.
"""

from __future__ import annotations

import os
import time

from rich.text import Text

from gantui import render
from gantui.engine import events as ev
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


def render_samples(samples: ev.Samples, width: int, height: int, color: str) -> Text:
    """One picture of the samples that fits width x height cells exactly."""
    images = samples.images
    if images is None or width < 1 or height < 1:
        return Text()
    if getattr(images, "ndim", 0) == 2:                       # toy points (N, dim)
        dim = images.shape[1]
        real = samples.real if samples.real is not None else images[:0]
        if dim == 1:
            return render.histogram_1d(real, images, width, height, color=color)
        w, h = _square_cells(samples.extent, width, height)
        text = render.density_plot(real, images[:, :2], w, h, extent=samples.extent,
                                   field=samples.field, color=color)
        return _center(text, width, w)
    n, _, img_h, img_w = images.shape
    cols, rows, cell_w, cell_h = render.fit_grid(n, width, height, img_h, img_w)
    if cols == 0:
        return Text()
    return render.image_grid(images, cols, rows, cell_w, cell_h, color)


class SamplesPane(Pane):
    """Rendered once per batch (and per size): a grid has a style per cell, so its strips
    are worth keeping until the next batch arrives."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.samples: ev.Samples | None = None
        self.color = "truecolor"
        self.placeholder = "starting…"
        self._text_key: tuple | None = None
        self._text: Text | None = None
        self.render_ms = 0.0
        self.border_title = "Samples"

    def set_samples(self, samples: ev.Samples) -> None:
        self.samples = samples
        kind = "fixed noise" if getattr(samples.images, "ndim", 0) == 4 else "real vs generated"
        self.border_title = f"Samples · {kind} · step {samples.step}"
        self.refresh()

    def draw(self) -> Text:
        if self.samples is None:
            return Text().append(self.placeholder, "dim italic")
        key = (id(self.samples), self.size.width, self.size.height, self.color)
        if key != self._text_key:
            t0 = time.perf_counter()
            try:
                self._text = render_samples(self.samples, self.size.width, self.size.height, self.color)
            except Exception as e:  # noqa: BLE001 - a bad batch must not take the monitor down
                self._text = Text(f"cannot draw these samples: {e}", "red")
            self._text_key = key
            self.render_ms = (time.perf_counter() - t0) * 1000
        return self._text

"""A pane drawn through Textual's line API from cached strips, whose drawing errors stay inside it.

Why not just return a rich Text from render(): Textual then converts the whole Text into
its own Content and back into strips on every refresh, which was most of the cost of a
frame (and a frame holds the GIL the training thread needs). A pane's Text here is pre-laid
out (one line per row, styles in non-overlapping spans), so it goes straight to segments in
one pass, once per refresh; redrawing an unchanged pane returns the cached strips.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


def text_lines_to_segments(text: Text, console) -> list[list[Segment]]:
    """Segments per line of a Text whose spans do not overlap (what gantui.render and the
    panes build): one pass over the characters instead of rich's general span resolution,
    which costs tens of milliseconds for a sample grid with a style per cell. Overlapping
    spans or a base style fall back to rich."""
    plain = text.plain
    spans = sorted(text.spans, key=lambda sp: sp.start)
    if text.style or any(a.end > b.start for a, b in zip(spans, spans[1:])):
        return [list(line.render(console, end="")) for line in text.split("\n", allow_blank=True)]
    styles: list = [None] * len(plain)
    parse = Style.parse
    for sp in spans:
        end = min(sp.end, len(plain))
        if end > sp.start:
            st = parse(sp.style) if isinstance(sp.style, str) else sp.style
            styles[sp.start:end] = [st] * (end - sp.start)
    lines: list[list[Segment]] = []
    offset = 0
    for line_text in plain.split("\n"):
        segments, i, end = [], offset, offset + len(line_text)
        while i < end:
            st, j = styles[i], i + 1
            while j < end and styles[j] is st:
                j += 1
            segments.append(Segment(plain[i:j], st))
            i = j
        lines.append(segments)
        offset = end + 1
    return lines


class Pane(Widget):
    """Subclasses implement `draw() -> Text` (one line per row). An exception there shows
    as a red line in the pane instead of closing the app: the monitor must never be the
    thing that ends a run. Lines wider than the pane end in '…'."""

    _strips: list[Strip] | None = None
    _strips_key: tuple | None = None
    _title_width: int | None = None

    def draw(self) -> Text:  # pragma: no cover - abstract
        raise NotImplementedError

    def update_title(self) -> None:
        """Panes whose border title depends on their width make it here."""

    def render_lines(self, crop: Region) -> list[Strip]:
        # Textual draws the border, title included, before it asks for the content: a title made
        # for the old width (a resize lays out before on_resize runs) must be remade here, or the
        # first frame at the new width shows it cut with '…'.
        if self._title_width != self.size.width:
            self._title_width = self.size.width
            self.update_title()
        return super().render_lines(crop)

    def refresh(self, *regions, **kwargs):
        self._strips = None  # new data: draw again on the next frame
        return super().refresh(*regions, **kwargs)

    def safe_draw(self) -> Text:
        try:
            return self.draw()
        except Exception as e:  # noqa: BLE001
            self.log.error(f"{type(self).__name__}.draw failed: {e!r}")
            return Text(f"cannot draw {type(self).__name__}: {type(e).__name__}: {e}", "red")

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        base = self.visual_style.rich_style
        key = (width, height, base)
        if self._strips is None or self._strips_key != key:
            self._strips = self._build(self.safe_draw(), width, height, base)
            self._strips_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, base)

    def _build(self, text: Text, width: int, height: int, base: Style) -> list[Strip]:
        lines = text.split("\n", allow_blank=True)[:height]
        for line in lines:
            if line.cell_len > width:
                line.truncate(width, overflow="ellipsis")
        joined = Text("\n").join(lines) if len(lines) > 1 else (lines[0] if lines else Text())
        strips = []
        for segments in text_lines_to_segments(joined, self.app.console):
            strips.append(Strip(Segment.apply_style(segments, base)).crop_extend(0, width, base))
        return strips

    def render(self) -> Text:
        # Only used by code that asks a widget for its renderable (e.g. exports).
        return self.safe_draw()

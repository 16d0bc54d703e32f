"""Pictures as rich `Text`: sample images, real-vs-fake plots, sparklines, formatted numbers.

Pure functions of numpy arrays (no torch, no textual), so the monitor, `gantui sample --ansi`
and the tests all call the same code. Every plot returns exactly `height` lines of exactly
`width` cells (every glyph used here is one cell wide), so a widget can size it blindly.

Colour modes: "truecolor" (24-bit), "256" (xterm palette, for terminals such as tmux
without Tc) and "none" (NO_COLOR: no styles at all; shapes and glyphs carry everything).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.style import Style
from rich.text import Span, Text

COLOR_MODES = ("truecolor", "256", "none")

HALF_BLOCK = "▀"                       # fg paints the top pixel, bg the bottom one
LUMA_RAMP = " .:-=+*#%@"               # NO_COLOR images: dark -> bright
SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_NONFINITE = "!"
EIGHTHS = " ▁▂▃▄▅▆▇█"                  # bar tops in 1/8 of a cell

# Real vs generated, the same in every plot (GAN Lab's green/purple). Glyphs differ too,
# so the plots read without colour.
REAL_RGB = (110, 230, 120)
FAKE_RGB = (225, 120, 255)
BOTH_RGB = (255, 220, 90)
REAL_GLYPH, FAKE_GLYPH, BOTH_GLYPH = "○", "×", "⊗"
FIELD_GLYPH = "·"                       # NO_COLOR: where the discriminator says "real"
# Dim backgrounds for the discriminator's field: low score (says fake) -> high (says real).
FIELD_FAKE_RGB = (92, 36, 116)
FIELD_REAL_RGB = (28, 100, 48)
# The 256-colour palette has no dim greens/purples between these, so it gets three steps.
FIELD_256 = (53, 236, 22)
# Histogram glyphs without colour: the overlap is solid, each side's excess is shaded.
HIST_REAL_ONLY, HIST_FAKE_ONLY, HIST_BOTH = "▒", "░", "█"


def _check_mode(color: str) -> str:
    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {COLOR_MODES}, got {color!r}")
    return color


# --- colour ---------------------------------------------------------------------------

_CUBE_LEVELS = np.array([0, 95, 135, 175, 215, 255])
# Greys of the 256 palette: black (16), the ramp 232..255, white (231).
_GREY_LEVELS = np.array([0] + [8 + 10 * k for k in range(24)] + [255])
_GREY_CODES = np.array([16] + list(range(232, 256)) + [231])


def _nearest(levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.abs(values[..., None].astype(np.int32) - levels).argmin(axis=-1)


def grey_to_256(grey: np.ndarray) -> np.ndarray:
    """uint8 grey levels -> xterm-256 codes on the grey ramp (with pure black and white)."""
    return _GREY_CODES[_nearest(_GREY_LEVELS, np.asarray(grey))]


def rgb_to_256(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> xterm-256 codes: the nearer of the 6x6x6 cube and the grey ramp."""
    rgb = np.asarray(rgb).astype(np.int32)
    idx = _nearest(_CUBE_LEVELS, rgb)                       # (..., 3)
    cube = _CUBE_LEVELS[idx]
    cube_code = 16 + 36 * idx[..., 0] + 6 * idx[..., 1] + idx[..., 2]
    gi = _nearest(_GREY_LEVELS, rgb.mean(axis=-1).round().astype(np.int32))
    grey = _GREY_LEVELS[gi][..., None]
    d_cube = ((rgb - cube) ** 2).sum(axis=-1)
    d_grey = ((rgb - grey) ** 2).sum(axis=-1)
    return np.where(d_grey < d_cube, _GREY_CODES[gi], cube_code)


def _pack(rgb: Sequence[int]) -> int:
    return (int(rgb[0]) << 16) | (int(rgb[1]) << 8) | int(rgb[2])


def _code(rgb: Sequence[int], mode: str) -> int:
    """A colour as the int that `_style` takes: packed RGB (truecolor) or a palette code."""
    if mode == "256":
        return int(rgb_to_256(np.array(rgb, dtype=np.uint8)))
    return _pack(rgb)


_tuple_new = tuple.__new__
# Plain dicts, not lru_cache: a grid of noisy early samples has a new colour in almost
# every cell, and LRU bookkeeping on a miss costs more than building the colour. Emptied
# when large, so memory stays bounded over a long run.
_COLORS: dict[tuple[int, str], Color] = {}
_STYLES: dict[tuple[int | None, int | None, str], Style | None] = {}
_CACHE_LIMIT = 1 << 16


def _color(code: int, mode: str) -> Color:
    key = (code, mode)
    color = _COLORS.get(key)
    if color is None:
        if len(_COLORS) >= _CACHE_LIMIT:
            _COLORS.clear()
        if mode == "256":
            color = Color.from_ansi(code)
        else:
            # Built directly (positional tuples): Color.from_rgb costs several times more.
            triplet = _tuple_new(ColorTriplet, ((code >> 16) & 255, (code >> 8) & 255, code & 255))
            color = _tuple_new(Color, (f"#{code:06x}", ColorType.TRUECOLOR, None, triplet))
        _COLORS[key] = color
    return color


def _style(fg: int | None, bg: int | None, mode: str) -> Style | None:
    """Cached, so equal colours are usually the same object and runs merge into one span."""
    key = (fg, bg, mode)
    try:
        return _STYLES[key]
    except KeyError:
        pass
    if len(_STYLES) >= _CACHE_LIMIT:
        _STYLES.clear()
    style = None
    if mode != "none" and (fg is not None or bg is not None):
        style = Style.from_color(None if fg is None else _color(fg, mode),
                                 None if bg is None else _color(bg, mode))
    _STYLES[key] = style
    return style


# --- a grid of cells --------------------------------------------------------------------


class _Canvas:
    """width x height cells of one char and one style each, turned into a Text at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = max(0, width), max(0, height)
        self.chars = [[" "] * self.width for _ in range(self.height)]
        self.styles: list[list[Style | None]] = [[None] * self.width for _ in range(self.height)]

    def put(self, x: int, y: int, ch: str, style: Style | None = None) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.chars[y][x] = ch
            self.styles[y][x] = style

    def to_text(self, footer: Text | None = None) -> Text:
        lines: list[str] = []
        spans: list[Span] = []
        offset = 0
        for chars, styles in zip(self.chars, self.styles):
            lines.append("".join(chars))
            start, current = 0, styles[0] if styles else None
            for x in range(1, self.width + 1):
                style = styles[x] if x < self.width else None
                if x == self.width or style is not current:
                    if current is not None:
                        spans.append(Span(offset + start, offset + x, current))
                    start, current = x, style
            offset += self.width + 1                        # + the newline
        text = Text("\n".join(lines), spans=spans, no_wrap=True, overflow="crop")
        if footer is not None:
            if lines:
                text.append("\n")
            footer = footer.copy()
            footer.truncate(self.width, overflow="crop", pad=True)
            text.append_text(footer)
        return text


def _legend(parts: Sequence[tuple[str, Style | None]]) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for s, style in parts:
        text.append(s, style)
    return text


LegendItem = tuple[int, Sequence[tuple[str, "Style | None"]], "Sequence[tuple[str, Style | None]] | None"]


def fit_legend(items: Sequence[LegendItem], width: int, sep: str = "  ") -> Text:
    """A one-line legend that never cuts a word: items are (priority, parts, short parts or
    None). While the line is too wide, the lowest-priority item that has a short form takes
    it, then the lowest-priority item goes (the later one first on a tie)."""
    chosen = [list(parts) for _, parts, _ in items]
    prio = [p for p, _, _ in items]
    shorts = [sh for _, _, sh in items]
    alive = list(range(len(items)))

    def length() -> int:
        return sum(sum(len(t) for t, _ in chosen[i]) for i in alive) + len(sep) * max(0, len(alive) - 1)

    while alive and length() > width:
        can_shorten = [i for i in alive if shorts[i] is not None]
        if can_shorten:
            i = min(can_shorten, key=lambda i: (prio[i], -i))
            chosen[i], shorts[i] = list(shorts[i]), None
            continue
        alive.remove(min(alive, key=lambda i: (prio[i], -i)))
    out: list[tuple[str, Style | None]] = []
    for n, i in enumerate(alive):
        if n:
            out.append((sep, None))
        out.extend(chosen[i])
    return _legend(out)


# --- images -----------------------------------------------------------------------------


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of area resampling: each output pixel averages the input
    pixels it overlaps, weighted by overlap. Integer upscales reduce to nearest."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    j = np.arange(n_in)[None, :]
    overlap = np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j)
    w = np.clip(overlap, 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def resize_area(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """(C, H, W) -> (C, out_h, out_w) by area averaging (box filter; exact for 2x etc.)."""
    _, h, w = img.shape
    wy = _area_weights(h, out_h).astype(img.dtype)
    wx = _area_weights(w, out_w).astype(img.dtype)
    return (wy @ img) @ wx.T


def _as_chw(img: Any) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] not in (1, 3) or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise ValueError(f"expected an image (C, H, W) with C = 1 or 3, got shape {arr.shape}")
    return np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0)


def _draw_image(canvas: _Canvas, x0: int, y0: int, img: Any, width: int, height: int,
                mode: str) -> None:
    """Draw one image centred in the width x height cell box at (x0, y0)."""
    if width < 1 or height < 1:
        return
    arr = _as_chw(img)
    c, h, w = arr.shape
    scale = min(width / w, 2 * height / h)                 # a half-block pixel is ~square
    out_w = max(1, min(width, round(w * scale)))
    out_h = max(1, min(2 * height, round(h * scale)))
    px = resize_area(arr, out_h, out_w)
    px8 = np.clip(np.rint((px + 1.0) * 127.5), 0, 255).astype(np.uint8)   # [-1, 1] -> 0..255
    rows = (out_h + 1) // 2
    ox = x0 + (width - out_w) // 2
    oy = y0 + (height - rows) // 2

    if mode == "none":
        luma = px8[0].astype(np.float32) if c == 1 else (
            0.299 * px8[0] + 0.587 * px8[1] + 0.114 * px8[2])
        if out_h % 2:                                      # the last row has no bottom pixel
            luma = np.concatenate([luma, luma[-1:]], axis=0)
        cell = (luma[0::2] + luma[1::2]) / 2.0
        idx = np.minimum((cell * len(LUMA_RAMP) / 256.0).astype(int), len(LUMA_RAMP) - 1)
        for r in range(rows):
            for x in range(out_w):
                canvas.put(ox + x, oy + r, LUMA_RAMP[idx[r, x]])
        return

    if mode == "256":
        codes = grey_to_256(px8[0]) if c == 1 else rgb_to_256(np.moveaxis(px8, 0, -1))
    else:
        rgb = np.repeat(px8, 3, axis=0) if c == 1 else px8
        rgb = rgb.astype(np.int64)
        codes = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
    codes = codes.tolist()
    for r in range(rows):
        top = codes[2 * r]
        bottom = codes[2 * r + 1] if 2 * r + 1 < out_h else None
        for x in range(out_w):
            style = _style(top[x], None if bottom is None else bottom[x], mode)
            canvas.put(ox + x, oy + r, HALF_BLOCK, style)


def halfblock_image(img: Any, width: int, height: int, color: str = "truecolor") -> Text:
    """One image (C, H, W) in [-1, 1] as `height` lines of `width` cells.

    Each cell shows two vertical pixels: '▀' with fg = top pixel, bg = bottom pixel. The
    image is resampled (area average down, nearest up) to fit width x 2*height pixels,
    keeping its aspect ratio, and centred. With color="none" each cell is a character of a
    luminance ramp instead.
    """
    mode = _check_mode(color)
    canvas = _Canvas(width, height)
    _draw_image(canvas, 0, 0, img, width, height, mode)
    return canvas.to_text()


def legible_px(img_h: int, img_w: int) -> int:
    """The smallest tile side (in half-block pixels) at which a sample still reads: 12 px for
    28x28 digits (a digit stays recognisable), 40% of the side for larger images."""
    side = max(img_h, img_w)
    return min(side, max(12, round(0.4 * side)))


def fit_grid(n: int, pane_w: int, pane_h: int, img_h: int, img_w: int, *, gap: int = 1,
             row_gap: int = 1, min_scale: float | None = None) -> tuple[int, int, int, int]:
    """(cols, rows, cell_w, cell_h) of the grid that best fills a pane_w x pane_h pane.

    Shows as many of the n images as fit while each keeps at least `min_scale` of its
    resolution (default: `legible_px`), then makes them as large as possible. If even one
    image cannot keep that resolution, one image fills the pane. Cell sizes are tight around
    the scaled image, so the grid is `cols*cell_w + gap*(cols-1)` wide and
    `rows*cell_h + row_gap*(rows-1)` tall: a blank column and a blank line between tiles.
    """
    if n < 1 or pane_w < 1 or pane_h < 1 or img_h < 1 or img_w < 1:
        return (0, 0, 0, 0)
    if min_scale is None:
        min_scale = legible_px(img_h, img_w) / max(img_h, img_w) - 1e-9
    best: tuple | None = None
    for cols in range(1, min(n, pane_w) + 1):
        cw = (pane_w - gap * (cols - 1)) // cols
        if cw < 1:
            break
        for rows in range(1, -(-n // cols) + 1):
            ch = (pane_h - row_gap * (rows - 1)) // rows
            if ch < 1:
                break
            scale = min(cw / img_w, 2 * ch / img_h)
            shown = min(n, cols * rows)
            ok = scale >= min_scale
            key = (ok, shown if ok else 1, scale, -(cols * rows - shown))
            if best is None or key > best[0]:
                best = (key, cols, rows, cw, ch, scale)
    assert best is not None
    _, cols, rows, cw, ch, scale = best
    cell_w = min(cw, max(1, round(img_w * scale)))
    cell_h = min(ch, max(1, -(-round(img_h * scale) // 2)))
    return (cols, rows, cell_w, cell_h)


def image_grid(images: Any, cols: int, rows: int, cell_w: int, cell_h: int,
               color: str = "truecolor", *, gap: int = 1, row_gap: int = 1) -> Text:
    """Images (N, C, H, W) in [-1, 1], row-major in a cols x rows grid of cell_w x cell_h
    cells with `gap` blank columns (and `row_gap` blank lines) between them. Extra images
    are left out; missing ones leave blank cells."""
    mode = _check_mode(color)
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:                                      # (N, H, W) grey
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {arr.shape}")
    width = cols * cell_w + gap * max(0, cols - 1)
    height = rows * cell_h + row_gap * max(0, rows - 1)
    canvas = _Canvas(width, height)
    for k in range(min(len(arr), cols * rows)):
        r, c = divmod(k, cols)
        _draw_image(canvas, c * (cell_w + gap), r * (cell_h + row_gap), arr[k], cell_w, cell_h,
                    mode)
    return canvas.to_text()


class ClassLayout(NamedTuple):
    """A row per class (its label at the left) when `by_rows`, else a column per class (its
    label above), `per_class` tiles of `cell_w` x `cell_h` cells each."""

    by_rows: bool
    classes: int
    per_class: int
    cell_w: int
    cell_h: int
    label_w: int


def fit_class_grid(n_classes: int, per_class: int, pane_w: int, pane_h: int, img_h: int, img_w: int,
                   *, min_px: int | None = None) -> ClassLayout | None:
    """The layout that shows the most classes, then up to 4 samples of each, then the largest
    tiles, with every tile at least `min_px` (default `legible_px`). None if not one fits."""
    if n_classes < 1 or per_class < 1:
        return None
    min_px = legible_px(img_h, img_w) if min_px is None else min_px
    label_w = len(str(n_classes - 1)) + 1
    best = None
    for by_rows in (True, False):
        # along = across the classes, per = along one class's samples
        avail_classes = pane_h if by_rows else pane_w
        avail_per = (pane_w - label_w) if by_rows else (pane_h - 1)
        for classes in range(1, n_classes + 1):
            for k in range(1, per_class + 1):
                if by_rows:
                    ch = (avail_classes - (classes - 1)) // classes
                    cw = (avail_per - (k - 1)) // k
                else:
                    cw = (avail_classes - (classes - 1)) // classes
                    ch = (avail_per - (k - 1)) // k
                if cw < 1 or ch < 1:
                    break
                scale = min(cw / img_w, 2 * ch / img_h)
                if scale * max(img_h, img_w) < min_px - 1e-9:
                    break
                key = (classes, min(k, 4), scale, k)
                if best is None or key > best[0]:
                    cell_w = min(cw, max(1, round(img_w * scale)))
                    cell_h = min(ch, max(1, -(-round(img_h * scale) // 2)))
                    best = (key, ClassLayout(by_rows, classes, k, cell_w, cell_h, label_w))
    return None if best is None else best[1]


def class_grid(images: Any, labels: Any, layout: ClassLayout, color: str = "truecolor",
               first_class: int = 0, n_classes: int | None = None) -> Text:
    """Samples grouped by class, `layout.classes` classes from `first_class` on, each with
    its label, `layout.per_class` samples of each (the first ones of that class in the batch)."""
    mode = _check_mode(color)
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    lab = np.asarray(labels).astype(int).ravel()
    n_classes = int(lab.max()) + 1 if n_classes is None else n_classes
    by_rows, classes, k, cw, ch, lw = layout
    classes = max(0, min(classes, n_classes - first_class))
    if by_rows:
        width, height = lw + k * cw + (k - 1), classes * ch + (classes - 1)
    else:
        width, height = classes * cw + (classes - 1), 1 + k * ch + (k - 1)
    canvas = _Canvas(width, height)
    for j in range(classes):
        c = first_class + j
        idx = np.flatnonzero(lab == c)[:k]
        label = str(c)
        if by_rows:
            y0 = j * (ch + 1)
            for i, ch_ in enumerate(label.rjust(lw - 1)):
                canvas.put(i, y0 + (ch - 1) // 2, ch_)
            for i, m in enumerate(idx):
                _draw_image(canvas, lw + i * (cw + 1), y0, arr[m], cw, ch, mode)
        else:
            x0 = j * (cw + 1)
            for i, ch_ in enumerate(label):
                canvas.put(x0 + (cw - len(label)) // 2 + i, 0, ch_)
            for i, m in enumerate(idx):
                _draw_image(canvas, x0, 1 + i * (ch + 1), arr[m], cw, ch, mode)
    return canvas.to_text()


def fit_text_grid(images: Any, width: int, height: int, color: str = "truecolor",
                  labels: Any = None) -> Text:
    """A whole batch for a terminal that cannot scroll it (`gantui sample --ansi`): a plain
    grid, or with `labels` every class in its labelled row or column, the tiles as small as
    it takes to show them all (legible size first)."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    _, _, h, w = arr.shape
    if labels is not None and len(labels):
        lab = np.asarray(labels).astype(int)
        k = int(lab.max()) + 1
        per = int(np.bincount(lab).max())
        layout = None
        for min_px in range(legible_px(h, w), 3, -1):
            layout = fit_class_grid(k, per, width, height, h, w, min_px=min_px)
            if layout is not None and layout.classes == k:
                break
        if layout is not None:
            return class_grid(arr, lab, layout, color, 0, k)
    cols, rows, cell_w, cell_h = fit_grid(len(arr), width, height, h, w)
    if cols == 0:
        return Text()
    return image_grid(arr, cols, rows, cell_w, cell_h, color)


# --- toy data ---------------------------------------------------------------------------


def _points(p: Any, dim: int) -> tuple[np.ndarray, int]:
    """Finite rows of an (N, dim) array (None/empty allowed) and how many were dropped."""
    if p is None:
        return np.zeros((0, dim)), 0
    arr = np.asarray(p, dtype=np.float64)
    if dim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected points (N, {dim}), got shape {arr.shape}")
    keep = np.isfinite(arr).all(axis=1)
    return arr[keep], int((~keep).sum())


def auto_extent(points: Sequence[np.ndarray], width: int, height: int,
                margin: float = 0.1) -> tuple[float, float, float, float]:
    """Union bounding box plus a margin, widened so x and y share one scale on a screen
    whose cells are twice as tall as wide (a ring stays round)."""
    pts = [p for p in points if len(p)]
    if not pts:
        return (-1.0, 1.0, -1.0, 1.0)
    allp = np.concatenate(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    pad = np.maximum(span * margin, 1e-3)
    lo, hi = lo - pad, hi + pad
    cx, cy = (lo + hi) / 2
    per_x = (hi[0] - lo[0]) / max(width, 1)                # data units per screen unit
    per_y = (hi[1] - lo[1]) / max(2 * height, 1)
    per = max(per_x, per_y)
    hw, hh = per * max(width, 1) / 2, per * max(2 * height, 1) / 2
    return (float(cx - hw), float(cx + hw), float(cy - hh), float(cy + hh))


def _field_cells(field: Any, extent: tuple[float, float, float, float], width: int,
                 height: int, field_range: tuple[float, float] | None) -> np.ndarray:
    """The field sampled (nearest) at each cell centre, scaled to [0, 1].

    field[iy, ix]: ix runs over x from xmin to xmax, iy over y from ymin (row 0) to ymax,
    both including the ends (np.meshgrid(np.linspace(xmin, xmax, G), np.linspace(ymin, ymax, G))).
    """
    f = np.asarray(field, dtype=np.float64)
    if f.ndim != 2 or min(f.shape) < 1:
        raise ValueError(f"expected a field (G, G), got shape {f.shape}")
    gy, gx = f.shape
    xmin, xmax, ymin, ymax = extent
    xs = xmin + (np.arange(width) + 0.5) / width * (xmax - xmin)
    ys = ymax - (np.arange(height) + 0.5) / height * (ymax - ymin)   # screen row 0 is the top
    ix = np.clip(np.rint((xs - xmin) / (xmax - xmin) * (gx - 1)), 0, gx - 1).astype(int)
    iy = np.clip(np.rint((ys - ymin) / (ymax - ymin) * (gy - 1)), 0, gy - 1).astype(int)
    cells = f[iy[:, None], ix[None, :]]
    finite = np.isfinite(f)
    if field_range is not None:
        lo, hi = field_range
    elif finite.any():
        lo, hi = float(f[finite].min()), float(f[finite].max())
    else:
        lo = hi = 0.0
    t = (cells - lo) / (hi - lo) if hi > lo else np.full(cells.shape, 0.5)
    return np.clip(np.nan_to_num(t, nan=0.5), 0.0, 1.0)


def _field_codes(t: np.ndarray, mode: str) -> np.ndarray:
    if mode == "256":
        return np.array(FIELD_256)[np.minimum((t * 3).astype(int), 2)]
    rgb = (np.array(FIELD_FAKE_RGB)[None, None] * (1 - t[..., None])
           + np.array(FIELD_REAL_RGB)[None, None] * t[..., None])
    rgb = np.rint(rgb).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _cell_counts(p: np.ndarray, extent, width: int, height: int) -> tuple[np.ndarray, int]:
    """How many points fall in each cell (row 0 at the top) and how many fall outside."""
    xmin, xmax, ymin, ymax = extent
    counts = np.zeros((height, width), dtype=np.int64)
    if not len(p):
        return counts, 0
    inside = (p[:, 0] >= xmin) & (p[:, 0] <= xmax) & (p[:, 1] >= ymin) & (p[:, 1] <= ymax)
    q = p[inside]
    cx = np.minimum(((q[:, 0] - xmin) / (xmax - xmin) * width).astype(int), width - 1)
    cy = np.minimum(((ymax - q[:, 1]) / (ymax - ymin) * height).astype(int), height - 1)
    np.add.at(counts, (cy, cx), 1)
    return counts, int((~inside).sum())


def density_plot(real: Any, fake: Any, width: int, height: int,
                 extent: tuple[float, float, float, float] | None = None, field: Any = None,
                 color: str = "truecolor", *,
                 field_range: tuple[float, float] | None = None) -> Text:
    """Real vs generated 2-D points (N, 2) as `height` lines of `width` cells, the last
    line a legend. Real points are '○' (green), generated '×' (purple), a cell with both
    '⊗' (yellow). `field` (G, G) is the discriminator's score over `extent`, higher = more
    real, drawn as a dim background (green = "real", purple = "fake"; scaled to its own
    min..max unless `field_range` is given; without colour, '·' marks where D says real).
    Points outside `extent` are counted in the legend, not drawn.
    """
    mode = _check_mode(color)
    if width < 1 or height < 1:
        return Text()
    plot_h = height - 1 if height >= 2 else height
    r, r_bad = _points(real, 2)
    f, f_bad = _points(fake, 2)
    if extent is None:
        if field is not None:
            raise ValueError("density_plot: a field needs the extent it covers")
        extent = auto_extent([r, f], width, plot_h)
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(f"density_plot: empty extent {extent}")
    extent = (xmin, xmax, ymin, ymax)

    canvas = _Canvas(width, plot_h)
    bg = None
    if field is not None:
        t = _field_cells(field, extent, width, plot_h, field_range)
        if mode == "none":
            for y, x in zip(*np.nonzero(t > 0.5)):
                canvas.put(int(x), int(y), FIELD_GLYPH)
        else:
            bg = _field_codes(t, mode).tolist()

    nr, r_out = _cell_counts(r, extent, width, plot_h)
    nf, f_out = _cell_counts(f, extent, width, plot_h)
    fg_codes = {g: _code(rgb, mode) for g, rgb in
                ((REAL_GLYPH, REAL_RGB), (FAKE_GLYPH, FAKE_RGB), (BOTH_GLYPH, BOTH_RGB))}
    for y in range(plot_h):
        for x in range(width):
            glyph = None
            if nr[y, x] and nf[y, x]:
                glyph = BOTH_GLYPH
            elif nr[y, x]:
                glyph = REAL_GLYPH
            elif nf[y, x]:
                glyph = FAKE_GLYPH
            b = None if bg is None else bg[y][x]
            if glyph is not None:
                canvas.put(x, y, glyph, _style(fg_codes[glyph], b, mode))
            elif b is not None:
                canvas.put(x, y, " ", _style(None, b, mode))

    if height < 2:
        return canvas.to_text()
    items: list[LegendItem] = [
        (10, [(REAL_GLYPH, _style(fg_codes[REAL_GLYPH], None, mode)), (" real", None)], None),
        (10, [(FAKE_GLYPH, _style(fg_codes[FAKE_GLYPH], None, mode)), (" fake", None)], None),
        (4, [(BOTH_GLYPH, _style(fg_codes[BOTH_GLYPH], None, mode)), (" both", None)], None),
    ]
    off = r_out + f_out
    if off:
        items.append((8, [(f"{off} off-plot", None)], [(f"{off} off", None)]))
    if r_bad + f_bad:
        items.append((9, [(f"{r_bad + f_bad} NaN", None)], None))
    if field is not None:
        if mode == "none":
            items.append((6, [(f"{FIELD_GLYPH} D says real", None)], [(f"{FIELD_GLYPH} D: real", None)]))
        else:
            swatch = [(" ", _style(None, code, mode))
                      for code in _field_codes(np.linspace(0, 1, 4)[None], mode)[0].tolist()]
            items.append((6, [("D: fake ", None), *swatch, (" real", None)],
                          [("D ", None), *swatch]))
    return canvas.to_text(fit_legend(items, width))


def histogram_1d(real: Any, fake: Any, width: int, height: int, bins: int | None = None,
                 color: str = "truecolor", *,
                 value_range: tuple[float, float] | None = None) -> Text:
    """Overlaid histograms of 1-D real and generated samples: `height` lines of `width`
    cells, the last a legend with the x range. Bars are normalised per set (so sets of
    different sizes compare) to the tallest bin of either. In colour the bar tops have
    1/8-cell precision (green real, purple generated, yellow where they overlap); without
    colour, the overlap is '█', real-only '▒', generated-only '░'.
    """
    mode = _check_mode(color)
    if width < 1 or height < 1:
        return Text()
    plot_h = height - 1 if height >= 2 else height
    r, r_bad = _points(real, 1)
    f, f_bad = _points(fake, 1)
    r, f = r[:, 0], f[:, 0]
    if value_range is not None:
        lo, hi = map(float, value_range)
    elif len(r) or len(f):
        both = np.concatenate([r, f])
        lo, hi = float(both.min()), float(both.max())
    else:
        lo, hi = -1.0, 1.0
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    nbins = max(1, min(int(bins or width), width))
    hr = np.histogram(r, nbins, (lo, hi))[0] / max(len(r), 1)
    hf = np.histogram(f, nbins, (lo, hi))[0] / max(len(f), 1)
    peak = max(hr.max(), hf.max())
    scale = plot_h * 8 / peak if peak > 0 else 0.0
    er = np.rint(hr * scale).astype(int)                   # bar heights in 1/8 cells
    ef = np.rint(hf * scale).astype(int)

    canvas = _Canvas(width, plot_h)
    codes = {k: _code(rgb, mode) for k, rgb in (("r", REAL_RGB), ("f", FAKE_RGB), ("b", BOTH_RGB))}
    for x in range(width):
        b = x * nbins // width
        for y in range(plot_h):
            base = (plot_h - 1 - y) * 8                     # eighths below this cell
            a = min(max(er[b] - base, 0), 8)               # how much of the cell each fills
            c = min(max(ef[b] - base, 0), 8)
            if mode == "none":
                # whole cells: a cell counts as filled when a bar covers at least half of it
                ra, fc = a >= 4, c >= 4
                canvas.put(x, y, HIST_BOTH if ra and fc else HIST_REAL_ONLY if ra
                           else HIST_FAKE_ONLY if fc else " ")
                continue
            lo_e, hi_e = min(a, c), max(a, c)
            taller = codes["r"] if a > c else codes["f"]
            if hi_e == 0:
                continue
            if lo_e == hi_e:
                canvas.put(x, y, EIGHTHS[hi_e], _style(codes["b"], None, mode))
            elif lo_e == 0 or hi_e < 8:
                # only one bar here, or both end inside this cell: show the taller one's top
                canvas.put(x, y, EIGHTHS[hi_e], _style(taller, None, mode))
            else:
                # the shorter bar ends in this cell, the taller goes on: overlap colour
                # below (fg), the taller bar's colour above (bg)
                canvas.put(x, y, EIGHTHS[lo_e], _style(codes["b"], taller, mode))

    if height < 2:
        return canvas.to_text()
    if mode == "none":
        swatches = {"r": (HIST_REAL_ONLY, None), "f": (HIST_FAKE_ONLY, None), "b": (HIST_BOTH, None)}
    else:
        swatches = {k: ("█", _style(codes[k], None, mode)) for k in ("r", "f", "b")}
    items: list[LegendItem] = [
        (10, [swatches["r"], (" real", None)], None),
        (10, [swatches["f"], (" fake", None)], None),
        (4, [swatches["b"], (" both", None)], None),
        (7, [(f"x {lo:.3g}..{hi:.3g}", None)], [(f"{lo:.2g}..{hi:.2g}", None)]),
    ]
    if r_bad + f_bad:
        items.append((9, [(f"{r_bad + f_bad} NaN", None)], None))
    return canvas.to_text(fit_legend(items, width))


# --- sparklines and numbers -------------------------------------------------------------


def sparkline(values: Sequence[float], width: int, lo: float | None = None,
              hi: float | None = None) -> str:
    """At most `width` characters of '▁'..'█'. Longer input is cut into `width` buckets
    and each shows whichever of its min or max lies farther from the bucket's mean, so a
    spike up or down survives. A bucket holding a NaN or inf shows '!'. The scale runs
    from lo to hi (default: the finite min and max of `values`)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    n = len(arr)
    if n == 0 or width < 1:
        return ""
    finite = np.isfinite(arr)
    if n > width:
        starts = (np.arange(width) * n) // width
        bad = np.logical_or.reduceat(~finite, starts)
        clean = np.where(finite, arr, 0.0)
        counts = np.diff(np.append(starts, n))
        mean = np.add.reduceat(clean, starts) / counts
        mx = np.maximum.reduceat(np.where(finite, arr, -np.inf), starts)
        mn = np.minimum.reduceat(np.where(finite, arr, np.inf), starts)
        pick = np.where(mx - mean >= mean - mn, mx, mn)
        arr = np.where(bad, np.nan, pick)
        finite = ~bad
    if not finite.any():
        return SPARK_NONFINITE * len(arr)
    lo = float(arr[finite].min()) if lo is None else float(lo)
    hi = float(arr[finite].max()) if hi is None else float(hi)
    top = len(SPARK_CHARS) - 1
    if hi > lo:
        level = np.clip(np.rint((np.where(finite, arr, lo) - lo) / (hi - lo) * top), 0, top)
    else:
        level = np.full(len(arr), top // 2)                # flat line: the middle
    return "".join(SPARK_CHARS[int(k)] if ok else SPARK_NONFINITE
                   for k, ok in zip(level, finite))

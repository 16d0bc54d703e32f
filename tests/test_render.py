"""Pure renderers: exact sizes, the right glyphs and colours in the right cells."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from rich.cells import cell_len
from rich.color import ColorType
from rich.console import Console
from rich.style import Style
from rich.text import Text

from gantui import humanize as H
from gantui import render as R


# --- helpers ----------------------------------------------------------------------------


def lines_of(text: Text) -> list[str]:
    return text.plain.split("\n")


def assert_box(text: Text, width: int, height: int) -> None:
    lines = lines_of(text)
    assert len(lines) == height
    assert all(cell_len(line) == width for line in lines), [cell_len(x) for x in lines]


def styles(text: Text) -> list[Style]:
    """The style of every character of text.plain (newlines included)."""
    out = [Style()] * len(text.plain)
    for span in text.spans:
        style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
        for i in range(span.start, span.end):
            out[i] = out[i] + style
    return out


def cell_style(text: Text, row: int, col: int) -> Style:
    width = len(lines_of(text)[0])
    return styles(text)[row * (width + 1) + col]


def all_colors(text: Text):
    for span in text.spans:
        for c in (span.style.color, span.style.bgcolor):
            if c is not None:
                yield c


def rgb(color) -> tuple[int, int, int]:
    return tuple(color.get_truecolor())


def img(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float32)[None]           # (1, H, W)


# --- half-block images ------------------------------------------------------------------


def test_halfblock_two_by_two_black_and_white():
    t = R.halfblock_image(img([-1, 1], [1, -1]), 2, 1)
    assert t.plain == "▀▀"
    left, right = cell_style(t, 0, 0), cell_style(t, 0, 1)
    assert rgb(left.color) == (0, 0, 0) and rgb(left.bgcolor) == (255, 255, 255)
    assert rgb(right.color) == (255, 255, 255) and rgb(right.bgcolor) == (0, 0, 0)
    assert left.color.type == ColorType.TRUECOLOR


def test_halfblock_colour_pixel_and_odd_height():
    red = np.array([[[1.0]], [[-1.0]], [[-1.0]]])           # (3, 1, 1)
    t = R.halfblock_image(red, 1, 1)
    st = cell_style(t, 0, 0)
    assert t.plain == "▀"
    assert rgb(st.color) == (255, 0, 0)
    assert st.bgcolor is None                                # one pixel row: no bottom pixel


@pytest.mark.parametrize("mode", R.COLOR_MODES)
@pytest.mark.parametrize("w,h", [(17, 9), (1, 1), (40, 3), (5, 20)])
def test_halfblock_exact_size(mode, w, h):
    rng = np.random.default_rng(1)
    t = R.halfblock_image(rng.uniform(-1, 1, (3, 28, 28)), w, h, mode)
    assert_box(t, w, h)
    # rich renders it without wrapping into exactly h lines
    console = Console(width=w, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(t)
    assert console.export_text().rstrip("\n").count("\n") == h - 1


def test_halfblock_keeps_aspect_and_centres():
    wide = np.ones((1, 4, 16), dtype=np.float32)              # 4:1
    t = R.halfblock_image(wide, 8, 8)
    lines = lines_of(t)
    # fits 8 pixels wide -> 2 pixels tall -> one row, centred vertically
    assert [i for i, line in enumerate(lines) if "▀" in line] == [3]
    assert lines[3] == "▀" * 8


def test_halfblock_area_downsample_averages():
    # 4x4 checkerboard of 2x2 blocks shrunk to 2x2 pixels: each pixel is one block's value
    a = np.kron(np.array([[-1.0, 1.0], [1.0, -1.0]]), np.ones((2, 2)))[None]
    t = R.halfblock_image(a, 2, 1)
    assert rgb(cell_style(t, 0, 0).color) == (0, 0, 0)
    assert rgb(cell_style(t, 0, 0).bgcolor) == (255, 255, 255)
    # a fine checkerboard averages to mid grey
    fine = np.indices((4, 4)).sum(axis=0) % 2 * 2.0 - 1.0
    g = rgb(cell_style(R.halfblock_image(fine[None], 2, 1), 0, 0).color)
    assert g[0] == g[1] == g[2] and 126 <= g[0] <= 129


def test_resize_area_up_is_nearest_and_down_is_mean():
    a = np.arange(4.0).reshape(1, 2, 2)
    up = R.resize_area(a, 4, 4)
    np.testing.assert_allclose(up[0], np.kron(a[0], np.ones((2, 2))))
    down = R.resize_area(up, 2, 2)
    np.testing.assert_allclose(down, a)


def test_256_mode_uses_the_palette_only():
    rng = np.random.default_rng(2)
    grey = R.halfblock_image(rng.uniform(-1, 1, (1, 10, 10)), 10, 5, "256")
    codes = {c.number for c in all_colors(grey)}
    assert codes and codes <= {16, 231, *range(232, 256)}     # grey ramp for grey images
    colour = R.halfblock_image(rng.uniform(-1, 1, (3, 10, 10)), 10, 5, "256")
    cols = list(all_colors(colour))
    assert cols and all(c.type == ColorType.EIGHT_BIT for c in cols)
    assert all(c.triplet is None for c in cols)


def test_rgb_to_256_known_codes():
    assert int(R.rgb_to_256(np.array([255, 0, 0]))) == 196
    assert int(R.rgb_to_256(np.array([0, 0, 0]))) == 16
    assert int(R.rgb_to_256(np.array([255, 255, 255]))) == 231
    assert int(R.rgb_to_256(np.array([128, 128, 128]))) == 244
    assert R.grey_to_256(np.array([0, 8, 238, 255])).tolist() == [16, 232, 255, 231]


def test_no_color_mode_has_no_styles_and_a_luminance_ramp():
    t = R.halfblock_image(img([1, -1], [1, -1]), 2, 1, "none")
    assert t.spans == []
    assert t.plain == R.LUMA_RAMP[-1] + R.LUMA_RAMP[0]
    rng = np.random.default_rng(3)
    big = R.halfblock_image(rng.uniform(-1, 1, (3, 20, 20)), 20, 10, "none")
    assert big.spans == []
    assert set(big.plain) - {"\n"} <= set(R.LUMA_RAMP)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        R.halfblock_image(np.zeros((1, 4, 4)), 4, 2, "16")
    with pytest.raises(ValueError):
        R.halfblock_image(np.zeros((2, 4, 4)), 4, 2)


# --- grids ------------------------------------------------------------------------------


def test_image_grid_layout_and_gaps():
    images = np.ones((5, 1, 8, 8), dtype=np.float32)
    t = R.image_grid(images, cols=3, rows=2, cell_w=4, cell_h=2, color="truecolor")
    assert_box(t, 3 * 4 + 2, 2 * 2 + 1)
    for line in lines_of(t):
        assert line[4] == " " and line[9] == " "             # one-column gaps
    assert lines_of(t)[2] == " " * 14                        # and a blank line between rows
    assert t.plain.count("▀") == 5 * 4 * 2                  # 5 images, the 6th cell blank
    assert lines_of(t)[4][10:] == "    "


def test_image_grid_row_gap_and_none_mode():
    images = -np.ones((4, 3, 6, 6), dtype=np.float32)
    t = R.image_grid(images, 2, 2, 3, 2, "none")
    assert_box(t, 7, 5)
    assert t.spans == []
    assert_box(R.image_grid(images, 2, 2, 3, 2, "none", row_gap=0), 7, 4)


@pytest.mark.parametrize("n,pw,ph", [(64, 60, 20), (64, 38, 18), (16, 80, 24), (4, 100, 50),
                                     (1, 5, 2), (64, 200, 60), (10, 30, 30)])
def test_fit_grid_fits_the_pane(n, pw, ph):
    cols, rows, cw, ch = R.fit_grid(n, pw, ph, 28, 28)
    assert cols >= 1 and rows >= 1 and cw >= 1 and ch >= 1
    assert cols * cw + (cols - 1) <= pw
    assert rows * ch + (rows - 1) <= ph                      # a blank line between tile rows
    assert (cols - 1) * rows < n or cols * rows <= n         # no wholly empty column


def test_fit_grid_choices():
    assert R.legible_px(28, 28) == 12 and R.legible_px(8, 8) == 8 and R.legible_px(64, 64) == 26
    # 64 digits in 60x20: the legible 12 px tiles (12 cells wide, 6 rows) fit 4 x 3 with gaps
    assert R.fit_grid(64, 60, 20, 28, 28) == (4, 3, 12, 6)
    # the samples pane at 120x36 (52x32): 16 tiles, not the 12 of half resolution
    cols, rows, _, _ = R.fit_grid(64, 52, 32, 28, 28)
    assert cols * rows == 16
    # few images in a large pane: all shown, each bigger than its own size
    cols, rows, cw, ch = R.fit_grid(4, 100, 50, 28, 28)
    assert cols * rows >= 4 and cw > 28
    # all 64 shown when the pane is large enough at the legible size
    cols, rows, cw, ch = R.fit_grid(64, 200, 60, 28, 28)
    assert cols * rows >= 64 and cw >= 12
    # a pane too small for a legible tile: one image, as large as possible
    assert R.fit_grid(64, 5, 2, 28, 28)[:2] == (1, 1)
    assert R.fit_grid(0, 60, 20, 28, 28) == (0, 0, 0, 0)


def test_class_grid_labels_a_row_or_column_per_class():
    images = np.stack([np.full((1, 28, 28), -1 + 0.2 * (i % 10), np.float32) for i in range(40)])
    labels = np.arange(40) % 10
    layout = R.fit_class_grid(10, 4, 52, 32, 28, 28)
    assert layout.classes < 10 and layout.per_class >= 2          # a pane too small for every class
    assert min(layout.cell_w, 2 * layout.cell_h) >= 12            # but every tile legible
    t = R.class_grid(images, labels, layout, "none", first_class=3)
    head = lines_of(t)[0] if not layout.by_rows else "".join(line[:layout.label_w] for line in lines_of(t))
    assert [int(c) for c in head.split()] == list(range(3, 3 + layout.classes))
    # sample --ansi: a whole terminal, every class, tiles as small as that takes
    t = R.fit_text_grid(images, 120, 34, "none", labels)
    assert len(lines_of(t)) <= 34 and max(len(x) for x in lines_of(t)) <= 120
    assert [int(c) for c in lines_of(t)[0].split()] == list(range(10))


def test_fit_legend_shortens_then_drops_whole_items():
    items = [(10, [("○", None), (" real", None)], None), (10, [("×", None), (" fake", None)], None),
             (4, [("⊗", None), (" both", None)], None), (6, [("D: fake ", None), ("▮▮", None), (" real", None)],
                                                           [("D ", None), ("▮▮", None)])]
    assert R.fit_legend(items, 80).plain == "○ real  × fake  ⊗ both  D: fake ▮▮ real"
    assert R.fit_legend(items, 30).plain == "○ real  × fake  ⊗ both  D ▮▮"
    assert R.fit_legend(items, 20).plain == "○ real  × fake  D ▮▮"
    assert R.fit_legend(items, 14).plain == "○ real  × fake"


@pytest.mark.parametrize("width", [20, 26, 30, 34, 40, 52])
def test_toy_legends_never_cut_a_word(width):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(200, 2))
    field = rng.normal(size=(8, 8))
    legend = lines_of(R.density_plot(pts, pts + 5, width, 8, (-3, 3, -3, 3), field))[-1].rstrip()
    words = legend.replace("○", " ").replace("×", " ").replace("⊗", " ").split()
    assert set(words) <= {"real", "fake", "both", "D:", "D", "off-plot", "off"} | {w for w in words if w.isdigit()}
    hist = lines_of(R.histogram_1d(rng.normal(-2, 1, 300), rng.normal(2, 1, 300), width, 6))[-1].rstrip()
    for word in hist.split():
        assert word in ("▒", "░", "█", "real", "fake", "both", "x") or ".." in word, hist
        if ".." in word:
            lo, hi = word.split("..")
            float(lo), float(hi)                                    # both ends whole numbers


# --- toy data ---------------------------------------------------------------------------


def test_density_plot_places_points_in_their_cells():
    ext = (0.0, 1.0, 0.0, 1.0)
    t = R.density_plot(np.array([[0.95, 0.95], [0.5, 0.5]]),
                       np.array([[0.05, 0.05], [0.5, 0.5]]), 10, 6, ext)
    assert_box(t, 10, 6)
    lines = lines_of(t)
    assert lines[0][9] == R.REAL_GLYPH                      # top right
    assert lines[4][0] == R.FAKE_GLYPH                      # bottom left of the 5 plot rows
    assert lines[2][5] == R.BOTH_GLYPH                      # both in the middle cell
    assert rgb(cell_style(t, 0, 9).color) == R.REAL_RGB
    assert rgb(cell_style(t, 4, 0).color) == R.FAKE_RGB
    assert sum(line.count(g) for line in lines[:5]
               for g in (R.REAL_GLYPH, R.FAKE_GLYPH, R.BOTH_GLYPH)) == 3


def test_density_legend_glyphs_differ_and_read_without_colour():
    t = R.density_plot(np.zeros((3, 2)), np.ones((3, 2)), 40, 8, color="none")
    assert t.spans == []
    legend = lines_of(t)[-1]
    glyphs = {R.REAL_GLYPH, R.FAKE_GLYPH, R.BOTH_GLYPH}
    assert len(glyphs) == 3 and all(g in legend for g in glyphs)
    assert "real" in legend and "fake" in legend


def test_density_field_background_and_orientation():
    g = 16
    ys = np.linspace(-1, 1, g)
    field = np.repeat(ys[:, None], g, axis=1)               # field[iy, ix] grows with y
    ext = (-1.0, 1.0, -1.0, 1.0)
    t = R.density_plot(None, None, 12, 7, ext, field)
    top, bottom = cell_style(t, 0, 3).bgcolor, cell_style(t, 5, 3).bgcolor
    assert rgb(top) == pytest.approx(R.FIELD_REAL_RGB, abs=12)     # high score: "real" tint
    assert rgb(bottom) == pytest.approx(R.FIELD_FAKE_RGB, abs=12)
    bw = R.density_plot(None, None, 12, 7, ext, field, "none")
    lines = lines_of(bw)
    assert R.FIELD_GLYPH in lines[0] and R.FIELD_GLYPH not in lines[5]
    t256 = R.density_plot(np.zeros((2, 2)), np.ones((2, 2)) * 0.5, 12, 7, ext, field, "256")
    assert all(c.type != ColorType.TRUECOLOR for c in all_colors(t256))


def test_density_counts_off_plot_and_nan_points():
    t = R.density_plot(np.array([[5.0, 5.0], [0.0, 0.0]]),
                       np.array([[np.nan, 0.0], [0.1, 0.1]]), 44, 6, (-1, 1, -1, 1))
    legend = lines_of(t)[-1]
    assert "1 off-plot" in legend and "1 NaN" in legend


def test_auto_extent_contains_points_with_square_scale():
    pts = np.array([[-1.0, -0.5], [3.0, 0.5]])
    xmin, xmax, ymin, ymax = R.auto_extent([pts], 40, 10)
    assert xmin < -1 and xmax > 3 and ymin < -0.5 and ymax > 0.5
    # same data units per screen unit on both axes (a cell is 1 wide, 2 tall)
    assert (xmax - xmin) / 40 == pytest.approx((ymax - ymin) / 20)
    with pytest.raises(ValueError):
        R.density_plot(pts, pts, 10, 5, extent=None, field=np.zeros((4, 4)))


def test_histogram_bar_heights_are_proportional():
    real = np.zeros(100)                                    # all in bin 0
    fake = np.r_[np.zeros(50), np.ones(50)]                 # half in each bin
    t = R.histogram_1d(real, fake, 2, 5, bins=2, value_range=(0, 1))
    assert_box(t, 2, 5)
    lines = lines_of(t)[:4]
    assert [line[0] for line in lines] == ["█"] * 4          # real: full height
    assert [line[1] for line in lines] == [" ", " ", "█", "█"]  # fake: half
    assert rgb(cell_style(t, 0, 0).color) == R.REAL_RGB
    assert rgb(cell_style(t, 3, 0).color) == R.BOTH_RGB      # overlap of the two bars
    assert rgb(cell_style(t, 3, 1).color) == R.FAKE_RGB
    bw = R.histogram_1d(real, fake, 2, 5, bins=2, color="none", value_range=(0, 1))
    assert bw.spans == []
    cols = ["".join(line[i] for line in lines_of(bw)[:4]) for i in (0, 1)]
    assert cols == [R.HIST_REAL_ONLY * 2 + R.HIST_BOTH * 2, "  " + R.HIST_FAKE_ONLY * 2]


def test_histogram_eighths_and_legend():
    rng = np.random.default_rng(4)
    t = R.histogram_1d(rng.normal(-2, .35, 2000), rng.normal(1.5, .6, 1000), 50, 10)
    assert_box(t, 50, 10)
    body = "".join(lines_of(t)[:9])
    assert set(body) <= set(R.EIGHTHS)
    assert any(c in body for c in "▁▂▃▄▅▆▇")                 # sub-cell bar tops
    assert "real" in lines_of(t)[-1] and "fake" in lines_of(t)[-1]
    t256 = R.histogram_1d(rng.normal(size=50), rng.normal(size=50), 20, 6, color="256")
    assert all(c.type != ColorType.TRUECOLOR for c in all_colors(t256))


# --- sparklines and numbers -------------------------------------------------------------


def test_sparkline_extremes_and_length():
    s = R.sparkline([0, 1, 2, 3, 4, 5, 6, 7], 20)
    assert s == "▁▂▃▄▅▆▇█"
    assert R.sparkline([3.0, 3.0, 3.0], 10) == "▄▄▄"
    assert R.sparkline([], 10) == ""
    assert len(R.sparkline(range(1000), 40)) == 40


def test_sparkline_downsampling_keeps_spikes_and_nan():
    v = np.zeros(1000)
    v[517] = 10.0
    v[100] = -10.0
    s = R.sparkline(v, 40)
    assert s.count("█") == 1 and s.count("▁") == 1
    v[900] = np.nan
    s = R.sparkline(v, 40)
    assert s[36] == "!" and s.count("!") == 1
    assert R.sparkline([1.0, float("inf"), 2.0], 5) == "▁!█"
    assert R.sparkline([float("nan")] * 3, 5) == "!!!"


def test_sparkline_shared_scale():
    assert R.sparkline([0.5], 3, lo=0.0, hi=1.0) in ("▄", "▅")
    assert R.sparkline([2.0], 3, lo=0.0, hi=1.0) == "█"      # clipped


def test_format_lr():
    assert H.format_lr(1e-4) == "1.0e-04"
    assert H.format_lr("1e-4") == "1.0e-04"
    assert H.format_lr(2e-4) == "2.0e-04"
    assert H.format_lr(0.00015) == "1.5e-04"
    assert H.format_lr(5e-5) == "5.0e-05"


def test_format_duration():
    assert H.format_duration(460) == "7:40"
    assert H.format_duration(3723) == "1:02:03"
    assert H.format_duration(59.6) == "1:00"
    assert H.format_duration(0) == "0:00"
    assert H.format_duration(None) == "--:--"
    assert H.format_duration(float("inf")) == "--:--"


def test_pure_modules_import_neither_torch_nor_textual():
    code = ("import sys, gantui.render, gantui.history; "
            "bad = [m for m in ('torch', 'textual') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)

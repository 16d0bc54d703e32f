"""The full chart's line plot (gantui.ui.charts): pure, so its promises are checked cell by cell."""

from __future__ import annotations

import math

from gantui.ui.charts import BRAILLE, Curve, Mark, RefLine, format_step, line_chart, step_ticks


def rows(text) -> list[str]:
    return text.plain.split("\n")


def plot_cells(text, legend_lines: int = 1) -> list[str]:
    """The plot area: the rows between the legend and the x axis, right of the y axis."""
    lines = rows(text)[legend_lines:-2]
    return [line.split("┤", 1)[-1] if "┤" in line else line.split("│", 1)[-1] for line in lines]


def is_dot(ch: str) -> bool:
    return BRAILLE < ord(ch) <= BRAILLE + 0xFF


def test_step_ticks_are_integers_at_a_round_spacing():
    assert step_ticks(0, 1200, 13) == list(range(0, 1201, 100))
    assert step_ticks(3, 17, 10) == [4, 6, 8, 10, 12, 14, 16]
    assert all(isinstance(t, int) for t in step_ticks(0, 7, 20))        # never 57.7
    assert format_step(15000) == "15k" and format_step(2_500_000) == "2.5M" and format_step(1234) == "1234"


def test_legend_on_its_own_line_and_markers_never_hide_a_point():
    steps = list(range(0, 101))
    values = [float(s) for s in steps]                                   # a diagonal to the newest point
    marks = [Mark(50, "paused", "┊", "‖"), Mark(100, "lr change", "╎", "↕")]
    t = line_chart([Curve("D loss", steps, values)], 60, 20, marks=marks, color="truecolor")
    lines = rows(t)
    assert len(lines) == 20 and all(len(line) <= 60 for line in lines)
    assert "D loss" in lines[0] and "paused" in lines[0] and "lr change" in lines[0]
    assert not any(is_dot(c) for c in lines[0])                          # no curve under the legend
    cells = plot_cells(t)
    newest_col = max(i for line in cells for i, c in enumerate(line) if is_dot(c))
    assert any(is_dot(line[newest_col]) for line in cells)              # the newest point is drawn
    assert any(c in "┊╎‖↕" for line in cells for c in line)             # the markers are drawn...
    bare = plot_cells(line_chart([Curve("D loss", steps, values)], 60, 20, color="truecolor"), 1)
    for with_marks, without in zip(cells, bare):                         # ...and every curve cell survives
        for a, b in zip(with_marks, without):
            if is_dot(b):
                assert a == b
    # the marker at the newest step shares its column with the curve: the curve's cell wins
    assert any(is_dot(line[newest_col]) for line in cells) and any(line[newest_col] in "╎↕" for line in cells)


def test_markers_and_legend_carry_no_colour_of_their_own():
    t = line_chart([Curve("G loss", [0, 10], [1.0, 2.0])], 40, 10, marks=[Mark(5, "paused")])
    styles = {str(sp.style) for sp in t.spans if any(c in "┊‖" for c in t.plain[sp.start:sp.end])}
    assert styles == {"dim"}                                             # the terminal's own foreground


def test_no_color_curves_get_their_own_glyphs():
    t = line_chart([Curve("D", [0, 1, 2], [0.0, 1.0, 2.0]), Curve("G", [0, 1, 2], [2.0, 1.0, 0.0])],
                   40, 10, color="none")
    assert t.spans == [] or all(str(sp.style) in ("dim", "italic") for sp in t.spans)
    assert rows(t)[0].startswith("● D  × G")
    body = "".join(plot_cells(t))
    assert "●" in body and "×" in body and not any(is_dot(c) for c in body)


def test_log_scale_drops_non_positive_points_and_says_so():
    t = line_chart([Curve("ratio", [0, 1, 2, 3], [0.0, 0.1, 1.0, 10.0])], 50, 12, log=True)
    assert "1 point <= 0 not on the log scale" in rows(t)[0]
    labels = [line.split("┤")[0].strip() for line in rows(t) if "┤" in line]
    assert labels == ["10", "1", "0.1"]                                  # decades
    assert "turn the log scale off" in line_chart([Curve("x", [0, 1], [-1.0, 0.0])], 50, 12, log=True).plain


def test_reference_line_and_nan_points():
    t = line_chart([Curve("r", [0, 1, 2, 3], [1.0, math.nan, 2.0, 3.0])], 50, 12,
                   refs=[RefLine(6.0, "limit 6×")])
    assert "limit 6×" in rows(t)[0] and "! 1 NaN/inf" in rows(t)[0]
    assert any("┄" in line for line in plot_cells(t))

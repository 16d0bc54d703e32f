"""One table of the monitor's keys (gantui.ui.keys) makes the `?` help, the key bar and README's
table: README must read as the table says, and every key the app binds must be in it."""

from __future__ import annotations

import re

from conftest import REPO


def readme() -> str:
    return (REPO / "README.md").read_text()


def test_readmes_key_table_is_the_table_the_help_is_made_from():
    from gantui.ui.keys import readme_table

    text = readme()
    start = text.index("### The monitor's keys")
    table = text[text.index("| key | does |", start):]
    table = table[: table.index("\n\n")]
    assert table == readme_table()


def test_every_bound_key_is_in_the_table_and_the_help_shows_it_with_the_same_words():
    from gantui.ui.app import MonitorApp
    from gantui.ui.keys import KEYS
    from gantui.ui.widgets.help import KEY_HELP

    documented = set()
    for k in KEYS:  # the keys a row names: its key column, and `x` quoted in its words (`l` back to live)
        documented |= {t if t == "," else t.rstrip(",") for t in k.shown.split()} | set(re.findall(r"`([^`\s]+)`", k.does))
    for b in MonitorApp.BINDINGS:
        key = {"ctrl+c": "Ctrl-C"}.get(b.key, b.key_display or b.key)
        assert key in documented, f"key {key!r} is bound but not in gantui.ui.keys.KEYS"
    assert KEY_HELP == [(k.shown, k.words) for k in KEYS]
    f_words = dict(KEY_HELP)["f"]
    assert "n_critic" in f_words and "label smoothing" in f_words and "a rate change" not in f_words


def test_the_health_glyphs_in_help_and_readme_are_the_diagnostics_own():
    from gantui.diagnostics.health import LEVEL_GLYPHS
    from gantui.ui.keys import health_glyphs_text
    from gantui.ui.widgets.help import PANES

    words = health_glyphs_text()
    assert all(g in words for g in LEVEL_GLYPHS.values())
    assert words in dict(PANES)["Gradients"]
    assert words in readme().replace("`", "").replace("\n  ", " ")

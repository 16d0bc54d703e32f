"""The one-line status bar, the key bar, the error banner and the too-small notice."""

from __future__ import annotations

from rich.text import Text
from gantui.ui.widgets.base import Pane
from textual.widgets import Static

from gantui.ui.keys import bar_keys
from gantui.ui.text import StatusModel, status_text


class StatusLine(Pane):
    """run · device · step · it/s · ETA · G lr · D lr · n_critic · ckpt · STATE, fitted to the width."""

    def __init__(self, model: StatusModel, **kw) -> None:
        super().__init__(**kw)
        self.model = model

    def draw(self) -> Text:
        return status_text(self.model, self.size.width, max_lines=max(1, self.size.height))


# (key shown, words, priority) from gantui.ui.keys: the last to go at small widths are the contract keys.
KEYS = bar_keys(watching=False)
WATCH_KEYS = bar_keys(watching=True)   # q leaves, x stops the run


def key_text(width: int, keys=KEYS) -> Text:
    """'space pause  n step  [ ] G lr …' dropping the lowest-priority keys until it fits."""
    keys = list(keys)

    def length(ks) -> int:
        return sum(len(k) + 1 + len(w) for k, w, _ in ks) + 2 * (len(ks) - 1)

    while len(keys) > 1 and length(keys) > width:
        keys.pop(min(range(len(keys)), key=lambda i: (keys[i][2], -i)))
    t = Text(no_wrap=True, overflow="crop")
    for i, (k, w, _) in enumerate(keys):
        if i:
            t.append("  ")
        t.append(k, "bold reverse")
        t.append(" " + w)
    return t


class KeyBar(Pane):
    """The footer: the key contract, always visible (Textual's Footer spends a cell per
    bracket, which does not fit 80 columns)."""

    def draw(self) -> Text:
        return key_text(self.size.width, WATCH_KEYS if getattr(self.app, "watching", False) else KEYS)


class Banner(Static):
    """A crash, a divergence or a setup error: stays until the user quits."""


class TooSmall(Static):
    """Shown instead of the panes below the minimum size; training carries on regardless."""

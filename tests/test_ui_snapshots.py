"""Layout snapshots of the monitor (pytest-textual-snapshot): 120x36 and 80x24 for image
and toy data, and the below-minimum message. A scripted run (gantui.ui.scripted_run) feeds fixed
metrics through the same bridge as the real engine, so the screens are the same every time.

Update after an intended layout change: pytest tests/test_ui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time

import pytest

from gantui.engine import events as ev

pytest.importorskip("pytest_textual_snapshot")


@pytest.fixture(autouse=True)
def _stop_scripted_runs():
    """Scripted runs idle until stopped; do not leave their threads behind."""
    yield
    from gantui.ui.scripted_run import ScriptedTrainer

    ScriptedTrainer.stop_all()


class FixedSystem:
    def sample(self):
        from gantui.ui.sysinfo import SysStats

        return SysStats(cpu_pct=97.0, rss_bytes=812 << 20, gpu_bytes=None)

    def set_cuda(self, cuda: bool) -> None:
        pass


def make_app(kind: str, color: str = "truecolor", theme: str | None = None, run_dir=None):
    from gantui.ui.app import MonitorApp
    from gantui.ui.scripted_run import ScriptedTrainer

    app = MonitorApp(trainer_factory=lambda listeners: ScriptedTrainer(listeners, kind, run_dir), color=color,
                     run_dir=run_dir)
    app.animation_level = "none"
    app.system = FixedSystem()     # the cpu / mem line: the same in every snapshot
    if theme:
        app.theme = theme
    return app


def settled(app):
    async def run_before(pilot) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if app.state == ev.RUNNING and app.query_one("SamplesPane").samples is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)   # one more poll: everything published has been drawn
    return run_before


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_images_layout(snap_compare, size):
    app = make_app("digits")
    assert snap_compare(app, terminal_size=size, run_before=settled(app))


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_toy_2d_layout(snap_compare, size):
    app = make_app("ring8")
    assert snap_compare(app, terminal_size=size, run_before=settled(app))


def test_toy_1d_layout(snap_compare):
    app = make_app("mixture1d")
    assert snap_compare(app, terminal_size=(120, 36), run_before=settled(app))


def test_below_minimum_size(snap_compare):
    app = make_app("digits")
    assert snap_compare(app, terminal_size=(50, 14), run_before=settled(app))


def test_help_screen(snap_compare):
    # 80x24: the keys and panes; the alert rules (diagnostics' wording) stay below the fold
    app = make_app("digits")
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app), press=["question_mark"])


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_chart_screen(snap_compare, size):
    # a pause marker at the newest step, |grad D| on a log scale: the newest points stay visible
    app = make_app("digits")
    assert snap_compare(app, terminal_size=size, run_before=settled(app),
                        press=["space", "p", "2", "l"])


def test_chart_screen_light_theme_no_color(snap_compare):
    # markers and legend in the terminal's own foreground: legible on a light theme, glyphs without colour
    app = make_app("ring8", color="none", theme="textual-light")
    assert snap_compare(app, terminal_size=(100, 30), run_before=settled(app), press=["space", "p"])


def test_sample_history_and_event_log(snap_compare, tmp_path):
    # one saved grid back (the title says which), the event log filtered to alerts
    app = make_app("digits", run_dir=tmp_path)
    assert snap_compare(app, terminal_size=(120, 36), run_before=settled(app), press=["comma", "a"])

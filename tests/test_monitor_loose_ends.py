"""The monitor's loose ends (issue 21): the gauge's marker agrees with its verdict on a provoked
overpowering; `note` and `config_changed` events read as words; `,` with nothing older says so;
the step-0 grid is saved.

Real runs of the engine (the provoked one through the CLI in process, as tests/test_provoke.py);
the gauge line is the screen's own function, fed the metrics records the run wrote.
"""

from __future__ import annotations

import asyncio

from conftest import wait_until_async as wait_for
from gantui import config
from gantui.engine import events as ev
from test_provoke import provoke, sets
from test_ui import screen_text, wait_exit, wait_screen


def test_a_provoked_overpowering_shows_a_gauge_whose_marker_agrees_with_its_verdict(tmp_path, capsys):
    from gantui.ui.text import health_entries, ratio_gauge_line, ratio_verdict

    # a fast D against a frozen G: D's loss pins near 0 while its gradient (and so the ratio) is tiny
    raised, metrics = provoke(capsys, tmp_path, "vanilla", 100, *sets(
        "data.n_samples=2000", "log.every=5", "diagnostics.warmup_steps=50", "optim.d_lr=2e-3", "optim.g_lr=1e-7"))
    assert any(e["rule"] == "d_overpowering" for e in raised)
    alerted = [m for m in metrics if m.get("health", {}).get("levels", {}).get("d_overpowering") == "alert"]
    assert alerted, "no record judged D overpowering"
    for m in alerted:
        ratio = m["grad_norm_d"] / m["grad_norm_g"]
        v = ratio_verdict(health_entries(m), ratio, [])
        line = ratio_gauge_line(v, 100).plain
        assert "OVERPOWERING" in line, line
        dot, centre = line.index("●"), line.index("┼")
        assert dot > centre, f"the marker sits at the weak-D end beside OVERPOWERING: {line}"
        assert line[dot:].count("┃") <= 1, f"the marker is short of the limit it is judged by: {line}"
        if v.by:  # another signal than the ratio set the verdict: the line names it
            assert line.startswith(v.by["label"]), line
    assert any(health_entries(m)[1].by for m in alerted)  # the provoked case is the one the issue saw


def test_note_and_config_changed_events_read_as_words():
    from gantui.ui.text import event_line

    note = event_line(ev.Event(500, "note", {"message": "live quality: preparing the feature network"}))
    assert note.plain.startswith("· note: live quality: preparing the feature network") and "step 500" in note.plain
    change = event_line(ev.Event(40, "config_changed",
                                 {"changes": {"optim.g_lr": {"from": 1e-3, "to": 3e-4}}}))
    assert "optim.g_lr 0.001 -> 0.0003" in change.plain


def test_the_step_0_grid_is_saved_and_comma_with_nothing_older_says_so(ring_run):
    from gantui.ui.launch import watch_app

    assert (ring_run / "samples" / "step_00000000.png").exists()
    assert (ring_run / "samples" / "step_00000000.npz").exists()
    cfg = config.loads((ring_run / "config.toml").read_text())
    app = watch_app(cfg, ring_run)

    async def main():
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app._samples_w.samples is not None, 60, "the newest samples")
            for _ in range(3):  # 100 (live) -> 50 -> 0: the oldest
                await pilot.press("comma")
            await wait_screen(pilot, app, "step 0")
            await pilot.press("comma")
            await wait_for(pilot, lambda: "oldest" in str(app._samples_w.border_subtitle), 30, "the answer")
            screen = screen_text(app)
            assert "this is the oldest saved grid" in screen
            assert "x stop run" in screen and "q leave" in screen  # watch's key bar
            await pilot.press("q")
            await wait_exit(app, 30)

    asyncio.run(main())

"""The live monitor: pure helpers, the app over a scripted run, and the app over the REAL
Trainer driven with Textual's Pilot (key presses must change the engine's state).

Async tests run through asyncio.run (no pytest plugin needed).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from textual.geometry import Region

from gantui.engine import events as ev

from conftest import REPO, wait_until_async

os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY = ["model.g_width=32", "model.d_width=32", "data.batch_size=32", "loss.n_critic=1",
        "log.every=5", "log.sample_every=50", "log.checkpoint_every=100000", "log.n_samples=128"]


def stop_engine(app) -> None:
    """After a failed assertion the engine thread would train on inside pytest: stop it."""
    if app.session.alive():
        app.session.stop(reason="user")
        app.session.wait(30)


def tiny_cfg(steps: int = 100000, extra: list[str] | None = None):
    from gantui import config

    return config.load("ring8", TINY + [f"run.steps={steps}"] + (extra or []))


def status_of(app):
    """What the status line shows (its own model)."""
    return app.query_one("StatusLine").model


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_screen(pilot, app, *texts: str, absent: tuple = (), timeout: float = 30.0) -> str:
    """Until every one of `texts` is on the screen (and none of `absent`); returns the screen."""
    box = {}

    def ready() -> bool:
        box["text"] = text = screen_text(app)
        return all(t in text for t in texts) and not any(t in text for t in absent)
    try:
        await wait_until_async(pilot, ready, timeout, f"{texts} on the screen")
    except AssertionError:
        raise AssertionError(f"timed out waiting for {texts} (absent {absent}); the screen:\n{box['text']}")
    return box["text"]


async def wait_exit(app, timeout: float = 30.0) -> None:
    await wait_until_async(None, lambda: app.return_code is not None, timeout, "the app to exit")


def events_of(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(autouse=True)
def _stop_scripted_runs():
    """Scripted runs idle until stopped; do not leave their threads behind."""
    yield
    from gantui.ui.scripted_run import ScriptedTrainer

    ScriptedTrainer.stop_all()


# --- pure helpers ---------------------------------------------------------------------------------

def test_bridge_coalesces_state_and_keeps_every_metrics_record():
    from gantui.ui.bridge import Bridge

    wakes = []
    b = Bridge(max_metrics=3, max_events=2, wake=lambda: wakes.append(1))
    for step in range(1, 6):
        b(ev.Snapshot(step, 10, {"step": step, "d_loss": 1.0}, ev.RUNNING, 1, None))
    assert wakes == []                             # snapshots never wake the UI: the timer polls
    b(ev.StateChanged(5, ev.PAUSED, 1e-4, 1e-4, 1))
    b(ev.Event(5, "paused"))
    d = b.drain()
    assert d.snapshot.step == 5                    # only the newest snapshot
    assert [m["step"] for m in d.metrics] == [3, 4, 5]   # bounded: the oldest went
    assert d.dropped == 2
    assert d.state.state == ev.PAUSED and [e.kind for e in d.events] == ["paused"]
    assert len(wakes) == 2
    assert not b.drain()                           # drained means empty


def test_status_line_keeps_step_rates_and_state_at_80_columns():
    from gantui.ui.text import StatusModel, status_text

    m = StatusModel(name="a_rather_long_run_name", device="cuda:0", step=1200, total=20000,
                    steps_per_s=41.3, eta_s=460, lr_g=1e-4, lr_d=2e-4, n_critic=5,
                    state=ev.PAUSED, last_checkpoint="@1000")
    wide = status_text(m, 200).plain
    narrow = status_text(m, 80).plain
    assert "a_rather_long_run_name" in wide and "ckpt @1000" in wide
    assert len(narrow) <= 80
    for must in ("step 1200/20000", "G lr 1.0e-04", "D lr 2.0e-04", "PAUSED"):
        assert must in narrow
    assert "a_rather_long_run_name" not in narrow  # the name goes before any of the above


def test_key_bar_fits_and_keeps_the_contract_keys():
    from gantui.ui.widgets.status import key_text

    full = key_text(200).plain
    for key in ("space pause", "n step", "[ ] G lr", "{ } D lr", "s save", "p plot", "? help", "q quit"):
        assert key in full
    small = key_text(60).plain
    assert len(small) <= 60 and "q quit" in small and "space pause" in small


def test_ratio_gauge_draws_the_verdicts_limit():
    from gantui.ui.text import gauge

    ok, over = gauge(1.5, 31, limit=5.0).plain, gauge(9.0, 31, limit=5.0).plain
    assert ok.count("┃") == 1 and "┼" in ok and ok.index("┼") < ok.index("●") < ok.index("┃")
    assert over.index("●") > over.index("┃")      # beyond the limit line
    assert "┃" not in gauge(9.0, 31).plain         # no limit known: no line of its own making
    assert "●" not in gauge(None, 31).plain


def test_gradients_pane_sizes_itself_from_what_it_draws():
    from gantui.history import History
    from gantui.ui.text import health_entries
    from gantui.ui.scripted_run import demo_run
    from gantui.ui.widgets.metrics import GradientsPane

    for kind in ("digits", "ring8", "mixture1d"):
        _, snaps, _, _ = demo_run(kind)
        history = History()
        for snap in snaps:
            history.append(snap.metrics)
        pane = GradientsPane(history)
        pane.critic = kind == "digits"
        pane.health = health_entries(snaps[-1].metrics)
        for width in (34, 46, 64, 90):
            blocks = pane.blocks(width)
            assert pane.wanted_lines(width) == sum(len(lines) for _, lines in blocks), (kind, width)
            assert any("quality" in line.plain for _, lines in blocks for line in lines)
            assert all(line.cell_len <= width for _, lines in blocks for line in lines), (kind, width)


def test_readout_numbers_keep_a_space_between_columns():
    from gantui.ui.text import fmt_num

    for v in (-3.5e-4, 3.5e-4, -12345.6, -9999.94, -99.9994, -9.99994, 1e-12, -1e300, math.nan, -math.inf, 0.0):
        assert len(fmt_num(v, 8)) == 8 and fmt_num(v, 8)[0] == " ", v


def test_health_adapter_and_the_gauge_verdict_agree_with_the_rules():
    from gantui.ui.text import health_entries, health_lines, ratio_verdict

    # record["health"] as the engine writes it (gantui.diagnostics.health.Health.to_record)
    record = {"step": 10, "health": {
        "levels": {"d_overpowering": "ok", "mode_collapse": "alert", "oscillation": "watch"},
        "gauge": {"ratio": 9.0, "limit": 12.0}}}
    entries = health_entries(record)
    assert [e.rule for e in entries] == ["d_overpowering", "mode_collapse", "oscillation"]
    # a ratio of 9 is not "overpowering" when the rule (baseline-relative limit 12) says ok
    v = ratio_verdict(entries, 9.0, set())
    assert (v.level, v.word, v.value, v.limit) == ("ok", "ok", 9.0, 12.0)
    # without verdicts the screen follows the alert, never a fixed line of its own
    assert ratio_verdict([], 9.0, set()).word == ""
    assert ratio_verdict([], 1.2, {"d_overpowering"}).level == "alert"
    assert ratio_verdict([], 1.2, {"d_overpowering"}).word == "OVERPOWERING"
    text = " ".join(line.plain for line in health_lines(entries, 200))
    assert "✓ D/G ok" in text and "▲ collapse COLLAPSED" in text and "△ osc watch" in text
    narrow = health_lines(entries, 34, max_lines=1)
    assert len(narrow) == 1 and narrow[0].cell_len <= 34 and "+" in narrow[0].plain   # counted, not cut
    assert "▲ collapse COLLAPSED" in narrow[0].plain                   # the alert first, the oks later
    words = {"health", "✓", "▲", "△", "D/G", "ok", "collapse", "COLLAPSED", "osc", "watch"}
    for width in range(10, 80):
        lines = health_lines(entries, width, 2)
        assert all(line.cell_len <= width for line in lines), width
        assert {w for line in lines for w in line.plain.split() if not w.startswith("+")} <= words, width
    assert health_entries({"step": 1}) == [] and health_entries(None) == []
    assert health_entries({"health": {"levels": {"d_overpowering": "bogus"}}}) == []  # malformed: nothing


def test_status_line_counts_active_alerts_at_the_minimum_width():
    from gantui.ui.text import StatusModel, status_text

    m = StatusModel(name="ring8", device="cpu", step=1200, total=20000, steps_per_s=41.3, eta_s=460,
                    lr_g=1e-4, lr_d=1e-4, n_critic=5, state=ev.RUNNING, alerts=2)
    assert "▲ 2 alerts" in status_text(m, 200).plain
    for width in (58, 78):
        line = status_text(m, width).plain
        assert len(line) <= width and "▲2" in line and "step 1200/20000" in line and "RUNNING" in line
    assert "41.3 it/s" in status_text(m, 78).plain and "D lr 1.0e-04" in status_text(m, 78).plain
    m.alerts = 0
    assert "alert" not in status_text(m, 200).plain and "▲" not in status_text(m, 200).plain


def test_exit_lines_name_the_checkpoint_and_the_next_command(tmp_path):
    from gantui.ui.text import exit_lines

    run = tmp_path / "runs" / "ring8 a"
    ckpt = run / "checkpoints" / "latest.safetensors"
    lines = exit_lines(state=ev.STOPPED, step=120, total=1000, run_dir=run, checkpoint=ckpt,
                       config_path=run / "config.toml", cwd=str(tmp_path))
    assert lines[0] == "gantui: stopped at step 120/1000; checkpoint: 'runs/ring8 a/checkpoints/latest.safetensors'"
    assert lines[1].strip() == "resume: gantui run --resume 'runs/ring8 a'"
    assert "interrupted" in exit_lines(state=ev.STOPPED, step=1, total=2, run_dir=run, checkpoint=ckpt,
                                       code=130, cwd=str(tmp_path))[0]
    going = exit_lines(state=ev.RUNNING, step=5, total=9, run_dir=run, running=True, cwd=str(tmp_path))
    assert "goes on" in going[0] and "gantui watch 'runs/ring8 a'" in going[1]
    done = exit_lines(state=ev.FINISHED, step=9, total=9, run_dir=run, checkpoint=ckpt, cwd=str(tmp_path))
    assert "finished" in done[0] and "latest.safetensors" in done[0] and "gantui sample" in done[1]
    assert done[1].endswith(f"gantui eval 'runs/ring8 a'")
    folder = exit_lines(state=ev.FINISHED, step=9, total=9, run_dir=run, checkpoint=ckpt, cwd=str(tmp_path),
                        data_root="my images")
    assert folder[1].endswith("gantui eval 'runs/ring8 a' --data-root 'my images'")  # eval never reads a run's path
    assert "no checkpoint" in exit_lines(state=ev.STOPPED, step=0, total=9, run_dir=run, cwd=str(tmp_path))[0]


def test_samples_title_keeps_the_step_at_any_width():
    from gantui import config
    from gantui.ui.description import RunDescription
    from gantui.ui.text import samples_title

    assert RunDescription.of(config.load("ring8", ["model.ema=0.999"])).generator == "EMA"
    assert RunDescription().generator is None
    assert RunDescription.of(config.load("ring8", ["model.ema=0.0"])).generator == "live"
    for width in range(8, 70):
        title = samples_title(12500, width, "fixed noise", "EMA", (3, 9))
        assert len(title) <= max(width, len("step 12500 ◀")) and "step 12500" in title
    assert samples_title(12500, 80, "fixed noise", "EMA") == "Samples · fixed noise · EMA G · step 12500"
    assert "history 3/9" in samples_title(12500, 80, "fixed noise", "EMA", (3, 9))


def test_event_log_keeps_everything_up_to_its_cap_and_wraps():
    from gantui.ui.text import alert_entry
    from gantui.ui.widgets.alerts import LOG_CAP, AlertsModel

    m = AlertsModel()
    for i in range(LOG_CAP + 10):
        m.add(ev.Event(i, "paused" if i % 2 else "resumed"))
    assert len(m.log) == LOG_CAP and m.dropped == 10 and m.log[0].step == 10
    data = {"rule": "d_overpowering", "severity": "warning", "message": "D overpowers G " * 6,
            "evidence": {"grad_ratio": 6.123456, "threshold": 5.0}, "fix": "halve D lr"}
    lines = [line.plain for line in alert_entry(data, 1100, None, 40, fix_key=True, applied=True)]
    assert all(len(line) <= 40 for line in lines) and "…" not in "".join(lines)
    text = " ".join(line.strip() for line in lines)
    assert "step 1100" in text and "grad_ratio 6.123" in text and "fix [f]: halve D lr (applied)" in text


def test_system_line_reads_proc_without_torch(tmp_path):
    from gantui.ui.sysinfo import CLK_TCK, PAGE, ProcSampler

    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)
    stat = proc / "42" / "stat"
    fields = ["S"] + ["0"] * 10 + ["{u}", "{s}"] + ["0"] * 30
    template = "42 (a (weird) name) " + " ".join(fields)
    stat.write_text(template.format(u=0, s=0))
    (proc / "42" / "statm").write_text("1000 250 10 1 0 50 0\n")
    clock = iter([100.0, 102.0])
    sampler = ProcSampler(42, proc=str(proc), clock=lambda: next(clock), gpu_probe=lambda pid: 3 << 30)
    first = sampler.sample()
    assert first.cpu_pct is None and first.rss_bytes == 250 * PAGE and first.gpu_bytes is None
    stat.write_text(template.format(u=CLK_TCK, s=CLK_TCK // 2))     # 1.5 s of CPU in 2 s
    sampler.set_cuda(True)
    second = sampler.sample()
    assert second.cpu_pct == pytest.approx(75.0, abs=1) and second.gpu_bytes == 3 << 30
    own = ProcSampler().sample()                                     # this process, for real
    assert own.rss_bytes and own.rss_bytes > 10 << 20
    assert ProcSampler(2 ** 22 + 7, proc=str(proc)).sample() == type(own)(None, None, None)


def test_column_chart_resamples_keeps_spikes_and_flags_nan():
    from gantui.ui.charts import column_chart, resample

    values = [0.0] * 100
    values[37] = 10.0
    assert max(resample(values, 10)) == 10.0      # a one-record spike survives downsampling
    lines = column_chart(values, 10, 2)
    assert len(lines) == 2 and all(len(line) == 10 for line in lines)
    assert "█" in lines[0]
    assert "!" in column_chart([1.0, math.nan, 2.0], 5, 1)[0]


def test_alerts_model_raise_clear_and_fixable():
    from gantui.ui.widgets.alerts import AlertsModel

    m = AlertsModel()
    raised = {"rule": "d_wins", "state": "raised", "severity": "critical", "message": "D wins",
              "fix": "halve D lr", "action": {"which": "d", "factor": 0.5}}
    m.add(ev.Event(10, "alert", raised))
    m.add(ev.Event(12, "alert", {"rule": "other", "state": "raised", "severity": "warning",
                                 "message": "x", "fix": "look", "action": None}))
    assert m.fixable().rule == "d_wins"
    m.fixable().applied = True
    assert m.fixable() is None
    m.add(ev.Event(20, "alert", {"rule": "d_wins", "state": "cleared"}))
    assert set(m.active) == {"other"}


def test_alert_entry_reads_without_colour():
    from gantui.ui.text import alert_entry

    lines = alert_entry({"severity": "critical", "rule": "divergence", "message": "D overpowers G",
                         "fix": "halve D lr"}, 1200, None, 80, fix_key=True)
    head, tail = (line.plain for line in lines)
    assert "CRITICAL" in head and "step 1200" in head and head[0] not in " ≈"
    assert "halve D lr" in tail and "fix [f]" in tail


def test_color_mode_follows_the_terminal():
    from gantui.ui.widgets.samples import color_mode

    assert color_mode(False, {"COLORTERM": "truecolor"}) == "truecolor"
    assert color_mode(False, {"TERM": "xterm-256color"}) == "256"
    assert color_mode(True, {"COLORTERM": "truecolor"}) == "none"
    assert color_mode(False, {"NO_COLOR": "1", "COLORTERM": "truecolor"}) == "none"


def test_toy_plot_keeps_its_aspect_ratio():
    from gantui.ui.widgets.samples import _square_cells

    assert _square_cells((-1, 1, -1, 1), 80, 21) == (40, 21)   # cells are ~twice as tall as wide
    w, h = _square_cells((-1, 1, -1, 1), 30, 21)
    assert w == 30 and h < 21


def test_detachable_stream_never_raises():
    from gantui.ui.launch import DetachableStream

    class Dead:
        def write(self, text):
            raise OSError(5, "Input/output error")

        def flush(self):
            raise OSError(5, "Input/output error")

    s = DetachableStream(Dead())
    assert s.write("frame") == 5          # EIO: swallowed, and from now on writes are dropped
    s.flush()
    assert s.detached

    class Sink:
        def __init__(self):
            self.out = []

        def write(self, text):
            self.out.append(text)
            return len(text)

        def flush(self):
            pass

    sink = Sink()
    s = DetachableStream(sink)
    s.write("a")
    s.detach()
    s.write("b")
    assert sink.out == ["a"]


def test_the_first_frame_needs_neither_numpy_nor_torch():
    """What the monitor imports before its first frame: numpy alone is ~0.15 s on a busy box."""
    code = ("import sys, gantui.cli, gantui.config, gantui.ui.launch, gantui.ui.app; "
            "print('numpy' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_launch_module_imports_no_textual_or_torch():
    code = "import sys, gantui.ui.launch; print('textual' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_help_reads_like_a_normal_cli():
    for args in (["--help"], ["run", "--help"], ["sample", "--help"], ["eval", "--help"]):
        out = subprocess.run([sys.executable, "-m", "gantui", *args], capture_output=True, text=True,
                             cwd=REPO, timeout=60)
        assert out.returncode == 0 and "Usage:" in out.stdout, out.stderr
        assert "<bool>" not in out.stdout and "<int>" not in out.stdout and "<list" not in out.stdout, out.stdout
    run_help = subprocess.run([sys.executable, "-m", "gantui", "run", "--help"], capture_output=True, text=True,
                              cwd=REPO, timeout=60).stdout
    assert re.search(r"--headless\s+No monitor", run_help) and "--set KEY=VALUE" in run_help


def test_history_stays_bounded_for_a_long_run():
    from gantui.history import History

    h = History(capacity=512)
    for step in range(0, 200_000, 10):
        h.append({"step": step, "d_loss": math.sin(step), "g_loss": 1.0})
    assert len(h.series("d_loss")) <= 512
    assert h.series("d_loss").steps()[-1] == 199_990


# --- the app over a scripted run (layout and UI logic) --------------------------------------------

def scripted_app(kind: str = "digits", **kw):
    from gantui.ui.app import MonitorApp
    from gantui.ui.scripted_run import ScriptedTrainer

    box = {}

    def factory(listeners):
        box["trainer"] = ScriptedTrainer(listeners, kind, kw.get("run_dir"))
        return box["trainer"]

    app = MonitorApp(trainer_factory=factory, color="truecolor", **kw)
    return app, box


async def settle(app, pilot) -> None:
    await wait_until_async(pilot, lambda: app.state == ev.RUNNING and app.query_one("SamplesPane").samples
                   is not None, 20, "the scripted run")
    await wait_screen(pilot, app, "RUNNING", "step 1200")


def test_layout_fits_80x24_with_step_and_both_rates():
    async def main():
        app, _ = scripted_app("ring8")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            first = text.splitlines()[0]
            for must in ("step 1200/20000", "G lr 1.0e-04", "D lr 1.0e-04", "RUNNING"):
                assert must in first
            assert "Losses" in text and "Samples" in text and "Alerts" in text and "q quit" in text
            assert "○ real" in text                   # the toy density plot's legend
            await pilot.press("q")
            await wait_exit(app)
        assert app.return_code == 0
    asyncio.run(main())


def test_below_minimum_size_says_so():
    async def main():
        app, _ = scripted_app()
        async with app.run_test(size=(50, 14)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            assert "too small" in text and "50x14" in text and "60x16" in text
            assert "Losses" not in text
    asyncio.run(main())


def test_no_color_draws_samples_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def main():
        from gantui.ui.app import MonitorApp
        from gantui.ui.scripted_run import ScriptedTrainer

        app = MonitorApp(trainer_factory=lambda ls: ScriptedTrainer(ls, "digits"))
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            pane = app.query_one("SamplesPane")
            assert app.no_color and pane.color == "none"
            assert "▀" not in screen_text(app)      # a luminance ramp instead of coloured half-blocks
            assert "WARNING" in screen_text(app)    # the alert's words, not just its colour
    asyncio.run(main())


def test_f_applies_the_alerts_rate_fix_and_it_is_logged():
    async def main():
        app, box = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("f")
            trainer = box["trainer"]
            await wait_until_async(pilot, lambda: any(e.kind == "lr_changed" for e in trainer.recorded), 30, "fix")
            change = next(e for e in trainer.recorded if e.kind == "lr_changed")
            assert change.data["which"] == "d" and change.data["new"] == pytest.approx(5e-5)
            assert change.data["reason"] == "fix:d_overpowering"
            text = await wait_screen(pilot, app, "D lr 5.0e-05", "fix: halve D lr (applied)")
            assert "D lr 5.0e-05" in text.splitlines()[0]
    asyncio.run(main())


def test_n_while_paused_steps_once_through_the_engine_double():
    async def main():
        app, box = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("space")
            await wait_screen(pilot, app, "PAUSED", "step 1200/20000")
            await pilot.press("n")
            # the double applies the Step command as the engine does: one step, still paused
            text = await wait_screen(pilot, app, "step 1201/20000", "PAUSED")
            assert "step 1201/20000" in text.splitlines()[0]
            assert box["trainer"].step == 1201 and box["trainer"].paused
    asyncio.run(main())


def test_f_applies_a_live_setting_fix_and_set_n_critic_reaches_the_screen():
    async def main():
        from gantui.engine.control import SetNCritic

        app, box = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            trainer = box["trainer"]
            await wait_screen(pilot, app, "n_critic 5")
            # a newer alert whose fix is a live loss setting: `f` sends it as the engine's `set`
            trainer.record_event("alert", rule="oscillation", state="raised", severity="warning",
                                 message="the losses swing", fix="label_smoothing -> 0.1",
                                 action={"kind": "set", "key": "loss.label_smoothing", "value": 0.1})
            await wait_until_async(pilot, lambda: "oscillation" in app.query_one("AlertsPane").model.active, 30, "the alert")
            await pilot.press("f")
            await wait_until_async(pilot, lambda: any(e.kind == "setting_changed" for e in trainer.recorded),
                                   30, "the setting change")
            change = next(e for e in trainer.recorded if e.kind == "setting_changed")
            assert change.data == {"key": "loss.label_smoothing", "old": 0.0, "new": 0.1,
                                   "reason": "fix:oscillation"}
            # set_n_critic, as the socket's {"cmd": "set_n_critic"} arrives: the screen shows what
            # the engine confirmed
            app.session.control.send(SetNCritic(value=2, reason="remote"))
            text = await wait_screen(pilot, app, "n_critic 2")
            assert "n_critic 2" in text.splitlines()[0] and trainer.n_critic == 2
            assert any(e.kind == "n_critic_changed" and e.data["new"] == 2 for e in trainer.recorded)
    asyncio.run(main())


def test_chart_screen_chooses_series_log_scale_and_zoom():
    async def main():
        from gantui.ui.widgets.chart import ChartScreen
        from gantui.ui.widgets.help import HelpScreen

        app, _ = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("space")                # a pause marker for the chart
            await wait_until_async(pilot, lambda: any(m.kind == "paused" for m in app.history.markers), 30, "pause")
            await pilot.press("p")
            text = await wait_screen(pilot, app, "|grad D|", "|grad G|", "|grad D|/|grad G|", "sample_std",
                                     "learning rates", "FID", "KID",   # quality metrics: listed once present
                                     "losses · whole run · linear scale", "D loss", "W estimate", "paused",
                                     "l log scale: off")
            assert isinstance(app.screen, ChartScreen)
            ticks = [line for line in text.splitlines() if "┬" in line]
            labels = text.splitlines()[text.splitlines().index(ticks[0]) + 1].split("╯")[-1].split()
            assert labels and all(t.rstrip("k").isdigit() for t in labels)   # integer step ticks
            await pilot.press("2")
            await pilot.press("l")
            await wait_screen(pilot, app, "|grad D| · whole run · log scale", "l log scale: on")
            await pilot.press("z")
            await wait_screen(pilot, app, "|grad D| · last 1,000 steps · log scale", "z zoom: last 1,000")
            await pilot.press("0")
            await wait_screen(pilot, app, "|grad D| · whole run · log scale")
            await pilot.press("p")
            await pilot.press("question_mark")
            await wait_screen(pilot, app, "halve / double the G")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("end")
            await wait_screen(pilot, app, "mode_collapse")          # the rules, from diagnostics
            await pilot.press("escape")
            await wait_screen(pilot, app, "Losses", "Samples")
            assert not isinstance(app.screen, (HelpScreen, ChartScreen))
            await pilot.press("p")                               # the chart remembers its choices
            await wait_screen(pilot, app, "|grad D| · whole run · log scale")
    asyncio.run(main())


def test_chart_keeps_its_choice_when_a_poll_comes_before_it_is_mounted():
    """The app's poll can redraw a chart screen between compose and on_mount, while its list still
    highlights the first entry: the remembered series must survive that."""
    async def main():
        from gantui.ui.widgets.chart import ChartScreen

        class PolledEarly(ChartScreen):
            def on_mount(self) -> None:
                self.tick()
                super().on_mount()

        app, _ = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            app.chart_state.choice = "grad_d"
            await app.push_screen(PolledEarly(app.history, state=app.chart_state))
            await wait_screen(pilot, app, "|grad D| · whole run")
            assert app.chart_state.choice == "grad_d"
    asyncio.run(main())


def test_event_log_scrolls_back_to_the_first_event():
    async def main():
        app, box = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            for _ in range(50):
                await pilot.press("space")
            trainer = box["trainer"]
            await wait_until_async(pilot, lambda: len(trainer.recorded) >= 50, 30, "50 pause/resume events")
            await wait_screen(pilot, app, "53 events", absent=("started",))   # pushed down by the newest
            assert app.focused is app.query_one("AlertsPane")
            await pilot.press("end")
            await wait_screen(pilot, app, "▶ started · step 0")
            pane = app.query_one("AlertsPane")
            wide, wide_width = pane.border_title, pane.size.width
            assert "scrolled" in wide
            await pilot.resize_terminal(80, 24)
            await wait_until_async(pilot, lambda: pane.outer_size.width < len(wide) + 6, 30, "the narrow layout")
            # The first frame at the new width, as Textual draws it when the resize lays out
            # before anything else runs: the border still holds the title made for 120 columns.
            pane.border_title, pane._title_width = wide, wide_width
            top = pane.render_lines(Region(0, 0, pane.outer_size.width, 1))[0].text
            assert "Alerts" in top and "…" not in top, top
            await pilot.resize_terminal(120, 36)
            await pilot.press("home")
            await wait_screen(pilot, app, absent=("started", "scrolled"))
            await pilot.press("j", "j", "down", "k")
            await wait_screen(pilot, app, "scrolled 2 (Home: top)")
            for _ in range(20):                                # PgDn pages down to the first event
                await pilot.press("pagedown")
                if "▶ started · step 0" in screen_text(app):
                    break
            await wait_screen(pilot, app, "▶ started · step 0")
            await pilot.press("pageup")
            await pilot.press("a")                               # alerts only
            await wait_screen(pilot, app, "alerts only", "d_overpowering", absent=("resumed",))
    asyncio.run(main())


def test_sample_history_steps_back_and_returns_to_live(tmp_path):
    async def main():
        app, _ = scripted_app(run_dir=tmp_path)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            pane = app.query_one("SamplesPane")
            await wait_screen(pilot, app, "Samples · fixed noise · step 1200", absent=("history",))
            await pilot.press("comma")
            await wait_screen(pilot, app, "step 800 · history 2/3")
            live_text = pane._text
            await pilot.press("comma")
            await wait_screen(pilot, app, "step 400 · history 1/3")
            assert pane._text is not live_text
            await pilot.press("comma")                         # the oldest: stays, says so
            await wait_until_async(pilot, lambda: any("oldest" in n.message for n in app._notifications), 30, "a notice")
            assert "step 400 · history 1/3" in screen_text(app)
            await pilot.press("full_stop")
            await wait_screen(pilot, app, "step 800 · history 2/3")
            await pilot.press("tab")                           # focus the samples: arrows step too
            await pilot.press("left")
            await wait_screen(pilot, app, "step 400 · history 1/3")
            assert app.focused is pane
            await pilot.press("l")
            await wait_screen(pilot, app, "Samples · fixed noise · step 1200", absent=("history",))
            assert pane.position is None
    asyncio.run(main())


def test_quick_pause_presses_leave_no_stale_note():
    async def main():
        app, box = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            for _ in range(4):                  # what space does, four times before the engine answers
                app.action_toggle_pause()
            await wait_until_async(pilot, lambda: len(box["trainer"].recorded) >= 4, 30, "four toggles")
            status = (await wait_screen(pilot, app, "RUNNING", absent=("PAUSING", "RESUMING"))).splitlines()[0]
            assert "RUNNING" in status
            for _ in range(3):
                app.action_toggle_pause()
            await wait_until_async(pilot, lambda: len(box["trainer"].recorded) >= 7, 30, "three more")
            await wait_screen(pilot, app, "PAUSED", absent=("PAUSING", "RESUMING"))
    asyncio.run(main())


def test_rates_freeze_while_paused():
    async def main():
        app, _ = scripted_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("space")
            await wait_screen(pilot, app, "PAUSED", "41.3 it/s", absent=("PAUSING",))
            # what a single step after a long pause reports: not the run's speed
            app.bridge(ev.Snapshot(1201, 20000, {"step": 1201, "steps_per_s": 0.9}, ev.PAUSED, 5, 20000.0))
            status = (await wait_screen(pilot, app, "step 1201/")).splitlines()[0]
            assert "41.3 it/s" in status and "1.1 s/it" not in status and "5:33:20" not in status
    asyncio.run(main())


def test_q_leaves_the_checkpoint_path_and_a_resume_command(tmp_path):
    async def main():
        app, box = scripted_app(run_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            (tmp_path / "config.toml").write_text("")
            (tmp_path / "checkpoints").mkdir()
            (tmp_path / "checkpoints" / "latest.safetensors").write_text("")
            box["trainer"].last_checkpoint = tmp_path / "checkpoints" / "step_00001200.safetensors"
            await pilot.press("q")
            await wait_exit(app)
        assert app.return_code == 0
        lines = app.exit_summary()
        assert "stopped at step 1200/20000" in lines[0] and "checkpoints/latest.safetensors" in lines[0]
        assert f"gantui run --resume {tmp_path}" in lines[1]
    asyncio.run(main())


class CrashingTrainer:
    """Publishes what the real Trainer publishes when its loop raises."""

    def __init__(self, listeners):
        from gantui.engine.control import Control

        self.control, self.listeners = Control(), listeners
        self.state, self.exit_code, self.step = ev.STARTING, 0, 0

    def start(self):
        def run():
            info, *_ = __import__("gantui.ui.scripted_run", fromlist=["demo_run"]).demo_run("ring8", steps=20)
            for fn in self.listeners:
                fn(info)
            self.exit_code, self.state = 1, ev.CRASHED
            for msg in (ev.Event(20, "error", {"message": "RuntimeError: boom",
                                               "traceback": "/runs/x/traceback.txt"}),
                        ev.StateChanged(20, ev.CRASHED, 0.0, 0.0, 0)):
                for fn in self.listeners:
                    fn(msg)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t


def test_a_crash_shows_the_error_and_waits_for_q():
    async def main():
        from gantui.ui.app import MonitorApp

        app = MonitorApp(trainer_factory=CrashingTrainer)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until_async(pilot, lambda: app.state == ev.CRASHED, 30, "the crash")
            await wait_screen(pilot, app, "RuntimeError: boom", "/runs/x/traceback.txt", "CRASHED")
            await pilot.pause(1.0)                    # a second later the screen is still there
            assert app.return_code is None
            await pilot.press("q")
            await wait_exit(app)
        assert app.return_code == 1
    asyncio.run(main())


def test_bad_input_at_setup_exits_2_with_the_message():
    from gantui.errors import DataError

    def factory(listeners):
        raise DataError("data/mnist: not found and download = false; set data.download=true")

    async def main():
        from gantui.ui.app import MonitorApp

        app = MonitorApp(trainer_factory=factory)
        async with app.run_test(size=(80, 24)):
            await wait_exit(app, 10)
        assert app.return_code == 2 and "download" in app.user_error
    asyncio.run(main())


def test_an_engine_that_cannot_start_shows_why_and_saves_the_traceback(tmp_path):
    def factory(listeners):
        raise RuntimeError("no such kernel")

    async def main():
        from gantui.ui.app import MonitorApp

        app = MonitorApp(None, tmp_path, trainer_factory=factory)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until_async(pilot, lambda: app.state == ev.CRASHED, 30, "the failure")
            await wait_screen(pilot, app, "CANNOT START", "no such kernel")
            await pilot.press("q")
            await wait_exit(app)
        assert app.return_code == 1
        assert "no such kernel" in (tmp_path / "traceback.txt").read_text()
    asyncio.run(main())


def test_hangup_detaches_the_app_and_leaves_the_engine_running(tmp_path):
    async def main():
        from gantui.ui.launch import Hangup

        app, box = scripted_app()
        hangup = Hangup(app, tmp_path)
        redirected = []
        hangup.redirect = redirected.append            # not this test process's fds
        hangup.watchdog = False
        app.hangup_hook = hangup.on_loop
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            hangup.on_signal(1, None)                  # what SIGHUP runs
            await wait_exit(app, 10)
        trainer = box["trainer"]
        assert app.detached and redirected == [tmp_path / "console.log"]
        assert any(e.kind == "hangup" for e in trainer.recorded)
        assert app.session.alive()                     # still training, headless
        trainer.control.stop(reason="user")
        assert app.session.wait(5) and app.session.exit_code == 0
        log = (tmp_path / "console.log").read_text()
        assert "hung up" in log and "stopped" in log  # the plain printer took over
        hangup.log.close()
    asyncio.run(main())


# --- the app over the REAL Trainer -----------------------------------------------------------------

def test_keys_drive_the_real_engine(tmp_path):
    """space pauses (the step stops), ] doubles G lr, { halves D lr, n steps once, s saves,
    space resumes, q saves + stops + exits 0; every change lands in events.jsonl."""
    from gantui.ui.launch import monitor_app

    run_dir = tmp_path / "run"
    app = monitor_app(tiny_cfg(), run_dir, "cpu", None, color="truecolor")

    async def main():
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until_async(pilot, lambda: app.info is not None and status_of(app).step >= 10, 90, "training")
            trainer = app.session.trainer

            await pilot.press("space")
            await wait_until_async(pilot, lambda: trainer.state == ev.PAUSED, 30, "PAUSED")
            assert "PAUSED" in (await wait_screen(pilot, app, "PAUSED", absent=("PAUSING",))).splitlines()[0]
            step = trainer.step
            await pilot.pause(0.6)
            assert trainer.step == step                  # paused means paused

            lr_g, lr_d = trainer.lr_g, trainer.lr_d
            await pilot.press("right_square_bracket")
            await pilot.press("left_curly_bracket")
            await wait_until_async(pilot, lambda: trainer.lr_g == pytest.approx(2 * lr_g)
                           and trainer.lr_d == pytest.approx(lr_d / 2), 30, "rate changes")
            status = (await wait_screen(pilot, app, f"G lr {2 * lr_g:.1e} ", f"D lr {lr_d / 2:.1e} ")).splitlines()[0]
            assert f"G lr {2 * lr_g:.1e}" in status and f"D lr {lr_d / 2:.1e}" in status

            await pilot.press("n")
            await wait_until_async(pilot, lambda: trainer.step == step + 1, 30, "one step")

            await pilot.press("s")
            await wait_until_async(pilot, lambda: (run_dir / "checkpoints" / f"step_{step + 1:08d}.safetensors").exists(),
                           20, "the checkpoint")

            await pilot.press("space")
            await wait_until_async(pilot, lambda: trainer.state == ev.RUNNING and trainer.step > step + 5, 20, "resume")

            await pilot.press("q")
            await wait_exit(app, 30)
        assert app.return_code == 0
        assert not app.session.alive()

    try:
        asyncio.run(main())
    finally:
        stop_engine(app)
    assert (run_dir / "checkpoints" / "latest.safetensors").exists()
    kinds = [e["kind"] for e in events_of(run_dir)]
    for kind in ("started", "paused", "lr_changed", "checkpoint", "resumed", "stopped"):
        assert kind in kinds
    changes = [e for e in events_of(run_dir) if e["kind"] == "lr_changed"]
    assert {(e["which"], e["new"] / e["old"]) for e in changes} == {("g", 2.0), ("d", 0.5)}


def test_ctrl_c_saves_and_exits_130_with_the_real_engine(tmp_path):
    """Ctrl-C is an interruption, as SIGINT/SIGTERM are (here and headless): save, stop, 130."""
    from gantui.ui.launch import monitor_app

    run_dir = tmp_path / "run"

    app = monitor_app(tiny_cfg(), run_dir, "cpu", None)

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until_async(pilot, lambda: app.info is not None and status_of(app).step >= 5, 90, "training")
            await pilot.press("ctrl+c")
            await wait_exit(app, 30)
        assert app.return_code == 130

    try:
        asyncio.run(main())
    finally:
        stop_engine(app)
    assert (run_dir / "checkpoints" / "latest.safetensors").exists()
    stopped = [e for e in events_of(run_dir) if e["kind"] == "stopped"]
    assert stopped and stopped[0]["reason"] == "interrupted"
    lines = app.exit_summary()
    assert "interrupted at step" in lines[0] and str(run_dir / "checkpoints" / "latest.safetensors") in lines[0]
    assert f"--resume {run_dir}" in lines[1]


def test_divergence_shows_diverged_and_exits_3_on_q(tmp_path):
    from gantui.ui.launch import monitor_app

    run_dir = tmp_path / "run"

    app = monitor_app(tiny_cfg(extra=["optim.g_lr=1e30", "optim.d_lr=1e30", "optim.lr_decay='none'"]),
                      run_dir, "cpu", None)

    async def main():
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until_async(pilot, lambda: app.state == ev.DIVERGED, 90, "DIVERGED")
            text = await wait_screen(pilot, app, "DIVERGED", "NaN/Inf")
            assert app.return_code is None
            assert "DIVERGED" in text.splitlines()[0]
            await pilot.press("q")
            await wait_exit(app)
        assert app.return_code == 3

    try:
        asyncio.run(main())
    finally:
        stop_engine(app)

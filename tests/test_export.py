"""TensorBoard export (`gantui export --tensorboard`) and the live writer, read back with
TensorBoard's own EventAccumulator (the `tensorboard` package of the test extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gantui import config, tbevents
from gantui.engine import events as ev
from gantui.export import EXPORT_NAME, TensorBoardListener, export_run, prune_after
from tests.conftest import TINY_RING, gantui, run_cli

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

EVERYTHING = {"scalars": 0, "tensors": 0, "images": 0}


def accumulate(folder: Path):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=EVERYTHING)
    acc.Reload()
    return acc


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every numeric metrics.jsonl key but step/time, as (step, value) in file order."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in lines(run / "metrics.jsonl"):
        for k, v in r.items():
            if k not in ("step", "time") and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(k, []).append((r["step"], float(v)))
    return out


def assert_mirrors_run(acc, run: Path) -> None:
    want = expected_scalars(run)
    assert len(want) >= 10  # d_loss, g_loss, gradients, rates, ...: the real contract keys
    assert sorted(acc.Tags()["scalars"]) == sorted(want)
    for tag, points in want.items():
        got = acc.Scalars(tag)
        assert [e.step for e in got] == [s for s, _ in points], tag
        assert [e.value for e in got] == pytest.approx([v for _, v in points], rel=1e-6, abs=1e-30), tag
    events = lines(run / "events.jsonl")
    kinds = {e["kind"] for e in events}
    assert set(acc.Tags()["tensors"]) == {f"events/{k}" for k in kinds}
    for kind in kinds:
        texts = acc.Tensors(f"events/{kind}")
        assert [t.step for t in texts] == [e["step"] for e in events if e["kind"] == kind]
        assert acc.SummaryMetadata(f"events/{kind}").plugin_data.plugin_name == "text"
        assert kind.encode() in texts[0].tensor_proto.string_val[0]
    pngs = sorted((run / "samples").glob("step_*.png"))
    assert pngs
    images = acc.Images("samples")
    assert [i.step for i in images] == [int(p.stem.split("_")[1]) for p in pngs]
    assert [i.encoded_image_string for i in images] == [p.read_bytes() for p in pngs]


def test_crc32c_check_value():
    # the standard CRC-32C check value of "123456789" (RFC 3720 / iSCSI)
    assert tbevents.crc32c(b"123456789") == 0xE3069283


def test_export_is_read_back_by_tensorboard(short_runs, tmp_path):
    run = short_runs[0]
    result = export_run(run, tmp_path / "tb")
    assert result.path == tmp_path / "tb" / run.name / EXPORT_NAME
    assert_mirrors_run(accumulate(result.path.parent), run)


def test_export_again_replaces_and_never_doubles(short_runs, tmp_path):
    run = short_runs[1]
    for _ in range(2):
        r = gantui("export", str(run), "--tensorboard", str(tmp_path / "tb"))
        assert r.returncode == 0, r.stderr
    out = tmp_path / "tb" / run.name
    assert [p.name for p in out.iterdir()] == [EXPORT_NAME]
    assert_mirrors_run(accumulate(out), run)


def test_export_bad_run_is_one_line_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    r = gantui("export", str(tmp_path / "empty"), "--tensorboard", str(tmp_path / "tb"))
    assert r.returncode == 2 and "not a run directory" in r.stderr and r.stderr.strip().count("\n") == 0


def _train(run_dir: Path, steps: int, listener: TensorBoardListener) -> None:
    from gantui.engine.events import FINISHED
    from gantui.engine.trainer import Trainer

    overrides = [a for a in TINY_RING if a != "--set"]
    cfg = config.load("ring8", overrides + ["log.sample_every=10"]).replace("run", steps=steps)
    t = Trainer(cfg, run_dir, device="cpu")
    t.add_listener(listener)
    t.setup()
    assert t.run() == FINISHED


def test_log_tensorboard_true_makes_the_run_write_its_tensorboard_file(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "30", "--run-dir", run, *TINY_RING,
                           "--set", "log.sample_every=10", "--set", "log.tensorboard=true")
    assert code == 0, err
    assert len(list((run / "tensorboard").glob("*tfevents*"))) == 1
    assert_mirrors_run(accumulate(run / "tensorboard"), run)


@pytest.mark.parametrize("flush_every_s", [0.0, 3600.0], ids=["flush-each-message", "flush-at-the-end"])
def test_live_listener_writes_what_export_writes(tmp_path, flush_every_s):
    run = tmp_path / "run"
    listener = TensorBoardListener(run, flush_every_s=flush_every_s)
    _train(run, 30, listener)
    # complete when the run ends (flushed at its final event), before anyone calls close()
    assert listener.error is None
    assert len(list((run / "tensorboard").glob("*tfevents*"))) == 1
    assert_mirrors_run(accumulate(run / "tensorboard"), run)
    listener.close()  # and closing writes nothing twice
    assert_mirrors_run(accumulate(run / "tensorboard"), run)


def _info(start_step: int) -> ev.RunInfo:
    return ev.RunInfo(name="t", device="cpu", run_dir="", total_steps=100, start_step=start_step, data_name="ring8",
                      is_toy=True, data_dim=2, loss_kind="wgan_gp", n_critic=5, lr_g=1e-3, lr_d=1e-3, real_std=1.0)


def _feed(listener: TensorBoardListener, start: int, steps: range) -> None:
    listener(_info(start))
    for s in steps:
        listener(ev.Snapshot(s, 100, {"step": s, "time": 1.7e9 + s, "d_loss": float(s)}, "RUNNING", 5, None))
    listener.close()


def test_a_resume_drops_the_points_past_its_step(tmp_path):
    run = tmp_path / "run"
    _feed(TensorBoardListener(run), 0, range(10, 101, 10))      # killed at 100, last checkpoint at 50
    first = next((run / "tensorboard").glob("*tfevents*"))
    _feed(TensorBoardListener(run), 50, range(60, 81, 10))      # resumed from 50
    steps = [e.step for e in accumulate(run / "tensorboard").Scalars("d_loss")]
    assert steps == [10, 20, 30, 40, 50, 60, 70, 80]
    # pruned in the file itself too, for importers that ignore TensorBoard's restart mark
    assert max(tbevents.event_step(p) for p in tbevents.records(first.read_bytes())) == 50
    assert prune_after(first, 50) == 0


def test_the_listener_never_raises_into_the_engine(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the run directory should be")
    listener = TensorBoardListener(blocker, flush_every_s=0.0)
    _feed(listener, 0, range(10, 31, 10))   # would raise NotADirectoryError if it leaked
    assert listener.error and "NotADirectoryError" in listener.error


def test_tensorboard_drops_orphaned_points_at_the_restart_mark(tmp_path):
    # a TensorBoard that read the earlier file before the resume pruned it still shows one timeline
    run = tmp_path / "run"
    _feed(TensorBoardListener(run), 0, range(10, 101, 10))
    first = next((run / "tensorboard").glob("*tfevents*"))
    unpruned = first.read_bytes()
    _feed(TensorBoardListener(run), 50, range(60, 81, 10))
    first.write_bytes(unpruned)
    steps = [e.step for e in accumulate(run / "tensorboard").Scalars("d_loss")]
    assert steps == [10, 20, 30, 40, 50, 60, 70, 80]


def test_points_reach_the_file_while_the_run_goes_on(tmp_path):
    # flushed at intervals, not only at the end: a crash (no close, no final event) loses little
    run = tmp_path / "run"
    listener = TensorBoardListener(run, flush_every_s=0.0)
    listener(_info(0))
    for s in (10, 20, 30):
        listener(ev.Snapshot(s, 100, {"step": s, "time": 1.7e9 + s, "d_loss": float(s)}, "RUNNING", 5, None))
    assert [e.step for e in accumulate(run / "tensorboard").Scalars("d_loss")] == [10, 20, 30]
    listener.close()


def test_non_finite_and_huge_values_survive(tmp_path):
    import math

    from tests.test_runinfo import START, make_run

    run = make_run(tmp_path, "r", [START], [
        {"step": 10, "time": 1.7e9, "d_loss": "nan", "g_loss": 1e300, "grad_norm_d": "-inf", "flag": True},
        {"step": 20, "time": 1.7e9 + 1, "d_loss": 0.25, "g_loss": 2, "grad_norm_d": 1.0, "flag": False}])
    acc = accumulate(export_run(run, tmp_path / "tb").path.parent)
    assert sorted(acc.Tags()["scalars"]) == ["d_loss", "g_loss", "grad_norm_d"]  # booleans are not metrics
    d, g, n = ([e.value for e in acc.Scalars(k)] for k in ("d_loss", "g_loss", "grad_norm_d"))
    assert math.isnan(d[0]) and d[1] == 0.25
    assert g == [math.inf, 2.0]
    assert n == [-math.inf, 1.0]

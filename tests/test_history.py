"""Bounded metric history: memory stays fixed, min/max/mean stay exact through merges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gantui.history import History, Marker, Series, ema_debiased


def test_series_stays_bounded_and_covers_the_whole_run():
    s = Series(capacity=64)
    n = 100_000
    for i in range(n):
        s.append(i, math.sin(i / 100.0))
    assert 32 <= len(s) <= 64
    buckets = s.buckets()
    assert buckets[0].first_step == 0
    assert buckets[-1].last_step == n - 1
    # contiguous, no step lost or counted twice
    for a, b in zip(buckets, buckets[1:]):
        assert b.first_step == a.last_step + 1
    assert sum(b.n for b in buckets) == n == s.count
    # every full bucket has the same width (the newest may still be filling)
    assert {b.n for b in buckets[:-1]} == {s.stride}


def test_min_max_mean_are_exact_after_merges():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000) * rng.uniform(0.1, 10, size=10_000)
    s = Series(capacity=50)
    for i, v in enumerate(values):
        s.append(i, v)
    assert s.stride > 1                     # merges happened
    for b, mean, lo, hi in zip(s.buckets(), s.values(), s.mins(), s.maxs()):
        chunk = values[b.first_step:b.last_step + 1]
        assert mean == pytest.approx(chunk.mean(), rel=1e-9, abs=1e-12)
        assert lo == chunk.min()
        assert hi == chunk.max()
    assert s.min == values.min()
    assert s.max == values.max()
    assert s.last == values[-1]
    assert s.last_step == len(values) - 1
    assert len(s.steps()) == len(s)


def test_a_one_step_spike_survives_downsampling():
    s = Series(capacity=16)
    for i in range(50_000):
        s.append(i, 1000.0 if i == 31_337 else (-500.0 if i == 7 else 0.0))
    assert max(s.maxs()) == 1000.0
    assert min(s.mins()) == -500.0
    spike = [b for b in s.buckets() if b.first_step <= 31_337 <= b.last_step]
    assert spike[0].max == 1000.0


def test_nonfinite_values_are_counted_not_folded_in():
    s = Series(capacity=4)
    for i, v in enumerate([1.0, float("nan"), 3.0, float("inf"), 2.0, 5.0, -1.0, 0.5, 4.0]):
        s.append(i, v)
    assert s.nonfinite == 2
    assert s.last_nonfinite_step == 3
    assert s.min == -1.0 and s.max == 5.0
    assert sum(b.nonfinite for b in s.buckets()) == 2
    assert all(math.isfinite(v) for v in s.values())
    # the mean of the bucket holding the NaN ignores it
    first = s.buckets()[0]
    assert first.first_step == 0 and first.mean == pytest.approx(
        np.mean([v for v in [1.0, 3.0, 2.0, 5.0, -1.0, 0.5, 4.0][: first.count]]))
    s.append(99, float("nan"))
    assert math.isnan(s.last)              # the latest value is shown as it is


def test_bucket_of_only_nan_reads_nan():
    s = Series(capacity=4)
    s.append(0, float("nan"))
    assert len(s) == 1
    assert math.isnan(s.values()[0]) and math.isnan(s.mins()[0]) and math.isnan(s.maxs()[0])
    assert s.min is None and s.max is None


def test_empty_series_and_odd_capacity():
    s = Series()
    assert len(s) == 0 and s.last is None and s.min is None and s.max is None
    assert s.values() == []
    odd = Series(capacity=5)
    for i in range(1000):
        odd.append(i, i)
    assert len(odd) <= 5
    assert sum(b.n for b in odd) == 1000
    assert odd.buckets()[-1].last == 999
    with pytest.raises(ValueError):
        Series(capacity=1)


def test_ema_debiased_matches_hand_computation():
    # acc_t = 0.6*acc_{t-1} + 0.4*x_t ; out_t = acc_t / (1 - 0.6**t)
    out = ema_debiased([1.0, 2.0, 3.0], smoothing=0.6)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx(1.04 / 0.64)
    assert out[2] == pytest.approx(1.824 / 0.784)


def test_ema_debiased_edge_cases():
    assert ema_debiased([]) == []
    assert ema_debiased([5.0] * 10) == pytest.approx([5.0] * 10)
    assert ema_debiased([1.0, 2.0, 3.0], smoothing=0.0) == [1.0, 2.0, 3.0]
    out = ema_debiased([1.0, float("nan"), 2.0])
    assert out[0] == 1.0 and math.isnan(out[1])
    assert out[2] == pytest.approx(ema_debiased([1.0, 2.0])[1])   # NaN skipped, not averaged in
    with pytest.raises(ValueError):
        ema_debiased([1.0], smoothing=1.0)


def test_history_feeds_series_from_snapshot_metrics():
    h = History(capacity=8)
    for step in range(0, 1000, 10):
        h.append({"step": step, "d_loss": step * 0.5, "g_loss": -1.0, "note": "x", "flag": True})
    assert set(h.keys()) == {"d_loss", "g_loss"}
    assert h.series("d_loss").last == 495.0
    assert h.series("d_loss").last_step == 990
    assert h.series("d_loss").max == 495.0
    assert len(h.series("g_loss")) <= 8
    assert h.last_step == 990
    assert "gp" not in h
    assert len(h.series("gp")) == 0          # unseen key: an empty series, no KeyError


def test_history_markers_are_bounded():
    h = History(max_markers=3)
    for i in range(5):
        h.mark(i * 100, "paused", f"p{i}")
    assert len(h.markers) == 3
    assert list(h.markers)[0] == Marker(200, "paused", "p2")
    step, kind, label = h.markers[-1]
    assert (step, kind, label) == (400, "paused", "p4")
    assert [m.step for m in h.markers_between(250, 400)] == [300, 400]


def test_recent_ring_keeps_the_newest_raw_points_in_fixed_memory():
    s = Series(capacity=16, recent=100)
    size = len(s._ring_steps) + len(s._ring_values)
    for i in range(10_000):
        s.append(i * 10, float(i))
    assert len(s._ring_steps) + len(s._ring_values) == size   # fixed, however long the run
    steps, values = s.raw()
    assert steps == [i * 10 for i in range(9_900, 10_000)] and values == [float(i) for i in range(9_900, 10_000)]


def test_window_zooms_at_full_resolution_and_falls_back_to_buckets():
    s = Series(capacity=16, recent=100)
    for i in range(1_000):
        s.append(i, float(i))
    steps, values = s.window(950)                  # inside the ring: every raw point
    assert steps == list(range(950, 1_000)) and values == [float(i) for i in range(950, 1_000)]
    steps, values = s.window(500)                  # older than the ring: bucket means
    assert steps[0] >= 500 and len(steps) <= 16 and steps[-1] == 999
    steps, _ = s.window(None)                      # the whole run: the buckets
    assert steps == s.steps()
    short = Series(capacity=16, recent=100)
    for i in range(50):
        short.append(i, 1.0)
    assert short.window(None)[0] == list(range(50))   # a short run: raw points, not buckets


def test_a_rollback_rewinds_the_history_and_a_reread_record_is_not_appended_twice():
    h = History(capacity=8, recent=16)
    for step in range(10, 110, 10):
        h.append({"step": step, "d_loss": float(step)})
    h.mark(50, "paused", "paused")
    h.mark(90, "paused", "paused")
    h.append({"step": 40, "d_loss": -1.0})                 # re-read after a file was rewritten: ignored
    assert h.series("d_loss").raw() == ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
                                         [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0])
    h.rewind(60)
    h.append({"step": 65, "d_loss": 1.0})                  # the new branch goes on from the rollback
    assert h.series("d_loss").raw() == ([10, 20, 30, 40, 50, 60, 65], [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 1.0])
    assert [m.step for m in h.markers] == [50]
    long = History(capacity=4, recent=4)                     # past the ring: bucket means before it
    for step in range(1, 41):
        long.append({"step": step, "d_loss": float(step)})
    long.rewind(38)
    steps, _ = long.series("d_loss").window()
    assert steps and max(steps) == 38 and steps == sorted(steps)

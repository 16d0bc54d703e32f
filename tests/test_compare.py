"""`gantui compare`: one metric of several runs, aligned by step, drawn or as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gantui import compare
from gantui.ui import compare_view
from gantui.errors import UserError
from tests.conftest import gantui
from tests.test_runinfo import START, make_run


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_default_metric_is_the_quality_metric_every_run_has(tmp_path):
    a = make_run(tmp_path, "a", [START], [{"step": 10, "d_loss": 1.0, "g_loss": 2.0, "fid": 40.0, "modes_captured": 5}])
    b = make_run(tmp_path, "b", [START], [{"step": 10, "d_loss": 1.0, "g_loss": 2.0, "modes_captured": 7}])
    c = make_run(tmp_path, "c", [START], [{"step": 10, "d_loss": 1.0, "g_loss": 2.0}])
    assert compare.default_metrics(compare.load([a, a])) == ["fid"]
    assert compare.default_metrics(compare.load([a, b])) == ["modes_captured"]  # fid is not in b
    assert compare.default_metrics(compare.load([a, b, c])) == ["d_loss", "g_loss"]


def test_series_are_aligned_on_the_union_of_steps(tmp_path):
    a = make_run(tmp_path, "a", [START], [{"step": 10, "d_loss": 1.0}, {"step": 20, "d_loss": 2.0}])
    b = make_run(tmp_path, "b", [START], [{"step": 15, "d_loss": 5.0}, {"step": 20, "d_loss": "nan"}])
    out = compare.aligned(compare.load([a, b]), ["d_loss"])
    assert out["steps"] == [10, 15, 20]
    assert out["runs"][0]["series"]["d_loss"] == [1.0, None, 2.0]
    assert out["runs"][1]["series"]["d_loss"] == [None, 5.0, "nan"]


def test_same_named_runs_get_telling_labels(tmp_path):
    a = make_run(tmp_path / "x", "run", [START], [{"step": 10, "d_loss": 1.0}])
    b = make_run(tmp_path / "y", "run", [START], [{"step": 10, "d_loss": 1.0}])
    names = [r.name for r in compare.load([a, b])]
    assert len(set(names)) == 2


def test_chart_gives_each_run_its_colour_and_legend_entry(short_runs):
    runs = compare.load(short_runs)
    coloured = compare_view.chart(runs, "d_loss", 80, 20, color=True)
    assert all(r.name in coloured for r in runs)
    for rgb in compare_view.PALETTE[:2]:
        assert "\x1b[38;2;{};{};{}m".format(*rgb) in coloured
    plain = compare_view.chart(runs, "d_loss", 80, 20, color=False)
    assert "\x1b[" not in plain
    # without colour, each run has its own marker character, shown in the legend beside its name
    for i, r in enumerate(runs):
        assert f"{compare_view.MARKERS[i]} {r.name}" in plain


def test_cli_json_is_the_runs_series_aligned(short_runs):
    r = gantui("compare", *map(str, short_runs), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["metrics"] == ["d_loss", "g_loss"]
    assert out["steps"] == [5, 10, 15, 20]
    for run, entry in zip(short_runs, out["runs"]):
        assert entry["name"] == run.name
        assert entry["series"]["d_loss"] == [rec["d_loss"] for rec in records(run)]
    # seeds 0 and 1 trained differently
    assert out["runs"][0]["series"]["g_loss"] != out["runs"][1]["series"]["g_loss"]


def test_cli_chosen_metric_draws(short_runs):
    r = gantui("compare", *map(str, short_runs), "--metric", "wasserstein", env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    assert "wasserstein by step" in r.stdout and all(run.name in r.stdout for run in short_runs)


@pytest.mark.parametrize("args,words", [
    (["--metric", "fid_typo"], "--metric fid_typo"),
    (["RUN", "/no/such/run"], "/no/such/run"),
])
def test_cli_bad_metric_or_run_is_one_line_exit_2(short_runs, args, words):
    args = [str(short_runs[0]) if a == "RUN" else a for a in args]
    r = gantui("compare", str(short_runs[1]), *args)
    assert r.returncode == 2
    assert words in r.stderr and r.stderr.strip().count("\n") == 0


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        compare.load([tmp_path / "empty"])


def test_a_table_of_last_and_best_values_and_a_chart_with_whole_steps_and_its_legend_above(tmp_path):
    a = make_run(tmp_path, "wgan_gp", [START], [{"step": 1499, "d_loss": 1.0, "fid": 80.0},
                                                 {"step": 1500, "d_loss": 0.5, "fid": 61.25}])
    b = make_run(tmp_path, "dcgan", [START], [{"step": 500, "d_loss": 2.0, "fid": 90.0},
                                               {"step": 1000, "d_loss": 1.5, "fid": 40.5},
                                               {"step": 1500, "d_loss": 1.2, "fid": 55.0}])
    runs = compare.load([a, b])
    table = compare.summary_table(runs, ["fid", "d_loss"]).splitlines()
    assert table[0] == "fid (lower is better)"
    assert table[1].split() == ["RUN", "LAST", "STEP", "BEST", "STEP"]
    assert table[2].split() == ["wgan_gp", "61.25", "@1500", "61.25", "@1500"]
    assert table[3].split() == ["dcgan", "55", "@1500", "40.5", "@1000"]
    assert table[4] == "d_loss" and table[5].split()[3:6] == ["MIN", "STEP", "MAX"]
    assert table[6].split() == ["wgan_gp", "0.5", "@1500", "0.5", "@1500", "1", "@1499"]

    lines = compare_view.chart(runs, "fid", 80, 16, color=False).splitlines()
    assert lines[0] == "fid by step"
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    ticks = lines[axis + 1].split()
    assert ticks and all(t.replace(",", "").isdigit() for t in ticks), ticks  # whole steps, never 1499.33
    legend = "\n".join(lines[1:3])
    assert "wgan_gp" in legend and "dcgan" in legend  # on its own lines above the plot
    assert not any("wgan_gp" in line or "dcgan" in line for line in lines[3:])


def test_cli_prints_the_table_after_the_chart(short_runs):
    r = gantui("compare", *map(str, short_runs), env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "d_loss" in out and "g_loss" in out
    rows = [line.split() for line in out if line.split()[:1] in ([run.name] for run in short_runs)]
    assert len(rows) == 4 and all(row[2] == "@20" for row in rows)  # last values at the last step, per run

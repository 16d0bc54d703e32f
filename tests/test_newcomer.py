"""What a new user trips on (issue 21): a refused start leaves no directory behind."""

from __future__ import annotations

from conftest import run_cli


def test_a_start_refused_for_a_missing_data_root_leaves_no_directory(capsys, tmp_path):
    run_dir = tmp_path / "made" / "for" / "it"
    code, _, err = run_cli(capsys, "run", "dcgan", "--headless", "--run-dir", run_dir, "--set", "data.name=folder",
                           "--set", f"data.root={tmp_path / 'no-such-images'}")
    assert code == 2 and "no-such-images" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "made").exists()  # not the run directory, nor the parents made for it
    # refused by the engine's data loader (a folder without images), after the lock was taken
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "run", "dcgan", "--headless", "--run-dir", run_dir, "--set", "data.name=folder",
                           "--set", f"data.root={tmp_path / 'empty'}")
    assert code == 2 and "no images" in err, err
    assert not (tmp_path / "made").exists()
    # a directory that was there before is left
    (tmp_path / "mine").mkdir()
    code, _, err = run_cli(capsys, "run", "dcgan", "--headless", "--run-dir", tmp_path / "mine", "--set",
                           "data.name=folder", "--set", f"data.root={tmp_path / 'empty'}")
    assert code == 2 and (tmp_path / "mine").is_dir()


def test_runs_prints_one_format_per_figure_and_d_accuracy_outside_quality(tmp_path):
    from gantui import runinfo
    from test_runinfo import START, make_run

    make_run(tmp_path, "a", [START], [{"step": 50, "d_loss": 1, "g_loss": 0.25, "class_coverage": 1, "d_acc": 0.5}])
    make_run(tmp_path, "b", [START], [{"step": 50, "d_loss": 0.5, "g_loss": 2, "class_coverage": 0.2, "d_acc": 1}])
    lines = runinfo.table(runinfo.summarize_all(tmp_path)).splitlines()
    head = lines[0].split("  ")
    assert [h.strip() for h in head if h.strip()][3:7] == ["D LOSS", "G LOSS", "D ACC", "QUALITY"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["a"][3:8] == ["1.0000", "0.2500", "0.50", "classes", "1.00"]
    assert rows["b"][3:8] == ["0.5000", "2.0000", "1.00", "classes", "0.20"]
    assert "d_acc" not in "\n".join(lines)

"""What a new user trips on (issue 21): a refused start leaves no directory behind."""

from __future__ import annotations

from conftest import run_cli


def test_a_start_refused_for_a_missing_data_root_leaves_no_directory(capsys, tmp_path):
    run_dir = tmp_path / "made" / "for" / "it"
    code, _, err = run_cli(capsys, "run", "dcgan", "--headless", "--run-dir", run_dir, "--set", "data.name=folder",
                           "--set", f"data.root={tmp_path / 'no-such-images'}")
    assert code == 2 and "no-such-images" in err and "Traceback" not in err, err
    assert not (tmp_path / "made").exists()  # not the run directory, nor the parents made for it
    # a directory that was there before is left, empty as it was
    (tmp_path / "mine").mkdir()
    code, _, err = run_cli(capsys, "run", "dcgan", "--headless", "--run-dir", tmp_path / "mine", "--set",
                           "data.name=folder", "--set", f"data.root={tmp_path / 'no-such-images'}")
    assert code == 2 and (tmp_path / "mine").is_dir()

"""A resume remembers (issue 19): a real run stopped in the middle of a raised alert and resumed in a
fresh process shows, record by record, the alert state the uninterrupted run shows at the same step."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import gantui, run_cli

from gantui import checkpoint

# digits MLP ("vanilla") with a fast D against a frozen G: d_overpowering is raised at step 95 (D's
# accuracy 1.0 and its loss near 0 from step 15); without its memory a resumed run would need a whole
# new 20-record window (100 steps at log.every 5) to raise it again
FROZEN_G = ["--set", "data.n_samples=2000", "--set", "log.every=5", "--set", "diagnostics.warmup_steps=50",
            "--set", "optim.d_lr=2e-3", "--set", "optim.g_lr=1e-7", "--set", "log.checkpoint_every=1000",
            "--set", "log.sample_every=1000", "--set", "model.g_width=64", "--set", "model.d_width=64"]


def health_by_step(run_dir: Path) -> dict[int, dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {m["step"]: m["health"] for m in records}


def test_a_run_resumed_in_the_middle_of_a_raised_alert_keeps_it(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(capsys, "run", "vanilla", "--headless", "--steps", "140", "--run-dir", straight, *FROZEN_G)[0] == 0
    assert run_cli(capsys, "run", "vanilla", "--headless", "--steps", "100", "--run-dir", split, *FROZEN_G)[0] == 0
    first = health_by_step(split)
    assert first[100]["levels"]["d_overpowering"] == "alert"  # stopped with the alert raised
    _, meta = checkpoint.read(split / "checkpoints" / "latest.safetensors")
    assert "d_overpowering" in json.loads(meta["diagnostics"])["active"]
    r = gantui("run", "vanilla", "--headless", "--steps", "140", "--resume", str(split), *FROZEN_G)
    assert r.returncode == 0, r.stderr[-2000:]
    want, got = health_by_step(straight), health_by_step(split)
    resumed_steps = [s for s in got if s > 100]
    assert resumed_steps == list(range(105, 141, 5))
    for step in resumed_steps:
        assert got[step] == want[step], step
    assert got[140]["levels"]["d_overpowering"] == "alert"
    # it was not raised a second time: the resumed run's only raise is the one before the stop
    events = [json.loads(line) for line in (split / "events.jsonl").read_text().splitlines()]
    raises = [e for e in events if e["kind"] == "alert" and e["state"] == "raised" and e["rule"] == "d_overpowering"]
    assert len(raises) == 1 and raises[0]["step"] <= 100

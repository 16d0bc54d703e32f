"""The early-failure rule against the records of real runs (tests/data/early_records.json): a D
pinned from the first steps is raised by step 200 on every loss and smoothing recorded, and the
first few hundred steps of healthy runs of every bundled preset raise nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gantui.diagnostics import Diagnostics, Thresholds

DATA = json.loads((Path(__file__).parent / "data" / "early_records.json").read_text())["runs"]


def replay(run: dict) -> tuple[Diagnostics, list[dict]]:
    diag = Diagnostics(Thresholds(), run["loss_kind"], 0.0, label_smoothing=run["label_smoothing"],
                       n_critic=run["n_critic"])
    events = []
    for m in run["records"]:
        events += diag.update(dict(m))
    return diag, events


@pytest.mark.parametrize("name", [n for n, r in DATA.items() if r["expect"] == "pinned"])
def test_a_real_pinned_d_is_raised_by_step_200(name):
    run = DATA[name]
    diag, events = replay(run)
    raised = [e for e in events if e["rule"] == "d_overpowering"]
    assert raised and raised[0]["step"] <= 200, events
    assert raised[0]["evidence"]["condition"] == "pinned"
    assert [e["rule"] for e in events] == ["d_overpowering"]  # the other rules are still warming up


@pytest.mark.parametrize("name", [n for n, r in DATA.items() if r["expect"] == "healthy"])
def test_real_healthy_early_training_raises_nothing(name):
    run = DATA[name]
    diag, events = replay(run)
    assert events == []
    assert diag.health()["d_overpowering"].level != "alert"


def test_the_real_records_cover_every_loss_that_has_an_early_rule():
    kinds = {(r["loss_kind"], r["label_smoothing"]) for r in DATA.values() if r["expect"] == "pinned"}
    assert {"ns", "lsgan", "hinge"} <= {k for k, _ in kinds} and {0.0, 0.1, 0.3} <= {s for _, s in kinds}
    healthy = {r["preset"] for r in DATA.values() if r["expect"] == "healthy"}
    assert {"dcgan", "lsgan", "hinge_sn", "wgan_gp", "ring8", "grid25", "mixture1d", "cgan"} <= healthy
    # the healthy LSGAN really dipped (its loss near 0.013, D(x) 1.0): the silence means something
    assert min(m["d_loss"] for m in DATA["lsgan"]["records"]) < 0.015

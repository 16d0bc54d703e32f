"""Alert rules fed synthetic metric streams: each fires when its condition is sustained,
not on a single spike, clears only with hysteresis, and healthy streams stay silent."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import typing

import pytest

from gantui import config
from gantui.diagnostics import (
    GLYPHS,
    RULES,
    Diagnostics,
    actions,
    Thresholds,
    first_non_finite,
    swing_stats,
)
from gantui.errors import ConfigError

from diag_streams import (
    EVERY,
    LOSS_KINDS,
    REAL_STD,
    START,
    WARM,
    healthy_toy,
    is_quality,
    of,
    run,
    stream,
    toy_quality,
)



# --- the scenarios, one per rule (used by the shared fire / spike / hysteresis tests) --------------
# Each: loss kind, the rule, and a function that makes a record show the failure.

def _overpowered_loss(m):
    m.update(d_loss=0.04, d_real=0.97, d_fake=0.05)


def _overpowered_gap(m):  # D loss itself unremarkable, but D separates real and fake
    m.update(d_real=0.97, d_fake=0.04)


def _overpowered_grads(m):  # healthy LSGAN: |grad D| about 9x |grad G|; here 115x
    m.update(grad_norm_d=40.0, grad_norm_g=0.35)


def _oscillating_factory():
    flip = {"up": False}

    def apply(m):
        flip["up"] = not flip["up"]
        m.update(d_loss=2.4 if flip["up"] else 0.15, g_loss=0.3 if flip["up"] else 3.0)
    return apply


def _collapsed(m):
    m.update(sample_std=0.004, sample_pdist=0.01)


def _collapsed_partly(m):  # above the absolute floor, far below the real spread
    m.update(sample_std=0.03, sample_pdist=0.5)


def _vanished(m):
    m.update(grad_norm_g=2e-5, d_real=0.99, d_fake=0.01)


def _exploding_d(m):
    m.update(grad_norm_d=450.0)


SCENARIOS = {
    # name: (loss kind, rule, make a record show the failure, rules that rightly fire with it)
    "d_overpowering/d_loss": ("ns", "d_overpowering", _overpowered_loss, set()),
    "d_overpowering/gap": ("ns", "d_overpowering", _overpowered_gap, set()),
    "d_overpowering/grad_ratio": ("lsgan", "d_overpowering", _overpowered_grads, set()),
    "oscillation": ("ns", "oscillation", None, set()),  # stateful, built per use
    "mode_collapse/abs": ("wgan_gp", "mode_collapse", _collapsed, set()),
    "mode_collapse/frac": ("ns", "mode_collapse", _collapsed_partly, set()),
    # a confident D and a silent G: D also overpowers by its scores and the gradient ratio
    "vanishing_gradients": ("minimax", "vanishing_gradients", _vanished, {"d_overpowering"}),
    # |grad D| 450 is also a jump of the gradient ratio
    "exploding_gradients": ("hinge", "exploding_gradients", _exploding_d, {"d_overpowering"}),
}


def scenario(name):
    kind, rule, bad, _ = SCENARIOS[name]
    return kind, rule, (bad if bad is not None else _oscillating_factory())


# --- thresholds and config ------------------------------------------------------------------------

def test_every_threshold_is_a_typed_checked_field():
    hints = typing.get_type_hints(Thresholds)
    names = [f.name for f in dataclasses.fields(Thresholds)]
    assert {"window", "clear_window"} <= set(names)
    for f in dataclasses.fields(Thresholds):
        assert hints[f.name] in (int, float, bool), f.name
        assert isinstance(f.default, hints[f.name]), f.name
        if hints[f.name] is not bool:
            check = f.metadata["check"]
            assert check(f.default) is None, f.name  # the default passes its own check
        assert f.metadata.get("doc"), f.name


def test_diagnostics_table_sets_thresholds():
    cfg = config.loads("[diagnostics]\nwindow = 6\nd_loss_min = 0.3\nexplode_grad = 50\nenabled = true\n")
    t = cfg.diagnostics
    assert (t.window, t.d_loss_min, t.explode_grad) == (6, 0.3, 50.0)
    assert isinstance(t.explode_grad, float)
    assert t.clear_window == Thresholds().clear_window


@pytest.mark.parametrize("table, words", [
    ("bogus = 1", "unknown key"),
    ("window = 0", "an integer >= 1"),
    ("sustain = 0.4", "(0.5, 1]"),
    ("osc_flip_rate = 1.5", "[0, 1]"),
    ("explode_grad = -1", "> 0"),
    ("window = 2.5", "an integer"),
    ("enabled = 1", "true or false"),
    ("watch = 1", "(0, 1)"),              # a share of a window
    ("d_gap_max = 1.2", "(0, 1)"),        # above 1 the gap condition could never hold
    ("drop_subset = 1.5", "[0, 1]"),
    ("early_window = 0", "an integer >= 1"),
])
def test_bad_diagnostics_table_is_a_config_error(table, words):
    with pytest.raises(ConfigError) as err:
        config.loads(f"[diagnostics]\n{table}\n")
    assert "[diagnostics]" in str(err.value) and words in str(err.value)


def test_thresholds_from_the_table_change_behaviour():
    # D loss 0.2: healthy enough for the default 0.1, overpowering for a preset that says 0.3
    def low(i, m):
        if i >= WARM:
            m.update(d_loss=0.2)
    default = run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 140, patch=low))
    assert of(default, "d_overpowering") == []
    strict = config.loads("[diagnostics]\nd_loss_min = 0.3\n").diagnostics
    events = of(run(Diagnostics(strict, "ns", REAL_STD), stream("ns", 140, patch=low)), "d_overpowering")
    assert [e["state"] for e in events] == ["raised"]
    assert events[0]["evidence"]["threshold"] == 0.3

    # a shorter window raises sooner
    def fire_step(t):
        evs = run(Diagnostics(t, "ns", REAL_STD), stream("ns", 200, patch=lambda i, m: i >= WARM and _collapsed(m)))
        return of(evs, "mode_collapse", "raised")[0]["step"]
    short = config.loads("[diagnostics]\nwindow = 5\n").diagnostics
    assert fire_step(short) < fire_step(Thresholds())


def test_enabled_false_silences_all_but_divergence():
    t = config.loads("[diagnostics]\nenabled = false\n").diagnostics
    diag = Diagnostics(t, "ns", REAL_STD)
    assert run(diag, stream("ns", 150, patch=lambda i, m: i >= WARM and _collapsed(m))) == []
    events = diag.update({"step": 5000, "d_loss": float("nan"), "g_loss": 1.0})
    assert [e["rule"] for e in events] == ["divergence"]


# --- healthy runs raise nothing -------------------------------------------------------------------

@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_streams_raise_nothing(kind, seed):
    diag = Diagnostics(Thresholds(), kind, REAL_STD)
    assert run(diag, stream(kind, 1500, seed)) == []
    assert diag.active() == []


def test_early_training_is_not_an_alarm():
    # The first few hundred steps of real runs: an LSGAN D's loss dips to 0.013 (0.07 ns nats above
    # its floor) with D(x) = 1.0 and D(G(z)) = 0.09; G outputs a near-point; gradients are large
    # while D finds its feet. None of it is a failure yet.
    def early(i, m):
        if (i + 1) * EVERY < Thresholds().warmup_steps:
            m.update(d_loss=0.0127, d_real=1.0, d_fake=0.0948, sample_std=0.002, sample_pdist=0.01,
                     grad_norm_d=300.0, grad_norm_g=1e-5)
    diag = Diagnostics(Thresholds(), "lsgan", REAL_STD)
    assert run(diag, stream("lsgan", 300, patch=early)) == []
    # ... and a non-saturating D at its real runs' early extreme: loss 0.4, D(x) 0.88, D(G(z)) 0.24
    def early_ns(i, m):
        if (i + 1) * EVERY < Thresholds().warmup_steps:
            m.update(d_loss=0.4, d_real=0.88, d_fake=0.24, sample_std=0.002, grad_norm_d=300.0, grad_norm_g=1e-5)
    assert run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 300, patch=early_ns)) == []


# --- every rule: fires when sustained, not on a spike, clears with hysteresis ----------------------

@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rule_fires_once_when_sustained(name):
    kind, rule, bad = scenario(name)
    also = SCENARIOS[name][3]
    t = Thresholds()
    diag = Diagnostics(t, kind, REAL_STD)
    start = START
    events = run(diag, stream(kind, 250, patch=lambda i, m: i >= start and bad(m)))
    mine = of(events, rule)
    assert [e["state"] for e in mine] == ["raised"], events
    assert {e["rule"] for e in events} - {rule} <= also
    e = mine[0]
    # not before the condition had held for most of a window ...
    held_records = e["step"] // EVERY - start
    need = math.ceil(t.sustain * t.window)
    assert held_records >= need
    # ... and not much later (oscillation first needs half a window of jumps to measure)
    assert held_records <= need + (t.window // 2 + 2 if rule == "oscillation" else 4)
    assert e["evidence"]["held"] >= need
    assert e["evidence"]["window"] == t.window
    assert rule in [a["rule"] for a in diag.active()]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rule_ignores_a_single_spike(name):
    kind, rule, bad = scenario(name)
    spikes = {START, START + 40, START + 41}  # one record, later two in a row (a saw needs two)

    def patch(i, m):
        if i in spikes:
            bad(m)
    assert run(Diagnostics(Thresholds(), kind, REAL_STD), stream(kind, 200, patch=patch)) == []


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rule_does_not_fire_on_a_short_burst(name):
    # a burst of under half a window is still not "sustained"
    kind, rule, bad = scenario(name)
    t = Thresholds()
    burst = range(START, START + t.window // 2 - 1)
    assert run(Diagnostics(t, kind, REAL_STD), stream(kind, 200, patch=lambda i, m: i in burst and bad(m))) == []


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rule_clears_only_after_the_clear_window(name):
    kind, rule, bad = scenario(name)
    t = Thresholds()
    on, off = START, START + 80  # condition holds for records [on, off), then the run is healthy again
    diag = Diagnostics(t, kind, REAL_STD)
    events = run(diag, stream(kind, 300, patch=lambda i, m: on <= i < off and bad(m)))
    mine = of(events, rule)
    assert [e["state"] for e in mine] == ["raised", "cleared"]
    cleared = mine[1]
    healthy_records = cleared["step"] // EVERY - off
    need = math.ceil(t.sustain * t.clear_window)
    assert healthy_records >= need
    assert cleared["evidence"]["failed"] >= need
    assert cleared["severity"] == mine[0]["severity"] and cleared["action"] is None
    assert "records" in cleared["message"]
    assert diag.active() == []
    assert {e["rule"] for e in events} - {rule} <= SCENARIOS[name][3]


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "oscillation"])
def test_hovering_at_the_threshold_does_not_flap(name):
    # Bad and healthy records in turn (half the window each way): an alert that is down stays
    # down, an alert that is up stays up. (Alternating records are themselves a saw, so the
    # oscillation rule may rightly speak up; only `rule` is checked here.)
    kind, rule, bad = scenario(name)
    hover = run(Diagnostics(Thresholds(), kind, REAL_STD),
                stream(kind, 400, patch=lambda i, m: i % 2 == 0 and bad(m)))
    assert of(hover, rule) == []

    diag = Diagnostics(Thresholds(), kind, REAL_STD)
    flip = START + 60
    up = run(diag, stream(kind, 400, patch=lambda i, m: (START <= i < flip or (i >= flip and i % 2 == 0)) and bad(m)))
    assert [e["state"] for e in of(up, rule)] == ["raised"]


def test_raise_and_clear_windows_are_separate():
    # quick to raise (window 5), slow to clear (clear_window 30, sustain 0.8 -> 24 healthy records)
    t = config.loads("[diagnostics]\nwindow = 5\nclear_window = 30\n").diagnostics
    on, off = START, START + 20
    events = run(Diagnostics(t, "ns", REAL_STD), stream("ns", 200, patch=lambda i, m: on <= i < off and _collapsed(m)))
    # (record i is step (i + 1) * EVERY, so step // EVERY - on counts the records from `on` on)
    raised, cleared = of(events, "mode_collapse")  # no quick clear from the healthy records before
    assert raised["step"] // EVERY - on == 4       # 4 of 5 collapsed records
    assert cleared["step"] // EVERY - off == 24    # 24 of 30 healthy records
    assert cleared["evidence"]["window"] == 30


def test_no_flapping_when_a_value_crosses_the_threshold_often():
    # D loss wanders around 0.1 (3 records below, 2 above) for a long time: the alert is
    # raised at most once and never toggles.
    def patch(i, m):
        if i >= WARM:
            m["d_loss"] = 0.08 if i % 5 < 3 else 0.12
    events = run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 1000, patch=patch))
    assert len(of(events, "d_overpowering")) <= 1


# --- rule specifics -------------------------------------------------------------------------------

def test_d_overpowering_record_explains_itself():
    events = run(Diagnostics(Thresholds(), "ns", REAL_STD),
                 stream("ns", 140, patch=lambda i, m: i >= WARM and _overpowered_loss(m)))
    (e,) = events
    assert e["severity"] == "warning"
    assert e["evidence"]["d_loss"] == pytest.approx(0.04)
    assert e["evidence"]["threshold"] == 0.1
    assert "0.04" in e["message"] and "0.1" in e["message"]
    assert e["action"] == {"kind": "scale_lr", "which": "d", "factor": 0.5}
    assert "learning rate" in e["fix"]


def test_d_overpowering_loss_rule_is_for_probability_losses_only():
    # a WGAN critic loss is negative all the time: that is not D "winning"
    def patch(i, m):
        m.update(d_loss=-5.0 + 0.1 * math.sin(i), d_real=4.0, d_fake=-1.0)
    assert run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 300, patch=patch)) == []


def test_critic_gradient_ratio_is_measured_against_its_own_baseline():
    # WGAN-GP critics legitimately have |grad D| around 10x |grad G| from the start: silent.
    def structural(i, m):
        m.update(grad_norm_d=15.0, grad_norm_g=1.5)
    assert run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 300, patch=structural)) == []

    # ... but a ratio that grows to many times that baseline fires.
    def grows(i, m):
        m.update(grad_norm_d=15.0 if i < 100 else 90.0, grad_norm_g=1.5 if i < 100 else 0.15)
    events = run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 300, patch=grows))
    (e,) = of(events, "d_overpowering")
    assert e["evidence"]["grad_ratio"] == pytest.approx(600.0)
    assert e["evidence"]["threshold"] == pytest.approx(50.0)
    assert e["evidence"]["baseline"] == pytest.approx(10.0)
    assert "early median of 10" in e["message"]

    # Balanced nets (ratio 0.7) that wander to 8 for a while are not overpowering: a baseline
    # below 2 counts as 2, so the limit is 10.
    def wander(i, m, high=8.0):
        m.update(grad_norm_d=0.7 if i < 100 else high, grad_norm_g=1.0)
    assert run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 300, patch=wander)) == []
    events = run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD),
                 stream("wgan_gp", 300, patch=lambda i, m: wander(i, m, high=15.0)))
    assert [e["evidence"]["threshold"] for e in events] == [10.0]


def test_swing_stats():
    jump, level, rate = swing_stats([0.0, 10.0] * 10)  # the "jumping between 0 and 10"
    assert (jump, level, rate) == (10.0, 5.0, 1.0)
    assert swing_stats([float(i) for i in range(20)]) == (1.0, 9.5, 0.0)  # a trend never flips
    assert swing_stats([1.0] * 9 + [50.0] + [1.0] * 10)[0] == 0.0  # a spike is not a typical jump
    noise = random.Random(3)
    jump, level, rate = swing_stats([5 + noise.gauss(0, 1) for _ in range(2000)])
    assert jump == pytest.approx(0.95, abs=0.08) and rate == pytest.approx(2 / 3, abs=0.04)
    assert swing_stats([2.0]) == (0.0, 2.0, 0.0)


def test_oscillation_fires_on_a_saw_and_halves_both_rates():
    events = run(Diagnostics(Thresholds(), "ns", REAL_STD),
                 stream("ns", 140, patch=lambda i, m: i >= WARM and m.update(d_loss=10.0 * (i % 2))))
    (e,) = events
    assert e["rule"] == "oscillation" and e["action"] == {"kind": "scale_lr", "which": "both", "factor": 0.5}
    ev = e["evidence"]
    assert ev["d_loss_jump"] == pytest.approx(10.0) and ev["d_loss_flip_rate"] == pytest.approx(1.0)
    assert ev["d_jump_ratio"] > ev["threshold"] == Thresholds().osc_jump
    assert "jump" in e["message"]


def test_oscillation_ignores_slow_trends_and_tiny_losses():
    # a loss falling steadily from 3 to 0.3: big moves, no flipping
    def trend(i, m):
        m["d_loss"] = 3.0 - 2.7 * min(i, 100) / 100
    assert run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 200, patch=trend)) == []

    # an LSGAN loss near zero flips constantly and jumps by its own level, but far less than the floor
    def tiny(i, m):
        m.update(d_loss=0.02 + 0.02 * (i % 2), g_loss=0.01 + 0.03 * ((i + 1) % 2))
    assert run(Diagnostics(Thresholds(), "lsgan", REAL_STD), stream("lsgan", 200, patch=tiny)) == []


def test_oscillation_floor_follows_the_loss_scale():
    # the same jumps of 0.45 are an oscillation of an LSGAN loss (scale 0.25) ...
    def saw(i, m):
        if i >= WARM:
            m["d_loss"] = 0.05 if i % 2 else 0.5
    (e,) = run(Diagnostics(Thresholds(), "lsgan", REAL_STD), stream("lsgan", 140, patch=saw))
    assert e["rule"] == "oscillation"
    # ... but noise on a hinge G loss about zero (scale 1), which a real hinge_sn run shows
    rng = random.Random(7)

    def noisy(i, m):
        m["g_loss"] = 0.1 + rng.gauss(0, 0.35)
    assert run(Diagnostics(Thresholds(), "hinge", REAL_STD), stream("hinge", 400, patch=noisy)) == []
    # and osc_floor scales every floor: 0 measures a loss against its own level, however small
    t = config.loads("[diagnostics]\nosc_floor = 0.0\n").diagnostics
    rng = random.Random(7)
    assert of(run(Diagnostics(t, "hinge", REAL_STD), stream("hinge", 400, patch=noisy)), "oscillation")


def test_oscillation_ignores_noise_on_a_critic_loss_near_zero():
    # late WGAN-GP training: the critic loss hovers about zero with noise; its early level was -20
    rng = random.Random(5)

    def late(i, m):
        m["d_loss"] = -20.0 + rng.gauss(0, 0.5) if i < START else rng.gauss(0, 0.6)
    assert run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 400, patch=late)) == []


def test_oscillation_ignores_a_critics_drifting_g_loss():
    def drift(i, m):
        m["g_loss"] = 5.0 * (1 if i % 2 else -1)
    assert run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 200, patch=drift)) == []


def test_mode_collapse_uses_the_real_spread_and_pairwise_distance():
    # toy data: raw coordinates with real std 2.8; a sample std of 0.5 is a fine, unfinished G
    def unfinished(i, m):
        m.update(sample_std=0.5, sample_pdist=0.3)
    assert run(Diagnostics(Thresholds(), "wgan_gp", 2.8), stream("wgan_gp", 200, patch=unfinished)) == []

    def collapsed(i, m):
        if i >= WARM:
            m.update(sample_std=0.1)
    (e,) = run(Diagnostics(Thresholds(), "wgan_gp", 2.8), stream("wgan_gp", 200, patch=collapsed))
    assert e["evidence"]["sample_std_frac"] == pytest.approx(0.1 / 2.8, rel=1e-3)
    assert e["evidence"]["real_std"] == 2.8
    assert e["action"] == {"kind": "scale_lr", "which": "g", "factor": 0.5}

    # pairwise distance alone (std can hide a collapse onto two points)
    def pairs(i, m):
        if i >= WARM:
            m.update(sample_pdist=0.05)
    (e,) = run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 200, patch=pairs))
    assert e["evidence"]["sample_pdist"] == pytest.approx(0.05)
    assert "pairwise" in e["message"]


def test_mode_collapse_without_optional_keys_or_real_std():
    def plain(i, m):
        m.pop("sample_pdist")
        if i >= WARM:
            m["sample_std"] = 0.005
    (e,) = run(Diagnostics(Thresholds(), "ns", 0.0), stream("ns", 200, patch=plain))
    assert e["evidence"]["sample_std"] == pytest.approx(0.005)


def test_vanishing_gradients_needs_a_confident_d():
    # tiny |grad G| alone (D unsure) is not the saturation failure
    def tiny(i, m):
        if i >= WARM:
            m["grad_norm_g"] = 1e-5
    assert of(run(Diagnostics(Thresholds(), "minimax", REAL_STD), stream("minimax", 200, patch=tiny)),
              "vanishing_gradients") == []
    events = run(Diagnostics(Thresholds(), "minimax", REAL_STD),
                 stream("minimax", 200, patch=lambda i, m: i >= WARM and _vanished(m)))
    (e,) = of(events, "vanishing_gradients")
    assert e["evidence"]["grad_norm_g"] == pytest.approx(2e-5)
    assert e["evidence"]["gap"] == pytest.approx(0.98)
    assert e["action"] == {"kind": "scale_lr", "which": "d", "factor": 0.5}


def test_vanishing_gradients_for_a_critic_is_relative_to_its_baseline():
    # WGAN with clipping: |grad G| falls to 1% of what it was
    def fades(i, m):
        m["grad_norm_g"] = 1.5 if i < 100 else 0.015
    events = run(Diagnostics(Thresholds(), "wgan", REAL_STD), stream("wgan", 250, patch=fades))
    (e,) = of(events, "vanishing_gradients")
    assert "clip" in e["fix"]  # the fix fits the loss: no "use the non-saturating loss" for a critic
    assert e["evidence"]["threshold"] == pytest.approx(0.03, rel=1e-3)


@pytest.mark.parametrize("which, patch", [
    ("d", lambda m: m.update(grad_norm_d=500.0)),
    ("g", lambda m: m.update(grad_norm_g=500.0)),
    ("both", lambda m: m.update(grad_norm_d=500.0, grad_norm_g=800.0)),
])
def test_exploding_gradients_halves_the_exploding_side(which, patch):
    events = run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD),
                 stream("wgan_gp", 150, patch=lambda i, m: i >= WARM and patch(m)))
    (e,) = of(events, "exploding_gradients")
    assert e["action"] == {"kind": "scale_lr", "which": which, "factor": 0.5}
    assert e["evidence"]["threshold"] == 100.0


# --- divergence -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [("d_loss", float("nan")), ("g_loss", float("inf")),
                                        ("grad_norm_d", float("-inf")), ("gp", float("nan"))])
def test_divergence_fires_at_once_as_critical_and_never_clears(key, value):
    diag = Diagnostics(Thresholds(), "wgan_gp", REAL_STD)
    before = run(diag, stream("wgan_gp", 5))  # even inside the warm-up
    assert before == []
    bad = next(stream("wgan_gp", 6))
    bad.update(step=60, **{key: value})
    (e,) = diag.update(bad)
    assert (e["rule"], e["state"], e["severity"], e["step"]) == ("divergence", "raised", "critical", 60)
    assert key in e["message"] and "60" in e["message"]
    assert e["action"] is None
    json.dumps(e, allow_nan=False)  # non-finite evidence is spelled out, so the JSON stays valid
    assert e["evidence"][key] in ("nan", "inf", "-inf")
    # nothing more, ever: no clear, no other rule
    assert run(diag, stream("wgan_gp", 300)) == []
    assert [a["rule"] for a in diag.active()] == ["divergence"]


def test_divergence_reported_for_weights_by_the_trainer():
    diag = Diagnostics(Thresholds(), "ns", REAL_STD)
    (e,) = diag.report_divergence(1230, "weights")
    assert e["rule"] == "divergence" and "weights" in e["message"]
    assert diag.report_divergence(1240, "weights") == []
    assert diag.update({"step": 1250, "d_loss": float("nan")}) == []


def test_first_non_finite():
    assert first_non_finite({"step": 1, "d_loss": 1.0}) is None
    key, value = first_non_finite({"sample_std": float("nan"), "g_loss": float("inf")})
    assert key == "g_loss" and value == float("inf")


# --- record shape, active list, exports -----------------------------------------------------------

def _all_events():
    events = []
    for name in SCENARIOS:
        kind, rule, bad = scenario(name)
        events += run(Diagnostics(Thresholds(), kind, REAL_STD),
                      stream(kind, 300, patch=lambda i, m: START <= i < START + 80 and bad(m)))

    def drops(i, m):  # all 8 ring modes, then 3 of them for a while, then all again
        healthy_toy(i, m)
        if is_quality(i) and 100 <= i < 200:
            toy_quality(m, 3)
    events += run(Diagnostics(Thresholds(), "wgan_gp", REAL_STD), stream("wgan_gp", 400, patch=drops))

    def class_collapse(i, m):
        m["class_pdist"] = [0.9] * 10 if not 100 <= i < 200 else [0.9] * 7 + [0.05] * 3
    events += run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 400, patch=class_collapse))

    def memorises(i, m):  # held-out reals scored like fakes for a while (d_overfitting), then not
        m.update(d_rt=0.9, d_holdout_gap=0.8 if 100 <= i < 200 else 0.05)
    events += run(Diagnostics(Thresholds(), "ns", REAL_STD), stream("ns", 400, patch=memorises))
    d = Diagnostics(Thresholds(), "ns", REAL_STD)
    events += d.update({"step": 10, "d_loss": float("nan")})
    return events


def test_alert_records_follow_the_contract():
    events = _all_events()
    assert {e["rule"] for e in events} == set(RULES)
    for e in events:
        assert set(e) == {"step", "rule", "state", "severity", "message", "evidence", "fix", "action"}
        assert isinstance(e["step"], int)
        assert e["state"] in ("raised", "cleared")
        assert e["severity"] in GLYPHS
        assert e["message"].endswith(".") and "\n" not in e["message"]
        assert any(ch.isdigit() for ch in e["message"])  # carries the numbers
        assert e["fix"].endswith(".") and e["fix"].count(". ") == 0  # one sentence
        assert e["evidence"] and all(isinstance(v, (int, float, str)) or _indices(v) for v in e["evidence"].values())
        json.dumps(e, allow_nan=False)
        if e["action"] is not None:
            assert actions.normalise(e["action"]) == e["action"]  # one of the two shapes, exactly
    assert {e["action"]["kind"] for e in events if e["action"]} == {"scale_lr", "set"}


def _indices(v) -> bool:
    return isinstance(v, list) and all(isinstance(i, int) and i >= 0 for i in v)


def test_active_lists_raised_alerts_critical_first():
    diag = Diagnostics(Thresholds(), "ns", REAL_STD)
    run(diag, stream("ns", 140, patch=lambda i, m: i >= WARM and _collapsed(m)))
    assert [a["rule"] for a in diag.active()] == ["mode_collapse"]
    diag.active()[0]["rule"] = "tampered"  # a copy: the caller cannot corrupt the state
    assert diag.active()[0]["rule"] == "mode_collapse"
    diag.update({"step": 1210, "d_loss": float("nan")})
    assert [a["rule"] for a in diag.active()] == ["divergence", "mode_collapse"]


def test_rules_and_glyphs_for_the_help_screen():
    assert set(RULES) == {"d_overpowering", "oscillation", "mode_collapse", "mode_dropping", "vanishing_gradients",
                          "exploding_gradients", "divergence", "d_overfitting"}
    assert all(isinstance(v, str) and v and "\n" not in v for v in RULES.values())
    assert set(GLYPHS) == {"warning", "critical"}
    assert len(set(GLYPHS.values())) == 2 and all(len(g) == 1 for g in GLYPHS.values())


def test_memory_is_bounded_over_a_long_run():
    t = Thresholds()
    diag = Diagnostics(t, "ns", REAL_STD)
    saw = _oscillating_factory()
    base = list(stream("ns", 2000))
    phases = []
    for i in range(100_000):
        m = dict(base[i % len(base)], step=(i + 1) * EVERY)
        phase = (i // 500) % 4  # failures come and go, so every code path keeps running
        if phase == 1:
            _collapsed(m)
        elif phase == 2:
            saw(m)
        for e in diag.update(m):
            phases.append((e["rule"], e["state"]))
    assert phases.count(("mode_collapse", "raised")) == phases.count(("mode_collapse", "cleared")) == 50
    assert phases.count(("oscillation", "raised")) == 50
    cap = max(t.window, t.clear_window)
    for latch in diag.latches.values():
        assert len(latch.history) <= cap
        assert len(latch.recent) <= cap and len(latch.basis) <= cap
    for series in diag.oscillation.series.values():
        assert len(series) <= max(t.window, 4)
    assert all(len(s) <= t.window for s in diag._baseline_samples.values())
    assert len(diag._active) <= len(RULES)

"""One verdict per signal: the health row and the D/G gauge come from the alert rules' own state,
so the screen can never say OVERPOWERING while the alerts say OK; and the one-key fixes."""

from __future__ import annotations

import json
import math
import random

import pytest

from gantui.diagnostics import Diagnostics, Health, Thresholds, actions

from diag_streams import EVERY, REAL_STD, START, WARM, healthy_toy, is_quality, of, run, stream, toy_quality

RULES_ORDER = ["divergence", "d_overpowering", "oscillation", "mode_collapse", "mode_dropping",
               "vanishing_gradients", "exploding_gradients"]


def _saw(i, m):
    m.update(d_loss=2.4 if i % 2 else 0.15)


STREAMS = {
    # name: (loss kind, patch(i, m) from START to START + 80, then healthy)
    "overpowering": ("ns", lambda i, m: m.update(d_loss=0.03, d_real=0.98, d_fake=0.02)),
    "grad_ratio": ("lsgan", lambda i, m: m.update(grad_norm_d=40.0, grad_norm_g=0.35)),
    "oscillation": ("ns", _saw),
    "collapse": ("wgan_gp", lambda i, m: m.update(sample_std=0.004, sample_pdist=0.01)),
    "class_collapse": ("ns", lambda i, m: m.update(class_pdist=[0.9] * 8 + [0.05, 0.05])),
    "dropping": ("ns", lambda i, m: is_quality(i) and toy_quality(m, 3)),
    "vanishing": ("minimax", lambda i, m: m.update(grad_norm_g=2e-5, d_real=0.99, d_fake=0.01)),
    "exploding": ("hinge", lambda i, m: m.update(grad_norm_d=450.0)),
}


def scenario_stream(name: str, n: int = START + 200):
    kind, bad = STREAMS[name]

    def patch(i, m):
        healthy_toy(i, m)
        if i < WARM and name == "class_collapse":
            m["class_pdist"] = [0.9] * 10
        if START <= i < START + 80:
            bad(i, m)
        elif name == "class_collapse":
            m["class_pdist"] = [0.9] * 10
    return kind, stream(kind, n, patch=patch)


@pytest.mark.parametrize("name", list(STREAMS))
def test_alert_level_exactly_while_raised(name):
    kind, records = scenario_stream(name)
    diag = Diagnostics(Thresholds(), kind, REAL_STD)
    seen = set()
    for m in records:
        diag.update(m)
        health = diag.health()
        assert list(health) == RULES_ORDER
        alerted = {r for r, v in health.items() if v.level == "alert"}
        assert alerted == {a["rule"] for a in diag.active()}, m["step"]
        for r, v in health.items():
            seen.add((r, v.level))
            assert v.word == ("ok" if v.level == "ok" else "watch" if v.level == "watch" else v.word)
            if v.level == "alert":
                assert v.word.isupper() and v.glyph == "▲"
        # the compact form says the same, and survives JSON
        compact = json.loads(json.dumps(diag.health_record(), allow_nan=False))
        assert Health.from_record(compact).levels == {r: v.level for r, v in health.items()}
    assert any(level == "alert" for _, level in seen)  # the scenario did raise something


def test_watch_comes_before_the_alert_and_after_a_clear():
    diag = Diagnostics(Thresholds(), "wgan_gp", REAL_STD)
    levels = []
    for i, m in enumerate(stream("wgan_gp", START + 120)):
        if START <= i < START + 40:
            m.update(sample_std=0.004)
        diag.update(m)
        levels.append(diag.health()["mode_collapse"].level)
    assert levels[START - 1] == "ok"
    need_watch = 5  # a quarter of the 20-record window
    assert levels[START + need_watch - 2] == "ok" and levels[START + need_watch - 1] == "watch"
    first_alert = levels.index("alert")
    assert first_alert == START + 15  # the 16th collapsed record of 20
    assert set(levels[START + need_watch - 1:first_alert]) == {"watch"}
    assert set(levels[first_alert:START + 40]) == {"alert"}
    assert levels[-1] == "ok"


def test_off_in_the_warm_up_except_a_pinned_d():
    diag = Diagnostics(Thresholds(), "ns", REAL_STD)
    run(diag, stream("ns", WARM - 5))
    h = diag.health()
    assert h["d_overpowering"].level == "ok"  # judged from the first record: a pinned D is certain
    assert h["d_overpowering"].condition == "pinned"
    for r in ("oscillation", "mode_dropping", "vanishing_gradients", "exploding_gradients"):
        assert (h[r].level, h[r].word) == ("off", "warm-up")
    # a collapse from the spread's own peak is certain early (issue 19): judged once the spread peaked
    assert (h["mode_collapse"].level, h["mode_collapse"].condition) == ("ok", "early")
    critic = Diagnostics(Thresholds(), "wgan_gp", REAL_STD)
    run(critic, stream("wgan_gp", 10))
    assert critic.health()["d_overpowering"].level == "off"  # nothing about a critic is certain early


def test_verdict_carries_the_rules_value_and_limit():
    kind, records = scenario_stream("grad_ratio", START + 30)
    diag = Diagnostics(Thresholds(), kind, REAL_STD)
    events = run(diag, records)
    (e,) = of(events, "d_overpowering")
    v = diag.health()["d_overpowering"]
    assert (v.level, v.word, v.condition, v.op) == ("alert", "OVERPOWERING", "grad_ratio", "above")
    assert v.threshold == pytest.approx(e["evidence"]["threshold"], rel=1e-3)
    assert v.value == pytest.approx(40.0 / 0.35)
    assert v.held >= 16 and v.window == 20


def test_the_gauge_is_labelled_from_the_rule():
    # the cgan: a conv D's raw |grad D| / |grad G| sits near 9 with records past 50 -- a
    # fixed 5x line read OVERPOWERING in most frames while the rule (5x its own baseline) said ok
    rng = random.Random(4)

    def conv_d(i, m):
        m["grad_norm_d"] = m["grad_norm_g"] * 9.0 * math.exp(rng.gauss(0, 0.6))
    diag = Diagnostics(Thresholds(), "ns", REAL_STD)
    over_5 = 0
    for m in stream("ns", START + 200, patch=conv_d):
        diag.update(m)
        g = diag.gauge()
        over_5 += (g.ratio or 0) > 5
        assert diag.health()["d_overpowering"].level != "alert"
    assert over_5 > 100  # the raw ratio is past the old fixed line most of the time ...
    g = diag.gauge()
    assert g.limit == pytest.approx(5 * g.baseline) and g.baseline > 5
    assert g.position == pytest.approx(g.ratio / g.limit) and g.position < 1  # ... and inside the rule's
    assert diag.health_record()["gauge"]["limit"] == pytest.approx(g.limit, rel=1e-3)

    # the provoked run: a frozen G against a fast D. The saturated D's gradient is tiny (the raw
    # ratio reads 1e-5, "G dominates"), yet the rule has raised: the verdict says OVERPOWERING.
    pinned = Diagnostics(Thresholds(), "ns", REAL_STD)
    run(pinned, stream("ns", 25, patch=lambda i, m: m.update(
        d_loss=3e-4, d_real=1.0, d_fake=2e-4, grad_norm_d=0.009, grad_norm_g=116.0)))
    assert pinned.gauge().ratio < 1e-3 and pinned.gauge().limit is None  # no baseline in the warm-up
    assert pinned.health()["d_overpowering"].word == "OVERPOWERING"


def test_disabled_and_diverged_rules_are_off():
    t = Thresholds(enabled=False)
    diag = Diagnostics(t, "ns", REAL_STD)
    run(diag, stream("ns", 100))
    assert {v.word for r, v in diag.health().items() if r != "divergence"} == {"disabled"}
    diag = Diagnostics(Thresholds(), "ns", REAL_STD)
    run(diag, stream("ns", 100))
    diag.update({"step": 1010, "d_loss": float("nan")})
    h = diag.health()
    assert (h["divergence"].level, h["divergence"].word, h["divergence"].glyph) == ("alert", "DIVERGED", "✖")
    assert {v.level for r, v in h.items() if r != "divergence"} == {"off"}


def test_health_from_a_record_rejects_what_it_cannot_read():
    assert Health.from_record(None) is None
    assert Health.from_record({"levels": {"d_overpowering": "panic"}}) is None
    h = Health.from_record({"levels": {"d_overpowering": "alert", "mode_collapse": "ok"},
                            "gauge": {"ratio": 3.5, "limit": "x"}})
    assert h.verdicts["d_overpowering"].word == "OVERPOWERING"
    assert (h.gauge.ratio, h.gauge.limit, h.gauge.position) == (3.5, None, None)


# --- actions ------------------------------------------------------------------------------------

def test_action_shapes_and_the_first_form():
    assert actions.scale_lr("d", 0.5) == {"kind": "scale_lr", "which": "d", "factor": 0.5}
    assert actions.set_value("loss.n_critic", 2) == {"kind": "set", "key": "loss.n_critic", "value": 2}
    # events.jsonl files written before `kind` existed still read as rate changes
    assert actions.normalise({"which": "both", "factor": 0.5}) == actions.scale_lr("both", 0.5)
    for bad in (None, {}, {"kind": "scale_lr", "which": "x", "factor": 0.5}, {"which": "d", "factor": -1},
                {"kind": "set", "key": "model.arch", "value": 1}, {"kind": "set", "key": "loss.n_critic", "value": True},
                {"kind": "reboot"}):
        assert actions.normalise(bad) is None, bad
    with pytest.raises(ValueError, match="live"):
        actions.set_value("loss.kind", 1)
    assert actions.describe(actions.scale_lr("d", 0.5)) == "halve D's rate"
    assert actions.describe(actions.scale_lr("both", 0.25)) == "both rates x0.25"
    assert actions.describe(actions.set_value("loss.label_smoothing", 0.1)) == "label_smoothing -> 0.1"
    assert actions.describe({"kind": "nonsense"}) == ""


def test_a_critic_that_overpowers_gets_fewer_critic_steps():
    def grows(i, m):
        if i >= START:
            m.update(grad_norm_d=90.0, grad_norm_g=0.15)
    diag = Diagnostics(Thresholds(), "wgan_gp", REAL_STD, n_critic=5)
    (e,) = of(run(diag, stream("wgan_gp", START + 30, patch=grows)), "d_overpowering")
    assert e["action"] == {"kind": "set", "key": "loss.n_critic", "value": 2}
    assert "n_critic 5" in e["fix"]
    # after the engine applies it, the next suggestion follows the live value
    diag = Diagnostics(Thresholds(), "wgan_gp", REAL_STD, n_critic=5)
    diag.configure(n_critic=1)
    (e,) = of(run(diag, stream("wgan_gp", START + 30, patch=grows)), "d_overpowering")
    assert e["action"] == {"kind": "scale_lr", "which": "d", "factor": 0.5}


def test_every_rule_offers_a_live_fix_or_none():
    # every action any rule suggests is one of the two shapes, with a live key
    for name in STREAMS:
        kind, records = scenario_stream(name)
        raised = [e for e in run(Diagnostics(Thresholds(), kind, REAL_STD, n_critic=5), records)
                  if e["state"] == "raised"]
        assert raised, f"the {name} scenario raised no alert: nothing here was checked"
        for e in raised:
            assert actions.normalise(e["action"]) == e["action"], e

"""A verdict that earns its `ok` (issue 19), on recorded and synthetic streams fed to the pure rules:
no `ok` while a rule cannot judge; a collapse certain early is raised inside the warm-up; coverage
judged by the share each mode or class receives; a recurring failure is raised again; the rules'
memory survives a save and a restore."""

from __future__ import annotations

import json

from gantui.diagnostics import Diagnostics, Thresholds
from gantui.diagnostics.health import Health

from diag_streams import EVERY, QUALITY_EVERY, REAL_STD, START, WARM, is_quality, of, run, stream

T = Thresholds()


def records(kind: str, n: int, patch=None) -> list[dict]:
    return list(stream(kind, n, patch=patch))


# --- no `ok` unearned ------------------------------------------------------------------------------

def test_a_metric_that_stops_being_recorded_reads_off_not_a_stale_ok():
    recs = records("ns", START + 5, patch=lambda i, m: i >= START and [m.pop("grad_norm_g"), m.pop("grad_norm_d")])
    diag = Diagnostics(T, "ns", REAL_STD)
    run(diag, recs[:START])
    assert diag.health()["exploding_gradients"].level == "ok"  # judged while recorded
    run(diag, recs[START:])
    h = diag.health()
    for rule in ("exploding_gradients", "vanishing_gradients"):
        assert (h[rule].level, h[rule].word) == ("off", "not recorded")
    # the record carries the reason, and the screen's reader shows it
    rec = diag.health_record()
    assert rec["levels"]["exploding_gradients"] == "off" and rec["reasons"]["exploding_gradients"] == "not recorded"
    shown = Health.from_record(json.loads(json.dumps(rec))).verdicts["exploding_gradients"]
    assert (shown.level, shown.word) == ("off", "not recorded")


def test_every_record_names_why_each_off_rule_cannot_judge():
    diag = Diagnostics(T, "ns", REAL_STD)
    seen = set()
    for m in stream("ns", START + 40, patch=lambda i, m: is_quality(i) and toy(m, [0] * 8, hq=0.01)):
        diag.update(m)
        rec = diag.health_record()
        off = {r for r, level in rec["levels"].items() if level == "off"}
        assert off == set(rec["reasons"]) and all(rec["reasons"].values())
        seen |= set(rec["reasons"].values())
    assert {"warm-up", "too few sharp samples"} <= seen
    # too few sharp samples after the warm-up: off with the reason, never ok
    h = diag.health()["mode_dropping"]
    assert (h.level, h.word) == ("off", "too few sharp samples")


# --- early certainty, early ------------------------------------------------------------------------

SHAPES_REAL_STD = 0.42  # a folder of rendered shapes on black: the real images' mean per-pixel std


def issue_collapse(i: int, m: dict) -> None:
    """The issue's dcgan-on-shapes run: the fixed batch's pixel spread grows from 0.02 to 0.165 by
    step 190 (pairwise distance up to 0.9 of the real data's), then falls to 0.002-0.005 from step
    310 on while D is right on every sample."""
    step = (i + 1) * EVERY
    if step <= 190:
        m["sample_std"] = 0.02 + 0.145 * step / 190
        m["sample_pdist"] = 0.05 + 0.85 * step / 190
    elif step < 310:
        m["sample_std"], m["sample_pdist"] = 0.12, 0.6
    else:
        m["sample_std"] = 0.002 + 0.003 * (i % 2)
        m["sample_pdist"] = 0.01 + 0.01 * (i % 2)
        m["d_acc"] = 1.0


def test_a_collapse_from_its_own_peak_is_raised_inside_the_warm_up():
    diag = Diagnostics(T, "ns", SHAPES_REAL_STD)
    events = run(diag, stream("ns", WARM - 1, patch=issue_collapse))
    (e,) = of(events, "mode_collapse")
    assert e["state"] == "raised" and e["evidence"]["condition"] == "early"
    assert 310 < e["step"] < T.warmup_steps  # 7 of 8 collapsed records: step 380
    assert "own peak" in e["message"]
    assert diag.health()["mode_collapse"].level == "alert"


def test_an_untrained_generators_low_spread_is_not_a_collapse():
    # step 0's G: a spread of 0.05 of the real data's that has not peaked yet (and one that then
    # grows as in every healthy early run): off in the warm-up, nothing raised
    def young(i, m):
        step = (i + 1) * EVERY
        m["sample_std"] = 0.01 if step < 200 else 0.01 + 0.3 * (step - 200) / 300
        m["sample_pdist"] = 0.03 if step < 200 else 0.03 + 0.8 * (step - 200) / 300
    diag = Diagnostics(T, "ns", REAL_STD)
    levels = []
    for m in stream("ns", WARM - 1, patch=young):
        diag.update(m)
        levels.append((m["step"], diag.health()["mode_collapse"].word))
    assert of(run(diag, []), "mode_collapse") == []
    assert all(word == "warm-up" for step, word in levels if step < 200)
    assert levels[-1][1] == "ok"  # it peaked, so the early judgement runs


# --- coverage by share -----------------------------------------------------------------------------

def toy(m: dict, hist: list[int], hq: float | None = None, n: int = 2500) -> None:
    """A toy live-quality record with its HQ histogram, as gantui.engine.quality writes it."""
    hq = sum(hist) / n if hq is None else hq
    m.update(modes_captured=sum(c > 0 for c in hist), modes_total=len(hist), hq_fraction=hq,
             modes_lost=[i for i, c in enumerate(hist) if c == 0],
             modes_captured_strict=sum(c >= 20 for c in hist), mode_histogram=list(hist))


def partial_grid() -> list[int]:
    """The issue's grid25 run: 19 of 25 modes by the one-sample count, 8 strictly, the top row of
    the grid (modes 20-24) empty, 22 % of the samples high quality (550 of 2,500)."""
    hist = [0] * 25
    for i, c in zip((0, 1, 5, 6, 7, 10, 11, 12), (80, 70, 70, 60, 60, 70, 60, 60)):
        hist[i] = c
    for i in (2, 3, 4, 8, 9, 13, 14, 15, 16, 17, 18):
        hist[i] = 2
    hist[19] = 0
    return hist


def test_partial_coverage_on_grid25_raises_naming_the_starved_modes():
    hist = partial_grid()
    assert sum(c > 0 for c in hist) == 19 and sum(c >= 20 for c in hist) == 8
    diag = Diagnostics(T, "wgan_gp", REAL_STD)
    events = run(diag, stream("wgan_gp", START + 80, patch=lambda i, m: is_quality(i) and toy(m, hist, hq=0.22)))
    (e,) = of(events, "mode_dropping")
    assert e["evidence"]["condition"] == "starved"
    assert set(range(20, 25)) <= set(e["evidence"]["starved"]) and e["evidence"]["empty"][-5:] == [20, 21, 22, 23, 24]
    assert "8 have at least 20" in e["message"] and "starved:" in e["message"]
    assert e["step"] >= T.warmup_steps


def test_a_balanced_grid_stays_silent_whatever_its_noise():
    import random
    rng = random.Random(0)

    def balanced(i, m):
        if is_quality(i):
            toy(m, [max(0, int(rng.gauss(90, 25))) for _ in range(25)], hq=0.9)
    diag = Diagnostics(T, "wgan_gp", REAL_STD)
    assert of(run(diag, stream("wgan_gp", START + 200, patch=balanced)), "mode_dropping") == []
    assert diag.health()["mode_dropping"].level == "ok"


def test_two_empty_ring_modes_are_starved_though_the_run_never_had_them():
    diag = Diagnostics(T, "ns", REAL_STD)
    hist = [300, 310, 320, 290, 300, 310, 0, 0]
    events = run(diag, stream("ns", START + 80, patch=lambda i, m: is_quality(i) and toy(m, hist)))
    (e,) = of(events, "mode_dropping")
    assert e["evidence"]["condition"] == "starved" and e["evidence"]["empty"] == [6, 7]


def test_a_ring8_generator_that_never_reaches_the_data_is_judged_not_switched_off():
    # the issue's ring8 seeds: a streak off the ring, 0 of 8 modes, 0-1 % high quality for good
    def streak(i, m):
        if is_quality(i):
            toy(m, [0, 0, 3, 0, 0, 0, 0, 0] if i % 20 else [0] * 8)
    diag = Diagnostics(T, "ns", REAL_STD)
    levels = []
    events = []
    for m in stream("ns", 300, patch=streak):
        events += diag.update(m)
        levels.append((m["step"], diag.health()["mode_dropping"].word))
    (e,) = of(events, "mode_dropping")
    assert e["evidence"]["condition"] == "unreached" and "never reached the data" in e["message"]
    assert T.reach_steps <= e["step"] <= T.reach_steps + 5 * QUALITY_EVERY * EVERY
    # before reach_steps it cannot judge, and says so
    assert {w for s, w in levels if T.warmup_steps <= s < T.reach_steps} == {"too few sharp samples"}


def classes(m: dict, hist: list[int]) -> None:
    k = len(hist)
    m.update(class_coverage=sum(c > 0 for c in hist) / k, classes_missing=[i for i, c in enumerate(hist) if c == 0],
             class_histogram=list(hist), class_coverage_strict=sum(c >= 20 for c in hist) / k,
             confident_fraction=sum(hist) / 1000)


def test_one_class_from_the_first_quality_record_raises():
    # the issue's loosened WGAN: every confident sample the same digit (coverage 0.1 throughout)
    diag = Diagnostics(T, "wgan", REAL_STD)
    events = run(diag, stream("wgan", START + 80,
                              patch=lambda i, m: is_quality(i) and classes(m, [0, 0, 0, 410, 0, 0, 0, 0, 0, 0])))
    (e,) = of(events, "mode_dropping")
    assert e["evidence"]["condition"] == "starved" and len(e["evidence"]["starved"]) == 9
    assert "classes" in e["message"]


def test_a_conditional_model_missing_three_classes_raises_naming_them():
    hist = [95, 98, 0, 97, 99, 0, 96, 94, 0, 97]
    diag = Diagnostics(T, "ns", REAL_STD)
    events = run(diag, stream("ns", START + 80, patch=lambda i, m: is_quality(i) and classes(m, hist)))
    (e,) = of(events, "mode_dropping")
    assert e["evidence"]["starved"] == [2, 5, 8] and "2, 5, 8" in e["message"]


def test_a_young_digits_dcgan_that_gives_two_digits_a_sixth_of_their_share_stays_silent():
    # the shipped dcgan, seed 0, steps 500-3,000 (its quality records, 2026-12-06): digits 4 and 6 got
    # 0-7 of 360-450 confident samples for 1,500 steps (the samples confirm it: one 4 in 200), then
    # recovered while FID fell from 13.6 to 4.6. Under the toys' 20 % of a fair share this raised.
    records = [[18, 1, 68, 150, 0, 40, 1, 42, 39, 1], [8, 7, 43, 104, 1, 14, 0, 55, 200, 9],
               [14, 5, 41, 100, 2, 54, 6, 45, 121, 15], [25, 16, 55, 64, 1, 24, 7, 37, 127, 24],
               [28, 25, 42, 57, 14, 46, 7, 62, 106, 12], [32, 29, 45, 61, 7, 36, 13, 47, 151, 28]]
    seen = []

    def patch(i, m):  # a quality record every 500 steps, as the preset's log.eval_every
        if m["step"] % 500 == 0:
            classes(m, records[m["step"] // 500 - 1])
            seen.append(m["step"])

    diag = Diagnostics(T, "ns", REAL_STD)
    assert of(run(diag, stream("ns", 3000 // EVERY, patch=patch)), "mode_dropping") == []
    assert seen == [500, 1000, 1500, 2000, 2500, 3000]
    assert diag.health()["mode_dropping"].word == "ok"   # judged, not switched off


def test_unbalanced_but_present_classes_stay_silent():
    # digits GANs favour some digits: the rarest class at a third of its fair share is not starved
    hist = [160, 150, 40, 120, 90, 80, 110, 90, 60, 100]
    diag = Diagnostics(T, "ns", REAL_STD)
    assert of(run(diag, stream("ns", START + 80, patch=lambda i, m: is_quality(i) and classes(m, hist))),
              "mode_dropping") == []


# --- hysteresis that does not forgive -------------------------------------------------------------

def collapse(m: dict) -> None:
    m["sample_std"], m["sample_pdist"] = 0.001, 0.005


def test_a_generator_that_keeps_returning_to_a_point_does_not_clear():
    # raised, then one record in five collapsed again: failed in 16 of every 20 records, which
    # "failed in most of the window" alone would clear; the newest quarter of the window must be clean
    def patch(i, m):
        if START <= i < START + 30 or (i >= START + 30 and i % 5 == 0):
            collapse(m)
    events = of(run(Diagnostics(T, "ns", REAL_STD), stream("ns", START + 200, patch=patch)), "mode_collapse")
    assert [e["state"] for e in events] == ["raised"]


def test_a_collapse_that_recurs_after_clearing_is_raised_again():
    # raised, a real recovery (cleared), then the G returns to a point in 9 of every 20 records
    on, off, back = START, START + 30, START + 70

    def patch(i, m):
        if on <= i < off or (i >= back and i % 20 < 9):
            collapse(m)
    events = of(run(Diagnostics(T, "ns", REAL_STD), stream("ns", START + 160, patch=patch)), "mode_collapse")
    assert [e["state"] for e in events] == ["raised", "cleared", "raised"]
    assert events[2]["step"] // EVERY - back <= T.window
    # the same intermittent pattern in a run that never raised stays below the first raise
    fresh = run(Diagnostics(T, "ns", REAL_STD), stream("ns", START + 160,
                                                       patch=lambda i, m: i >= back and i % 20 < 9 and collapse(m)))
    assert of(fresh, "mode_collapse") == []


# --- a resume remembers --------------------------------------------------------------------------

def test_rule_state_survives_a_checkpoint_in_the_middle_of_a_raised_alert():
    hist = [300, 310, 320, 290, 300, 310, 0, 0]

    def patch(i, m):
        if START <= i < START + 60:
            collapse(m)
        if is_quality(i):
            toy(m, hist)
    recs = records("ns", START + 160, patch)
    cut = START + 40  # mode_collapse and mode_dropping raised, neither cleared
    straight = Diagnostics(T, "ns", REAL_STD)
    before = run(straight, recs[:cut])
    assert {e["rule"] for e in before} >= {"mode_collapse", "mode_dropping"}
    saved = json.loads(json.dumps(straight.state()))  # through JSON, as the checkpoint's metadata
    resumed = Diagnostics(T, "ns", REAL_STD)
    assert resumed.load_state(saved)
    assert resumed.health_record() == straight.health_record()
    assert resumed.active() == straight.active()
    for m in recs[cut:]:
        assert resumed.update(dict(m)) == straight.update(dict(m))
        assert resumed.health_record() == straight.health_record()
    # a fresh Diagnostics (what a resume did before) forgets the raised alerts
    forgetful = Diagnostics(T, "ns", REAL_STD)
    forgetful.update(dict(recs[cut]))
    assert forgetful.health()["mode_collapse"].level != "alert"


def test_a_malformed_saved_state_starts_the_rules_afresh():
    diag = Diagnostics(T, "ns", REAL_STD)
    run(diag, stream("ns", 30))
    good = diag.state()
    for bad in (None, {}, {"version": 99}, dict(good, latches={"mode_collapse": {"history": "x"}}),
                dict(good, step="ten")):
        fresh = Diagnostics(T, "ns", REAL_STD)
        assert fresh.load_state(bad) is False
        assert fresh.step == 0 and fresh.active() == []


def test_the_health_row_shows_why_a_rule_is_off():
    from gantui.ui.text import health_entries, health_lines

    diag = Diagnostics(T, "ns", REAL_STD)
    run(diag, stream("ns", START + 20, patch=lambda i, m: is_quality(i) and toy(m, [0] * 8, hq=0.01)))
    record = {"step": diag.step, "health": json.loads(json.dumps(diag.health_record()))}
    text = " ".join(line.plain for line in health_lines(health_entries(record), 400, max_lines=4))
    assert "too few sharp samples" in text
    assert "ok" in text  # the rules that do judge still say so


def test_a_tampered_rule_state_in_a_checkpoint_is_refused_quietly():
    from gantui.engine.state import restore_diagnostics

    diag = Diagnostics(T, "ns", REAL_STD)
    run(diag, stream("ns", START + 30, patch=lambda i, m: i >= START and collapse(m)))
    good = diag.state()
    assert good["active"]
    bogus_condition = json.loads(json.dumps(good))
    bogus_condition["latches"]["mode_collapse"]["history"][-1] = {"no_such": [True, 1.0, {}]}
    bad_alert = json.loads(json.dumps(good))
    bad_alert["active"]["mode_collapse"]["evidence"] = "x"
    for raw in ("[" * 100000 + "]" * 100000, "{", json.dumps(bogus_condition), json.dumps(bad_alert),
                json.dumps(dict(good, raised_by={"mode_collapse": "nope"}))):
        fresh = Diagnostics(T, "ns", REAL_STD)
        note = restore_diagnostics(fresh, {"diagnostics": raw})
        assert note and "afresh" in note and fresh.active() == []
    fresh = Diagnostics(T, "ns", REAL_STD)
    assert restore_diagnostics(fresh, {"diagnostics": json.dumps(good)}) is None
    assert [a["rule"] for a in fresh.active()] == ["mode_collapse"]


def test_classes_are_shared_out_by_the_samples_the_classifier_names_not_its_confident_ones():
    # the shipped fashion preset, seed 0, step 3,000 (FID falling 23.6 -> 6.3): the classifier is
    # confident (p >= 0.9) on 4-15 % of real coats, shirts and pullovers, so its confident samples
    # starve those classes; the samples it names (p >= 0.5) share out over all ten
    confident = [0, 51, 1, 9, 1, 9, 0, 4, 45, 37]
    named = [27, 77, 42, 55, 33, 59, 89, 37, 132, 91]

    def patch(i, m):
        if m["step"] % 500 == 0:
            classes(m, confident)
            m["class_counts"] = list(named)

    diag = Diagnostics(T, "ns", REAL_STD)
    assert of(run(diag, stream("ns", 4000 // EVERY, patch=patch)), "mode_dropping") == []
    assert diag.health()["mode_dropping"].word == "ok"

    # the same confident samples with nothing else recorded (records before class_counts) do raise
    diag = Diagnostics(T, "ns", REAL_STD)
    old = lambda i, m: m["step"] % 500 == 0 and classes(m, confident)  # noqa: E731
    (e,) = of(run(diag, stream("ns", 4000 // EVERY, patch=old)), "mode_dropping")
    assert set(e["evidence"]["starved"]) >= {0, 2, 4, 6}

"""Memorisation (issue 19): data.holdout, ADA's signals d_rt / d_holdout_gap, the d_overfitting rule,
and its fix, differentiable augmentation (DiffAugment's transforms, ADA's adaptive p)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gantui import augment as aug
from gantui.data import DataInfo, Dataset, holdout
from gantui.diagnostics import Diagnostics, Thresholds
from gantui.diagnostics.overfitting import NO_HOLDOUT, DOverfitting, judge, judge_split

# --- the rule, on synthetic figure streams (pure) ---------------------------------------------------

T = Thresholds(warmup_steps=100, window=10, clear_window=10)


def stream(diag: Diagnostics, start: int, n: int, **figures) -> list[dict]:
    out = []
    for i in range(n):
        step = start + 10 * i
        m = {"step": step, "d_loss": 0.9, "g_loss": 1.2, "d_real": 0.7, "d_fake": 0.3, **figures}
        out += diag.update(m)
    return out


def test_rule_raises_when_held_out_reals_score_like_fakes_and_names_augmentation():
    diag = Diagnostics(T, "ns")
    assert stream(diag, 0, 30, d_rt=0.5, d_holdout_rt=0.45, d_holdout_gap=0.05) == []  # healthy: silent
    raised = stream(diag, 300, 10, d_rt=0.95, d_holdout_rt=-0.4, d_holdout_gap=0.8)
    assert [a["rule"] for a in raised] == ["d_overfitting"]
    a = raised[0]
    assert a["state"] == "raised" and a["evidence"]["d_holdout_gap"] == 0.8
    assert a["action"] == {"kind": "set", "key": "data.augment_target", "value": 0.6}
    assert "augment" in a["fix"].lower()
    assert diag.health()["d_overfitting"].level == "alert"


def test_rule_needs_training_reals_confident_and_a_sustained_gap():
    # the gap alone, with D undecided on its own training images: not memorising
    assert not judge({"d_holdout_gap": 0.9, "d_rt": 0.2}, T).holds
    assert judge({"d_holdout_gap": 0.9, "d_rt": 0.7}, T).holds
    assert judge({"d_holdout_gap": 0.9}, T).holds              # a critic: no r_t, the gap decides
    assert not judge({"d_holdout_gap": 0.3, "d_rt": 1.0}, T).holds
    diag = Diagnostics(T, "ns")
    # half the records over the limit: never raised
    for i in range(40):
        gap = 0.8 if i % 2 else 0.1
        assert diag.update({"step": 200 + 10 * i, "d_rt": 0.9, "d_holdout_gap": gap}) == []


def test_rule_raises_when_d_calls_fewer_held_out_reals_real_though_the_gap_stays_small():
    # benchmarks/memorisation.py, seed 1 without augmentation: D pushed its samples far down, so the gap on
    # its raw outputs stayed 0.2-0.43 while it called 69-100 % of its training images real and 0-34 % of the
    # held-out ones (r_t 0.84, held-out r 0.13 at step 2,000), and FID rose 71 % from its best
    assert judge_split({"d_rt": 0.844, "d_holdout_rt": 0.125}, T).holds
    assert not judge_split({"d_rt": 0.9, "d_holdout_rt": 0.6}, T).holds     # a few fewer: sampling noise
    assert not judge_split({"d_rt": 0.4, "d_holdout_rt": -0.4}, T).holds    # D unsure of its own training set
    assert judge_split({"d_holdout_gap": 0.3}, T) is None                    # a critic: no sign means
    diag = Diagnostics(T, "ns")
    assert stream(diag, 0, 30, d_rt=0.9, d_holdout_rt=0.6, d_holdout_gap=0.2) == []
    raised = stream(diag, 300, 10, d_rt=0.844, d_holdout_rt=0.125, d_holdout_gap=0.36)
    assert [(a["rule"], a["evidence"]["condition"]) for a in raised] == [("d_overfitting", "split")]
    assert "92% of the training images real and 56% of images it never trained on" in raised[0]["message"]


def test_rule_is_off_with_its_reason_without_a_holdout():
    diag = Diagnostics(T, "ns")
    stream(diag, 200, 5)  # records without the held-out figures
    v = diag.health()["d_overfitting"]
    assert v.level == "off" and v.word == NO_HOLDOUT


def test_fix_follows_the_augmentation_in_force():
    rule, ctx = DOverfitting(), Diagnostics(T).ctx
    rule.record({"augment_p": 0.3, "augment_rt": 0.9}, ctx)   # ADA already on
    assert rule.action_for(set(), ctx) == {"kind": "set", "key": "data.augment_target", "value": 0.4}
    rule.record({"augment_p": 0.5}, ctx)                       # fixed p below 1
    assert rule.action_for(set(), ctx)["key"] == "data.augment_p"


# --- the held-out slice ---------------------------------------------------------------------------------

def _set(n: int, seed_labels: bool = True) -> Dataset:
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()
    y = torch.arange(n) % 10 if seed_labels else None
    return Dataset(DataInfo("folder", (1, 2, 2), 10, False), x, y)


def test_holdout_size_minimum_and_refusals():
    assert holdout.plan(4000, 0.05, False) == (200, None)
    assert holdout.plan(400, 0.05, False) == (64, None)      # raised to the meaningful minimum
    k, why = holdout.plan(200, 0.05, False)
    assert k == 0 and "too few" in why and "256" in why
    assert holdout.plan(10_000, 0.05, True)[0] == 0 and "toy" in holdout.plan(10_000, 0.05, True)[1]
    assert holdout.plan(10_000, 0.0, False)[0] == 0


def test_holdout_is_deterministic_disjoint_and_restorable():
    a, b, c = _set(1000), _set(1000), _set(1000)
    assert holdout.apply(a, 0.1, seed=3) is None
    holdout.apply(b, 0.1, seed=3)
    holdout.apply(c, 0.1, seed=4)
    assert torch.equal(a.holdout_index, b.holdout_index)
    assert not torch.equal(a.holdout_index, c.holdout_index)
    train = set(a.x[:, 0, 0, 0].long().tolist())
    held = set(a.holdout_x[:, 0, 0, 0].long().tolist())
    assert len(held) == 100 and len(train) == 900 and not train & held and train | held == set(range(1000))
    assert held == set(a.holdout_index.tolist())
    assert torch.equal(a.holdout_y, a.holdout_index % 10)
    # a resume takes the checkpoint's slice: c becomes exactly a
    holdout.split(c, a.holdout_index)
    assert torch.equal(c.x, a.x) and torch.equal(c.holdout_x, a.holdout_x) and torch.equal(c.y, a.y)
    x, _ = holdout.whole(c)
    assert torch.equal(x, _set(1000).x)


# --- augmentation ---------------------------------------------------------------------------------------

def test_augmentation_is_identity_at_p0_and_differentiable():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    assert torch.equal(aug.diff_augment(x, 0.0), x)
    x.requires_grad_(True)
    out = aug.diff_augment(x, 1.0)
    assert not torch.allclose(out, x)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # translation moves content; cutout zeroes a square of half the side
    moved = aug.rand_translation(x.detach(), 1.0)
    assert moved.shape == x.shape and not torch.equal(moved, x.detach())
    cut = aug.rand_cutout(torch.ones(4, 1, 16, 16), 1.0)
    assert ((cut == 0).flatten(1).sum(1) > 0).all()


def test_adaptive_p_moves_towards_the_target():
    a = aug.Augment("ada", p=0.5, target=0.6, images=100)
    a.observe(torch.ones(10) * 3.0, 0.0, n=10)      # r_t = 1 > 0.6: D overconfident, augment more
    assert float(a.p) == pytest.approx(0.6)
    for _ in range(3):
        a.observe(-torch.ones(10), 0.0, n=10)        # r_t = -1 < 0.6: augment less
    assert float(a.p) == pytest.approx(0.3)
    for _ in range(20):
        a.observe(-torch.ones(10), 0.0, n=10)
    assert float(a.p) == 0.0                          # clamped at 0
    fixed = aug.Augment("diffaugment", p=1.0)
    fixed.observe(torch.ones(10), 0.0, n=10)
    assert float(fixed.p) == 1.0                      # only ada adapts


# --- a short real run -----------------------------------------------------------------------------------

SMALL = ["data.name=\"digits\"", "data.n_samples=400", "data.batch_size=16", "model.arch=\"mlp\"",
         "model.g_width=32", "model.d_width=32", "model.g_depth=1", "model.d_depth=1", "loss.kind=\"ns\"",
         "log.every=5", "log.eval_every=0", "log.sample_every=1000", "log.checkpoint_every=1000"]


def _trainer(run_dir: Path, steps: int, *extra: str, resume: Path | None = None):
    from gantui import config
    from gantui.engine.trainer import Trainer

    cfg = config.load("dcgan", SMALL + list(extra)).replace("run", steps=steps)
    t = Trainer(cfg, run_dir, device="cpu", resume=resume)
    t.setup()
    return t


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_real_run_records_the_signals_and_f_turns_augmentation_on(tmp_path):
    from gantui.engine.control import command_of_fix
    from gantui.engine.events import FINISHED

    t = _trainer(tmp_path / "run", 20)
    assert len(t.data.holdout_x) == 64 and len(t.data) == 336
    # d_overfitting's own action, sent as the monitor's `f` sends it, from the start of the run
    act = DOverfitting().action_for(set(), t.diagnostics.ctx)
    t.control.send(command_of_fix(act, reason="fix:d_overfitting"))
    assert t.run() == FINISHED
    recs = _records(tmp_path / "run")
    for r in recs:
        assert -1 <= r["d_rt"] <= 1 and -1 <= r["d_holdout_rt"] <= 1
        assert "augment_p" in r and "augment_rt" in r
    assert any("d_holdout_gap" in r for r in recs)
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    changed = [e for e in events if e["kind"] == "setting_changed"]
    assert changed and changed[0]["key"] == "data.augment_target" and changed[0]["mode"] == "ada"
    p_end = float(t.parts.augment.p)
    assert p_end > 0                                   # D was over-confident: ADA raised p from 0

    # resume: the same held-out slice, the same mode and p
    t2 = _trainer(tmp_path / "run", 25, "data.holdout=0.2", resume=tmp_path / "run")
    assert torch.equal(t2.data.holdout_index, t.data.holdout_index)
    assert t2.parts.augment.mode == "ada" and float(t2.parts.augment.p) == pytest.approx(p_end)


def test_no_holdout_on_a_small_set_is_said_in_one_line(tmp_path):
    from gantui.engine.events import FINISHED

    t = _trainer(tmp_path / "run", 5, "data.n_samples=200", "diagnostics.warmup_steps=0")
    assert t.data.holdout_x is None
    assert t.run() == FINISHED
    notes = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    notes = [e["message"] for e in notes if e["kind"] == "note"]
    assert any("too few" in n and "d_overfitting is off" in n for n in notes)
    assert all("d_rt" not in r for r in _records(tmp_path / "run"))
    last = _records(tmp_path / "run")[-1]["health"]
    assert last["levels"]["d_overfitting"] == "off" and last["reasons"]["d_overfitting"] == NO_HOLDOUT


def test_resume_with_adaptive_augmentation_is_exact(tmp_path):
    from safetensors.torch import load_file

    from gantui.engine.events import FINISHED

    ada = ("data.augment=\"ada\"", "data.augment_images=2000")  # fast ADA: p moves within 20 steps
    a = _trainer(tmp_path / "straight", 20, *ada)
    assert a.run() == FINISHED
    b = _trainer(tmp_path / "split", 10, *ada)
    assert b.run() == FINISHED
    c = _trainer(tmp_path / "split", 20, *ada, resume=tmp_path / "split")
    assert c.run() == FINISHED
    x = load_file(tmp_path / "straight" / "checkpoints" / "latest.safetensors")
    y = load_file(tmp_path / "split" / "checkpoints" / "latest.safetensors")
    assert 0 < float(x["augment.p"]) < 1               # ADA moved p, so the resume had a p to restore
    assert x.keys() == y.keys() and [k for k in x if not torch.equal(x[k], y[k])] == []


def test_a_critic_gets_diffaugment_not_ada():
    from gantui import config
    from gantui.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[data\] augment: 'ada' needs .*'wgan_gp'.*diffaugment"):
        config.load("wgan_gp", ["data.augment=\"ada\""])
    rule, ctx = DOverfitting(), Diagnostics(T, "wgan_gp").ctx
    rule.record({"d_holdout_gap": 0.9}, ctx)
    assert rule.action_for(set(), ctx) == {"kind": "set", "key": "data.augment_p", "value": 1.0}


def test_a_folder_held_as_uint8_stays_uint8_when_split():
    from gantui.data import UnitView

    raw = (torch.arange(300) % 256).to(torch.uint8).view(300, 1, 1, 1).expand(300, 1, 2, 2).contiguous()
    original = raw.clone()
    d = Dataset(DataInfo("folder", (1, 2, 2), 0, False), UnitView(raw))
    assert holdout.apply(d, 0.05, seed=0) is None
    assert isinstance(d.x, UnitView) and isinstance(d.holdout_x, UnitView) and d.x.raw.dtype == torch.uint8
    assert len(d.x) == 236 and len(d.holdout_x) == 64
    keep = torch.ones(300, dtype=torch.bool)
    keep[d.holdout_index] = False
    assert torch.equal(d.x.raw, original[keep])  # the kept images in their order
    assert torch.equal(d.holdout_x.raw, original[d.holdout_index])
    assert torch.equal(d.holdout_x[:], original[d.holdout_index].float() / 127.5 - 1)
    # split in place: the training images live in the read's own storage (no second copy of the set)
    assert d.x.raw.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr()
    x, _ = holdout.whole(d)
    assert torch.equal(x.raw, original)


def test_compacting_in_place_over_many_chunks_keeps_every_kept_row():
    raw = torch.arange(1000, dtype=torch.int64).view(1000, 1) * torch.tensor([[1, -1]])
    rows = torch.randperm(1000, generator=torch.Generator().manual_seed(5))[:700].sort().values
    want = raw[rows].clone()
    out = holdout.compact(raw, rows, chunk=7)  # 100 chunks: each reads rows later ones have not overwritten
    assert torch.equal(out, want) and out.data_ptr() == raw.data_ptr()

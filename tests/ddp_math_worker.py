"""One rank of tests/test_distributed.py::test_gan_traps_through_ddp (run by torchrun, 2 ranks).

The GAN steps that trip DDP, done the way gantui/engine/step.py does them, through the wrapper
gantui builds (gantui.engine.distributed.DDP._wrap); each gradient must equal the mean over
the ranks of the same loss computed on a bare copy of the model, rank by rank (what data
parallelism promises). Exits 1 naming every case that does not match.
"""

from __future__ import annotations

import copy
import os
import sys

import torch

from gantui import config, losses, models
from gantui.data import DataInfo
from gantui.engine.distributed import DDP

INFO = DataInfo("ring8", (2,), 0, True)
B = 32

CASES = {
    # name: (preset overrides, penalty)
    "wgan_gp (double backward)": (["loss.kind='wgan_gp'"], "gp"),
    "R1 (double backward)": (["loss.kind='ns'", "loss.r1_gamma=10.0"], "r1"),
    "BatchNorm D, two forwards": (["loss.kind='ns'", "model.batch_norm_d=true"], None),
}


def batch(k: int):
    """Rank k's batch; every rank can rebuild every rank's."""
    g = torch.Generator().manual_seed(100 + k)
    return torch.randn(B, 2, generator=g), torch.randn(B, 2, generator=g), torch.randn(B, 2, generator=g)


def d_loss(cfg, D, G, real, z, k):
    torch.manual_seed(7 + k)  # the penalty's own draws (eps), as each rank's RNG would give them
    with torch.no_grad():
        fake = G(z)
    loss = losses.d_loss(cfg.loss.kind, D(real), D(fake))
    if cfg.loss.kind == "wgan_gp":
        loss = loss + cfg.loss.gp_lambda * losses.gradient_penalty(D, real, fake)
    if cfg.loss.r1_gamma > 0:
        loss = loss + 0.5 * cfg.loss.r1_gamma * losses.r1_penalty(D, real)
    return loss


def g_loss(cfg, D, G, z):
    for w in D.parameters():
        w.requires_grad_(False)
    loss = losses.g_loss(cfg.loss.kind, D(G(z)))
    return loss


def grads(module):
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def main() -> int:
    strategy = DDP.start("cpu")
    rank, world = strategy.rank, strategy.world_size
    failed = []
    for name, (sets, _) in CASES.items():
        cfg = config.load("ring8", ["model.g_width=16", "model.d_width=16", *sets])
        torch.manual_seed(0)
        G, D = models.build(cfg, INFO)
        ref_G, ref_D = copy.deepcopy(G), copy.deepcopy(D)
        d_model, g_model = strategy._wrap(D), strategy._wrap(G)
        real, z, z2 = batch(rank)

        # the D step: real, fake (and penalty) forwards through DDP(D), one backward
        d_loss(cfg, d_model, G, real, z, rank).backward()
        got_d = grads(D)
        # the G step: DDP(G) through the bare D with its weights frozen; D's grads stay as they were
        g_loss(cfg, D, g_model, z2).backward()
        got_g = grads(G)
        d_after = grads(D)
        for w in D.parameters():
            w.requires_grad_(True)

        want_d = [torch.zeros_like(p) for p in ref_D.parameters()]
        want_g = [torch.zeros_like(p) for p in ref_G.parameters()]
        for k in range(world):
            rk, zk, z2k = batch(k)
            ref_D.zero_grad(set_to_none=True)
            ref_G.zero_grad(set_to_none=True)
            d_loss(cfg, ref_D, ref_G, rk, zk, k).backward()
            want_d = [a + p.grad / world for a, p in zip(want_d, ref_D.parameters())]
            g_loss(cfg, ref_D, ref_G, z2k).backward()
            want_g = [a + p.grad / world for a, p in zip(want_g, ref_G.parameters())]
            for w in ref_D.parameters():
                w.requires_grad_(True)

        ok = (all(g is not None and torch.allclose(g, w, rtol=1e-4, atol=1e-6) for g, w in zip(got_d, want_d))
              and all(g is not None and torch.allclose(g, w, rtol=1e-4, atol=1e-6) for g, w in zip(got_g, want_g))
              and all(torch.equal(a, b) for a, b in zip(got_d, d_after)))
        if not ok:
            failed.append(name)
    # divergence is decided together: a NaN in one rank's figures reaches every rank's
    flat = torch.tensor([1.0, 2.0, 0.0]) if rank == 0 else torch.tensor([float("nan"), 4.0, 0.0])
    got = strategy.combine(flat, 2)
    if not (torch.isnan(got[0]) and got[1] == 3.0):
        failed.append("a NaN on one rank did not reach the others")
    strategy.close()
    if failed:
        print(f"rank {rank}: gradients differ from the mean over ranks: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"rank {rank}: {len(CASES)} cases match")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # leave as gantui's own entry point does: the interpreter's teardown of DDP wrappers and a
    # gloo group sometimes aborts the process ('terminate called without an active exception')
    os._exit(code)

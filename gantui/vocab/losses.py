"""The loss families (`[loss] kind`) and their properties: the one place that says which loss is
a critic, which has probabilities, which label smoothing moves."""

from __future__ import annotations

LOSS_KINDS = ("ns", "minimax", "wgan", "wgan_gp", "lsgan", "hinge")
PROBABILITY_LOSSES = ("ns", "minimax")          # D outputs logits: d_real / d_fake are mean sigmoid(out)
CRITIC_LOSSES = ("wgan", "wgan_gp")             # unbounded critic scores: "confidence" means nothing
SMOOTHED_LOSSES = ("ns", "minimax", "lsgan")    # the losses whose real target label smoothing moves


def is_critic(kind: str) -> bool:
    """A Wasserstein critic (trained n_critic times per G step; its scores have no scale)."""
    return kind in CRITIC_LOSSES

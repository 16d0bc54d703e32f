"""Where each loss's numbers can go: the bounds the alert rules scale their limits to.

A D loss or a D score only means "D wins" relative to what the loss allows. With one-sided label
smoothing s (real target 1 - s; ns, minimax and lsgan only) a non-saturating D can never get its
loss below the binary entropy of 1 - s (0.33 nats at s = 0.1), and D(x) tops out near 1 - s, so a
fixed "D loss < 0.1" or "D(x) - D(G(z)) > 0.9" could never hold. Every limit is therefore stated
for the plain non-saturating loss and carried to the loss in force as the same share of its range:

* D loss: the same share of the way from the loss's floor (a D that separates perfectly) to its
  chance level (the best D that outputs one constant for everything);
* score gap D(x) - D(G(z)): the same share of the widest gap a winning D keeps, real target minus
  fake target (1 - s for ns, minimax and lsgan).

Critic losses (wgan, wgan_gp) have neither: their loss and scores are unbounded, with an offset
that drifts in healthy runs. Hinge has a floor (0, both margins met) but no widest gap: healthy
hinge scores sit past the margins much of the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gantui.vocab.losses import PROBABILITY_LOSSES, SMOOTHED_LOSSES

NS_CHANCE = 2 * math.log(2)  # plain ns D loss when D(x) = D(G(z)) = 1/2: the unit limits are stated in


def binary_entropy(p: float) -> float:
    """H(p) in nats; 0 at p = 0 or 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


@dataclass(frozen=True)
class LossRange:
    """The achievable range of one loss kind under one label smoothing."""

    kind: str
    smoothing: float            # in force for this loss (0 where the loss ignores it)
    floor: float | None         # smallest D loss: a D that separates real and fake perfectly
    chance: float | None        # D loss of the best constant D (one output for everything)
    real_top: float | None      # D's real score when it wins outright (its real target)
    fake_bottom: float | None   # D's fake score when it wins outright

    @property
    def span(self) -> float | None:
        """The widest D(x) - D(G(z)) a winning D keeps; None where scores are unbounded or offset."""
        if self.real_top is None or self.fake_bottom is None:
            return None
        return self.real_top - self.fake_bottom

    def d_loss_limit(self, ns_value: float) -> float | None:
        """The D loss that is as close to this loss's floor as `ns_value` is to the plain ns floor (0)."""
        if self.floor is None or self.chance is None:
            return None
        return self.floor + ns_value * ((self.chance - self.floor) / NS_CHANCE)

    def gap_limit(self, share: float) -> float | None:
        """`share` of the widest gap."""
        span = self.span
        return None if span is None else share * span


def loss_range(kind: str, label_smoothing: float = 0.0) -> LossRange:
    """The range of `kind` with one-sided label smoothing `label_smoothing` (in [0, 1))."""
    s = float(label_smoothing) if kind in SMOOTHED_LOSSES else 0.0
    t = 1.0 - s  # the real target
    if kind in PROBABILITY_LOSSES:
        # D minimises BCE(D(x), t) + BCE(D(G(z)), 0): the real term bottoms out at H(t) when D(x) = t,
        # the fake term at 0. The best constant c minimises -t ln c - (2 - t) ln(1 - c): c = t / 2.
        c = t / 2
        chance = -(t * math.log(c) + (2.0 - t) * math.log(1.0 - c))
        return LossRange(kind, s, binary_entropy(t), chance, t, 0.0)
    if kind == "lsgan":
        # 0.5 (D(x) - t)^2 + 0.5 D(G(z))^2: floor 0; the best constant is t / 2, giving t^2 / 4
        return LossRange(kind, s, 0.0, t * t / 4, t, 0.0)
    if kind == "hinge":
        # relu(1 - D(x)) + relu(1 + D(G(z))): 0 past both margins, 2 for any constant in [-1, 1]
        return LossRange(kind, 0.0, 0.0, 2.0, None, None)
    return LossRange(kind, 0.0, None, None, None, None)  # critics

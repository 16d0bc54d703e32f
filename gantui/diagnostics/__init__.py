"""Alert rules over the metric stream, and the health verdicts the screen shows. Pure Python: no
torch, no textual.

Every metric record (one per `log.every` optimizer steps) each rule says, for that record,
whether its condition holds. Conditions are "sustained", never instantaneous:

* a rule RAISES when its condition held in at least `sustain` (80 %) of the last `window`
  records, so a single spike (or two) never fires;
* a raised rule CLEARS only when its condition failed in at least `sustain` of the last
  `clear_window` records. Between the two it keeps its state, so a value hovering at the
  threshold (about half the records on each side) neither raises nor clears: no flapping.

Each raise and each clear is one record: rule, state, severity, a one-sentence message with
the numbers, the evidence (those numbers), one suggested fix and, where the engine can apply a
fix live, an `action` (gantui.diagnostics.actions) the monitor applies with one key.
`divergence` is the exception to the windows: the first non-finite loss, score, gradient norm or
weight raises it at once, critical, and it never clears (the engine stops updating).

Early training is noisy in ways that are healthy (an LSGAN D's loss dips near zero while G is
still noise, a toy G starts as a point), so for the first `warmup_steps` only divergence and a
D pinned at its floor (certain to have won: loss, scores and accuracy all at their limits,
judged over the shorter `early_window`) are judged. Limits on D's loss and scores follow the loss
kind and the label smoothing in force (gantui.diagnostics.loss_ranges). `mode_dropping` is judged
on the live-quality records only (every `log.eval_every` steps), over `quality_window` of them.

Keys read from a record (a missing key switches off the conditions that need it; any NaN/Inf
number in the record is divergence):
  every record   step, d_loss, g_loss, d_real, d_fake, grad_norm_d, grad_norm_g, sample_std,
                 sample_pdist (mean pairwise distance of the fixed batch / the real data's),
                 d_acc (probability losses: D's accuracy on its last real and fake batches),
                 class_pdist (conditional models: per class, the fixed batch's within-class mean
                 pairwise distance / the real data's within-class one; a list, one per class)
  quality records  modes_captured, modes_total, hq_fraction, modes_lost (toy data);
                 class_coverage, classes_missing (labelled images)

`Diagnostics.health()` gives one Verdict per rule (off / ok / watch / alert); 'alert' exactly
while the rule is raised. `Diagnostics.health_record()` is its compact form for the metrics
record's "health" key, and `Diagnostics.gauge()` the D/G gradient gauge labelled from the
d_overpowering rule.
"""

from __future__ import annotations

from gantui.diagnostics import actions
from gantui.diagnostics.alerts import Diagnostics, first_non_finite
from gantui.diagnostics.health import ALERT, LEVELS, OFF, OK, WATCH, Gauge, Health, Verdict
from gantui.diagnostics.loss_ranges import LossRange, loss_range
from gantui.diagnostics.rules import CRITICAL, WARNING, swing_stats
from gantui.diagnostics.thresholds import Thresholds
from gantui.vocab.losses import CRITIC_LOSSES, LOSS_KINDS, PROBABILITY_LOSSES

# Non-colour marks so an alert reads the same with NO_COLOR or to a colour-blind reader.
GLYPHS = {WARNING: "▲", CRITICAL: "✖"}
CLEARED_GLYPH = "✓"

RULES = {
    "divergence": "A loss, score, gradient norm or weight became NaN or Inf: training stops, the checkpoint is kept.",
    "d_overpowering": ("D wins too easily: its loss near its floor, D(x) - D(G(z)) near its widest, its accuracy "
                       "near 100%, or |grad D| many times |grad G|'s usual share."),
    "oscillation": "A loss jumps up and down by more than its own level, flipping direction almost every record.",
    "mode_collapse": ("The fixed-noise samples stopped varying: their spread, or the spread within a class, is a "
                      "small fraction of the real data's."),
    "mode_dropping": ("The generator stopped covering modes (toy data) or classes (labelled images) it covered, "
                      "or its sharp samples land on only a few modes."),
    "vanishing_gradients": "|grad G| is near zero while D is confident: the generator gets no learning signal.",
    "exploding_gradients": "A gradient norm stays above its limit: the next steps may turn the weights into NaN.",
}

__all__ = [
    "ALERT", "CLEARED_GLYPH", "CRITICAL", "CRITIC_LOSSES", "Diagnostics", "GLYPHS", "Gauge", "Health", "LEVELS",
    "LOSS_KINDS", "LossRange", "OFF", "OK", "PROBABILITY_LOSSES", "RULES", "Thresholds", "Verdict", "WARNING",
    "WATCH", "actions", "first_non_finite", "loss_range", "swing_stats",
]

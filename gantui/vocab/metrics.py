"""The figures a metrics record may carry beyond the losses: live quality (on `log.eval_every` steps,
docs/metrics.md) and D's accuracy. Each written once, with every name it goes by and how its value
is written; the monitor's panes, its chart and `gantui runs` ask here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    key: str          # the metrics.jsonl key
    label: str        # the monitor's quality line ("FID 23.1")
    fmt: str          # how the monitor writes a value
    column: str       # its word in `gantui runs`' QUALITY column
    chart: str        # its entry in the chart's series list
    legend: str       # its curve's name on the chart
    unit: str         # what a value counts ("" when a plain number)
    quality: bool = True   # a quality figure (d_acc is a health figure)


FIGURES = (
    Figure("fid", "FID", "{:.1f}", "fid", "FID", "FID", ""),
    Figure("kid", "KID", "{:.3f}", "kid", "KID", "KID", ""),
    Figure("modes_captured", "modes", "{:.0f}", "modes", "modes captured", "modes captured", "modes"),
    # both coverage counts (issue 19): one high-quality sample captures a mode; strictly, 20 of them
    Figure("modes_captured_strict", "strict", "{:.0f}", "strict", "modes captured (strict)",
           "modes with 20+ samples", "modes"),
    Figure("hq_fraction", "hq", "{:.2f}", "hq", "high quality", "high-quality fraction", "fraction"),
    Figure("w1", "W1", "{:.3f}", "w1", "W1 (1-D)", "W1 to the real data", "data units"),
    Figure("mode_score", "score", "{:.2f}", "score", "mode score", "modes x high-quality fraction", "fraction"),
    Figure("class_coverage", "classes", "{:.2f}", "classes", "class coverage", "class coverage", "fraction"),
    Figure("class_coverage_strict", "strict", "{:.2f}", "strict", "class coverage (strict)",
           "classes with 20+ samples", "fraction"),
    Figure("is", "IS", "{:.2f}", "IS", "Inception score", "IS", ""),
    Figure("d_acc", "D acc", "{:.2f}", "d_acc", "D accuracy", "D accuracy", "fraction", quality=False),
    # memorisation (data.holdout; gantui.engine.overfit): health figures on every record, not quality
    Figure("d_rt", "r_t", "{:.2f}", "r_t", "r_t (training reals)", "ADA's r_t on training reals", "", quality=False),
    Figure("d_holdout_rt", "r_t held out", "{:.2f}", "r_t_held_out", "r_t (held-out reals)",
           "ADA's r_t on held-out reals", "", quality=False),
    Figure("d_holdout_gap", "held-out gap", "{:.2f}", "holdout_gap", "held-out gap (r_v)",
           "held-out reals' drop towards fakes (ADA's r_v)", "", quality=False),
    Figure("augment_p", "aug p", "{:.2f}", "aug_p", "augmentation p", "augmentation probability", "fraction",
           quality=False),
    Figure("augment_rt", "ADA r_t", "{:.2f}", "ada_r_t", "ADA's r_t (augmented)", "r_t steering p", "",
           quality=False),
)
BY_KEY = {f.key: f for f in FIGURES}
# live-quality keys, best first: the first one present in every run is `compare`'s default metric
QUALITY_KEYS = tuple(f.key for f in FIGURES if f.quality)

"""What the monitor shows of a run before the engine reports, built from the run's config.

`gantui run` builds it from the config it trains, `gantui watch` from the run's config.toml: the
app is handed this and never sees a config, so run and watch take the same path through it. A
scripted run (demos, tests) uses the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunDescription:
    name: str = "gantui"
    total_steps: int = 0
    generator: str | None = None     # "EMA" | "live": which generator the sample grid shows
    conditional: bool = False
    data_name: str = ""
    data_root: str | None = None     # a folder run's images (what `eval --data-root` must name)

    @classmethod
    def of(cls, cfg) -> "RunDescription":
        """The description of a validated config (`gantui.config.Config`)."""
        model, data = cfg.model, cfg.data
        return cls(name=cfg.run.name, total_steps=int(cfg.run.steps or 0),
                   # the engine draws the grid from the EMA copy of G when model.ema > 0
                   generator="EMA" if model.ema > 0 else "live",
                   conditional=(model.arch == "conditional" and not model.custom) or model.conditional,
                   data_name=data.name,
                   data_root=str(data.root) if data.name == "folder" else None)

    def starting_phase(self, phase: str) -> str:
        """The words for the engine's start-up phase; 'setting up' says what it sets up."""
        if phase != "setting up":
            return phase
        if self.data_name == "digits":
            return "drawing digits"          # the offline data set is drawn at start-up
        return f"loading {self.data_name}" if self.data_name else "building the data and models"

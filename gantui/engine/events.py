"""What the engine publishes: plain, immutable dataclasses.

The UI and the headless runner are two consumers of the same stream. A listener is any
callable taking one message; it is called on the engine thread, so it must be quick and
must not touch widgets (post a message or store the latest value instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Run states shown on the status line.
RUNNING = "RUNNING"
PAUSED = "PAUSED"
SAVING = "SAVING"
DIVERGED = "DIVERGED"
FINISHED = "FINISHED"
STOPPED = "STOPPED"
CRASHED = "CRASHED"
STARTING = "STARTING"


@dataclass(frozen=True)
class RunInfo:
    """Published once, before the first step: what the screen header needs."""

    name: str
    device: str
    run_dir: str
    total_steps: int
    start_step: int
    data_name: str
    is_toy: bool
    data_dim: int              # 1 or 2 for toy data, 0 for images
    loss_kind: str
    n_critic: int
    lr_g: float
    lr_d: float
    real_std: float            # mean per-feature std of the real data (collapse reference)


@dataclass(frozen=True)
class Snapshot:
    """Every `log.every` steps: one metrics.jsonl record plus the run state."""

    step: int
    total_steps: int
    metrics: dict[str, float]  # the contract keys of metrics.jsonl (step, time, d_loss, ...)
    state: str
    n_critic: int
    eta_s: float | None


@dataclass(frozen=True)
class Samples:
    """Every `log.sample_every` steps (and on demand): the fixed-noise batch, on the CPU.

    images: float32 numpy array (N, C, H, W) in [-1, 1] for image data, or (N, dim) points for toy data.
    real: for toy data, a fixed batch of real points (N, dim); None for images.
    field: for 2-D toy data, the discriminator's score on a grid (G, G) over `extent`
           (xmin, xmax, ymin, ymax), higher = "more real"; None otherwise.
    labels: class labels of the fixed batch for conditional models, else None.
    generator: "EMA" or "live": which generator drew them ("" when unknown).
    """

    step: int
    images: Any
    real: Any = None
    field: Any = None
    extent: tuple[float, float, float, float] | None = None
    labels: Any = None
    generator: str = ""


@dataclass(frozen=True)
class Event:
    """One line of events.jsonl: alerts, LR changes, pauses, checkpoints, errors.

    kind is one of: started, paused, resumed, lr_changed, n_critic_changed, checkpoint,
    alert, diverged, finished, stopped, error, hangup. `data` holds the rest of the record.
    """

    step: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    # False for a line said during setup, before events.jsonl is open (reading a folder, the memory
    # estimate): the screen and the progress lines show it; what mirrors the journal leaves it out
    journaled: bool = field(default=True, compare=False)

    def record(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, **self.data}


@dataclass(frozen=True)
class StateChanged:
    """The run state changed (RUNNING -> PAUSED, ...). Cheap and frequent: consumers keep the latest."""

    step: int
    state: str
    lr_g: float
    lr_d: float
    n_critic: int


Message = RunInfo | Snapshot | Samples | Event | StateChanged
Listener = Callable[[Message], None]

"""The bounds every number a user or a file gives must respect, with the reason for each.

One source of truth: the preset schema (gantui.config), the CLI options (gantui.cli), the checkpoint
reader (gantui.checkpoint), `eval` and `sample` all read their limits here. A value outside them is
refused up front with one line, instead of overflowing, hanging or failing at allocation later.

Torch-free, so `gantui --help` and validation stay instant.
"""

from __future__ import annotations

from gantui.errors import UserError

# Seeds go to torch.manual_seed / torch.Generator.manual_seed, which take 64-bit values; the engine
# derives seed + 1, seed + 2 and eval seed + 10,000, which stay below 2**64 from any seed <= 2**63 - 1.
MAX_SEED = 2**63 - 1
# A billion G steps is years of training on any hardware; the bound keeps `--steps 1e30` from being taken.
MAX_STEPS = 10**9
# A checkpoint's `step` must be a non-negative int in this range (it is compared with run.steps and
# printed; 2**62 leaves headroom for any arithmetic on it in 64-bit integers).
MAX_CHECKPOINT_STEP = 2**62
# TOML integers are 64-bit by the spec (tomllib accepts more); nothing in a preset needs more.
MAX_TOML_INT = 2**63 - 1

# Sizes that become allocations. Each cap is far above any preset and below what would take the
# machine down before the memory estimate (gantui.memory) could even be computed.
MAX_BATCH = 65536           # 2**16 samples per step
MAX_WIDTH = 4096            # g_width / d_width: DCGAN channels reach width * 8 at 64 px
MAX_DEPTH = 64              # MLP hidden layers; deeper plain MLPs do not train as GANs anyway
MAX_LATENT = 4096
MAX_DIGITS = 1_000_000      # `digits` images rendered on the CPU (60,000 by default)
MAX_MODES = 100             # mixture1d bumps on [-2, 2]; beyond ~100 they overlap completely
MAX_FIXED_SAMPLES = 1024    # log.n_samples: the fixed batch generated and measured at every log step
MIN_FIXED_SAMPLES = 2       # sample_std and the pairwise distance need at least two samples
# n_critic: each G step runs n_critic D steps. The WGAN paper's largest schedule uses 100 (for its first
# G steps); beyond that G hardly learns, and one G step would take minutes on a CPU.
MAX_N_CRITIC = 100
MAX_KEEP = 100_000          # step checkpoints kept besides `latest`

# `eval --n-samples`: 50,000 is the largest count of the usual FID protocol (FID-50k); more only costs
# memory (real and generated images are both held on the device).
MIN_EVAL_SAMPLES = 10
MAX_EVAL_SAMPLES = 50_000
# `sample --n`: as many as eval could ever compare.
MAX_SAMPLE_N = 50_000

# Text: a preset is a few hundred bytes; these caps only stop a hostile file from costing memory.
MAX_PRESET_BYTES = 1 << 20
MAX_STRING = 4096
MAX_OVERRIDE = 4096
MAX_RUN_NAME = 100          # the run directory adds "-YYYYmmdd-HHMMSS-N"; NAME_MAX is 255 bytes


def check_int(flag: str, value: int | None, lo: int, hi: int, hint: str = "") -> int | None:
    """`value` when lo <= value <= hi (or None), else UserError naming the flag, the range and why."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        why = f" ({hint})" if hint else ""
        raise UserError(f"{flag} {value}: expected an integer from {lo:,} to {hi:,}{why}")
    return value

# Classes of a folder (one subfolder each) or a data.dataset: a checkpoint's data_info may name up to this many.
MAX_CLASSES = 100_000

"""An up-front memory estimate of a training run, so a configuration that cannot fit is refused with
one line saying how much it needs, instead of failing at allocation (or taking the machine down).

    data_shape(cfg.data) -> shape                    what the data set will be, from the config alone
    estimate(cfg, shape) -> Estimate                 bytes: weights, optimiser states, data, one step, and
                                                     what the process holds already (`peak`: its resident top)
    estimate_bytes(cfg, shape) -> int
    check_fits(cfg, shape, available, where)         raises ConfigError when the estimate exceeds it
    host_available_bytes() -> int | None             MemAvailable and the cgroup limit, from /proc and /sys
    resident_bytes() -> int | None                   this process's resident memory now (/proc/self/statm)
    describe(est, available, where) -> str           the one line a run prints about it
    available_bytes(device) -> int | None            host memory for the CPU, free device memory for CUDA

Everything but `available_bytes` on CUDA is pure and torch-free: the CLI can refuse a CPU run before
torch is even imported. Parameter counts follow gantui.models exactly (a test builds the real models and
compares). Activation memory is an estimate from the layer output sizes: what autograd keeps for the
backward pass of one D step and one G step at `data.batch_size`. benchmarks/memory_estimate.py compares
the estimate with real CPU runs' peak resident memory: 0.62x to 1.14x of it over six configurations
(weight-, activation- and data-heavy). It leans low on purpose: the check refuses only when even the
estimate exceeds what is free, so a refusal means the run cannot fit.

`Estimate.peak` is what the process's resident memory should top out at: what it held when the
estimate was made (its current resident set: the interpreter, torch, a data set already read), torch's
own ~0.5 GB when it is not imported yet (the CLI checks before importing it), and what the run will
allocate. Only the allocations to come (`total`) are compared with what is available: what the
process holds is already out of it. A folder of 100,000 images (measured, README "Your data") is
held as uint8 with its file list, read into one preallocated array, split for `data.holdout` in place,
and its spread measured in chunks (STD_CHUNK_VALUES), so reading it never holds a second copy.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from gantui.errors import ConfigError

F32 = 4  # bytes: weights, states, activations and data sets are float32 on the training device
PLANS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}  # as gantui.models.dcgan.PLANS (torch-free copy; a test pins it)
TOY_DIMS = {"ring8": 2, "grid25": 2, "mixture1d": 1}
SET_SIZES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000}  # training images
SET_CHANNELS = {"digits": 1, "mnist": 1, "fashion_mnist": 1, "cifar10": 3}
N_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
U8 = 1  # bytes: a folder's images are held as uint8 (gantui.data.UnitView)
REAL_REFERENCE = 256  # the engine draws max(log.n_samples, 256) real samples once, for the alerts
FILE_BYTES = 500  # a folder's file list and labels, per image (measured: 415 bytes for 100,000 paths in 10 classes)
STD_CHUNK_VALUES = 1 << 22  # gantui.data.feature_std measures the set's spread this many values at a time
STD_CHUNK_BYTES = 4 + 8  # ... as float32 (a folder's uint8 converted) and float64 copies of the chunk
# Measured: `import torch` (CPU) adds 515 MB to the resident set of a Python process on this project's
# machine; counted when an estimate is made before torch is imported (the CLI's check).
TORCH_RESIDENT = 500 * 10**6


def data_shape(data_cfg) -> tuple[int, ...]:
    """The shape of one sample of `data_cfg.name`: (dim,) for toy data, (C, H, W) for images.
    A `folder` with `channels = 0` takes the colour of its files; 3 is assumed (the larger)."""
    if data_cfg.name in TOY_DIMS:
        return (TOY_DIMS[data_cfg.name],)
    c = SET_CHANNELS.get(data_cfg.name) or data_cfg.channels or 3
    return (c, data_cfg.image_size, data_cfg.image_size)


def data_count(data_cfg) -> int:
    """Samples the data set holds on the device (0: toy mixtures are formulas, a data.dataset is
    measured once loaded; a folder's image files are counted)."""
    if data_cfg.name == "digits":
        return data_cfg.n_samples
    if data_cfg.name == "folder":
        return count_images(Path(data_cfg.root))
    return SET_SIZES.get(data_cfg.name, 0)


def count_images(folder: Path) -> int:
    """Image files under `folder` (as gantui.data.vision.image_files finds them), by name only."""
    n = 0
    for _dir, _subdirs, names in os.walk(folder):
        n += sum(1 for f in names if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES)
    return n


def data_item_bytes(data_cfg) -> int:
    return U8 if data_cfg.name == "folder" else F32


# --- parameter and activation counts per arch (elements, per sample for activations) ---------------

def _dense_stack(dims: list[int], bn: list[bool]) -> tuple[int, int]:
    """Linear (+BN) layers dims[i] -> dims[i+1]: (parameters, activation elements per sample)."""
    params = acts = 0
    for i, use_bn in enumerate(bn):
        d_in, d_out = dims[i], dims[i + 1]
        params += d_in * d_out + (2 * d_out if use_bn else d_out)
        acts += d_out * (2 if use_bn else 1)  # autograd keeps the activation's output (+ BN's input)
    return params, acts


def _mlp(m, shape, n_classes) -> tuple[int, int, int, int]:
    image = len(shape) == 3
    out = math.prod(shape)
    g_dims = [m.latent_dim] + [m.g_width] * m.g_depth
    g_params, g_acts = _dense_stack(g_dims, [image] * m.g_depth)
    g_params += m.g_width * out + out
    g_acts += out
    d_dims = [out] + [m.d_width] * m.d_depth
    d_params, d_acts = _dense_stack(d_dims, [m.batch_norm_d and i > 0 for i in range(m.d_depth)])
    d_params += m.d_width + 1
    d_acts += out + 1
    return g_params, g_acts, d_params, d_acts


def _conv(m, shape, n_classes, conditional: bool) -> tuple[int, int, int, int]:
    c, size, _ = shape
    start, stages = PLANS.get(size, (4, 3))
    ch = [m.g_width * 2 ** (stages - 1 - i) for i in range(stages)]
    embed_dim = min(m.latent_dim, 32) if conditional else 0
    in_dim = m.latent_dim + embed_dim
    g_params = in_dim * ch[0] * start * start + 2 * ch[0] + n_classes * embed_dim
    g_acts = ch[0] * start * start * 2
    res = start
    for i in range(1, stages):
        res *= 2
        g_params += ch[i - 1] * ch[i] * 16 + 2 * ch[i]
        g_acts += ch[i] * res * res * 2  # BN keeps the conv's output, ReLU its own
    g_params += ch[-1] * c * 16 + c
    g_acts += c * size * size  # tanh keeps its output

    dch = [m.d_width * 2 ** i for i in range(stages)]
    d_params, d_acts, res, prev = 0, c * size * size, size, c
    for i, out in enumerate(dch):
        res //= 2
        bn = m.batch_norm_d and i > 0
        d_params += prev * out * 16 + (2 * out if bn else out)
        d_acts += out * res * res * (2 if bn else 1)
        prev = out
    feature_dim = dch[-1] * start * start
    d_params += feature_dim + 1 + (n_classes * feature_dim if conditional else 0)
    return g_params, g_acts, d_params, d_acts


def model_counts(cfg, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(G parameters, G activations per sample, D parameters, D activations per sample)."""
    if getattr(cfg.model, "custom", False):
        return 0, 0, 0, 0  # your own models: unknown until built; the engine measures them (check_measured)
    n_classes = N_CLASSES.get(cfg.data.name, 0)
    if cfg.model.arch == "mlp" or len(shape) != 3:
        return _mlp(cfg.model, shape, n_classes)
    return _conv(cfg.model, shape, n_classes, conditional=cfg.model.arch == "conditional")


# --- the estimate ----------------------------------------------------------------------------------

# Measured on the CPU (benchmarks/memory_estimate.py): what a small run allocates besides its tensors
# (the data code, allocator pools, thread stacks). CUDA's context is not in it: it is already gone from
# the free memory torch reports.
RUNTIME_OVERHEAD = 200 * 10**6


@dataclass(frozen=True)
class Estimate:
    weights: int      # G, D, EMA G, their gradients
    optimizer: int    # Adam: two states per weight; RMSprop: one
    data: int         # the data set, the real reference batch, the fixed noise
    step: int         # activations autograd keeps for one training step at data.batch_size
    transient: int    # the largest short-lived peak besides the step: a checkpoint's bytes, optimiser
                      # temporaries, the chunks the data's spread is measured in
    overhead: int = RUNTIME_OVERHEAD
    resident: int = 0  # what the process held when estimated (interpreter, torch, data read): not needed again
    runtime: int = 0   # torch's own resident memory, still to come when estimated before importing it

    @property
    def total(self) -> int:
        """What the run will allocate from now on: compared with what is available."""
        return (self.weights + self.optimizer + self.data + max(self.step, self.transient) + self.overhead
                + self.runtime)

    @property
    def peak(self) -> int:
        """What the process's resident memory should top out at (its own included)."""
        return self.resident + self.total

    def largest(self) -> str:
        parts = {"weights": self.weights + self.optimizer + self.transient, "data": self.data, "step": self.step}
        return max(parts, key=parts.get)


def estimate(cfg, shape: tuple[int, ...], counts: tuple[int, int, int, int] | None = None,
             data_bytes: int | None = None, resident: int | None = None) -> Estimate:
    """`counts`: (G params, G activations per sample, D params, D activations per sample) when known
    from the built models (your own); `data_bytes`: the data set's real size once loaded (0 once it is
    in `resident`); `resident`: what the process holds now (None: read it, resident_bytes())."""
    shape = tuple(int(s) for s in shape)
    g_params, g_acts, d_params, d_acts = counts if counts is not None else model_counts(cfg, shape)
    ema = g_params if cfg.model.ema > 0 else 0
    weights = (2 * (g_params + d_params) + ema) * F32  # weights + gradients (+ the EMA copy)
    per_weight = 2 if cfg.optim.name == "adam" else 1
    optimizer = per_weight * (g_params + d_params) * F32
    sample = math.prod(shape)
    count = data_count(cfg.data) if data_bytes is None else 0
    held = count * (sample * data_item_bytes(cfg.data) + (FILE_BYTES if cfg.data.name == "folder" else 0)) \
        if data_bytes is None else data_bytes
    data = held + (max(cfg.log.n_samples, REAL_REFERENCE) * sample
            + cfg.log.n_samples * (cfg.model.latent_dim + sample)) * F32
    # D step: D forward on real and on fake, kept for backward; a gradient penalty runs D a third time
    # with a graph of its own gradient (double backward: about that pass again). G step: G and D.
    penalty = cfg.loss.kind == "wgan_gp" or cfg.loss.r1_gamma > 0
    d_step = (2 + (2 if penalty else 0)) * d_acts
    g_step = g_acts + d_acts
    # backward adds the gradients in flight beside the saved activations
    step = int(1.5 * cfg.data.batch_size * max(d_step, g_step) * F32)
    # a checkpoint serialises every weight and state into one buffer beside them; foreach optimiser
    # steps hold a few temporaries the size of the model they update; the set's spread is measured
    # once, in chunks, before any of them exist
    checkpoint = (g_params + d_params + ema) * F32 + optimizer
    optimizer_step = 3 * max(g_params, d_params) * F32
    spread = min(count * sample, STD_CHUNK_VALUES) * STD_CHUNK_BYTES
    if resident is None:
        resident = resident_bytes() or 0
    runtime = 0 if "torch" in sys.modules else TORCH_RESIDENT
    return Estimate(weights=weights, optimizer=optimizer, data=data, step=step,
                    transient=max(checkpoint, optimizer_step, spread), resident=resident, runtime=runtime)


def estimate_bytes(cfg, shape: tuple[int, ...]) -> int:
    return estimate(cfg, shape).total


def format_bytes(n: int) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


_ADVICE = {
    "weights": "lower [model] g_width/d_width (or g_depth/d_depth)",
    "data": "lower [data] n_samples or image_size",
    "step": "lower [data] batch_size (or the model widths)",
}


def check_fits(cfg, shape: tuple[int, ...], available: int | None, where: str,
               counts: tuple[int, int, int, int] | None = None, data_bytes: int | None = None,
               resident: int | None = None) -> Estimate:
    """ConfigError when the memory the run will still allocate exceeds `available` bytes on `where`
    (None: unknown, no check). `where` names the device in the message ("cpu", "cuda:0"). Returns the
    estimate (`resident`: as for `estimate`; 0 for a GPU, whose free memory the process's is not in)."""
    est = estimate(cfg, shape, counts, data_bytes, resident)
    if available is not None and est.total > available:
        raise ConfigError(
            f"this configuration needs about {format_bytes(est.total)} of memory (weights and optimiser "
            f"{format_bytes(est.weights + est.optimizer)}, data {format_bytes(est.data)}, one step "
            f"{format_bytes(est.step)}"
            + (f", torch {format_bytes(est.runtime)}" if est.runtime else "")
            + f") but {where} has {format_bytes(available)} available; {_ADVICE[est.largest()]}")
    return est


def check_measured(cfg, shape, G, D, available: int | None, where: str, data_bytes: int | None = None,
                   resident: int | None = None) -> Estimate:
    """Your own models: their sizes cannot be read off the config, so a short dry run measures them
    (gantui.models.measure: parameters counted, activations autograd saves for one forward of G and
    D at two batch sizes), then the same check as `check_fits`. Returns the estimate."""
    from gantui.models.measure import activation_counts

    counts = activation_counts(G, D, cfg.model.latent_dim)
    return check_fits(cfg, shape, available, where, counts=counts, data_bytes=data_bytes, resident=resident)


def describe(est: Estimate, available: int | None, where: str) -> str:
    """The run's one line about its memory: the peak it expects and what it is made of."""
    parts = [f"this process {format_bytes(est.resident)} so far"] if est.resident else []
    if est.runtime:
        parts.append(f"torch {format_bytes(est.runtime)}")
    parts += [f"weights and optimiser {format_bytes(est.weights + est.optimizer)}",
              f"data {format_bytes(est.data)}",
              f"one step {format_bytes(max(est.step, est.transient))}",
              f"runtime {format_bytes(est.overhead)}"]
    free = f"; {format_bytes(available)} available on {where}" if available is not None else ""
    return f"memory estimate: {format_bytes(est.peak)} resident at the peak ({', '.join(parts)}){free}"


# --- what is available ---------------------------------------------------------------------------

def resident_bytes(statm: Path = Path("/proc/self/statm")) -> int | None:
    """This process's resident memory now: /proc/self/statm's second field, in pages (Linux). Elsewhere
    the peak so far (getrusage's ru_maxrss: an upper bound of the current figure), or None."""
    try:
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError, ValueError):
        return None
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS reports bytes, Linux kB


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def meminfo_available(text: str) -> int | None:
    """MemAvailable from the text of /proc/meminfo, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def host_available_bytes(proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory a new allocation can get on this host: MemAvailable, lowered to the room left under this
    process's cgroup limit (containers); None where neither can be read (not Linux)."""
    try:
        found = meminfo_available((proc / "meminfo").read_text())
    except (OSError, UnicodeDecodeError):
        found = None
    candidates = [found] if found is not None else []
    for limit_file, usage_file in (("memory.max", "memory.current"),  # cgroup v2
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):  # v1
        limit, usage = _read_int(cgroup / limit_file), _read_int(cgroup / usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 writes ~2**63 for none
            candidates.append(max(0, limit - usage))
    return min(candidates) if candidates else None


def available_bytes(device) -> int | None:
    """Free memory on a torch device: the host's for the CPU, the GPU's own for CUDA (imports torch then)."""
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cpu":
        return host_available_bytes()
    if kind == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def cpu_for_sure(requested: str | None) -> bool:
    """Whether a run asked to use `requested` ("auto", "cpu", "cuda") will train on the CPU, decided
    without importing torch: "cpu", or "auto" on a machine without a GPU device node."""
    if requested == "cpu":
        return True
    if requested in (None, "auto"):
        return not any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg"))
    return False

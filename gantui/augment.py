"""Differentiable augmentation of every image D sees, real and generated (the fix of `d_overfitting`).

The transforms are DiffAugment's (Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020; github.com/mit-han-lab/data-efficient-gans,
DiffAugment_pytorch.py), with its policy "color,translation,cutout" and its constants:

* color: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5);
* translation: an integer shift of up to 1/8 of the side, in x and y, the border filled with 0;
* cutout: a square of half the side, at a random place, set to 0.

Each transform is applied to each image with probability `p` (ADA's per-image Bernoulli, Karras
et al. 2020, "Training Generative Adversarial Networks with Limited Data"): at p = 1 this is
DiffAugment exactly, at p = 0 the identity (the same values, not merely close). `p` may be a
device tensor, so an adaptive p never makes the training loop wait for the device.

`Adaptive` is ADA's controller: after each D update on the reals, p moves by
sign(r_t - target) x (images seen) / `images` (ADA's ada_kimg, the images for p to go from 0 to 1),
where r_t = E[sign(D's output on those augmented reals - its decision point)]. All on the device.

Everything wraps the call of D, never the model: a user's own nn.Module D is augmented alike.
Images are (N, C, H, W) in [-1, 1]; 0 is mid-grey, as in DiffAugment.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = ("none", "diffaugment", "ada")
TARGET = 0.6          # ADA's r_t target
IMAGES = 100_000      # images for p to move from 0 to 1 (ADA: 500k; gantui's runs are shorter)


def _chosen(x: torch.Tensor, p) -> torch.Tensor:
    """(N,) bool: which images get this transform, each with probability p."""
    return torch.rand(x.shape[0], device=x.device) < p


def rand_color(x: torch.Tensor, p=1.0) -> torch.Tensor:
    """DiffAugment's rand_brightness, rand_saturation and rand_contrast, in its order; an image not
    chosen for a transform keeps its values exactly."""
    shape = (x.shape[0], 1, 1, 1)

    def rand():
        return torch.rand(shape, device=x.device, dtype=x.dtype)

    x = torch.where(_chosen(x, p).view(shape), x + (rand() - 0.5), x)
    mean = x.mean(dim=1, keepdim=True)
    x = torch.where(_chosen(x, p).view(shape), (x - mean) * (rand() * 2) + mean, x)
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return torch.where(_chosen(x, p).view(shape), (x - mean) * (rand() + 0.5) + mean, x)


def rand_translation(x: torch.Tensor, p=1.0, ratio: float = 0.125) -> torch.Tensor:
    """DiffAugment's rand_translation: shift by an integer in [-ratio*side, ratio*side], pad 0."""
    n, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    on = _chosen(x, p).view(n, 1, 1).long()
    tx = torch.randint(-sx, sx + 1, size=(n, 1, 1), device=x.device) * on
    ty = torch.randint(-sy, sy + 1, size=(n, 1, 1), device=x.device) * on
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return pad.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def rand_cutout(x: torch.Tensor, p=1.0, ratio: float = 0.5) -> torch.Tensor:
    """DiffAugment's rand_cutout: a (ratio*side)^2 square set to 0, centred anywhere."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), size=(n, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), size=(n, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    on = _chosen(x, p).view(n, 1, 1).to(x.dtype)
    mask = 1 - (1 - mask) * on          # images not chosen keep every pixel
    return x * mask.unsqueeze(1)


def diff_augment(x: torch.Tensor, p=1.0) -> torch.Tensor:
    """DiffAugment's "color,translation,cutout", each transform on each image with probability p.
    Differentiable in x. Images only (N, C, H, W); anything else is returned as it is."""
    if x.dim() != 4:
        return x
    x = rand_color(x, p)
    x = rand_translation(x, p)
    x = rand_cutout(x, p)
    return x.contiguous()


class Augment:
    """The augmentation in force for one run: `mode` none | diffaugment | ada, probability `p`
    (a 0-d float tensor on the device), ADA's `target` and speed. `__call__` augments a batch
    of D's inputs; `observe(raw, midpoint, n)` is ADA's step, called with D's raw outputs on the
    augmented reals of each D update."""

    def __init__(self, mode: str = "none", p: float = 0.0, target: float = TARGET, images: int = IMAGES,
                 device: torch.device | str = "cpu") -> None:
        if mode not in MODES:
            raise ValueError(f"augment mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.target = float(target)
        self.images = max(1, int(images))
        self.p = torch.tensor(float(p), dtype=torch.float32, device=device)

    @classmethod
    def from_config(cls, data_cfg, device) -> "Augment":
        mode = getattr(data_cfg, "augment", "none")
        p = float(getattr(data_cfg, "augment_p", 0.0))
        if mode == "diffaugment" and p == 0.0:
            p = 1.0       # 0 = "as the method has it": DiffAugment augments every image
        return cls(mode, p, getattr(data_cfg, "augment_target", TARGET),
                   getattr(data_cfg, "augment_images", IMAGES), device)

    @property
    def on(self) -> bool:
        return self.mode != "none"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.p) if self.on else x

    @torch.no_grad()
    def observe(self, raw: torch.Tensor, midpoint: float | None, n: int) -> torch.Tensor | None:
        """ADA: r_t of this batch (a device scalar; None when D has no decision point), and p nudged
        towards the target by n images' worth of step."""
        if midpoint is None or self.mode != "ada":
            return None
        rt = torch.sign(raw.detach().float().flatten() - midpoint).mean()
        step = torch.sign(rt - self.target) * (n / self.images)
        self.p.copy_((self.p + step).clamp_(0.0, 1.0))
        return rt

    def set_p(self, value: float) -> None:
        """A live change: a fixed probability (turns diffaugment on when augmentation was off)."""
        if self.mode == "none":
            self.mode = "diffaugment"
        self.p.fill_(min(1.0, max(0.0, float(value))))

    def set_target(self, value: float) -> None:
        """A live change: adaptive augmentation towards r_t = value, from the p in force."""
        self.mode = "ada"
        self.target = float(value)


def rt_midpoint(kind: str, label_smoothing: float = 0.0) -> float | None:
    """Where D's raw output changes its call from fake to real, for ADA's r_t = E[sign(out - this)]:
    0 for the probability losses (the logit; p > 0.5) and hinge, halfway between LSGAN's targets;
    None for critics (WGAN), whose score has no fixed zero."""
    if kind in ("ns", "minimax", "hinge"):
        return 0.0
    if kind == "lsgan":
        return (1.0 - label_smoothing) / 2
    return None

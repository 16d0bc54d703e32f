"""Sample-quality metrics on feature matrices (N, d): pure functions, no networks.

- FID (Heusel et al. 2017): Fréchet distance between Gaussian fits of the two sets, by torchmetrics'
  FrechetInceptionDistance fed through an identity feature module (so the features are computed once and
  shared by every metric). torchmetrics accumulates in float64 and takes the trace of the matrix square
  root from the eigenvalues of S1 @ S2, which stays finite for singular covariances.
- KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic kernel (x.y/d + 1)^3, mean and std over
  random subsets, by torchmetrics' KernelInceptionDistance; the subsets come from a fixed seed.
- Improved precision and recall (Kynkäänniemi et al. 2019): a set's manifold is the union of balls around
  each of its points with radius the distance to its k-th nearest neighbour (k = 3). Precision = share of
  generated points inside the real manifold; recall = share of real points inside the generated one.
- Density and coverage (Naeem et al. 2020), k = 3: density = mean number of real balls that contain a
  generated point, divided by k (about 1 when the two sets come from one distribution); coverage = share of
  real balls that contain at least one generated point.
- Class coverage (labelled data): a classifier's view of the generated set, the image analogue of modes
  captured (see class_report).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

K_NEAREST = 3
CONFIDENT = 0.9  # softmax probability above which a classified sample counts (the images' "high quality")


class _Identity(nn.Module):
    """Lets torchmetrics take precomputed features as its 'images'."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def _check(real: Tensor, fake: Tensor, least: int = 2) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected two (N, d) feature matrices of one width, got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    if len(real) < least or len(fake) < least:
        raise ValueError(f"need at least {least} samples on each side, got {len(real)} and {len(fake)}")


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between the Gaussian fits of two feature sets (float64, on the CPU: d x d matrices only)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check(real, fake)
    metric = FrechetInceptionDistance(feature=_Identity(real.shape[1]), normalize=True)
    metric.update(real.detach().to("cpu", torch.float64), real=True)
    metric.update(fake.detach().to("cpu", torch.float64), real=False)
    # Sampling noise can push the estimate a hair below zero for identical distributions.
    return max(0.0, float(metric.compute()))


def kernel_inception_distance(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 with the cubic polynomial kernel over random subsets."""
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, fake)
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "KID will save all extracted features": we know
        metric = KernelInceptionDistance(feature=_Identity(real.shape[1]), subsets=subsets, subset_size=size)
    # float32 agrees with float64 to ~6 digits here and halves the time of the 100 kernel matrices.
    metric.update(real.detach().float(), real=True)
    metric.update(fake.detach().float().to(real.device), real=False)
    # torchmetrics draws its subsets from the global CPU RNG; fork it so the result is reproducible
    # and the caller's RNG stream is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def knn_radii(x: Tensor, k: int = K_NEAREST, chunk: int = 2048) -> Tensor:
    """Distance from each point to its k-th nearest neighbour in its own set (itself excluded)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} points for k-nearest-neighbour radii, got {len(x)}")
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        # The k+1 smallest include the point itself at distance 0.
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


@dataclass(frozen=True)
class ManifoldReport:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int

    def to_dict(self) -> dict:
        return asdict(self)


def manifold_metrics(real: Tensor, fake: Tensor, k: int = K_NEAREST, chunk: int = 2048) -> ManifoldReport:
    """Precision, recall (Kynkäänniemi 2019) and density, coverage (Naeem 2020) in one pass over the
    generated set, in chunks so memory stays O(chunk * N)."""
    _check(real, fake, least=k + 1)
    real = real.detach().float()
    fake = fake.detach().float().to(real.device)
    r_real = knn_radii(real, k, chunk)
    r_fake = knn_radii(fake, k, chunk)
    in_real = 0                                                        # generated points inside real manifold
    ball_hits = 0                                                      # (generated, real ball) containments
    real_covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)   # real ball has a fake
    real_in_fake = torch.zeros(len(real), dtype=torch.bool, device=real.device)   # real point in fake manifold
    for i in range(0, len(fake), chunk):
        d = torch.cdist(fake[i:i + chunk], real)                       # (c, N_real)
        inside = d <= r_real[None, :]
        in_real += int(inside.any(1).sum())
        ball_hits += int(inside.sum())
        real_covered |= inside.any(0)
        real_in_fake |= (d <= r_fake[i:i + chunk, None]).any(0)
    return ManifoldReport(
        precision=in_real / len(fake),
        recall=float(real_in_fake.float().mean()),
        density=ball_hits / (k * len(fake)),
        coverage=float(real_covered.float().mean()),
        k=k,
    )


@dataclass(frozen=True)
class ClassReport:
    classes_covered: int
    n_classes: int
    class_coverage: float
    confident_fraction: float
    class_kl: float | None
    class_histogram: tuple[int, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_histogram"] = list(self.class_histogram)
        return d


def class_report(probs: Tensor, threshold: float = CONFIDENT) -> ClassReport:
    """Class coverage of a generated set from a classifier's softmax outputs (N, K).

    The image analogue of the toy metrics: a sample is *confident* when its top class probability is at
    least `threshold` (the analogue of high quality); a class is covered when at least one confident sample
    is assigned to it (Stacked-MNIST counts modes this way); `class_kl` = KL(p_gen || uniform) of the
    confident samples' class histogram, 0 for perfect balance, log K for total collapse, None when no
    sample is confident. Empty classes contribute 0 in this direction, so no epsilon is needed.
    """
    probs = probs.detach().float().cpu()
    k = probs.shape[1]
    top, cls = probs.max(1)
    confident = top >= threshold
    hist = torch.bincount(cls[confident], minlength=k)
    total = int(hist.sum())
    kl = None
    if total:
        p = hist[hist > 0].double() / total
        kl = float((p * (p * k).log()).sum())
    covered = int((hist > 0).sum())
    return ClassReport(
        classes_covered=covered, n_classes=k, class_coverage=covered / k,
        confident_fraction=float(confident.float().mean()) if len(probs) else 0.0,
        class_kl=kl, class_histogram=tuple(int(c) for c in hist))


def label_accuracy(probs: Tensor, labels: Tensor) -> float:
    """Share of a conditional generator's samples that the classifier assigns to the requested class."""
    return float((probs.argmax(1).cpu() == labels.cpu()).float().mean())

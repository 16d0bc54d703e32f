"""Sample-quality metrics on feature matrices (N, d): pure functions, no networks.

- FID (Heusel et al. 2017): Fréchet distance between Gaussian fits of the two sets, by torchmetrics'
  FrechetInceptionDistance fed through an identity feature module (so the features are computed once and
  shared by every metric). torchmetrics accumulates in float64 and takes the trace of the matrix square
  root from the eigenvalues of S1 @ S2, which stays finite for singular covariances.
- KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic kernel (x.y/d + 1)^3, mean and std over
  `KID_SUBSETS` random subsets drawn without replacement, by torchmetrics' KernelInceptionDistance, from a
  fixed seed. As in torch-fidelity, a subset holds `KID_SUBSET_SIZE` (1,000) points of each side; unlike it
  (which refuses fewer samples than that), smaller sets use subsets of half the smaller side, so subsets
  differ and `kid_std` measures a real spread (with subsets as large as the set, every subset is the whole
  set and the std reads 0). The mean is unbiased at any subset size; only its spread depends on it.
- Improved precision and recall (Kynkäänniemi et al. 2019, k = 3, their choice): a set's manifold is the
  union of balls around each of its points with radius the distance to its k-th nearest neighbour.
  Precision = share of generated points inside the real manifold; recall = share of real points inside
  the generated one.
- Density and coverage (Naeem et al. 2020, k = 5, their recommendation): density = mean number of real
  balls that contain a generated point, divided by k (about 1 when the two sets come from one
  distribution); coverage = share of real balls that contain at least one generated point. With N real and
  M generated points from one distribution, coverage is 1 - C(N-1, k)/C(M+N-1, k) on average (their Lemma
  2): 0.875 at k = 3 and 0.969 at k = 5 for M = N, which is why they use k = 5.
- Class coverage (labelled data): a classifier's view of the generated set, the image analogue of modes
  captured (see class_report).

Conventions for the k-NN balls, the same for all four metrics:
- A ball is open: a point lies inside when its distance is strictly less than the radius, as in Naeem et
  al.'s reference code (clovaai/generative-evaluation-prdc, `distance < radius` for all four metrics).
  Then a set compared with itself has density exactly 1 (each ball holds its centre and k - 1 neighbours),
  and precision, recall and coverage 1. (Kynkäänniemi et al. write the closed ball, <=; with distinct
  points the two differ only on exact ties, which the next rule makes well defined.)
- Distances are computed in float64 on features centred at the real mean, so a large shared offset cannot
  cancel away the digits (128-d features offset by 1e3: float32 distances moved precision from 0.18 to
  0.44; offset by 1e4, every metric read 1.0). Two distances
  within a relative TIE_RTOL (1e-9) of each other count as equal, a band far above float64 round-off
  here (~1e-13) and below the spacing at which float32 features give distinct distances (~1e-8 and up).
  So a tie with a radius (a point that is some real point's k-th neighbour, as when a set meets itself)
  is outside the ball whichever way the two computations happened to round.
- The two sides are compared at equal size: when one is larger (more samples asked for than the data set
  holds), it is split into equal consecutive parts of the smaller side's size and the metrics are averaged
  over the parts. Coverage and recall grow with the other side's size, so unequal sizes would change
  their meaning, not just their noise.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

K_PRECISION_RECALL = 3  # Kynkäänniemi et al. 2019
K_DENSITY_COVERAGE = 5  # Naeem et al. 2020
TIE_RTOL = 1e-9
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000  # torch-fidelity's and torchmetrics' default
CONFIDENT = 0.9  # softmax probability above which a classified sample counts (the images' "high quality")
# Shares are counted among the samples the classifier names with at least this probability (one class
# over all the others together): its confidence at 0.9 differs by class (on real Fashion-MNIST 96 % of
# trousers reach it, 4 % of shirts), so the confident samples' shares measure the classifier, not G.
CLASSIFIED = 0.5


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


def kid_subset_size(n_real: int, n_fake: int, cap: int = KID_SUBSET_SIZE) -> int:
    """`cap` points per subset, or half the smaller side when that is less (never the whole set)."""
    return max(2, min(cap, min(n_real, n_fake) // 2))


@dataclass(frozen=True)
class KidReport:
    kid: float        # mean over subsets of the unbiased MMD^2
    kid_std: float    # population std over the subsets (as torch-fidelity and torchmetrics report it)
    subset_size: int
    subsets: int


def kernel_inception_distance(real: Tensor, fake: Tensor, subsets: int = KID_SUBSETS,
                              subset_size: int | None = None, seed: int = 0) -> KidReport:
    """KID over `subsets` random subsets of `subset_size` points per side (default: kid_subset_size)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, fake, least=4)
    size = kid_subset_size(len(real), len(fake)) if subset_size is None else subset_size
    if not 2 <= size <= min(len(real), len(fake)):
        raise ValueError(f"KID subset size {size} must be in 2..{min(len(real), len(fake))}")
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
    return KidReport(float(mean), float(std), size, subsets)


def _distances(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances (len(a), len(b)) in float64 (the inputs are float64 already)."""
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist")


def knn_radii(x: Tensor, ks: tuple[int, ...] | int = K_PRECISION_RECALL, chunk: int = 1024) -> dict[int, Tensor]:
    """For each k in `ks`: distance from each point to its k-th nearest neighbour, itself excluded."""
    ks = (ks,) if isinstance(ks, int) else tuple(sorted(set(ks)))
    kmax = max(ks)
    if len(x) <= kmax:
        raise ValueError(f"need more than k={kmax} points for k-nearest-neighbour radii, got {len(x)}")
    out: dict[int, list[Tensor]] = {k: [] for k in ks}
    for i in range(0, len(x), chunk):
        d = _distances(x[i:i + chunk], x)
        rows = torch.arange(len(d), device=d.device)
        d[rows, rows + i] = float("inf")  # a point is not its own neighbour
        near = d.topk(kmax, dim=1, largest=False).values  # ascending
        for k in ks:
            out[k].append(near[:, k - 1])
    return {k: torch.cat(v) for k, v in out.items()}


def _inside(d: Tensor, radius: Tensor) -> Tensor:
    """Strictly inside the open ball, with ties (within TIE_RTOL) outside: see the module docstring."""
    return d < radius * (1.0 - TIE_RTOL)


@dataclass(frozen=True)
class ManifoldReport:
    precision: float
    recall: float
    density: float
    coverage: float
    k_precision_recall: int
    k_density_coverage: int
    set_size: int      # points on each side of every comparison
    sets: int          # comparisons averaged (1 when the two sides had equal size)

    def to_dict(self) -> dict:
        return asdict(self)


def _manifold_once(real: Tensor, fake: Tensor, r_real: dict[int, Tensor], k_pr: int, k_dc: int,
                   chunk: int) -> tuple[float, float, float, float]:
    r_fake = knn_radii(fake, k_pr, chunk)[k_pr]
    in_real = 0                                                        # generated points inside real manifold
    ball_hits = 0                                                      # (generated, real ball) containments
    real_covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)   # real ball has a fake
    real_in_fake = torch.zeros(len(real), dtype=torch.bool, device=real.device)   # real point in fake manifold
    for i in range(0, len(fake), chunk):
        d = _distances(fake[i:i + chunk], real)                        # (c, N_real)
        in_real += int(_inside(d, r_real[k_pr][None, :]).any(1).sum())
        in_dc = _inside(d, r_real[k_dc][None, :])
        ball_hits += int(in_dc.sum())
        real_covered |= in_dc.any(0)
        real_in_fake |= _inside(d, r_fake[i:i + chunk, None]).any(0)
    return (in_real / len(fake), float(real_in_fake.double().mean()), ball_hits / (k_dc * len(fake)),
            float(real_covered.double().mean()))


def manifold_metrics(real: Tensor, fake: Tensor, k_pr: int = K_PRECISION_RECALL, k_dc: int = K_DENSITY_COVERAGE,
                     chunk: int = 1024) -> ManifoldReport:
    """Precision, recall (Kynkäänniemi 2019) and density, coverage (Naeem 2020), on equal-sized sides
    (the larger side split into parts, results averaged), in chunks so memory stays O(chunk * N)."""
    _check(real, fake, least=max(k_pr, k_dc) + 1)
    real = real.detach().double()
    fake = fake.detach().double().to(real.device)
    centre = real.mean(0, keepdim=True)
    real, fake = real - centre, fake - centre
    size = min(len(real), len(fake))
    parts_real = [real[j:j + size] for j in range(0, len(real) - size + 1, size)]
    parts_fake = [fake[j:j + size] for j in range(0, len(fake) - size + 1, size)]
    results = []
    if len(parts_real) == 1:
        r_real = knn_radii(parts_real[0], (k_pr, k_dc), chunk)
        results = [_manifold_once(parts_real[0], f, r_real, k_pr, k_dc, chunk) for f in parts_fake]
    else:
        for r in parts_real:
            results.append(_manifold_once(r, parts_fake[0], knn_radii(r, (k_pr, k_dc), chunk), k_pr, k_dc, chunk))
    mean = [sum(col) / len(results) for col in zip(*results)]
    return ManifoldReport(precision=mean[0], recall=mean[1], density=mean[2], coverage=mean[3],
                          k_precision_recall=k_pr, k_density_coverage=k_dc, set_size=size, sets=len(results))


@dataclass(frozen=True)
class ClassReport:
    classes_covered: int
    n_classes: int
    class_coverage: float
    confident_fraction: float
    class_kl: float | None
    class_histogram: tuple[int, ...]
    class_counts: tuple[int, ...] = ()   # samples per class named with p >= CLASSIFIED (the shares)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_histogram"] = list(self.class_histogram)
        d["class_counts"] = list(self.class_counts)
        return d


def class_report(probs: Tensor, threshold: float = CONFIDENT) -> ClassReport:
    """Class coverage of a generated set from a classifier's softmax outputs (N, K).

    The image analogue of the toy metrics: a sample is *confident* when its top class probability is at
    least `threshold` (the analogue of high quality); a class is covered when at least one confident sample
    is assigned to it (Stacked-MNIST counts modes this way); `class_kl` = KL(p_gen || uniform) of the
    confident samples' class histogram, 0 for perfect balance, log K for total collapse, None when no
    sample is confident. Empty classes contribute 0 in this direction, so no epsilon is needed.
    `class_counts`: the samples per class among those named with p >= CLASSIFIED, the shares
    `mode_dropping` judges.
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
        class_kl=kl, class_histogram=tuple(int(c) for c in hist),
        class_counts=tuple(int(c) for c in torch.bincount(cls[top >= CLASSIFIED], minlength=k)))


def label_accuracy(probs: Tensor, labels: Tensor) -> float:
    """Share of a conditional generator's samples that the classifier assigns to the requested class."""
    return float((probs.argmax(1).cpu() == labels.cpu()).float().mean())


class RealReference:
    """A fixed real feature set, with what FID and KID need of it computed once: for live quality, which
    compares a new generated set against the same reference again and again. `fid(fake)` and `kid(fake)`
    return what `frechet_distance(real, fake)` and `kernel_inception_distance(real, fake, subsets, seed=seed)`
    return for the same inputs (the same float64 statistics, the same torchmetrics formula, the same subsets
    drawn in the same order from the same seed), without torchmetrics' per-call state and without recomputing
    the real side: its mean and covariance, and each subset's real-real kernel sum (the subsets of the real
    side depend only on the seed and the sizes, so they are the same at every measurement)."""

    def __init__(self, real: Tensor, subsets: int = KID_SUBSETS, seed: int = 0) -> None:
        _check(real, real, least=4)
        self.real = real.detach().float()
        self.subsets, self.seed = subsets, seed
        self.mean, self.cov = _mean_cov(real.detach().to("cpu", torch.float64))
        self._kid_real: dict[int, tuple] = {}  # n_fake -> (real subsets, fake subsets, real-real kernel sums)

    def fid(self, fake: Tensor) -> float:
        from torchmetrics.image.fid import _compute_fid

        _check(self.real, fake)
        mean, cov = _mean_cov(fake.detach().to("cpu", torch.float64))
        return max(0.0, float(_compute_fid(self.mean.squeeze(0), self.cov, mean.squeeze(0), cov)))

    def kid(self, fake: Tensor) -> float:
        return self.kid_report(fake).kid

    def kid_report(self, fake: Tensor) -> KidReport:
        _check(self.real, fake, least=4)
        fake = fake.detach().float().to(self.real.device)
        n_real, n_fake = len(self.real), len(fake)
        size = kid_subset_size(n_real, n_fake)
        gamma = 1.0 / self.real.shape[1]
        if n_fake not in self._kid_real:
            perms_real, perms_fake = _kid_perms(n_real, n_fake, self.subsets, self.seed)
            sums = []
            for perm in perms_real:
                f = self.real[perm[:size]]
                k = (f @ f.T * gamma + 1.0) ** 3
                sums.append((k.sum(dim=-1) - torch.diag(k)).sum())
            self._kid_real[n_fake] = (perms_real, perms_fake, sums)
        perms_real, perms_fake, sums = self._kid_real[n_fake]
        scores = []
        for perm_r, perm_f, kt_xx_sum in zip(perms_real, perms_fake, sums):
            f_real, f_fake = self.real[perm_r[:size]], fake[perm_f[:size]]
            k_yy = (f_fake @ f_fake.T * gamma + 1.0) ** 3
            k_xy = (f_real @ f_fake.T * gamma + 1.0) ** 3
            kt_yy_sum = (k_yy.sum(dim=-1) - torch.diag(k_yy)).sum()
            value = (kt_xx_sum + kt_yy_sum) / (size * (size - 1))
            value -= 2 * k_xy.sum(dim=0).sum() / (size ** 2)
            scores.append(value)
        scores = torch.stack(scores)
        return KidReport(float(scores.mean()), float(scores.std(unbiased=False)), size, self.subsets)


def _mean_cov(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (1, d) and unbiased covariance of float64 features, accumulated as torchmetrics' FID does."""
    n = x.shape[0]
    mean = (x.sum(dim=0) / n).unsqueeze(0)
    cov = (x.t().mm(x) - n * mean.t().mm(mean)) / (n - 1)
    return mean, cov


def _kid_perms(n_real: int, n_fake: int, subsets: int, seed: int) -> tuple[list[Tensor], list[Tensor]]:
    """The subsets torchmetrics' KID draws after `torch.manual_seed(seed)` (real, then fake, per subset),
    drawn from a forked RNG so the caller's stream is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        real, fake = [], []
        for _ in range(subsets):
            real.append(torch.randperm(n_real))
            fake.append(torch.randperm(n_fake))
    return real, fake

"""Feature spaces for the image metrics, and the classifier behind class coverage.

Which space `gantui eval` uses, in order:
1. Inception-v3 pool3 (2048-d), the space every published FID is computed in, when its weights are on disk:
   `--inception-weights FILE.safetensors`, else the first `*inception*.safetensors` in torch hub's
   checkpoint cache. gantui never unpickles, so the usual `pt_inception-2015-12-05-*.pth` must be converted
   once: `safetensors.torch.save_file(torch.load(f), "pt_inception-2015-12-05.safetensors")` (in a session
   you trust). A file with a 1008-way `fc` is taken as the TF FID network (pytorch-fid's port, whose pooling
   differs from torchvision's in three places, patched below); a 1000-way one as torchvision's ImageNet
   weights, which give close but not literature-comparable numbers, and the name says so.
2. Labelled data without those weights: the 128-d penultimate layer of a small CNN that gantui trains once on
   the data set's labelled real images and caches as safetensors under $GANTUI_CACHE/features (default
   ~/.cache/gantui/features). Its numbers rank checkpoints of the same data set; they are not comparable with
   Inception FIDs, and the name says so.
3. Unlabelled data (`folder`) without Inception weights: the 128-d bottleneck of a small convolutional
   autoencoder that gantui trains once on the real images and caches the same way, keyed by a hash of the
   images, so a changed folder gets its own network. See `ConvAutoEncoder` for why an autoencoder.

For labelled data the trained classifier also gives class coverage, whatever space the distances use.
Everything cached is safetensors; nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantui import checkpoint, paths
from gantui.errors import CheckpointError

CNN_VERSION = "v1"
FEATURE_DIM = 128


def log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _conv_body(channels: int, width: int, feature_dim: int, last_relu: bool) -> list[nn.Module]:
    """Three conv blocks, pooled to 4x4, and a linear layer to `feature_dim`: the classifier's and the
    autoencoder's encoder (same layer names, so cached files stay valid)."""
    w = width

    def block(cin, cout):
        # BatchNorm costs CPU time per step but buys far more in convergence: without it the classifier's
        # budget reaches ~96% on digits instead of ~100%.
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    layers = [*block(channels, w), nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2), *block(2 * w, 4 * w),
              nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(4 * w * 16, feature_dim)]
    return layers + ([nn.ReLU(inplace=True)] if last_relu else [])


# --- gantui's small CNN --------------------------------------------------------------------

class SmallCNN(nn.Module):
    """Three conv blocks and a 128-d penultimate layer: ~2 M multiply-adds per 28x28 image, so one pass over
    12,000 digits takes well under a minute on two CPU cores."""

    def __init__(self, channels: int, n_classes: int, width: int = 16, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(*_conv_body(channels, width, feature_dim, last_relu=True))
        self.head = nn.Linear(feature_dim, max(n_classes, 1))
        self.feature_dim = feature_dim
        # Fixed at training time to the RMS of real images' features, so the feature space has unit scale:
        # KID's cubic kernel (x.y/d + 1)^3 is then in the range it was designed for (as with Inception's
        # pool3) instead of being dominated by raw activation sizes. Saved with the weights.
        self.register_buffer("feature_scale", torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(scaled penultimate features, logits)."""
        h = self.body(x)
        return h / self.feature_scale, self.head(h)

    @torch.no_grad()
    def calibrate(self, x: Tensor, batch_size: int = 1000) -> None:
        self.eval()
        h = torch.cat([self.body(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        self.feature_scale.fill_(float(h.pow(2).mean().sqrt().clamp_min(1e-6)))


@dataclass(frozen=True)
class Recipe:
    """How the feature classifier is trained; every field is part of the cache key."""

    n_train: int = 12000
    n_test: int = 2000
    epochs: int = 1           # ~190 small steps reach >99% held-out on digits; more buys little
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 16
    seed: int = 1234


DEFAULT_RECIPE = Recipe()


def cache_dir() -> Path:
    return paths.cache_root() / "features"


def classifier_cache_path(data_name: str, shape: tuple[int, ...], n_classes: int, recipe: Recipe) -> Path:
    key = json.dumps({"cnn": CNN_VERSION, "data": data_name, "shape": list(shape), "classes": n_classes,
                      **asdict(recipe)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    c, h, w = shape
    return cache_dir() / f"{data_name}-{c}x{h}x{w}-cnn-{CNN_VERSION}-{digest}.safetensors"


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    hits = 0
    for i in range(0, len(x), batch_size):
        hits += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return hits / max(len(x), 1)


def train_classifier(x: Tensor, y: Tensor, n_classes: int, recipe: Recipe = DEFAULT_RECIPE) -> SmallCNN:
    """Adam on cross-entropy, one-cycle learning rate; deterministic for recipe.seed on a given device.
    The global RNG is left as it was (forked), so evaluation never shifts a caller's random stream."""
    devices = [x.device.index if x.device.index is not None else torch.cuda.current_device()] \
        if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(recipe.seed)
        model = SmallCNN(x.shape[1], n_classes, recipe.width).to(x.device)
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        steps_per_epoch = max(1, len(x) // recipe.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(recipe.seed)
        model.train()
        for _ in range(recipe.epochs):
            order = torch.randperm(len(x), generator=gen).to(x.device)
            for s in range(steps_per_epoch):
                idx = order[s * recipe.batch_size:(s + 1) * recipe.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return model.eval()


@dataclass
class Classifier:
    model: SmallCNN
    name: str
    accuracy: float           # on held-out real images
    train_seconds: float      # 0 when it came from the cache
    path: Path | None
    from_cache: bool


def _load_cached(path: Path, model: nn.Module, required: str = "accuracy") -> dict[str, str] | None:
    """Weights into `model` and the file's metadata, or None when the file is absent or unusable."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        model.load_state_dict(tensors, strict=True)
        float(meta[required])
        return meta
    except Exception:  # corrupt, truncated or from another version: retrain rather than fail
        return None


def classifier_name(data_name: str, acc: float) -> str:
    return (f"gantui-{data_name}-cnn-{CNN_VERSION} ({FEATURE_DIM}-d penultimate layer of a small classifier "
            f"trained on {data_name}, held-out accuracy {acc:.2%}; not comparable with Inception FID)")


def load_or_train_classifier(data_name: str, labelled: Callable[[int, int], tuple[Tensor, Tensor]],
                             shape: tuple[int, ...], n_classes: int, device: torch.device,
                             recipe: Recipe = DEFAULT_RECIPE, log: Callable[[str], None] = log_stderr) -> Classifier:
    """The cached classifier for this data set, trained first when there is none.

    `labelled(n, seed)` returns n labelled real images (x in [-1, 1], y) for training and testing.
    """
    path = classifier_cache_path(data_name, shape, n_classes, recipe)
    model = SmallCNN(shape[0], n_classes, recipe.width)
    meta = _load_cached(path, model)
    if meta is not None:
        acc = float(meta["accuracy"])
        return Classifier(model.to(device).eval(), classifier_name(data_name, acc), acc, 0.0, path, True)

    log(f"training the {data_name} feature classifier once ({recipe.n_train} images, {recipe.epochs} epochs); "
        f"it will be cached at {path}")
    t0 = time.perf_counter()
    x, y = labelled(recipe.n_train + recipe.n_test, recipe.seed)
    x, y = x.to(device).float(), y.to(device).long()
    n_train, train_recipe = recipe.n_train, recipe
    if len(x) < recipe.n_train + recipe.n_test:
        # a small set of your own (a folder of a few hundred images): a tenth held out, and as many
        # epochs as make about the recipe's number of steps (at most 50), so it is trained, not sampled
        n_train = len(x) - max(1, len(x) // 10)
        epochs = min(50, max(recipe.epochs, recipe.epochs * recipe.n_train // max(n_train, 1)))
        train_recipe = dataclasses.replace(recipe, epochs=epochs)
    model = train_classifier(x[:n_train], y[:n_train], n_classes, train_recipe)
    model.calibrate(x[:min(n_train, 5000)])
    acc = accuracy(model, x[n_train:], y[n_train:])
    seconds = time.perf_counter() - t0
    log(f"feature classifier: held-out accuracy {acc:.2%} after {seconds:.1f} s")
    try:
        checkpoint.save(path, model.state_dict(), {"accuracy": repr(acc), "train_seconds": repr(seconds),
                                                "data": data_name, "recipe": json.dumps(asdict(recipe))})
    except OSError as e:  # a read-only home still evaluates; it just trains again next time
        log(f"could not cache the feature classifier at {path}: {e.strerror}")
        path = None
    return Classifier(model, classifier_name(data_name, acc), acc, seconds, path, False)


# --- Inception-v3 pool3 --------------------------------------------------------------------

def _fid_inception_blocks():
    """torchvision's Inception blocks with the TF graph's pooling: its 3x3 average pools ignore the zero
    padding (count_include_pad=False), and the last block max-pools where torchvision averages."""
    from torchvision.models import inception as tv

    def tf_avg(x):
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    def tf_max(x):
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)

    class A(tv.InceptionA):
        def forward(self, x):
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(tf_avg(x))], 1)

    class C(tv.InceptionC):
        def forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                          self.branch7x7dbl_4, self.branch7x7dbl_5):
                d = layer(d)
            return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(tf_avg(x))], 1)

    class E(tv.InceptionE):
        pool = staticmethod(tf_avg)

        def forward(self, x):
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(self.pool(x))], 1)

    class EMax(E):
        pool = staticmethod(tf_max)

    return A, C, E, EMax


def build_inception(fid_variant: bool) -> nn.Module:
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, init_weights=False,
                       num_classes=1008 if fid_variant else 1000)
    if fid_variant:
        A, C, E, EMax = _fid_inception_blocks()
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
        net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e = C(768, 128), C(768, 160), C(768, 160), C(768, 192)
        net.Mixed_7b, net.Mixed_7c = E(1280), EMax(2048)
    return net


class InceptionPool3(nn.Module):
    """Images in [-1, 1] at any size -> 2048-d pool3 features. Grey images are repeated to RGB and resized
    bilinearly to 299x299, as pytorch-fid and the TF reference do."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.feature_dim = 2048

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        n = self.net
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                      n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b,
                      n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def find_inception_weights(explicit: str | Path | None) -> Path | None:
    """--inception-weights, else an `*inception*.safetensors` in torch hub's checkpoint cache, else None."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise CheckpointError(f"{p}: no such file (--inception-weights expects Inception-v3 weights "
                                  f"as .safetensors)")
        if p.suffix != ".safetensors":
            raise CheckpointError(
                f"{p}: --inception-weights must be a .safetensors file; gantui never unpickles .pth/.pt files "
                f"(convert once with safetensors.torch.save_file in a session you trust)")
        return p
    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:
        return None
    found = sorted(hub.glob("*inception*.safetensors")) if hub.is_dir() else []
    return found[0] if found else None


def load_inception(path: Path) -> tuple[InceptionPool3, str]:
    """Pool3 network from a safetensors file, and the feature space's name."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:120]}); "
                              f"--inception-weights expects Inception-v3 weights") from None
    sd = {k.removeprefix("module."): v for k, v in sd.items() if "AuxLogits" not in k}
    fc = sd.get("fc.weight")
    if fc is None or fc.shape[0] not in (1000, 1008):
        raise CheckpointError(f"{path}: not Inception-v3 weights (expected an fc.weight of 1008 rows for the FID "
                              f"network or 1000 for torchvision's)")
    fid_variant = fc.shape[0] == 1008
    net = build_inception(fid_variant)
    expected = net.state_dict()
    for name, want in expected.items():
        if name not in sd:
            raise CheckpointError(f"{path}: tensor {name} is missing; not Inception-v3 weights")
        if tuple(sd[name].shape) != tuple(want.shape):
            raise CheckpointError(f"{path}: tensor {name} has shape {list(sd[name].shape)}, Inception-v3 has "
                                  f"{list(want.shape)}")
    net.load_state_dict({k: sd[k] for k in expected}, strict=True)
    if fid_variant:
        name = f"inception-v3-pool3 (2048-d, TF FID weights from {path.name}; comparable with published FIDs)"
    else:
        name = (f"inception-v3-torchvision-pool3 (2048-d, torchvision ImageNet weights from {path.name}; "
                f"close to but not the standard FID network)")
    return InceptionPool3(net).eval(), name


# --- unlabelled data: a small autoencoder's bottleneck -------------------------------------------

AE_VERSION = "v1"


@dataclass(frozen=True)
class AERecipe:
    """How the autoencoder is trained; every field is part of the cache key (with the images' hash)."""

    steps: int = 600          # 1.8 min for 28 px on one thread of a heavily shared 2-core CPU (load 6)
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 16
    max_images: int = 10000   # a larger folder trains on a seeded sample of this many
    seed: int = 1234


DEFAULT_AE_RECIPE = AERecipe()


def model_input(x: Tensor) -> Tensor:
    """What the autoencoder sees: 64 px images average-pooled to 32 px (4x less work for a network that
    must train in a minute on a CPU; the metrics then judge 32 px detail), smaller ones as they are."""
    return F.avg_pool2d(x, 2) if x.shape[-1] > 32 else x


class ImageEncoder(nn.Module):
    """Images in [-1, 1] -> 128-d codes: SmallCNN's conv body with a linear bottleneck (no ReLU, so no
    feature is dead by construction). `feature_scale` is fixed after training to the RMS of the real
    images' codes, for the same reason as SmallCNN's: KID's cubic kernel then sees unit-scale features."""

    def __init__(self, channels: int, width: int = 16, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(*_conv_body(channels, width, feature_dim, last_relu=False))
        self.feature_dim = feature_dim
        self.register_buffer("feature_scale", torch.ones(()))

    def code(self, x: Tensor) -> Tensor:
        return self.body(model_input(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.code(x) / self.feature_scale

    @torch.no_grad()
    def calibrate(self, x: Tensor, batch_size: int = 1000) -> None:
        self.eval()
        h = torch.cat([self.code(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        self.feature_scale.fill_(float(h.pow(2).mean().sqrt().clamp_min(1e-6)))


class ConvAutoEncoder(nn.Module):
    """An encoder to a 128-d code and a decoder back to the image, trained to reconstruct (mean squared
    error); the code is the feature space for unlabelled data.

    Why an autoencoder and not a contrastive encoder (SimCLR-style): a code the image can be redrawn from
    must move with anything a viewer can see in a generated image (noise, smears, wrong grey levels,
    broken edges), while a contrastive encoder is trained to ignore what its augmentations vary and can
    call an artefact-ridden blob "real" if it has the right outline. Measured on 1,000 rendered shapes
    (tests/shapes.py) and one DCGAN run, each network trained for 300 batches of 64: FID of the 50-step
    (noise) over the 600-step checkpoint was ~12x in the autoencoder's space and ~2.6-3.1x in a SimCLR
    encoder's (NT-Xent, crops, flips, mild brightness/contrast jitter, temperature 0.1-0.5), and SimCLR
    rated 84% of the 100-step samples (blobs with grey artefacts) precise against the autoencoder's
    44-58%. The price: the code is closer to pixels than to meaning, so numbers rank checkpoints of one
    data set; they are not comparable across data sets or with Inception FIDs.
    """

    def __init__(self, channels: int, size: int, width: int = 16, feature_dim: int = FEATURE_DIM):
        super().__init__()
        size = model_input(torch.empty(1, 1, size, size)).shape[-1]
        if size % 4:
            raise ValueError(f"image size {size} is not a multiple of 4")
        w, s0 = width, size // 4
        self.encoder = ImageEncoder(channels, width, feature_dim)
        self.decoder = nn.Sequential(
            nn.Linear(feature_dim, 4 * w * s0 * s0), nn.ReLU(inplace=True), nn.Unflatten(1, (4 * w, s0, s0)),
            # 2x2 stride-2 transposed convolutions: a quarter of the 4x4 ones' work, and no overlap, so no
            # checkerboard; the 3x3 convolution after them smooths the blocks.
            nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 2, 2), nn.ReLU(inplace=True),
            nn.Conv2d(w, channels, 3, padding=1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of model_input(x)."""
        return self.decoder(self.encoder.code(x))


def images_digest(x: Tensor) -> str:
    """sha256 of the images quantised to 8 bits, in order: what the cached encoder was trained on."""
    h = hashlib.sha256()
    h.update(repr(tuple(x.shape)).encode())
    for i in range(0, len(x), 1024):
        q = ((x[i:i + 1024].detach().float().cpu() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
        h.update(q.numpy().tobytes())
    return h.hexdigest()


def encoder_cache_path(data_name: str, shape: tuple[int, ...], digest: str, recipe: AERecipe) -> Path:
    key = json.dumps({"ae": AE_VERSION, "data": data_name, "shape": list(shape), "images": digest,
                      **asdict(recipe)}, sort_keys=True)
    c, h, w = shape
    return cache_dir() / (f"{data_name}-{c}x{h}x{w}-ae-{AE_VERSION}-{digest[:12]}-"
                          f"{hashlib.sha256(key.encode()).hexdigest()[:8]}.safetensors")


def train_autoencoder(x: Tensor, recipe: AERecipe = DEFAULT_AE_RECIPE) -> ConvAutoEncoder:
    """Adam on the mean squared reconstruction error, one-cycle learning rate, `recipe.steps` batches drawn
    from a seeded generator; deterministic for recipe.seed on a given device and thread count. The global
    RNG is left as it was (forked)."""
    devices = [x.device.index if x.device.index is not None else torch.cuda.current_device()] \
        if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(recipe.seed)
        model = ConvAutoEncoder(x.shape[1], x.shape[-1], recipe.width).to(x.device)
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps)
        gen = torch.Generator().manual_seed(recipe.seed)
        model.train()
        for _ in range(recipe.steps):
            idx = torch.randint(0, len(x), (recipe.batch_size,), generator=gen).to(x.device)
            batch = x[idx]
            loss = F.mse_loss(model(batch), model_input(batch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def reconstruction_rmse(model: ConvAutoEncoder, x: Tensor, batch_size: int = 500) -> float:
    """Root mean squared error of the reconstructions, in units of the [0, 1] pixel range."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        part = x[i:i + batch_size]
        target = model_input(part)
        total += float((model(part) - target).double().pow(2).sum())
        count += target.numel()
    return (total / max(count, 1)) ** 0.5 / 2


@dataclass
class Encoder:
    model: ImageEncoder
    name: str
    rmse: float               # held-out reconstruction error, [0, 1] pixel units
    train_seconds: float      # 0 when it came from the cache
    path: Path | None
    from_cache: bool


def encoder_name(data_name: str, n_images: int, digest: str, rmse: float) -> str:
    return (f"gantui-{data_name}-ae-{AE_VERSION} ({FEATURE_DIM}-d bottleneck of a small autoencoder trained "
            f"on these {n_images} unlabelled images, sha256 {digest[:8]}, held-out reconstruction RMSE "
            f"{rmse:.3f}; ranks checkpoints of this data set, not comparable with Inception FID)")


def load_or_train_encoder(data_name: str, images: Tensor, device: torch.device,
                          recipe: AERecipe = DEFAULT_AE_RECIPE, log: Callable[[str], None] = log_stderr) -> Encoder:
    """The cached autoencoder's encoder for exactly these real images, trained first when there is none."""
    shape = tuple(images.shape[1:])
    digest = images_digest(images)
    path = encoder_cache_path(data_name, shape, digest, recipe)
    model = ImageEncoder(shape[0], recipe.width)
    meta = _load_cached(path, model, "rmse")
    if meta is not None:
        rmse = float(meta["rmse"])
        return Encoder(model.to(device).eval(), encoder_name(data_name, len(images), digest, rmse), rmse,
                       0.0, path, True)

    # A seeded tenth (at most 500) is held out to measure the reconstruction error; the rest trains.
    gen = torch.Generator().manual_seed(recipe.seed)
    order = torch.randperm(len(images), generator=gen)
    n_hold = min(500, len(images) // 10)
    train_idx = order[n_hold:n_hold + recipe.max_images].to(images.device)
    x_train = images[train_idx].to(device).float()
    x_hold = images[order[:n_hold].to(images.device)].to(device).float()
    log(f"training the {data_name} feature autoencoder once ({len(x_train)} images, {recipe.steps} steps); "
        f"it will be cached at {path}")
    t0 = time.perf_counter()
    ae = train_autoencoder(x_train, recipe)
    ae.encoder.calibrate(x_train[:5000])
    rmse = reconstruction_rmse(ae, x_hold if n_hold else x_train)
    seconds = time.perf_counter() - t0
    log(f"feature autoencoder: held-out reconstruction RMSE {rmse:.3f} after {seconds:.1f} s")
    try:
        checkpoint.save(path, ae.encoder.state_dict(), {"rmse": repr(rmse), "train_seconds": repr(seconds),
                                                     "data": data_name, "images_sha256": digest,
                                                     "recipe": json.dumps(asdict(recipe))})
    except OSError as e:  # a read-only home still evaluates; it just trains again next time
        log(f"could not cache the feature autoencoder at {path}: {e.strerror}")
        path = None
    return Encoder(ae.encoder.eval(), encoder_name(data_name, len(images), digest, rmse), rmse, seconds,
                   path, False)


# --- one interface over all three --------------------------------------------------------------

@dataclass
class FeatureSpace:
    """What the metrics need: features, and class probabilities when a trained classifier is at hand."""

    name: str
    dim: int
    features_net: nn.Module                 # images -> (N, dim)
    classifier: Classifier | None = None    # for class coverage (labelled data)
    batch_size: int = 500
    shares_classifier: bool = field(default=False)  # features are the classifier's own penultimate layer

    @torch.no_grad()
    def embed(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """(features (N, dim), class probabilities (N, K) or None), in batches, on the images' device."""
        feats, probs = [], []
        for i in range(0, len(images), self.batch_size):
            x = images[i:i + self.batch_size].float()
            if self.shares_classifier:
                h, logits = self.classifier.model.embed(x)
                feats.append(h)
                probs.append(logits.softmax(1))
                continue
            feats.append(self.features_net(x).float())
            if self.classifier is not None:
                probs.append(self.classifier.model(x).softmax(1))
        return torch.cat(feats), (torch.cat(probs) if probs else None)


class _Body(nn.Module):
    def __init__(self, cnn: SmallCNN):
        super().__init__()
        self.cnn = cnn

    def forward(self, x: Tensor) -> Tensor:
        return self.cnn.embed(x)[0]


def select_feature_space(shape: tuple[int, ...], classifier: Classifier | None, device: torch.device,
                         inception_weights: str | Path | None = None,
                         log: Callable[[str], None] = log_stderr, encoder: Encoder | None = None) -> FeatureSpace:
    """Inception pool3 when weights are found, else the classifier's own features, else the autoencoder's."""
    path = find_inception_weights(inception_weights)
    if path is not None:
        net, name = load_inception(path)
        log(f"features: {name}")
        return FeatureSpace(name, 2048, net.to(device), classifier, batch_size=100)
    if classifier is not None:
        return FeatureSpace(classifier.name, FEATURE_DIM, _Body(classifier.model), classifier,
                            shares_classifier=True)
    if encoder is not None:
        return FeatureSpace(encoder.name, encoder.model.feature_dim, encoder.model.to(device).eval(), None)
    raise ValueError("no feature space: pass a trained classifier or encoder, or Inception weights")

"""gantui.data: toy mixtures, offline digits, torchvision sets and image folders.

Everything here runs offline: MNIST and CIFAR-10 are tiny files written by the tests in
the real on-disk formats, and every download attempt is cut off before the network.
"""

from __future__ import annotations

import gzip
import math
import socket
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantui.config import DataConfig
from gantui.data import DataInfo, Dataset, load_dataset
from gantui.data import glyphs, toy, vision
from gantui.errors import DataError, UserError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOYS = ("ring8", "grid25", "mixture1d")


# --- toy mixtures ---------------------------------------------------------------------------

def test_toy_means_and_std_match_design():
    ring = toy.means("ring8")
    expected = [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)]
    assert ring.shape == (8, 2)
    assert torch.allclose(ring, torch.tensor(expected), atol=1e-7)

    grid = toy.means("grid25")
    assert grid.shape == (25, 2)
    axis = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert {tuple(p) for p in grid.tolist()} == {(a, b) for a in axis for b in axis}

    assert toy.means("mixture1d").tolist() == [[-2.0], [2.0]]
    assert torch.allclose(toy.means("mixture1d", modes=5).flatten(), torch.linspace(-2, 2, 5))
    assert toy.means("mixture1d", modes=1).shape == (1, 1)

    assert (toy.std("ring8"), toy.std("grid25"), toy.std("mixture1d")) == (0.01, 0.05, 0.35)


def test_toy_unknown_name_is_a_data_error():
    with pytest.raises(DataError, match="toy"):
        toy.means("ring9")
    with pytest.raises(DataError):
        toy.std("digits")


@pytest.mark.parametrize("name", TOYS)
@pytest.mark.parametrize("device", DEVICES)
def test_toy_samples_lie_near_the_means_and_cover_every_mode(name, device):
    ds = load_dataset(DataConfig(name=name, modes=3), torch.device(device), seed=0)
    centres = toy.means(name, modes=3)
    assert ds.info == DataInfo(name=name, shape=(centres.shape[1],), n_classes=0, is_toy=True)

    torch.manual_seed(0)
    x, y = ds.sample(4000)
    assert y is None
    assert x.shape == (4000, centres.shape[1]) and x.dtype == torch.float32
    assert x.device.type == device

    dist = torch.cdist(x.cpu(), centres)
    nearest = dist.argmin(1)
    sigma = toy.std(name)
    assert dist.min(1).values.max() < 6 * sigma  # raw coordinates: no normalisation
    counts = torch.bincount(nearest, minlength=len(centres))
    assert (counts > 0).all()
    assert counts.min() > 0.5 * 4000 / len(centres)  # components drawn uniformly
    spread = (x.cpu() - centres[nearest]).std()
    assert spread == pytest.approx(sigma, rel=0.1)


def test_toy_sampling_follows_the_device_and_its_global_rng():
    ds = load_dataset(DataConfig(name="ring8"), torch.device("meta"), seed=0)
    assert ds.sample(7)[0].device.type == "meta"
    assert ds.real_batch(7, seed=1)[0].device.type == "meta"


@pytest.mark.parametrize("name", ["grid25", "digits"])
def test_sampling_is_reproducible_after_manual_seed_and_rng_restore(name):
    ds = load_dataset(DataConfig(name=name, n_samples=100), torch.device("cpu"), seed=0)
    torch.manual_seed(123)
    a, ya = ds.sample(32)
    torch.manual_seed(123)
    b, yb = ds.sample(32)
    assert torch.equal(a, b)
    assert (ya is None and yb is None) or torch.equal(ya, yb)

    state = torch.get_rng_state()
    c, _ = ds.sample(32)
    d, _ = ds.sample(32)
    torch.set_rng_state(state)  # what a resume does
    assert torch.equal(ds.sample(32)[0], c)
    assert torch.equal(ds.sample(32)[0], d)
    assert not torch.equal(c, d)


@pytest.mark.parametrize("name", ["ring8", "digits"])
def test_real_batch_is_reproducible_and_leaves_the_global_rng_alone(name):
    ds = load_dataset(DataConfig(name=name, n_samples=100), torch.device("cpu"), seed=0)
    state = torch.get_rng_state()
    a, _ = ds.real_batch(50, seed=7)
    b, _ = ds.real_batch(50, seed=7)
    c, _ = ds.real_batch(50, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert len(ds.real_batch(250, seed=7)[0]) == 250  # more than the set holds: drawn with replacement


def test_toy_real_std_is_the_mixture_spread():
    ds = load_dataset(DataConfig(name="ring8"), torch.device("cpu"), seed=0)
    assert ds.real_std == pytest.approx(math.sqrt(0.5 + 0.01**2), rel=1e-6)
    x, _ = ds.real_batch(20000, seed=0)
    assert ds.real_std == pytest.approx(float(x.std(0).mean()), rel=0.03)
    assert ds  # an infinite set is still truthy


# --- offline digits ---------------------------------------------------------------------------

def test_digits_shape_range_and_balanced_labels():
    ds = load_dataset(DataConfig(name="digits", n_samples=500), torch.device("cpu"), seed=0)
    assert ds.info == DataInfo(name="digits", shape=(1, 28, 28), n_classes=10, is_toy=False)
    x, y = ds.x, ds.y
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0  # background -1, saturated strokes +1
    assert (x[:, :, 0, :] == -1).float().mean() > 0.95  # borders are mostly background
    assert y.dtype == torch.int64
    assert torch.bincount(y, minlength=10).tolist() == [50] * 10
    assert 0.2 < ds.real_std < 1.0

    xb, yb = ds.sample(16)
    assert xb.shape == (16, 1, 28, 28) and yb.shape == (16,) and yb.dtype == torch.int64


def test_digits_are_deterministic_for_a_seed_and_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    a, ya = glyphs.render_digits(120, seed=3)
    b, yb = glyphs.render_digits(120, seed=3)
    c, yc = glyphs.render_digits(120, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)
    assert not torch.equal(ya, yc)


def test_digit_classes_are_distinguishable():
    """A nearest-class-mean classifier, fit on one seed, must read another seed's digits."""
    train, ytrain = glyphs.render_digits(2000, seed=0)
    test, ytest = glyphs.render_digits(500, seed=1)
    train, test = train.flatten(1).float() / 255, test.flatten(1).float() / 255
    centroids = torch.stack([train[ytrain == d].mean(0) for d in range(10)])
    gaps = torch.cdist(centroids, centroids) + torch.eye(10) * 1e9
    assert gaps.min() > 1.0  # every pair of class means differs clearly (per-pixel units in [0, 1])
    predicted = torch.cdist(test, centroids).argmin(1)
    assert (predicted == ytest).float().mean() > 0.6  # chance is 0.1


@pytest.mark.parametrize("size", [32, 64])
def test_digits_resize_to_image_size(size):
    ds = load_dataset(DataConfig(name="digits", n_samples=20, image_size=size), torch.device("cpu"), seed=0)
    assert ds.x.shape == (20, 1, size, size)
    assert ds.info.shape == (1, size, size)


def test_digits_second_load_comes_from_the_cache():
    cfg = DataConfig(name="digits", n_samples=60)
    load_dataset(cfg, torch.device("cpu"), seed=11)
    hits = glyphs._cached.cache_info().hits
    again = load_dataset(cfg, torch.device("cpu"), seed=11)
    assert glyphs._cached.cache_info().hits == hits + 1
    assert again.x.shape == (60, 1, 28, 28)
    fresh = Dataset(again.info, again.x, again.y)  # real_std recomputed from the tensor
    assert again.real_std == pytest.approx(fresh.real_std, rel=1e-6)


# --- MNIST-style IDX files ------------------------------------------------------------------------

def write_idx(raw: Path, images: np.ndarray, labels: np.ndarray, compress: bool = False) -> None:
    """The raw big-endian IDX format torchvision reads from <root>/MNIST/raw/."""
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    blobs = {
        "train-images-idx3-ubyte": struct.pack(">iiii", 0x0803, n, h, w) + images.astype(np.uint8).tobytes(),
        "train-labels-idx1-ubyte": struct.pack(">ii", 0x0801, n) + labels.astype(np.uint8).tobytes(),
    }
    for name, blob in blobs.items():
        if compress:
            (raw / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (raw / name).write_bytes(blob)


def tiny_mnist(n=20):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    return images, np.arange(n) % 10


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_sets_load_from_raw_files(tmp_path, name, folder):
    images, labels = tiny_mnist()
    write_idx(tmp_path / folder / "raw", images, labels)
    ds = load_dataset(DataConfig(name=name, root=str(tmp_path), download=False), torch.device("cpu"), seed=0)
    assert ds.info == DataInfo(name=name, shape=(1, 28, 28), n_classes=10, is_toy=False)
    assert ds.x.shape == (20, 1, 28, 28)
    assert ds.y.tolist() == labels.tolist()
    assert (ds.x[0] == -1).all() and (ds.x[1] == 1).all()
    assert torch.allclose(ds.x[5, 0], torch.from_numpy(images[5]).float() / 127.5 - 1)


def test_mnist_from_gz_files_and_resized(tmp_path):
    images, labels = tiny_mnist()
    write_idx(tmp_path / "MNIST" / "raw", images, labels, compress=True)
    cfg = DataConfig(name="mnist", root=str(tmp_path), download=False, image_size=32)
    ds = load_dataset(cfg, torch.device("cpu"), seed=0)
    assert ds.x.shape == (20, 1, 32, 32) and ds.info.shape == (1, 32, 32)
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    assert (ds.x[0] == -1).all()


def test_corrupt_idx_file_is_a_data_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not an idx file at all")
    (raw / "train-labels-idx1-ubyte").write_bytes(b"nor this")
    with pytest.raises(DataError, match="not valid IDX"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path), download=False), torch.device("cpu"), seed=0)


# --- CIFAR-10 binary batches -----------------------------------------------------------------

def write_cifar(root: Path, per_batch=4) -> None:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        records = np.zeros((per_batch, 3073), dtype=np.uint8)
        records[:, 0] = i                # the label byte
        records[:, 1:1025] = 255         # red plane full, green and blue empty
        (folder / f"data_batch_{i}.bin").write_bytes(records.tobytes())


def test_cifar10_loads_binary_batches(tmp_path):
    write_cifar(tmp_path)
    ds = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), download=False), torch.device("cpu"), seed=0)
    assert ds.info == DataInfo(name="cifar10", shape=(3, 28, 28), n_classes=10, is_toy=False)
    assert ds.x.shape == (20, 3, 28, 28)
    assert sorted(set(ds.y.tolist())) == [1, 2, 3, 4, 5]
    assert torch.allclose(ds.x[:, 0], torch.ones(1)) and torch.allclose(ds.x[:, 1:], -torch.ones(1))


def test_cifar10_malformed_batch_is_refused_by_name(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="data_batch_3.bin"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path), download=False), torch.device("cpu"), seed=0)


# --- Fashion-MNIST from Debian's dataset-fashion-mnist -------------------------------------------------

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def no_system_sets(monkeypatch, tmp_path):
    """As on a machine without dataset-fashion-mnist: the system folder is empty."""
    monkeypatch.setitem(vision.SYSTEM_IDX_FOLDERS, "fashion_mnist", tmp_path / "no-such-package")


def test_fashion_mnist_is_read_in_place_from_the_system_folder(tmp_path, monkeypatch):
    images, labels = tiny_mnist()
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    write_idx(system, images, labels, compress=True)  # the package ships the original .gz files
    monkeypatch.setitem(vision.SYSTEM_IDX_FOLDERS, "fashion_mnist", system)
    before = sorted(system.iterdir())
    root = tmp_path / "data"
    ds = load_dataset(DataConfig(name="fashion_mnist", root=str(root), download=False), torch.device("cpu"), seed=0)
    assert ds.y.tolist() == labels.tolist() and ds.x.shape == (20, 1, 28, 28)
    assert torch.allclose(ds.x[5, 0], torch.from_numpy(images[5]).float() / 127.5 - 1)
    assert sorted(system.iterdir()) == before and not root.exists()  # nothing unpacked or copied

    # Files the user put under data.root win over the system copy.
    mine = np.full((4, 28, 28), 7, dtype=np.uint8)
    write_idx(root / "FashionMNIST" / "raw", mine, np.arange(4))
    ds = load_dataset(DataConfig(name="fashion_mnist", root=str(root), download=False), torch.device("cpu"), seed=0)
    assert len(ds) == 4


def test_a_truncated_gz_is_a_data_error_naming_the_folder(tmp_path, monkeypatch):
    images, labels = tiny_mnist()
    system = tmp_path / "system"
    write_idx(system, images, labels, compress=True)
    gz = system / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:40])
    monkeypatch.setitem(vision.SYSTEM_IDX_FOLDERS, "fashion_mnist", system)
    with pytest.raises(DataError, match="not valid IDX") as err:
        load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path / "data"), download=False),
                     torch.device("cpu"), seed=0)
    assert str(system) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed (apt install dataset-fashion-mnist; "
                           ".ci/run installs it)")
def test_the_real_fashion_mnist_from_the_debian_package(tmp_path):
    ds = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), download=False),
                      torch.device("cpu"), seed=0)
    assert ds.info == DataInfo(name="fashion_mnist", shape=(1, 28, 28), n_classes=10, is_toy=False)
    assert len(ds) == 60000
    assert torch.bincount(ds.y).tolist() == [6000] * 10  # the published training split is balanced
    assert ds.x.min() == -1 and ds.x.max() == 1
    # Not digits: a mean T-shirt (class 0) and a mean trouser (class 1) look nothing alike.
    shirt, trouser = ds.x[ds.y == 0].mean(0), ds.x[ds.y == 1].mean(0)
    assert (shirt - trouser).abs().mean() > 0.2


# --- offline and failed downloads --------------------------------------------------------------------

@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                          ("cifar10", "cifar-10-batches-bin")])
def test_missing_set_without_download_says_where_and_suggests_digits(tmp_path, no_system_sets, name, folder):
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name=name, root=str(tmp_path), download=False), torch.device("cpu"), seed=0)
    msg = str(err.value)
    assert isinstance(err.value, UserError)
    assert "\n" not in msg
    assert str(tmp_path / folder) in msg
    assert "--set data.name=digits" in msg
    assert "download" in msg
    if name == "fashion_mnist":  # the package that would have made it work, and where it puts the files
        assert "dataset-fashion-mnist" in msg and str(vision.SYSTEM_IDX_FOLDERS[name]) in msg


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve or connect fails at once, as on an offline machine."""
    def refuse(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known (network disabled in tests)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_failed_download_is_a_data_error_and_leaves_nothing_behind(tmp_path, no_network, no_system_sets, name):
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name=name, root=str(tmp_path / "data"), download=True), torch.device("cpu"), seed=0)
    msg = str(err.value)
    assert "download failed" in msg and "--set data.name=digits" in msg and "\n" not in msg
    assert str(tmp_path / "data") in msg
    assert socket.getdefaulttimeout() == before
    assert not (tmp_path / "data").exists()  # no empty folders or half archives left


def test_download_runs_under_a_short_socket_timeout(tmp_path, monkeypatch):
    seen = []

    def fake_fetch(url, folder, filename, md5):
        seen.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("unreachable")

    monkeypatch.setattr(vision, "_fetch", fake_fetch)
    with pytest.raises(DataError, match="unreachable"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)), torch.device("cpu"), seed=0)
    assert seen and all(t == vision.SOCKET_TIMEOUT_S for t in seen)
    assert socket.getdefaulttimeout() != vision.SOCKET_TIMEOUT_S


def test_successful_download_is_loaded(tmp_path, monkeypatch):
    images, labels = tiny_mnist()

    def fake_fetch(url, folder, filename, md5):
        assert filename.endswith(".gz") and url.endswith(filename)
        write_idx(Path(folder), images, labels)  # as if downloaded and unpacked

    monkeypatch.setattr(vision, "_fetch", fake_fetch)
    ds = load_dataset(DataConfig(name="mnist", root=str(tmp_path)), torch.device("cpu"), seed=0)
    assert ds.y.tolist() == labels.tolist()


# --- a folder of images ------------------------------------------------------------------------

def test_folder_of_colour_images_recursively(tmp_path):
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (30, 40), (0, 0, 255)).save(tmp_path / "blue.jpg", quality=100)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    Image.new("L", (64, 64), 255).save(tmp_path / "sub" / "deeper" / "white.png")
    Image.new("RGBA", (28, 28), (0, 255, 0, 128)).save(tmp_path / "sub" / "green.png")
    (tmp_path / "notes.txt").write_text("not an image")

    ds = load_dataset(DataConfig(name="folder", root=str(tmp_path)), torch.device("cpu"), seed=0)
    assert ds.info == DataInfo(name="folder", shape=(3, 28, 28), n_classes=0, is_toy=False)
    assert ds.x.shape == (4, 3, 28, 28) and ds.y is None
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    means = ds.x.mean(dim=(2, 3))  # files come in sorted path order: blue, red, sub/deeper/white, sub/green
    assert torch.allclose(means[0], torch.tensor([-1.0, -1.0, 1.0]), atol=0.05)
    assert torch.allclose(means[1], torch.tensor([1.0, -1.0, -1.0]), atol=0.01)
    assert torch.allclose(means[2], torch.ones(3), atol=0.01)
    assert torch.allclose(means[3], torch.tensor([-1.0, 1.0, -1.0]), atol=0.01)
    x, y = ds.sample(8)
    assert x.shape == (8, 3, 28, 28) and y is None


def test_folder_channels_follow_the_files_or_the_config(tmp_path):
    Image.new("L", (32, 32), 0).save(tmp_path / "a.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "b.png")
    grey = load_dataset(DataConfig(name="folder", root=str(tmp_path), image_size=32), torch.device("cpu"), 0)
    assert grey.info.shape == (1, 32, 32)
    forced = load_dataset(DataConfig(name="folder", root=str(tmp_path), channels=3), torch.device("cpu"), 0)
    assert forced.info.shape == (3, 28, 28)
    Image.new("RGB", (32, 32), (10, 200, 30)).save(tmp_path / "c.png")
    to_grey = load_dataset(DataConfig(name="folder", root=str(tmp_path), channels=1), torch.device("cpu"), 0)
    assert to_grey.info.shape == (1, 28, 28) and len(to_grey) == 3
    with pytest.raises(DataError, match="channels"):
        load_dataset(DataConfig(name="folder", root=str(tmp_path), channels=2), torch.device("cpu"), 0)


def test_a_grey_file_before_the_first_colour_one_becomes_three_equal_planes(tmp_path):
    # the read starts grey and turns RGB at the first colour file (no second copy of the set)
    Image.new("L", (32, 32), 200).save(tmp_path / "a.png")
    Image.new("L", (32, 32), 50).save(tmp_path / "b.png")
    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "c.png")
    Image.new("L", (32, 32), 10).save(tmp_path / "d.png")
    images, labels, names = vision.read_folder(tmp_path, 32)
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8 and images.is_contiguous()
    assert labels is None and names == []
    assert [images[i, :, 0, 0].tolist() for i in range(4)] == [[200] * 3, [50] * 3, [255, 0, 0], [10] * 3]
    grey = vision.read_folder(tmp_path, 32, channels=1)[0]
    assert grey.shape == (4, 1, 32, 32) and grey[:, 0, 0, 0].tolist() == [200, 50, 76, 10]  # PIL's luma of red


def test_empty_or_missing_folder_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no pictures here")
    for root in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(DataError) as err:
            load_dataset(DataConfig(name="folder", root=str(root)), torch.device("cpu"), seed=0)
        assert str(root) in str(err.value) and "\n" not in str(err.value)
        assert "--set data.name=digits" in str(err.value)


def test_unreadable_image_names_the_file(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nonsense")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(DataConfig(name="folder", root=str(tmp_path)), torch.device("cpu"), seed=0)


# --- the Dataset container ---------------------------------------------------------------------

def test_unknown_set_and_empty_tensor_are_data_errors():
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset(DataConfig(name="imagenet"), torch.device("cpu"), seed=0)
    info = DataInfo(name="x", shape=(1, 2, 2), n_classes=0, is_toy=False)
    with pytest.raises(DataError):
        Dataset(info, torch.empty(0, 1, 2, 2))

"""Real image sets: mnist, fashion_mnist, cifar10 (torchvision's files and mirrors) and `folder`.

Each set is read once into one uint8 tensor, moved to the device, resized to
`data.image_size` and scaled to [-1, 1]; these sets fit in memory, and indexing a device
tensor beats a DataLoader on the hot path.

Downloads go through torchvision's helpers with a short socket timeout, so an offline
machine fails in seconds. Every failure a user can fix (files absent, download off or
impossible, a corrupt file, an empty folder) is a one-line DataError that says where the
files belong and that `--set data.name=digits` trains without any download.

Nothing here unpickles anything: the MNIST IDX files are read directly, plain or gzipped (never
torchvision's legacy `processed/*.pt`), and CIFAR-10 comes in its binary version, plain bytes.
Fashion-MNIST is also found where Debian's `dataset-fashion-mnist` package installs it
(SYSTEM_IDX_FOLDERS), so it trains offline on a machine with that package.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gantui.data import DataInfo, Dataset
from gantui.errors import DataError

SOCKET_TIMEOUT_S = 5.0  # per blocking socket call while downloading
DOWNLOAD_DEADLINE_S = 15.0  # stop trying further mirrors after this long
from gantui.memory import IMAGE_SUFFIXES  # noqa: E402 - one list: the memory check counts the same files
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_SUGGEST = "or train offline with --set data.name=digits"

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_CIFAR_FOLDER = "cifar-10-batches-bin"
_CIFAR_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))


def load_vision(cfg, device: torch.device) -> Dataset:
    """mnist / fashion_mnist / cifar10 / folder, as a Dataset on `device` (raises DataError)."""
    if cfg.name in ("mnist", "fashion_mnist"):
        images, labels = load_idx_set(cfg.name, Path(cfg.root), cfg.download)
        n_classes = 10
    elif cfg.name == "cifar10":
        images, labels = load_cifar10(Path(cfg.root), cfg.download)
        n_classes = 10
    elif cfg.name == "folder":
        return load_folder_set(cfg, device)
    else:
        raise DataError(f"[data] name: {cfg.name!r} is not a torchvision set or 'folder'")
    x = to_unit_range(images, cfg.image_size, torch.device(device))
    info = DataInfo(name=cfg.name, shape=tuple(x.shape[1:]), n_classes=n_classes, is_toy=False)
    return Dataset(info, x, None if labels is None else labels.to(device))


def to_unit_range(images: torch.Tensor, size: int, device: torch.device, chunk: int = 4096) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C, size, size) in [-1, 1] on `device`."""
    n, c, h, w = images.shape
    out = torch.empty(n, c, size, size, dtype=torch.float32, device=device)
    for i in range(0, n, chunk):
        part = images[i : i + chunk].to(device).float()
        if (h, w) != (size, size):
            part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = part.clamp_(0, 255).div_(127.5).sub_(1.0)
    return out


# --- downloading -------------------------------------------------------------------------

@contextlib.contextmanager
def short_socket_timeout(seconds: float = SOCKET_TIMEOUT_S):
    """torchvision's urlopen calls pass no timeout; the process default is the only lever."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _fetch(url: str, folder: Path, filename: str, md5: str | None) -> None:
    """Download one archive into `folder` and unpack it there (torchvision checks the md5)."""
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(url, download_root=str(folder), filename=filename, md5=md5)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _download(urls: list[str], folder: Path, filename: str, md5: str | None) -> str | None:
    """Try each mirror in turn; None on success, else why the last one failed (one line)."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    reason = "no mirror"
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    partial = None if (folder / filename).exists() else folder / filename
    with short_socket_timeout():
        for url in urls:
            try:
                _fetch(url, folder, filename, md5)
                return None
            except Exception as e:  # URLError, timeouts, bad md5, a full disk: all mean "not downloaded"
                reason = _one_line(e)
            if time.monotonic() > deadline:
                break
    if partial is not None:  # a half-written archive would pass for a hand-placed one next time
        partial.unlink(missing_ok=True)
    for p in made:  # leave no empty folders behind from a failed attempt
        with contextlib.suppress(OSError):
            p.rmdir()
    return reason


# --- MNIST and Fashion-MNIST ---------------------------------------------------------------

# Where a system package puts a set's original IDX files, looked in after data.root and before any
# download. Debian's `dataset-fashion-mnist` (MIT) installs Fashion-MNIST's four .gz files here; they
# are read in place (gzip in memory), never copied or unpacked.
SYSTEM_IDX_FOLDERS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
SYSTEM_IDX_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}


def _idx_source(name: str):
    from torchvision import datasets

    return datasets.MNIST if name == "mnist" else datasets.FashionMNIST


def idx_folder(name: str, root: Path) -> Path:
    """Where torchvision keeps the raw IDX files: <root>/MNIST/raw or <root>/FashionMNIST/raw."""
    return root / _idx_source(name).__name__ / "raw"


def idx_files(folder: Path) -> list[Path] | None:
    """The training images and labels in `folder`, each as the plain file or its .gz; None unless both."""
    found = []
    for base in _IDX_FILES:
        plain, gz = folder / base, folder / (base + ".gz")
        found.append(plain if plain.is_file() else gz if gz.is_file() else None)
    return None if None in found else found


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (plain or .gz) as an array of its declared shape."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        blob = f.read()
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = blob[3]
    head = 4 + 4 * ndim
    dims = [int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    if len(blob) != head + int(np.prod(dims)):
        raise ValueError(f"{len(blob) - head} data bytes for a declared shape {dims}")
    return np.frombuffer(blob, dtype=np.uint8, offset=head).reshape(dims)


def _where(name: str, raw: Path) -> str:
    where = f"put {' and '.join(_IDX_FILES)} (or their .gz) in {raw}/"
    if name in SYSTEM_IDX_PACKAGES:
        where += f", or install Debian's {SYSTEM_IDX_PACKAGES[name]} package (files in {SYSTEM_IDX_FOLDERS[name]}/)"
    return where


def load_idx_set(name: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split: uint8 (N, 1, 28, 28) and int64 labels (N,).

    Looked for in data.root (<root>/<Set>/raw), then in the set's system folder, then downloaded."""
    raw = idx_folder(name, root)
    system = SYSTEM_IDX_FOLDERS.get(name)
    paths = idx_files(raw)
    if paths is None and system is not None:
        paths = idx_files(system)
    if paths is None:
        nowhere = f"no data in {raw}/" + (f" or {system}/" if system is not None else "")
        if not download:
            raise DataError(f"{name}: {nowhere} and data.download is off; {_where(name, raw)}, "
                            f"or set data.download=true with internet access, {_SUGGEST}")
        source = _idx_source(name)
        md5s = dict(source.resources)
        for base in _IDX_FILES:
            if (raw / base).is_file() or (raw / (base + ".gz")).is_file():
                continue
            gz = base + ".gz"
            reason = _download([m + gz for m in source.mirrors], raw, gz, md5s.get(gz))
            if reason is not None:
                raise DataError(f"{name}: {nowhere} and the download failed ({reason}); {_where(name, raw)}, "
                                f"{_SUGGEST}")
        paths = idx_files(raw)
        if paths is None:
            raise DataError(f"{name}: the download did not leave {' and '.join(_IDX_FILES)} in {raw}/; "
                            f"{_where(name, raw)}, {_SUGGEST}")

    folder = paths[0].parent
    try:
        images, labels = read_idx(paths[0]), read_idx(paths[1])
    except (OSError, ValueError, EOFError) as e:  # EOFError: a truncated .gz
        raise DataError(f"{name}: {folder}/ holds files that are not valid IDX files ({_one_line(e)}); "
                        f"replace them with the originals ({', '.join(_IDX_FILES)}), {_SUGGEST}") from None
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{name}: {paths[0]} holds {len(images)} images of shape {list(images.shape[1:])} but "
                        f"{paths[1]} has {len(labels)} labels; replace them with the originals, {_SUGGEST}")
    return torch.from_numpy(images.copy())[:, None].contiguous(), torch.from_numpy(labels.astype(np.int64))


# --- CIFAR-10 ----------------------------------------------------------------------------
# The official *binary* distribution: each record is 1 label byte then 3,072 pixel bytes
# (red, green, blue planes of 32x32). Plain bytes, read with numpy: nothing is unpickled,
# unlike the "python version" that torchvision's CIFAR10 class reads.

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
_CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise ValueError(f"{raw.size} bytes is not a whole number of {_CIFAR_RECORD}-byte records")
    records = raw.reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"label {labels.max()} out of range 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def load_cifar10(root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The 50,000 training images: uint8 (N, 3, 32, 32) and int64 labels (N,)."""
    from torchvision.datasets.utils import extract_archive

    folder = root / _CIFAR_FOLDER
    archive = root / _CIFAR_ARCHIVE
    where = f"put {_CIFAR_ARCHIVE} (the binary version) in {root}/ or its data_batch_1..5.bin in {folder}/"
    paths = [folder / b for b in _CIFAR_BATCHES]

    if not all(p.exists() for p in paths) and archive.exists():
        try:
            extract_archive(str(archive), str(root))
        except Exception as e:
            raise DataError(f"cifar10: cannot unpack {archive}: {_one_line(e)}; replace it, {_SUGGEST}") from None
    if not all(p.exists() for p in paths):
        if not download:
            raise DataError(f"cifar10: no data in {folder}/ and data.download is off; {where}, "
                            f"or set data.download=true with internet access, {_SUGGEST}")
        reason = _download([_CIFAR_URL], root, _CIFAR_ARCHIVE, _CIFAR_MD5)
        if reason is not None:
            raise DataError(f"cifar10: no data in {folder}/ and the download failed ({reason}); {where}, {_SUGGEST}")
        if not all(p.exists() for p in paths):
            raise DataError(f"cifar10: the download did not hold {', '.join(_CIFAR_BATCHES)}; {where}, {_SUGGEST}")

    images, labels = [], []
    for p in paths:
        try:
            x, y = _read_cifar_batch(p)
        except (OSError, ValueError) as e:
            raise DataError(f"cifar10: {p} is not a CIFAR-10 binary batch ({_one_line(e)}); "
                            f"replace it with the original, {_SUGGEST}") from None
        images.append(x)
        labels.append(y)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


# --- a folder of images -------------------------------------------------------------------

def image_files(folder: Path) -> list[Path]:
    """Every image under `folder`, recursively, in a stable order (hidden files skipped)."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))


def _square(img, size: int):
    """Centre-crop to a square, then resize: no stretching of non-square pictures."""
    from PIL import Image

    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return img.resize((size, size), Image.BICUBIC, box=box, reducing_gap=3.0)


def load_folder(folder: Path, size: int, channels: int = 0) -> torch.Tensor:
    """All images under `folder` as uint8 (N, C, size, size); C is 1 if all are grey, else 3,
    unless `channels` (1 or 3) forces it."""
    return read_folder(folder, size, channels)[0]


def folder_classes(folder: Path, files: list[Path], mode: str) -> tuple[list[str], list[int]] | None:
    """Class names and one label per file from the ImageFolder layout (root/<class>/<image>), or None.
    mode: "none"; "subfolders" (every image must sit in a class folder); "auto" (labels when it does
    and there are at least two classes)."""
    if mode == "none":
        return None
    tops = [p.relative_to(folder).parts for p in files]
    loose = [folder / t[0] for t in tops if len(t) < 2]
    if loose:
        if mode == "subfolders":
            raise DataError(f"folder: data.labels = 'subfolders' but {loose[0]} is not in a class subfolder of "
                            f"{folder}/ (expected {folder}/<class>/<image>); move it, or set data.labels = 'none'")
        return None
    names = sorted({t[0] for t in tops})
    if mode == "auto" and len(names) < 2:
        return None
    index = {n: i for i, n in enumerate(names)}
    return names, [index[t[0]] for t in tops]


PROGRESS_EVERY_S = 2.0


def read_folder(folder: Path, size: int, channels: int = 0, labels: str = "none",
                progress=None) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """Images under `folder` as uint8 (N, C, size, size) read into one preallocated array (no per-image
    copies kept, no copy of the whole at the end: peak = what is held), labels (N,) int64 from class subfolders or None, and the class names."""
    from PIL import Image, UnidentifiedImageError

    if channels not in (0, 1, 3):
        raise DataError(f"[data] channels: expected 0 (as the files are), 1 or 3 for 'folder', got {channels}")
    if not folder.is_dir():
        raise DataError(f"folder: {folder}/ is not a directory; set data.root to a folder of images "
                        f"({', '.join(s[1:] for s in IMAGE_SUFFIXES[:4])}, ...), {_SUGGEST}")
    files = image_files(folder)
    if not files:
        raise DataError(f"folder: no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) under {folder}/; "
                        f"put some there or point data.root at them, {_SUGGEST}")
    classes = folder_classes(folder, files, labels)

    n = len(files)
    # One array in the layout the tensor keeps (N, C, H, W), so no permuted copy follows the read. With
    # channels = 0 it starts grey and becomes RGB at the first colour file (the grey rows so far copied
    # into three equal planes, as PIL's L -> RGB does): a grey folder never holds three planes, and the
    # untouched rows of either array are never resident, so the switch costs no second copy of the set.
    planes = channels or 1
    out = np.empty((n, planes, size, size), dtype=np.uint8)
    t0 = last = time.monotonic()
    for i, path in enumerate(files):
        try:
            with Image.open(path) as img:
                grey = img.mode in _GREY_MODES
                if not grey and planes == 1 and channels == 0:
                    rgb = np.empty((n, 3, size, size), dtype=np.uint8)
                    rgb[:i] = out[:i]
                    out, planes = rgb, 3
                pic = _square(img.convert("L" if grey else "RGB"), size)
                if planes == 1:
                    out[i, 0] = np.asarray(pic.convert("L"), dtype=np.uint8)
                else:
                    out[i] = np.asarray(pic.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise DataError(f"folder: cannot read {path} ({_one_line(e)}); remove or replace it") from None
        now = time.monotonic()
        if progress is not None and (now - last >= PROGRESS_EVERY_S or i + 1 == n):
            last = now
            rate = (i + 1) / max(now - t0, 1e-9)
            progress(f"reading {folder}/: {i + 1:,}/{n:,} images ({rate:,.0f}/s, "
                     f"{(i + 1) * out[0].nbytes / 1e6:,.0f} of {out.nbytes / 1e6:,.0f} MB as uint8)")
    images = torch.from_numpy(out)
    if classes is None:
        return images, None, []
    return images, torch.tensor(classes[1], dtype=torch.int64), classes[0]


def load_folder_set(cfg, device: torch.device, progress=None) -> Dataset:
    """`data.name = "folder"`: held on the device as uint8 behind a UnitView (a quarter of float32),
    labelled by class subfolders as `data.labels` says."""
    from gantui.data import UnitView

    images, labels, names = read_folder(Path(cfg.root), cfg.image_size, cfg.channels, cfg.labels, progress)
    raw = images.to(device)
    info = DataInfo(name="folder", shape=tuple(raw.shape[1:]), n_classes=len(names), is_toy=False)
    return Dataset(info, UnitView(raw), None if labels is None else labels.to(device))

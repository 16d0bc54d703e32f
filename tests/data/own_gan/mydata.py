# A data set no file format covers: a function returning a map-style torch Dataset.
import torch
from torch.utils.data import TensorDataset


def blobs():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 4
    x = torch.rand(64, 1, 32, 32, generator=g) * 0.2 - 1 + 0.4 * y.view(-1, 1, 1, 1)
    return TensorDataset(x.clamp(-1, 1), y)


def unscaled():
    return TensorDataset(torch.rand(16, 1, 32, 32) * 255)

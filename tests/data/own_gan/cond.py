# A small conditional GAN as a user writes one: G(z, y) and D(x, y), labels (N,) int64.
import torch
import torch.nn as nn


class CondG(nn.Module):
    def __init__(self, latent_dim=16, n_classes=10, size=32):
        super().__init__()
        self.size = size
        self.embed = nn.Embedding(n_classes, latent_dim)
        self.net = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, size * size), nn.Tanh())

    def forward(self, z, y):
        return self.net(z * self.embed(y)).view(-1, 1, self.size, self.size)


class CondD(nn.Module):
    def __init__(self, n_classes=10, size=32):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(size * size, 64), nn.LeakyReLU(0.2))
        self.out = nn.Linear(64, 1)
        self.embed = nn.Embedding(n_classes, 64)

    def forward(self, x, y):
        h = self.body(x)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(1)  # projection discriminator

# Models that are wrong in the ways a user gets them wrong (tests/test_own_gan.py's error cases).
import torch
import torch.nn as nn

not_a_class = 42


class WrongSize(nn.Module):          # 16 px images for 32 px data
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16 * 16)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 1, 16, 16)


class NoTanh(nn.Module):             # outputs far outside [-1, 1]
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32 * 32)

    def forward(self, z):
        return 100 * self.fc(z).view(-1, 1, 32, 32) + 50


class TwoScores(nn.Module):          # D returning two values per image
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32 * 32, 2)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Crashes(nn.Module):            # G that raises on any latent
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, z):
        raise RuntimeError("my generator is not finished")


def returns_a_string():
    return "not a module"


class NeedsWidth(nn.Module):         # rejects unknown keyword arguments
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, 1)


def needs_labels_dataset():
    return 42

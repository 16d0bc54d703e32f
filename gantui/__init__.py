"""gantui: train GANs in the terminal and see, live, whether the training is healthy.

Only the version lives here, so `gantui --help` never pays for torch or textual.
"""

__version__ = "0.1.0"

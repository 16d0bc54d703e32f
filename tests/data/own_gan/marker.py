# Writes a file when imported: proof, in the trust tests, that gantui imported (or did not import) it.
import os
from pathlib import Path

Path(os.environ.get("GANTUI_TEST_MARKER", "imported.marker")).write_text("imported\n")

from examples_dcgan import Discriminator, Generator  # noqa: E402,F401

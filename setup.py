"""Only what pyproject.toml cannot say: every package under gantui/ (found, so a new one is never
left out) plus the repository's top-level presets/ folder, shipped as the package gantui.presets.
The presets exist once, at the top level, where `gantui run presets/wgan_gp.toml` finds them."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["gantui", "gantui.*"]) + ["gantui.presets"],
    package_dir={"gantui.presets": "presets"},
)

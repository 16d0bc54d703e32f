"""Preset loading and validation: every bad input gets one line naming file, key and value."""

from __future__ import annotations

import pytest

from gantui import config
from gantui.errors import ConfigError

BUNDLED = [p.stem for p in config.bundled_presets()]


def test_every_design_preset_is_bundled():
    assert set(BUNDLED) >= {"wgan_gp", "dcgan", "vanilla", "lsgan", "hinge_sn", "wgan_clip", "cgan",
                            "ring8", "grid25", "mixture1d"}


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_presets_load_and_roundtrip(name):
    cfg = config.load(name)
    assert cfg.run.name == name
    assert cfg.run.description
    assert config.loads(cfg.to_toml()) == cfg  # the resolved config.toml reloads to the same config


def test_design_table_choices():
    assert config.load("wgan_gp").loss.kind == "wgan_gp"
    assert config.load("wgan_gp").loss.n_critic == 5
    assert config.load("wgan_clip").optim.name == "rmsprop"
    assert config.load("hinge_sn").model.spectral_norm is True
    assert config.load("cgan").model.arch == "conditional"
    assert config.load("grid25").data.name == "grid25"


def write(tmp_path, text):
    p = tmp_path / "p.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, words", [
    ("[optim]\ng_lr = -1e-4\n", ["[optim] g_lr", "> 0", "-0.0001"]),
    ("[data]\nbatch_size = 0\n", ["[data] batch_size", "from 1 to 65,536", "0"]),
    ("[loss]\nn_critic = 0\n", ["[loss] n_critic", "from 1 to 100"]),
    ("[loss]\nkind = 'wgan_xx'\n", ["[loss] kind", "'wgan_gp'", "wgan_xx"]),
    ("[data]\nname = 'imagenet'\n", ["[data] name", "'digits'", "imagenet"]),
    ("[data]\nbatch_szie = 64\n", ["[data] batch_szie", "unknown key", "batch_size"]),
    ("[data]\nbatch_size = '64'\n", ["[data] batch_size", "an integer", "'64'"]),
    ("[model]\nspectral_norm = 1\n", ["[model] spectral_norm", "true or false"]),
    ("[optim]\nbetas = [0.5]\n", ["[optim] betas", "two numbers"]),
    ("[trainer]\nx = 1\n", ["unknown section [trainer]"]),
    ("[data]\nname = 'ring8'\n[model]\narch = 'dcgan'\n", ["[model] arch", "'mlp'"]),
    ("[data\nname = 1\n", ["not valid TOML"]),
])
def test_bad_presets_name_file_key_and_value(tmp_path, text, words):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        config.load(str(p))
    message = str(e.value)
    assert str(p) in message
    assert "\n" not in message
    for w in words:
        assert w in message


def test_overrides_are_toml_and_validated():
    cfg = config.load("ring8", ["data.batch_size=128", "optim.g_lr=2e-4", "run.name=x", "optim.betas=[0.1, 0.2]"])
    assert cfg.data.batch_size == 128
    assert cfg.optim.g_lr == 2e-4
    assert cfg.run.name == "x"
    assert cfg.optim.betas == [0.1, 0.2]
    with pytest.raises(ConfigError, match=r"\[data\] batch_size: expected an integer from 1 to 65,536, got 0"):
        config.load("ring8", ["data.batch_size=0"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        config.load("ring8", ["batch_size=3"])
    with pytest.raises(ConfigError, match=r"unknown key"):
        config.load("ring8", ["data.nope=3"])


def test_missing_preset_file_and_unknown_name():
    with pytest.raises(ConfigError, match="no such preset file"):
        config.load("does/not/exist.toml")
    with pytest.raises(ConfigError, match="bundled: .*wgan_gp"):
        config.load("wgan_gpp")


def test_ints_accepted_for_floats_but_not_bools():
    cfg = config.loads("[optim]\ng_lr = 1\n")
    assert cfg.optim.g_lr == 1.0 and isinstance(cfg.optim.g_lr, float)
    with pytest.raises(ConfigError):
        config.loads("[optim]\ng_lr = true\n")

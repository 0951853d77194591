import re

import pytest
import torch

from training.config import PRESETS, load_config
from training.models import Discriminator, Generator, ModelConfig, count_params


def test_paper_generator_has_4_32_million_parameters():
    g = Generator(PRESETS["paper"].model, 34)
    assert abs(count_params(g) - 4.32e6) / 4.32e6 < 0.01


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_output_shapes(resolution):
    cfg = ModelConfig(resolution=resolution, g_channels=8, g_blocks=1, d_widths=(4, 8, 8, 8, 8), d_blocks=1)
    g, d = Generator(cfg, 34).eval(), Discriminator(cfg, 34)
    images = g(torch.randn(2, cfg.noise_dim), torch.zeros(2, 34))
    assert images.shape == (2, 3, resolution, resolution)
    assert images.abs().max() <= 1
    adv, tags = d(images)
    assert adv.shape == (2,) and tags.shape == (2, 34)


@pytest.mark.parametrize("upsample", ["shuffle", "resize"])
def test_narrower_upsampling_stages_cut_the_full_resolution_convolutions(upsample):
    """g_up_channels: each stage's own width; the last one feeds the output conv. Half the last width halves the
    last stage's conv weights, and so its cost: they slide over the same map (64 x 64 for resize, 32 x 32 before
    the pixel shuffle)."""
    base = dict(resolution=64, g_channels=8, g_blocks=1, d_widths=(4, 8, 8, 8, 8), d_blocks=1, upsample=upsample)
    wide, narrow = Generator(ModelConfig(**base), 34).eval(), Generator(ModelConfig(**base, g_up_channels=(8, 4)), 34)
    assert narrow(torch.randn(2, 128), torch.zeros(2, 34)).shape == (2, 3, 64, 64)
    assert narrow.to_rgb.in_channels == 4
    assert narrow.upsample[1].conv.weight.numel() * 2 == wide.upsample[1].conv.weight.numel()
    assert ModelConfig(**base, g_up_channels=[8, 4]).to_json()["g_up_channels"] == [8, 4]
    assert load_config("cpu64", ["model.g_up_channels=24,12"]).model.g_up_channels == (24, 12)
    assert load_config("cpu64", ["model.g_up_channels="]).model.up_channels == (32, 32)   # back to the default
    with pytest.raises(ValueError, match=r"g_up_channels must give 2 positive widths .* got \[8\]"):
        ModelConfig(**base, g_up_channels=(8,))


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="resolution must be"):
        ModelConfig(resolution=96)


def test_config_overrides_and_json(tmp_path):
    cfg = load_config("cpu64", ["batch_size=8", "model.g_blocks=2", "model.d_widths=8,16,16,16,16", "amp=false"])
    assert (cfg.batch_size, cfg.model.g_blocks, cfg.model.d_widths, cfg.amp) == (8, 2, (8, 16, 16, 16, 16), False)
    path = tmp_path / "c.json"
    path.write_text('{"base": "cpu64", "steps": 7, "model": {"g_blocks": 3}}')
    cfg = load_config(str(path))
    assert (cfg.steps, cfg.model.g_blocks, cfg.model.resolution) == (7, 3, 64)
    with pytest.raises(ValueError, match="unknown config key"):
        load_config("tiny", ["model.nope=1"])


@pytest.mark.parametrize("text, message", [
    ('{"base": "cpu64",', "c.json: not valid JSON"),
    ('{"base": "gpu512"}', "c.json: base 'gpu512' is not a preset (paper, cpu64, tiny)"),
    ('{"bogus": 1}', "unknown config keys: bogus"),
])
def test_bad_config_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_config(str(path))
    assert "\n" not in str(info.value)


def test_bad_override_value_names_the_override():
    with pytest.raises(ValueError, match=r"override 'batch_size=many': invalid literal"):
        load_config("tiny", ["batch_size=many"])

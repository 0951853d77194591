"""Both config systems load one way (`common.config`): a preset or a JSON file with "base", then `--set`."""
from __future__ import annotations

import json

import pytest

from tagger.config import TaggerTrainConfig, load_tagger_config
from training.config import load_config


def test_a_tagger_recipe_file_starts_from_its_base_and_takes_overrides(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"base": "tiny", "lr": 0.01, "mouth_backbone": "kyara_plain_16"}))
    cfg = load_tagger_config(str(path), ["epochs=3", "mouth_tags=smile, open mouth", "fractions=0.5,0.25,0.25"])
    assert cfg == TaggerTrainConfig(epochs=3, batch_size=8, lr=0.01, mouth_backbone="kyara_plain_16",
                                    mouth_tags=("smile", "open mouth"), fractions=(0.5, 0.25, 0.25))
    assert TaggerTrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg    # report.json round trip


def test_the_gan_config_merges_the_model_key_by_key(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"base": "cpu64", "model": {"g_blocks": 4}, "batch_size": 16}))
    cfg = load_config(str(path), ["model.g_channels=16"])
    assert (cfg.model.g_blocks, cfg.model.g_channels, cfg.model.resolution, cfg.batch_size) == (4, 16, 64, 16)


@pytest.mark.parametrize("spec, overrides, message", [
    ("nothing", [], "'nothing' is neither a preset (default, tiny) nor a JSON file"),
    ("tiny", ["epoch=3"], "unknown config key 'epoch'"),
    ("tiny", ["epochs=three"], "override 'epochs=three'"),
    ("tiny", ["batch_size=0"], "batch_size must be at least 1"),
    ("tiny", ["fractions=1,1"], "fractions must be three shares"),
])
def test_a_bad_tagger_recipe_is_one_line(spec, overrides, message):
    with pytest.raises(ValueError) as info:
        load_tagger_config(spec, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_recipe_file_of_unknown_keys_or_base_is_refused(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"base": "huge"}))
    with pytest.raises(ValueError, match="base 'huge' is not a preset"):
        load_tagger_config(str(path))
    path.write_text(json.dumps({"epochz": 1}))
    with pytest.raises(ValueError, match="unknown tagger config keys: epochz"):
        load_tagger_config(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_config(str(path))

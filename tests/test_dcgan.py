"""The DCGAN baseline: the paper's networks, built through the same factory, trained by the same loop with no
tag loss and no penalty, and read back like any checkpoint."""
import json

import pytest
import torch
from safetensors.torch import load_file

from training.checkpoint import list_checkpoints, load_generator
from training.config import load_config
from training.models import ModelConfig, count_params
from training.networks import create_discriminator, create_generator
from training.trainer import train

# The preset at 32 px, narrow, for seconds on a CPU (D halves 32 px three times down to 4 x 4). A JSON file:
# resolution and d_widths must change together, which one `--set` at a time cannot do.
TINY = {"base": "dcgan", "model": {"resolution": 32, "noise_dim": 16, "g_channels": 8, "d_widths": [8, 16, 32]},
        "batch_size": 8, "log_every": 1, "ckpt_every": 3, "sample_every": 3}


@pytest.fixture
def tiny_dcgan(tmp_path):
    path = tmp_path / "dcgan-tiny.json"
    path.write_text(json.dumps(TINY))
    return load_config(str(path))


def test_dcgan_preset_is_the_papers_64px_networks():
    cfg = load_config("dcgan").model
    g, d = create_generator(cfg, 27), create_discriminator(cfg, 27)
    # PyTorch's DCGAN example at 64 px (nz 100, ngf = ndf = 64) has these counts.
    assert (count_params(g), count_params(d)) == (3_576_704, 2_765_568)
    images = g(torch.randn(5, 100), torch.zeros(5, 27))
    assert images.shape == (5, 3, 64, 64) and images.abs().max() <= 1
    adv, tags = d(images)
    assert adv.shape == (5,) and tags is None


def test_dcgan_ignores_the_labels(tiny_dcgan):
    g = create_generator(tiny_dcgan.model, 4).eval()
    noise = torch.randn(3, 16)
    assert torch.equal(g(noise, torch.zeros(3, 4)), g(noise, torch.ones(3, 4)))


def test_dcgan_refuses_switches_it_does_not_have():
    with pytest.raises(ValueError, match="dcgan"):
        ModelConfig(family="dcgan", resolution=64, d_widths=(64, 128, 256, 512), attention_res=16)
    with pytest.raises(ValueError, match="dcgan"):
        ModelConfig(family="dcgan", resolution=64, d_widths=(64, 128, 256))      # stops at 8 x 8
    with pytest.raises(ValueError, match="family"):
        ModelConfig(family="stylegan")
    # every family a config may name is one the factory builds
    from training import models, networks
    assert set(models.FAMILIES) == set(networks._FAMILIES)


def test_dcgan_trains_without_tag_loss_or_penalty_and_loads_back(tiny_dcgan, tiny_packed, tmp_path):
    run = tmp_path / "run"
    train(tiny_dcgan, tiny_packed, run, device="cpu", steps=3)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(r["d_tag_real"] == 0 and r["g_tag_fake"] == 0 and "gp" not in r for r in records)
    assert all(r["d_adv"] > 0 and r["g_adv"] > 0 for r in records)
    ckpt = list_checkpoints(run)[-1]
    g, vocab, _, cfg = load_generator(ckpt)
    assert cfg.model.family == "dcgan" and (run / "samples" / "step_0000003.png").is_file()
    # no EMA: the saved G_ema is G itself
    assert all(torch.equal(a, b) for a, b in zip(load_file(str(ckpt / "G.safetensors")).values(),
                                                  load_file(str(ckpt / "G_ema.safetensors")).values()))
    assert g(torch.randn(2, 16), torch.zeros(2, len(vocab))).shape == (2, 3, 32, 32)


def test_dcgan_d_judges_real_and_fake_batches_apart(tiny_dcgan, tiny_packed, tmp_path):
    """Its BatchNorm must never normalise real and fake together: the batch statistics alone would tell them
    apart (tried: D's loss and G's both went to 0 within 20 steps)."""
    from training.trainer import Trainer
    trainer = Trainer(tiny_dcgan, tiny_packed, tmp_path / "run", device="cpu")
    seen = []
    trainer.D.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    trainer.train_step()
    assert seen == [8, 8, 8]       # real, fake (D's step), fake (G's step)

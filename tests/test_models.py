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
    ('{"base": "gpu512"}', "c.json: base 'gpu512' is not a preset (paper, cpu64, dcgan, tiny)"),
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


# Self-attention (`attention_res`): SAGAN's block in G and D, off by default, starting as the identity.

SMALL64 = dict(resolution=64, noise_dim=16, g_channels=16, g_blocks=1, d_widths=(8, 16, 16, 16, 16), d_blocks=1,
               upsample="resize", rgb_kernel=3)


def _randomise_batchnorm(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)


@pytest.mark.parametrize("side", [16, 32])
def test_attention_keeps_the_shapes_and_sits_where_asked(side):
    from training.models import SelfAttention
    cfg = ModelConfig(**SMALL64, attention_res=side)
    g, d = Generator(cfg, 5).eval(), Discriminator(cfg, 5)
    seen = {}
    g.attention.register_forward_hook(lambda m, i, o: seen.update(g=o.shape))     # (update returns None)
    d.attention.register_forward_hook(lambda m, i, o: seen.update(d=o.shape))
    images = g(torch.randn(3, 16), torch.zeros(3, 5))
    assert images.shape == (3, 3, 64, 64)
    adv, tags = d(images)
    assert adv.shape == (3,) and tags.shape == (3, 5)
    assert seen["g"] == (3, 16, side, side)
    assert seen["d"] == (3, 8 if side == 32 else 16, side, side)
    assert isinstance(g.attention, SelfAttention) and g.attention.query.out_channels == 2
    assert g.attention.gamma.item() == 0 and d.attention.gamma.item() == 0
    assert cfg.attention_sides == (32, 16)
    assert load_config("cpu64", [f"model.attention_res={side}"]).model.attention_res == side
    with pytest.raises(ValueError, match=r"attention_res must be 0 \(off\) or .* \(32, 16\), got 8"):
        ModelConfig(**SMALL64, attention_res=8)


def test_self_attention_mixes_far_positions_once_gamma_moves():
    """gamma = 0: the identity, bit for bit; otherwise each position takes from every other, so a change in one
    corner moves the opposite one (a 1x1 convolution could not)."""
    from training.models import SelfAttention
    torch.manual_seed(0)
    block, x = SelfAttention(16), torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    y = block(x)
    x2 = x.clone()
    x2[:, :, 0, 0] += 1
    assert not torch.allclose(block(x2)[:, :, 7, 7], y[:, :, 7, 7])


@pytest.mark.parametrize("side", [16, 32])
def test_a_model_with_attention_started_from_one_without_draws_the_same(side):
    """`--init` from a checkpoint without attention: every shared weight is copied, the attention block keeps its
    init (gamma = 0), and G draws the same faces bit for bit, in eval and in train mode, in either memory layout;
    D judges the same."""
    from training.networks import load_across_vocabularies
    tags = ["blonde hair", "red hair", "blue eyes"]
    torch.manual_seed(0)
    old_g, old_d = Generator(ModelConfig(**SMALL64), 3), Discriminator(ModelConfig(**SMALL64), 3)
    _randomise_batchnorm(old_g)
    torch.manual_seed(1)
    cfg = ModelConfig(**SMALL64, attention_res=side)
    new_g, new_d = Generator(cfg, 3), Discriminator(cfg, 3)
    assert load_across_vocabularies(new_g, old_g.state_dict(), tags, tags) == []
    load_across_vocabularies(new_d, old_d.state_dict(), tags, tags)
    assert new_g.attention.gamma.item() == 0 and new_g.attention.value.weight.abs().sum() > 0
    noise, labels = torch.randn(4, 16), torch.bernoulli(torch.full((4, 3), 0.5))
    for layout in (torch.contiguous_format, torch.channels_last):
        old_g.to(memory_format=layout), new_g.to(memory_format=layout)
        for mode in ("eval", "train"):
            getattr(old_g, mode)(), getattr(new_g, mode)()
            with torch.no_grad():
                assert torch.equal(new_g(noise, labels), old_g(noise, labels)), (layout, mode)
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    assert all(torch.equal(a, b) for a, b in zip(new_d(images), old_d(images)))


def test_only_the_new_attention_may_be_missing_from_the_weights_started_from():
    from training.networks import load_across_vocabularies
    tags = ["blonde hair", "blue eyes"]
    plain, attention = ModelConfig(**SMALL64), ModelConfig(**SMALL64, attention_res=32)
    state = Generator(plain, 2).state_dict()
    del state["blocks.0.body.0.weight"]
    with pytest.raises(KeyError, match="have no 'blocks.0.body.0.weight'"):
        load_across_vocabularies(Generator(attention, 2), state, tags, tags)
    partial = Generator(attention, 2).state_dict()
    del partial["attention.gamma"]                    # some attention but not all of it: not a fresh block
    with pytest.raises(KeyError, match="have no 'attention.gamma'"):
        load_across_vocabularies(Generator(attention, 2), partial, tags, tags)
    # The other way, the learnt attention would be dropped without a word: refused.
    with pytest.raises(KeyError, match=r"have 'attention.gamma' \(and 6 more\), which this network lacks"):
        load_across_vocabularies(Generator(plain, 2), Generator(attention, 2).state_dict(), tags, tags)
    with pytest.raises(KeyError, match="'attention.gamma' .* which this network lacks"):
        load_across_vocabularies(Discriminator(plain, 2), Discriminator(attention, 2).state_dict(), tags, tags)
    # D's attention at 16 px is wider than at 32 px: its weights cannot start the other.
    with pytest.raises(ValueError, match="another network size"):
        load_across_vocabularies(Discriminator(ModelConfig(**SMALL64, attention_res=16), 2),
                                 Discriminator(attention, 2).state_dict(), tags, tags)


def test_existing_configs_and_checkpoints_have_no_attention():
    """Off by default: every preset and committed config builds the networks it always built (the same weight
    names, drawn from the same seed), and a config.json written before the field existed still loads."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    specs = [*PRESETS, *(str(p) for p in sorted((root / "configs").glob("*.json")) if "attention" not in p.name)]
    for spec in specs:
        model = load_config(spec).model
        assert model.attention_res == 0, spec
    cfg = load_config("cpu64").model
    old_json = {k: v for k, v in cfg.to_json().items() if k != "attention_res"}
    assert ModelConfig(**old_json) == cfg
    for build in (Generator, Discriminator):
        torch.manual_seed(0)
        plain = build(cfg, 5)
        assert build(cfg, 5).attention is None
        assert not any("attention" in k for k in plain.state_dict())
        torch.manual_seed(0)
        with_attention = build(ModelConfig(**{**old_json, "attention_res": 32}), 5)
        mine = with_attention.state_dict()
        # attention is built last: every other weight starts as it did without it
        assert all(torch.equal(v, mine[k]) for k, v in plain.state_dict().items())
    slim = root / "portable" / "v5"
    if slim.is_dir():
        from training.checkpoint import load_generator
        generator, *_ = load_generator(slim)
        assert generator.attention is None


def test_the_v6_config_is_v5s_recipe_with_attention_at_16():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    v5, v6 = load_config(str(root / "configs/v5.json")), load_config(str(root / "configs/v6-attention.json"))
    assert v6.model.attention_res == 16
    differ = {k for k, v in v6.to_json().items() if v != v5.to_json()[k]}
    assert differ == {"name", "model"}
    assert {k for k, v in v6.model.to_json().items() if v != v5.model.to_json()[k]} == {"attention_res"}


def test_a_run_starts_from_a_run_without_attention_and_resumes_with_it(tiny_packed, tmp_path):
    """`kyara train --init`: the tiny run's weights, the new attention at its init; a resume keeps the field."""
    from safetensors.torch import load_file
    from training.checkpoint import list_checkpoints
    from training.trainer import Trainer, train
    run = tmp_path / "plain"
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=2)
    before = load_file(str(list_checkpoints(run)[-1] / "G_ema.safetensors"))
    cfg = load_config("tiny", ["model.attention_res=16", "steps=2", "ckpt_every=2", "sample_every=2"])
    started = Trainer(cfg, tiny_packed, tmp_path / "attention", device="cpu", init=run)
    assert started.G_ema.attention.gamma.item() == 0 and started.D.attention.gamma.item() == 0
    mine = started.G_ema.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in before.items())
    assert {k for k in mine if k not in before} == {f"attention.{n}" for n in
                                                     ("query.weight", "query.bias", "key.weight", "key.bias",
                                                      "value.weight", "value.bias", "gamma")}
    started.fit()
    started.close()
    after = load_file(str(list_checkpoints(tmp_path / "attention")[-1] / "G.safetensors"))
    assert after["attention.gamma"].item() != 0                       # it learns
    with pytest.raises(ValueError, match=re.escape("attention_res 16 -> 0")):
        Trainer(load_config("tiny"), tiny_packed, tmp_path / "attention", resume=True, device="cpu")
    with pytest.raises(ValueError, match=re.escape("attention_res 0 -> 16")):
        Trainer(cfg, tiny_packed, run, resume=True, device="cpu")


def test_a_generator_with_attention_exports_to_onnx_as_pytorch_draws(tmp_path):
    """export/graph.py (dynamo export, BatchNorm folded) and the int8 / compact quantizers take the attention
    block: the fp32 file draws what PyTorch draws, the compressed ones close to it."""
    import json
    from dataclasses import replace

    import numpy as np
    import onnxruntime as ort
    from common.vocab import Vocabulary
    from export.exporter import export_checkpoint
    from training.checkpoint import load_generator, save_checkpoint

    cfg = replace(load_config("tiny"), model=ModelConfig(**SMALL64, attention_res=32))
    vocab = Vocabulary(["blonde hair", "red hair", "blue eyes", "red eyes"])
    torch.manual_seed(0)
    g, d = Generator(cfg.model, len(vocab)), Discriminator(cfg.model, len(vocab))
    _randomise_batchnorm(g)
    with torch.no_grad():
        g.attention.gamma.fill_(0.7)
    ckpt = save_checkpoint(tmp_path / "run", 10, {"G": g, "G_ema": g, "D": d}, {}, cfg, vocab, [0.5] * 4, keep_last=1)
    manifest = export_checkpoint(ckpt, tmp_path / "model", default="fp32", calibration_samples=16)
    assert json.loads((tmp_path / "model/manifest.json").read_text())["resolution"] == 64
    for variant in manifest["variants"]:
        if variant["precision"] != "fp32":
            assert variant["psnr_db_vs_fp32"] > 25, variant
    generator, *_ = load_generator(ckpt)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((3, 16), dtype=np.float32)
    labels = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 1]], dtype=np.float32)
    with torch.no_grad():
        expected = generator(torch.from_numpy(noise), torch.from_numpy(labels)).numpy()
        generator.attention.gamma.zero_()
        without = generator(torch.from_numpy(noise), torch.from_numpy(labels)).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(tmp_path / "model/model.onnx"), options, providers=["CPUExecutionProvider"])
    (image,) = session.run(["image"], {"noise": noise, "labels": labels})
    assert np.abs(image - expected).max() < 1e-4
    assert np.abs(image - without).max() > 1e-2       # the attention is in the graph, not folded away

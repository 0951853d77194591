"""The recipe switches: each does what it says, and the paper preset keeps none of them on."""
from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.augment import augment, parse_policy
from training.checkpoint import list_checkpoints, load_state
from training.config import PRESETS, load_config
from training.models import Discriminator, Generator, ModelConfig, Upsample, standing_statistics
from training.trainer import Trainer, train
from safetensors.torch import load_file


def test_paper_preset_is_the_papers_recipe():
    cfg = PRESETS["paper"]
    assert (cfg.augment, cfg.gp_every, cfg.standing_stats) == ("", 1, 0)
    assert (cfg.model.upsample, cfg.model.icnr, cfg.model.rgb_kernel) == ("shuffle", False, 9)
    assert not cfg.model.chroma_blur and not cfg.model.d_projection


def test_icnr_starts_every_2x2_subpixel_group_equal():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    for icnr, equal in ((True, True), (False, False)):
        stage = Upsample(8, "shuffle", icnr=icnr)
        y = F.pixel_shuffle(stage.conv(x), 2)
        same = all(torch.allclose(y[..., 0::2, 0::2], y[..., i::2, j::2]) for i in (0, 1) for j in (0, 1))
        assert same == equal


def test_resize_upsampling_has_the_shuffles_shape_and_flops():
    cfg = dict(resolution=64, g_channels=8, g_blocks=1, d_widths=(4, 8, 8, 8, 8), d_blocks=1)
    shuffle = Generator(ModelConfig(**cfg), 5).eval()
    resize = Generator(ModelConfig(**cfg, upsample="resize", rgb_kernel=3), 5).eval()
    out = resize(torch.randn(2, 128), torch.zeros(2, 5))
    assert out.shape == shuffle(torch.randn(2, 128), torch.zeros(2, 5)).shape == (2, 3, 64, 64)
    assert resize.upsample[0].conv.out_channels == 8 and shuffle.upsample[0].conv.out_channels == 32
    assert resize.to_rgb.kernel_size == (3, 3)
    with pytest.raises(ValueError, match="upsample must be one of shuffle, resize"):
        ModelConfig(upsample="bilinear")


def test_chroma_blur_smooths_colour_and_leaves_brightness():
    """ChromaBlur keeps grey images and flat colours as they are and takes coloured pixel noise out of the
    chroma (its top band falls below a tenth) while the luminance spectrum stays; it adds no weights, so G's
    state dict is the same with the switch on or off."""
    from training.models import ChromaBlur
    from metrics.spectrum import band_power
    blur = ChromaBlur()
    rng = torch.Generator().manual_seed(0)
    grey = (torch.rand(2, 1, 32, 32, generator=rng) * 1.6 - 0.8).expand(2, 3, 32, 32)
    flat = torch.tensor([0.7, -0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    assert torch.allclose(blur(grey), grey, atol=1e-5) and torch.allclose(blur(flat), flat, atol=1e-5)
    noisy = torch.rand(8, 3, 32, 32, generator=rng) * 1.2 - 0.6
    def to_uint8(x):
        return ((x + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    before, after = band_power(to_uint8(noisy)), band_power(to_uint8(blur(noisy)))
    assert after[1, -1] < 0.1 * before[1, -1] and np.allclose(after[0], before[0], rtol=0.05)
    model = dict(resolution=32, noise_dim=16, g_channels=8, g_blocks=1, d_widths=(8, 16), d_blocks=1)
    assert Generator(ModelConfig(**model, chroma_blur=True), 4).state_dict().keys() == \
        Generator(ModelConfig(**model), 4).state_dict().keys()


def test_the_blur_pads_edges_as_replicate_padding_does():
    """training.models.replicate_pad is F.pad's replicate mode, value for value, in either memory layout."""
    from training.models import replicate_pad
    x = torch.randn(2, 3, 5, 7)
    expected = F.pad(x, (1, 1, 1, 1), mode="replicate")
    assert torch.equal(replicate_pad(x), expected)
    assert torch.equal(replicate_pad(x.contiguous(memory_format=torch.channels_last)), expected)


def test_a_run_may_start_from_a_model_without_chroma_blur_but_not_resume_with_it(tiny_packed, tmp_path):
    run = tmp_path / "run"
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=10)
    with pytest.raises(ValueError, match=re.escape("chroma_blur False -> True")):
        Trainer(load_config("tiny", ["model.chroma_blur=true"]), tiny_packed, run, resume=True, device="cpu")
    started = Trainer(load_config("tiny", ["model.chroma_blur=true"]), tiny_packed, tmp_path / "blurred",
                      device="cpu", init=run)
    started.close()
    before = load_file(str(list_checkpoints(run)[-1] / "G_ema.safetensors"))
    assert started.G_ema.chroma_blur is not None
    assert all(torch.equal(v, before[k]) for k, v in started.G_ema.state_dict().items())


def test_projection_d_judges_an_image_with_its_known_tags():
    """The logit moves with a known tag, not with an unknown one (-1 adds nothing), and cannot be had
    without labels; the plain D's logit ignores labels."""
    cfg = dict(resolution=32, d_widths=(4, 8), d_blocks=1)
    torch.manual_seed(0)
    images = torch.randn(3, 3, 32, 32)
    d = Discriminator(ModelConfig(**cfg, d_projection=True), 4)
    assert torch.equal(d(images, torch.ones(3, 4))[0], d(images, torch.zeros(3, 4))[0])   # starts as the plain D
    torch.nn.init.normal_(d.embed.weight)
    on, off = torch.tensor([[1, 0, 1, 0]] * 3), torch.tensor([[0, 0, 1, 0]] * 3)
    assert not torch.allclose(d(images, on)[0], d(images, off)[0])
    unknown = torch.tensor([[-1, 0, 1, 0]] * 3)
    with torch.no_grad():
        judged_unknown = d(images, unknown)[0]
        d.embed.weight[:, 0] = 0                   # the unknown tag's column gone: the same logit
        assert torch.allclose(judged_unknown, d(images, on)[0])
        assert torch.allclose(judged_unknown, d(images, off)[0])
    with pytest.raises(ValueError, match="judges an image with its labels"):
        d(images)
    plain = Discriminator(ModelConfig(**cfg), 4)
    assert torch.equal(plain(images, on)[0], plain(images, off)[0])


def test_a_projection_run_learns_to_call_an_image_real_for_its_own_tags(tiny_packed, tmp_path):
    """Red- and blue-haired real faces (the tiny set): after a short run, D calls each more real with its own
    hair colour than with the other."""
    cfg = load_config("tiny", ["model.d_projection=true", "lambda_adv=0"])
    trainer = Trainer(cfg, tiny_packed, tmp_path / "run", device="cpu")
    trainer.fit(60)
    images, labels = trainer._real_batch()
    vocab = trainer.vocab
    swapped = labels.clone()
    red, blue = vocab.index("red hair"), vocab.index("blue hair")
    swapped[:, red], swapped[:, blue] = labels[:, blue], labels[:, red]
    with torch.no_grad():
        own, other = trainer.D(images, labels)[0], trainer.D(images, swapped)[0]
    assert (own > other).float().mean() > 0.9
    trainer.close()


def test_a_projection_d_sees_a_fakes_tags_only_where_its_real_partner_has_them(tiny_packed, tmp_path):
    """Where a real face's tag is unknown, the fake beside it in the batch shows D that tag as unknown too, so
    D cannot tell the kinds apart by which tags are known; G itself is still asked for every tag."""
    trainer = Trainer(load_config("tiny", ["model.d_projection=true"]), tiny_packed, tmp_path / "run", device="cpu")
    trainer.data.labels[::2, trainer.vocab.index("green eyes")] = -1      # half the faces: eye colour unknown
    trainer.data.labels[::2, trainer.vocab.index("brown eyes")] = -1
    seen, asked = [], []
    d_forward, g_forward = trainer.D.forward, trainer.G.forward
    trainer.D.forward = lambda images, labels=None: (seen.append(labels.clone()), d_forward(images, labels))[1]
    trainer.G.forward = lambda noise, labels: (asked.append(labels.clone()), g_forward(noise, labels))[1]
    trainer.train_step()
    real_labels, fake_seen = seen[0].chunk(2)       # D's forward on real + fake; then the penalty's and G's
    assert (real_labels == -1).any() and not (asked[0] == -1).any()
    assert torch.equal(fake_seen == -1, real_labels == -1)
    assert torch.equal(fake_seen[fake_seen >= 0].float(), asked[0][real_labels >= 0])
    assert torch.equal(seen[-1], fake_seen)          # G's step: the same view
    trainer.close()


def test_translation_moves_content_within_an_eighth_and_cutout_blanks_a_quarter():
    x = torch.full((64, 3, 32, 32), -1.0)
    x[:, :, 16, 16] = 1.0                                   # one bright pixel
    gen = torch.Generator().manual_seed(0)
    moved = augment(x, parse_policy("translation"), gen)
    ys, xs = torch.nonzero(moved[:, 0] == 1, as_tuple=True)[1:]
    assert len(ys) == 64 and (ys - 16).abs().max() <= 4 and (xs - 16).abs().max() <= 4
    assert len(set(zip(ys.tolist(), xs.tolist()))) > 10    # each image its own shift
    cut = augment(torch.ones(64, 3, 32, 32), parse_policy("cutout"), gen)
    blank = (cut[:, 0] == 0).float().mean((1, 2))
    assert blank.max() == pytest.approx(0.25) and (blank > 0).all()


def test_augmentation_is_differentiable_and_repeats_with_the_generator_state():
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    policy = parse_policy("translation, cutout, colour")
    a = augment(x, policy, torch.Generator().manual_seed(3))
    b = augment(x, policy, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="augment: unknown policy flip"):
        parse_policy("translation,flip")


def test_standing_statistics_are_the_exact_average_over_the_batches():
    torch.manual_seed(0)
    g = Generator(load_config("tiny").model, 4).eval()
    batches = [(torch.randn(8, 16), torch.zeros(8, 4)) for _ in range(3)]
    with torch.no_grad():
        maps = [g.fc(torch.cat(b, 1)).view(-1, g.cfg.g_channels, 16, 16) for b in batches]
    standing_statistics(g, batches)
    expected = torch.stack([m.mean((0, 2, 3)) for m in maps]).mean(0)
    assert torch.allclose(g.fc_bn.running_mean, expected, atol=1e-5)
    assert not g.training


def test_standing_statistics_reach_the_saved_g_ema_only(tiny_packed, tmp_path):
    run = tmp_path / "run"
    train(load_config("tiny", ["standing_stats=2", "ckpt_every=4"]), tiny_packed, run, device="cpu", steps=4)
    ckpt = list_checkpoints(run)[-1]
    g, g_ema = (load_file(str(ckpt / f"{n}.safetensors")) for n in ("G", "G_ema"))
    assert not torch.equal(g["fc_bn.running_mean"], g_ema["fc_bn.running_mean"])
    off = tmp_path / "off"
    train(load_config("tiny", ["ckpt_every=4"]), tiny_packed, off, device="cpu", steps=4)
    plain = load_file(str(list_checkpoints(off)[-1] / "G_ema.safetensors"))
    assert torch.equal(plain["fc_bn.running_mean"], load_file(str(list_checkpoints(off)[-1] / "G.safetensors"))["fc_bn.running_mean"])
    # The switch leaves training itself alone: G's weights are the same with it on or off.
    assert torch.equal(g["fc.weight"], load_file(str(list_checkpoints(off)[-1] / "G.safetensors"))["fc.weight"])


def test_lazy_penalty_runs_every_kth_step(tiny_packed, tmp_path):
    run = tmp_path / "run"
    train(load_config("tiny", ["gp_every=3", "log_every=1"]), tiny_packed, run, device="cpu", steps=7)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "gp" in r] == [1, 4, 7]
    assert all(r["wall_s"] > 0 for r in records)


def test_tag_boost_shows_and_asks_for_a_rare_tag_more_often(tiny_packed, tmp_path):
    """tag_boost=TAG=K: real images with the tag K times as likely in a batch, G asked for it K times as often
    (at most half the time); the priors saved with the model stay the data's."""
    from common.vocab import Vocabulary
    from training.config import boosted

    trainer = Trainer(load_config("tiny", ["tag_boost=red hair=4", "batch_size=64"]), tiny_packed, tmp_path / "run",
                      device="cpu")
    red = trainer.vocab.index("red hair")
    share = np.mean([trainer._real_batch()[1][:, red].float().mean().item() for _ in range(30)])
    data_share = float((trainer.data.labels[trainer.train_idx, red] == 1).mean())
    assert abs(data_share - 0.5) < 0.15 and share == pytest.approx(4 * data_share / (3 * data_share + 1), abs=0.05)
    assert np.array_equal(trainer.priors, trainer.data.priors(trainer.train_idx))

    vocab = Vocabulary(["red hair", "blue hair", "male", "smile"])
    order = [vocab.index(t) for t in ("red hair", "blue hair", "male", "smile")]     # columns in the paper's order
    labels = np.zeros((4, 4), np.int8)
    labels[:, order] = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 0]]
    priors = np.zeros(4, np.float32)
    priors[order] = [0.5, 0.5, 0.01, 0.3]
    asked, chances = boosted({"male": 8, "smile": 4}, priors, labels, vocab)
    assert asked[vocab.index("male")] == pytest.approx(0.08) and asked[vocab.index("smile")] == 0.5
    assert chances == pytest.approx(np.array([8, 4, 4, 1]) / 17)
    with pytest.raises(ValueError, match="tag_boost: hat not among the data's tags"):
        boosted({"hat": 2}, priors, labels, vocab)
    for bad in ("male", "male=0.5", "=3"):
        with pytest.raises(ValueError, match="tag_boost must be TAG=FACTOR"):
            load_config("tiny", [f"tag_boost={bad}"])


def test_new_recipe_resumes_exactly(tiny_packed, tmp_path):
    """Augmentation and the lazy penalty draw from the saved generators: a resumed run repeats."""
    sets = ["augment=translation,cutout", "gp_every=2", "standing_stats=1", "ckpt_every=3", "keep_last=5",
            "model.upsample=resize"]
    cfg = load_config("tiny", sets)
    train(cfg, tiny_packed, tmp_path / "straight", device="cpu", steps=6)
    train(cfg, tiny_packed, tmp_path / "split", device="cpu", steps=3)
    train(cfg, tiny_packed, tmp_path / "split", device="cpu", steps=6, resume=True)
    for name in ("G", "G_ema", "D"):
        a = load_file(str(tmp_path / "straight/checkpoints/step_0000006" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "split/checkpoints/step_0000006" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name


# --- resume and step errors (issue "A newcomer's first hour") ---------------------------------------

def test_resume_in_an_empty_run_dir_says_so(tiny_packed, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume") as info:
        Trainer(load_config("tiny"), tiny_packed, tmp_path / "empty", resume=True, device="cpu")
    assert "\n" not in str(info.value)


def test_resume_with_another_model_shape_names_the_field(tiny_packed, tmp_path):
    run = tmp_path / "run"
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=10)
    with pytest.raises(ValueError, match=re.escape("g_channels 8 -> 16")) as info:
        Trainer(load_config("tiny", ["model.g_channels=16"]), tiny_packed, run, resume=True, device="cpu")
    assert "\n" not in str(info.value)

    # Upsampling widths are compared as built, also against a checkpoint written before the field existed.
    for config in (run / "checkpoints").glob("step_*/config.json"):
        saved = json.loads(config.read_text())
        del saved["model"]["g_up_channels"]
        config.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=re.escape("g_up_channels [8] -> [4]")):
        Trainer(load_config("tiny", ["model.g_up_channels=4"]), tiny_packed, run, resume=True, device="cpu")
    same = Trainer(load_config("tiny", ["model.g_up_channels=8"]), tiny_packed, run, resume=True, device="cpu")
    assert same.step == 10
    same.close()


def test_resume_of_a_finished_run_says_it_once_and_writes_nothing(tiny_packed, tmp_path, capsys):
    run = tmp_path / "run"
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=10)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    capsys.readouterr()
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=10, resume=True)
    err = capsys.readouterr().err
    assert err.count("already at step 10") == 1 and "step/s" not in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_negative_steps_are_refused_before_a_run_dir_is_made(tiny_packed, tmp_path):
    with pytest.raises(ValueError, match="--steps must be at least 1, got -5"):
        train(load_config("tiny"), tiny_packed, tmp_path / "run", device="cpu", steps=-5)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="gp_every must be at least 1"):
        load_config("tiny", ["gp_every=0"])


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_a_checkpoint_state_that_carries_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "state.pt"
    torch.save({"step": 1, "evil": _RunsCode()}, path)
    with pytest.raises(ValueError, match="state.pt: refusing to load") as info:
        load_state(path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists()


# --- distillation: a narrow G learns from a wide one's faces ---------------------------------------

def test_a_teacher_pulls_the_student_towards_its_faces(tiny_packed, tmp_path):
    """With a teacher, G's loss adds the L1 distance to the teacher's face for the same noise and tags: after
    the same steps from the same seed, the taught G draws much closer to the teacher than one trained
    without it, although it is narrower (the point: a small G for the page learning from a wide one)."""
    from training.checkpoint import load_generator
    teacher_run = tmp_path / "teacher"
    train(load_config("tiny", ["model.g_channels=16"]), tiny_packed, teacher_run, device="cpu", steps=20)
    teacher = load_generator(teacher_run)[0]
    noise, labels = torch.randn(32, 16, generator=torch.Generator().manual_seed(5)), torch.zeros(32, 4)
    labels[:16, 0] = labels[16:, 1] = labels[::2, 2] = labels[1::2, 3] = 1
    distance = {}
    for name, sets in (("plain", []), ("taught", [f"teacher={teacher_run}", "lambda_teacher=50"])):
        run = train(load_config("tiny", sets), tiny_packed, tmp_path / name, device="cpu", steps=40)
        student = load_generator(run, ema=False)[0]
        with torch.no_grad():
            distance[name] = (student(noise, labels) - teacher(noise, labels)).abs().mean().item()
    assert distance["taught"] < 0.6 * distance["plain"]
    logged = [json.loads(line) for line in (tmp_path / "taught" / "metrics.jsonl").read_text().splitlines()]
    assert all("g_teacher" in r for r in logged if "loss_g" in r)


def test_a_teacher_of_other_tags_or_none_at_all_is_refused_before_training(tiny_packed, tmp_path):
    from common.packed import PackedSet, write_packed
    from common.vocab import Vocabulary
    teacher_run = tmp_path / "teacher"
    train(load_config("tiny"), tiny_packed, teacher_run, device="cpu", steps=2)
    data = PackedSet.open(tiny_packed)
    more = Vocabulary([*data.vocab.tags, "blush"])
    labels = np.concatenate([data.labels, np.zeros((len(data.labels), 1), np.int8)], axis=1)[:, [
        [*data.vocab.tags, "blush"].index(t) for t in more.tags]]
    other = write_packed(tmp_path / "other", np.asarray(data.images), labels, more, np.arange(len(labels)),
                         np.arange(len(labels)) % 8 == 0, source="tests")
    pinned = re.escape(str(list_checkpoints(teacher_run)[-1].resolve()))
    with pytest.raises(ValueError, match=rf"teacher {pinned}: its tags differ") as info:
        Trainer(load_config("tiny", [f"teacher={teacher_run}"]), other, tmp_path / "run", device="cpu")
    assert "\n" not in str(info.value) and "new: blush" in str(info.value)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="its model.noise_dim is 16, this config's 8"):
        Trainer(load_config("tiny", [f"teacher={teacher_run}", "model.noise_dim=8"]), tiny_packed, tmp_path / "run",
                device="cpu")
    assert not (tmp_path / "run").exists()
    with pytest.raises(FileNotFoundError, match=r"teacher .*nowhere: no checkpoint here"):
        Trainer(load_config("tiny", [f"teacher={tmp_path / 'nowhere'}"]), tiny_packed, tmp_path / "run2", device="cpu")
    assert not (tmp_path / "run2").exists()


def test_a_teacher_run_stays_the_checkpoint_the_student_started_from(tiny_packed, tmp_path):
    """A teacher named as a run directory is pinned to its newest checkpoint when the student starts and
    recorded in the student's config.json: the teacher run training on must not change, on resume, what the
    student learns from. A teacher named as a checkpoint is taken as named."""
    teacher_run, student = tmp_path / "teacher", tmp_path / "student"
    train(load_config("tiny"), tiny_packed, teacher_run, device="cpu", steps=10)
    first = list_checkpoints(teacher_run)[-1].resolve()
    train(load_config("tiny", [f"teacher={teacher_run}"]), tiny_packed, student, device="cpu", steps=10)
    train(load_config("tiny"), tiny_packed, teacher_run, resume=True, device="cpu", steps=20)
    newest = list_checkpoints(teacher_run)[-1].resolve()
    assert newest != first
    for named, expected in ((teacher_run, first), (newest, newest)):
        trainer = Trainer(load_config("tiny", [f"teacher={named}"]), tiny_packed, student, resume=True, device="cpu")
        trainer.close()
        assert trainer.cfg.teacher == str(expected)
        assert json.loads((student / "config.json").read_text())["teacher"] == str(expected)

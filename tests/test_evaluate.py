"""Evaluation: the figures' arithmetic, the report's sections, and figures that move the right way."""
from __future__ import annotations

import itertools
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA, needs_shared_data
from common.vocab import Vocabulary
from kyara.cli import main
from tagger.model import TaggerConfig, TaggerNet, save_tagger
from training.checkpoint import list_checkpoints, save_checkpoint
from training.config import load_config
from common.packed import PackedSet
from export.adapters import Source, open_source, torch_source
from training.models import Discriminator, Generator
from metrics import registry
from metrics.attributes import attribute_fidelity, real_attribute_fidelity
from metrics.base import Metric, Reference
from metrics.diversity import mean_pairwise_distance
from metrics.evaluate import evaluate_source
from metrics.face_rate import face_rate
from metrics.fid import fid
from metrics.kid import kid
from metrics.realness import Protocol
from metrics.reference import build_reference
from metrics.report import headline, summary
from metrics.spectrum import band_power, compare


QUICK = Protocol(train_per_class=8, test_per_class=4, steps=20, seeds=1)


class ColourTagger:
    """A stand-in for the CNN tagger that judges the tiny set's colours from the pixels themselves: red vs
    blue channel for hair, a bright green centre for eyes."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.thresholds: dict[str, float] = {}

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32) / 255
        c = images.shape[1] // 4
        red = x[..., 0].mean((1, 2)) > x[..., 2].mean((1, 2))
        green = x[:, c:-c, c:-c, 1].mean((1, 2)) > 0.6
        probs = np.zeros((len(images), len(self.vocab)), np.float32)
        for tag, on in (("red hair", red), ("blue hair", ~red), ("green eyes", green), ("brown eyes", ~green)):
            probs[:, self.vocab.index(tag)] = on
        return probs

    def features(self, images: np.ndarray) -> np.ndarray:
        """The image pooled to 4 x 4 pixels."""
        n, r = len(images), images.shape[1]
        return images.reshape(n, 4, r // 4, 4, r // 4, 3).mean((2, 4)).reshape(n, -1) / 255


def tiny_generator(vocab: Vocabulary, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(load_config("tiny").model, len(vocab)).eval()


def fitted(data: PackedSet, steps: int = 120) -> Generator:
    """A G fitted with plain L2 (no GAN) to the training faces given their tags: the right colours every
    time, but the same face for every noise vector."""
    g = tiny_generator(data.vocab).train()
    idx = data.indices("train")
    images = torch.from_numpy(np.asarray(data.images[idx])).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = torch.from_numpy(data.labels[idx]).float()
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        pick = torch.randint(len(idx), (16,), generator=gen)
        loss = ((g(torch.randn(16, g.cfg.noise_dim, generator=gen), labels[pick]) - images[pick]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return g.eval()


@pytest.fixture
def reference(tiny_packed) -> tuple[PackedSet, ColourTagger, Reference]:
    data = PackedSet.open(tiny_packed)
    tagger = ColourTagger(data.vocab)
    # A short realness protocol: these tests are about the other figures.
    return data, tagger, build_reference(data, "val", tagger, n=64, seed=0, protocol=QUICK)


def test_kid_and_fid_vanish_for_one_distribution_and_grow_with_a_shift():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    assert abs(kid(x, y, seed=0)["mean"]) < 0.01 * kid(x, y + 1, seed=0)["mean"]
    assert fid(x, x) == pytest.approx(0, abs=1e-6)
    # Same covariance, means 2 apart in every one of 8 dimensions: FID = 8 * 2^2 = 32.
    assert fid(x, x + 2) == pytest.approx(32, rel=1e-6)
    assert mean_pairwise_distance(np.array([[0.0, 0], [3, 4], [0, 0]])) == pytest.approx(10 / 3)


def test_a_fitted_generator_beats_a_random_one(reference):
    data, tagger, ref = reference
    random_g = evaluate_source(torch_source(tiny_generator(data.vocab), data.vocab, data.priors()),
                               ref, tagger, n_per_tag=16, seed=0)
    fitted_g = evaluate_source(torch_source(fitted(data), data.vocab, data.priors()),
                               ref, tagger, n_per_tag=16, seed=0)
    assert fitted_g["fidelity"]["per_tag"]["red hair"] == 1.0 > random_g["fidelity"]["per_tag"]["red hair"]
    assert fitted_g["fidelity"]["mean"] > random_g["fidelity"]["mean"]
    assert fitted_g["kid"]["generated"]["mean"] < random_g["kid"]["generated"]["mean"]
    assert fitted_g["fid"]["generated"] < random_g["fid"]["generated"]
    assert fitted_g["score"] == fitted_g["kid"]["generated"]["mean"]
    assert ref.real["fidelity"]["mean"] == 1.0             # the judge is right on real faces


def replaying(data: PackedSet, collapse: bool = False) -> Source:
    """A 'generator' that answers each request with a real training face of the asked colours: a perfect
    one, or with `collapse` always the first such face (mode collapse at its worst)."""
    train = data.indices("train")
    rng = np.random.default_rng(0)

    def generate(noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        matches = [train[np.all(data.labels[train] == row, axis=1)] for row in labels.astype(np.int8)]
        return np.stack([data.images[m[0] if collapse else rng.choice(m)] for m in matches])

    return Source(generate, data.vocab, data.priors(), noise_dim=4)


def test_mode_collapse_shows_as_lower_diversity(reference):
    data, tagger, ref = reference
    perfect = evaluate_source(replaying(data), ref, tagger, n_per_tag=16, seed=0)
    collapsed = evaluate_source(replaying(data, collapse=True), ref, tagger, n_per_tag=16, seed=0)
    real = perfect["diversity"]["real"]
    assert perfect["diversity"]["generated"] == pytest.approx(real, rel=0.2)
    assert collapsed["diversity"]["generated"] == 0.0 < real
    assert perfect["fidelity"]["mean"] == collapsed["fidelity"]["mean"] == 1.0   # fidelity cannot see it
    assert perfect["kid"]["generated"]["mean"] < collapsed["kid"]["generated"]["mean"]


class SmileTagger:
    """Sees smile where an image's centre is bright enough (its brightness as the probability, threshold 0.3)."""

    def __init__(self, vocab: Vocabulary):
        self.vocab, self.thresholds = vocab, {"smile": 0.3}

    def predict(self, images: np.ndarray) -> np.ndarray:
        probs = np.zeros((len(images), len(self.vocab)), np.float32)
        probs[:, self.vocab.index("smile")] = images[:, 12:20, 12:20].mean((1, 2, 3)) / 255
        return probs


def test_attribute_fidelity_asks_on_and_off_for_the_same_faces():
    """A generator that draws what it is asked (a bright centre for smile) scores 1 on and 0 off; one that
    ignores the tag scores the same both ways. Hair length is asked without a contradiction: long hair on
    turns short hair off."""
    vocab = Vocabulary(["red hair", "blue hair", "long hair", "short hair", "smile"])
    asked = []

    def source(obeys: bool) -> Source:
        def generate(noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
            asked.append(labels.copy())
            images = np.zeros((len(labels), 32, 32, 3), np.uint8)
            smiling = labels[:, vocab.index("smile")] == 1 if obeys else noise[:, 0] > 0
            images[smiling, 12:20, 12:20] = 102       # probability 0.4: seen only at the tagger's own threshold
            return images
        return Source(generate, vocab, [0.5, 0.5, 0.5, 0.3, 0.5], noise_dim=4)

    tagger = SmileTagger(Vocabulary(["red hair", "blue hair", "smile"]))   # knows no hair length: not judged
    assert attribute_fidelity(source(True), tagger, n=40, seed=0) == {"smile": {"on": 1.0, "off": 0.0}}
    ignored = attribute_fidelity(source(False), tagger, n=40, seed=0)["smile"]
    assert ignored["on"] == ignored["off"] and 0 < ignored["on"] < 1

    tagger = SmileTagger(vocab)
    asked.clear()
    assert set(attribute_fidelity(source(True), tagger, n=40, seed=0)) == {"long hair", "short hair", "smile"}
    both = [vocab.index("long hair"), vocab.index("short hair")]
    assert all((labels[:, both].sum(1) <= 1).all() for labels in asked)
    # hair length off asks for none of the group: the same request for every face
    assert any((labels[:, both].sum(1) == 0).all() for labels in asked)
    assert all(np.array_equal(a[:, vocab.index("red hair")], asked[0][:, vocab.index("red hair")]) for a in asked)

    labels = np.array([[1, 0, -1, -1, 1], [1, 0, -1, -1, 0], [0, 1, -1, -1, -1]], np.int8)
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[0, 12:20, 12:20] = 255
    real = real_attribute_fidelity(tagger.predict(images), labels, vocab, tagger)
    assert real["smile"] == {"with": 1.0, "without": 0.0} and real["long hair"] == {"with": None, "without": None}


def test_the_spectrum_sees_grain_and_blur(tiny_packed):
    """Pixel noise (grain) raises the top band's power far above the real faces', a 3x3 box blur lowers it;
    neither moves the lowest band much, and real faces against themselves are at distance 0. Coloured noise
    (each channel its own) shows in chroma; grey noise (the same in R, G and B) in luminance only."""
    data = PackedSet.open(tiny_packed)
    faces = np.asarray(data.images[data.indices("train")]).astype(np.float64)
    real = band_power(faces.astype(np.uint8))
    bands = real.shape[1]
    assert compare(real, real)["distance"] == 0 and compare(real, real)["chroma_distance"] == 0
    assert compare(real, real)["ratio"] == compare(real, real)["chroma_ratio"] == [1.0] * bands
    noise = np.random.default_rng(0).normal(0, 16, faces.shape)
    grainy = np.clip(faces + noise, 0, 255).astype(np.uint8)
    grey = np.clip(faces + noise[..., :1], 0, 255).astype(np.uint8)
    padded = np.pad(faces, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    r = faces.shape[1]
    blurred = np.mean([padded[:, dy:dy + r, dx:dx + r] for dy in range(3) for dx in range(3)], axis=0)
    grain, blur = compare(band_power(grainy), real), compare(band_power(blurred.astype(np.uint8)), real)
    grey_grain = compare(band_power(grey), real)
    # the tiny set's flat shapes have sharp edges, so the grain adds less to their top band than to a face's
    assert grain["ratio"][-1] > 1.3 > grain["ratio"][1] and blur["ratio"][-1] < 0.1
    assert abs(grain["ratio"][0] - 1) < 0.1 and abs(blur["ratio"][0] - 1) < 0.1
    assert grain["distance"] > 0.15 and blur["distance"] > 1
    assert grain["chroma_ratio"][-1] > 1.3 and blur["chroma_ratio"][-1] < 0.1
    assert grey_grain["ratio"][-1] > 1.3 and abs(grey_grain["chroma_ratio"][-1] - 1) < 0.1
    assert grey_grain["chroma_distance"] < 0.5 * grain["chroma_distance"]
    with pytest.raises(ValueError, match=r"expected square RGB images \(N, R, R, 3\), got shape \(2, 32, 32\)"):
        band_power(np.zeros((2, 32, 32), np.uint8))


def test_real_faces_have_a_real_spectrum_and_a_random_generator_has_not(reference):
    data, tagger, ref = reference
    perfect = evaluate_source(replaying(data), ref, tagger, n_per_tag=16, seed=0)["spectrum"]
    random_g = evaluate_source(torch_source(tiny_generator(data.vocab), data.vocab, data.priors()),
                               ref, tagger, n_per_tag=16, seed=0)["spectrum"]
    for key in ("distance", "chroma_distance"):
        assert perfect["generated"][key] < 0.25 * random_g["generated"][key]
        assert perfect["real_train"][key] < 0.25 * random_g["generated"][key]


def test_same_seed_same_figures(reference):
    data, tagger, ref = reference
    source = torch_source(tiny_generator(data.vocab), data.vocab, data.priors())
    assert evaluate_source(source, ref, tagger, 4, seed=3) == evaluate_source(source, ref, tagger, 4, seed=3)


def test_synthetic_squares_are_not_faces():
    images = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    assert face_rate(images) == 0.0


@needs_shared_data()
@pytest.mark.shared_data
def test_real_getchu_faces_are_found():
    """The detector settings suit 64 px faces: nearly all real ones count as faces."""
    with tarfile.open(SHARED_DATA / "getchu_extra_data_64px.tar") as tar:
        jpegs = (m for m in tar if m.name.endswith(".jpg"))
        faces = [np.asarray(Image.open(tar.extractfile(m)).convert("RGB")) for m in itertools.islice(jpegs, 40)]
    assert face_rate(np.stack(faces)) > 0.8


def save_tiny_checkpoint(run_dir: Path, data: PackedSet, g: Generator) -> Path:
    cfg = load_config("tiny")
    d = Discriminator(cfg.model, len(data.vocab))
    return save_checkpoint(run_dir, 1, {"G": g, "G_ema": g, "D": d}, {}, cfg, data.vocab,
                           data.priors().tolist(), keep_last=1)


def test_kyara_eval_writes_every_section(tiny_packed, tmp_path, capsys):
    """The command end to end with a real (untrained) tagger: json keys, markdown headings, sheets."""
    data = PackedSet.open(tiny_packed)
    ckpt = save_tiny_checkpoint(tmp_path / "run", data, tiny_generator(data.vocab))
    tagger_dir = save_tagger(tmp_path / "tagger", TaggerNet("mobilenetv4_conv_small_050", len(data.vocab)),
                             TaggerConfig(vocabulary=data.vocab.to_json(), input_size=32))
    out = tmp_path / "eval"
    assert main(["eval", str(ckpt), "--data", str(tiny_packed), "-n", "3", "--out", str(out),
                 "--tagger", str(tagger_dir)]) == 0
    result = json.loads((out / "eval.json").read_text())
    for key in ("score", "realness", "shape_realness", "spectral_distance", "chroma_distance", "tag_fidelity", "face_rate",
                "nightmare_rate", "kid", "fid", "diversity", "sheets"):
        assert key in result
    figures = result["figures"]
    assert set(figures) == {"realness", "shape_realness", "fidelity", "attributes", "face_rate", "nightmare_rate", "kid", "fid",
                            "diversity", "spectrum", "images", "score"}
    assert set(figures["fidelity"]["per_tag"]) == {"red hair", "blue hair", "green eyes", "brown eyes"}
    assert set(figures["fidelity"]["per_group"]) == {"hair colour", "eye colour"}
    assert result["face_rate"] + result["nightmare_rate"] == 1
    assert figures["images"] == {"generated": 12, "reference": 12, "per_tag": 3}
    report = (out / "report.md").read_text()
    for heading in ("## Realness", "## Tag fidelity", "## Attribute fidelity", "## Face rate", "## KID and FID",
                    "## Diversity", "## Spectrum", "## Samples", "## Blind sheets", "## Which figure to trust for what"):
        assert heading in report
    assert Image.open(out / "sheet_tags.png").size == (2 * 32, 2 * 32)     # 2 hair x 2 eye colours
    # Blind sheets: the realness test's held-out faces, as many generated as real, the key beside them.
    key = json.loads((out / "blind" / "key.json").read_text())
    assert key["counts"]["generated"] == key["counts"]["real"] == figures["realness"]["generated"]["images"]["test_real"]
    assert all((out / "blind" / name).is_file() for name in key["sheets"])
    # Twelve validation faces: every KID subset is the whole set, so there is no spread to print.
    assert figures["kid"]["generated"]["std"] is None and "no spread" in report
    printed = capsys.readouterr().out
    assert "tag fidelity" in printed and "realness" in printed and "shape, 32 px" in printed
    assert "| shape realness, 32 px |" in report
    assert [figures[k]["generated"]["protocol"]["resolution"] for k in ("realness", "shape_realness")] == [64, 32]
    assert f"{out}/report.md" in printed and "//" not in printed
    # Untruncated: no truncation line (the "which figure to trust" text speaks of truncation in general).
    assert result["truncation"] == 1 and "truncated by" not in report and "truncation    " not in printed

    # --truncation: every generated face from the noise drawn in, and the report says so.
    drawn_in = tmp_path / "eval-half"
    assert main(["eval", str(ckpt), "--data", str(tiny_packed), "-n", "3", "--out", str(drawn_in),
                 "--tagger", str(tagger_dir), "--truncation", "0.5"]) == 0
    half = json.loads((drawn_in / "eval.json").read_text())
    assert half["truncation"] == 0.5 and "truncated by 0.5" in (drawn_in / "report.md").read_text()
    assert "truncation    0.5" in capsys.readouterr().out
    assert not np.array_equal(np.asarray(Image.open(out / "samples.png")),
                              np.asarray(Image.open(drawn_in / "samples.png")))


def test_a_registered_metric_reaches_eval_json_the_summary_and_the_report(tiny_packed, tmp_path, monkeypatch):
    """Adding a metric is one module listed in the registry: nothing else is edited for its figure to be computed
    (real side once, generated side from the shared faces), written to eval.json, its headline number set at the
    top level, and rendered in the summary and in report.md, after the figures listed before it."""
    data = PackedSet.open(tiny_packed)
    monkeypatch.setattr("tagger.model.load_tagger", lambda path=None: ColourTagger(data.vocab))
    toy = Metric("toy", "Toy brightness",
                 real=lambda side: float(side.images.mean()),
                 generated=lambda gen: {"toy": {"generated": float(gen.images.mean()), "real": gen.ref.real["toy"]}},
                 headline=lambda figures: {"toy_brightness": figures["toy"]["generated"] if "toy" in figures else None},
                 summary=lambda figures: [f"toy brightness {figures['toy']['generated']:.1f}"],
                 markdown=lambda figures: [f"| toy | {figures['toy']['generated']:.1f} "
                                           f"| {figures['toy']['real']:.1f} |"])
    monkeypatch.setattr(registry, "METRICS", [*registry.METRICS, toy])
    ckpt = save_tiny_checkpoint(tmp_path / "run", data, tiny_generator(data.vocab))
    out = tmp_path / "eval"
    assert main(["eval", str(ckpt), "--data", str(tiny_packed), "-n", "3", "--out", str(out)]) == 0
    result = json.loads((out / "eval.json").read_text())
    real = float(np.asarray(data.images[data.indices("val")]).mean())     # all 12 validation faces are the reference
    assert result["figures"]["toy"]["real"] == pytest.approx(real)
    assert result["toy_brightness"] == result["figures"]["toy"]["generated"] > 0
    report = (out / "report.md").read_text()
    assert report.index("## Spectrum") < report.index("## Toy brightness\n\n| toy |") < report.index("## Samples")
    assert summary(result).endswith("\ntoy brightness " + f"{result['toy_brightness']:.1f}")
    # An eval.json written before the metric existed still has a headline, without its number.
    older = {key: value for key, value in result["figures"].items() if key != "toy"}
    assert headline(older)["toy_brightness"] is None and headline(older)["kid"] == result["kid"]


def test_training_evaluates_and_marks_the_best_checkpoint(tiny_packed, tmp_path, monkeypatch):
    data = PackedSet.open(tiny_packed)
    monkeypatch.setattr("tagger.model.load_tagger", lambda path=None: ColourTagger(data.vocab))
    run = tmp_path / "run"
    # Through the command, which hands the trainer its evaluator (the metrics sit above training).
    assert main(["train", "tiny", "--data", str(tiny_packed), "--run-dir", str(run), "--device", "cpu", "--steps", "12",
                 *[a for s in ("eval_every=4", "eval_samples=16", "ckpt_every=100", "keep_last=1")
                   for a in ("--set", s)]]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval"] for r in records if "eval" in r}
    assert sorted(evals) == [4, 8, 12]
    best = json.loads((run / "best.json").read_text())
    assert best["score"] == min(e["score"] for e in evals.values())
    assert best["checkpoint"] == f"step_{best['step']:07d}" and evals[best["step"]]["score"] == best["score"]
    # keep_last=1 keeps the newest checkpoint, and the best one too.
    assert {p.name for p in list_checkpoints(run)} == {best["checkpoint"], "step_0000012"}


def test_an_exported_model_scores_like_its_checkpoint(reference, tmp_path):
    from export.exporter import export_checkpoint
    data, tagger, ref = reference
    ckpt = save_tiny_checkpoint(tmp_path / "run", data, fitted(data, steps=30))
    export_checkpoint(ckpt, tmp_path / "model", calibration_samples=8)
    torch_figures = evaluate_source(open_source(ckpt), ref, tagger, n_per_tag=8, seed=0)
    onnx_figures = evaluate_source(open_source(tmp_path / "model"), ref, tagger, n_per_tag=8, seed=0)
    assert onnx_figures["fidelity"] == torch_figures["fidelity"]
    assert onnx_figures["score"] == pytest.approx(torch_figures["score"], rel=0.02)   # uint8 rounding

"""The tagger: masked losses, learning on a tiny set, save/load, thresholds, and `kyara data tag`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagger.model import (SHIPPED, Tagger, TaggerConfig, TaggerNet, load_tagger, probabilities, save_tagger,
                          tagger_loss, tags_from_probabilities)
from common.packed import write_packed
from common.vocab import Vocabulary
from tagger.report import average_precision, calibrate_thresholds
from tagger.config import TaggerTrainConfig
from tagger.data import LabelledSet
from dataset.tagfile import read_tag_file

HAIR = ["blonde hair", "blue hair", "red hair"]
EYES = ["blue eyes", "red eyes"]


def colour_set(n: int = 48, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Vocabulary]:
    """Images whose top half is the hair colour and bottom half the eye colour: learnable in a few steps."""
    vocab = Vocabulary(HAIR + EYES)
    rgb = {"blonde hair": (240, 220, 90), "blue hair": (40, 60, 220), "red hair": (220, 30, 30),
           "blue eyes": (30, 90, 240), "red eyes": (230, 20, 60)}
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    labels = np.zeros((n, len(vocab)), np.int8)
    for i in range(n):
        hair, eye = HAIR[i % 3], EYES[(i // 3) % 2]
        images[i, : size // 2] = rgb[hair]
        images[i, size // 2:] = rgb[eye]
        images[i] = np.clip(images[i] + rng.normal(0, 12, images[i].shape), 0, 255).astype(np.uint8)
        labels[i, [vocab.index(hair), vocab.index(eye)]] = 1
    return images, labels, vocab


def test_loss_falls_on_a_tiny_set():
    torch.manual_seed(0)
    images, labels, vocab = colour_set()
    tagger = Tagger(TaggerNet("mobilenetv4_conv_small_050", len(vocab)), TaggerConfig(vocab.to_json(), input_size=32))
    net = tagger.net.train()
    x, y = tagger.preprocess(images), torch.from_numpy(labels.astype(np.int64))
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = tagger_loss(net(x), y, vocab)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_unknown_labels_give_no_gradient():
    vocab = Vocabulary.full()
    cols = {g.name: [vocab.index(t) for t in g.tags] for g in vocab.groups}
    labels = torch.full((4, len(vocab)), -1, dtype=torch.long)
    hair, eyes, style = cols["hair colour"], cols["eye colour"], cols["hair style"] + cols["hair length"]
    labels[:, hair] = 0
    labels[:, hair[2]] = 1                     # every image has its hair colour...
    labels[:2, eyes] = 0
    labels[:2, eyes[0]] = 1                    # ...only the first two their eye colour...
    labels[0, style] = torch.tensor([0, 0, 0, 1, 0])  # ...and only the first its hair style and length
    logits = torch.randn(4, len(vocab), requires_grad=True)
    tagger_loss(logits, labels, vocab).backward()
    grad = logits.grad
    assert grad[2:][:, eyes].abs().sum() == 0
    assert grad[1:][:, style].abs().sum() == 0
    assert grad[:, cols["expression and accessories"] + cols["character"]].abs().sum() == 0   # never labelled
    assert (grad[:, hair].abs().sum(1) > 0).all()
    assert (grad[:2][:, eyes].abs().sum(1) > 0).all()
    # A fully labelled 34-tag row works with the same code.
    full = torch.zeros(1, len(vocab), dtype=torch.long)
    full[0, [hair[0], eyes[0], style[1]]] = 1
    assert torch.isfinite(tagger_loss(torch.randn(1, len(vocab)), full, vocab))


def test_probabilities_are_softmax_within_exclusive_groups():
    vocab = Vocabulary.full()
    probs = probabilities(torch.randn(3, len(vocab)), vocab)
    for group in vocab.groups:
        cols = [vocab.index(t) for t in group.tags]
        if group.exclusive:
            assert torch.allclose(probs[:, cols].sum(1), torch.ones(3))
        else:
            assert ((probs[:, cols] > 0) & (probs[:, cols] < 1)).all()


def test_tagging_never_says_long_and_short_hair_at_once():
    vocab = Vocabulary(["blue hair", "red hair", "long hair", "short hair", "smile"])
    probs = np.array([[0.9, 0.1, 0.7, 0.8, 0.6],     # both lengths above threshold: the likelier one
                      [0.2, 0.8, 0.7, 0.3, 0.1],
                      [0.6, 0.4, 0.2, 0.1, 0.9]])    # neither: no hair length
    assert tags_from_probabilities(probs, vocab, {"smile": 0.5}) == [
        ["blue hair", "short hair", "smile"], ["red hair", "long hair"], ["blue hair", "smile"]]


def test_thresholds_are_calibrated_for_non_exclusive_tags():
    vocab = Vocabulary(["blue hair", "smile"])
    truth = np.array([1, 1, 0, 0, 1, 0])
    probs = np.stack([np.ones(6), np.array([0.4, 0.35, 0.1, 0.2, 0.45, 0.3])], axis=1)
    labels = np.stack([np.ones(6), truth], axis=1).astype(np.int8)
    thresholds = calibrate_thresholds(probs, labels, vocab)
    assert set(thresholds) == {"smile"} and 0.3 < thresholds["smile"] <= 0.35


def test_train_save_load_and_tag(tmp_path):
    from tagger.tag import tag_folder
    from tagger.train import train_tagger

    images, labels, vocab = colour_set(n=36)
    split = np.arange(len(images)) % 6 == 0
    data = write_packed(tmp_path / "packed", images, labels, vocab, np.arange(len(images)), split, source="test")
    trained = train_tagger([LabelledSet(data)], tmp_path / "tagger", TaggerTrainConfig(epochs=2, batch_size=8, lr=3e-3))
    for name in ("tagger.safetensors", "tagger.json", "report.json", "confusion_hair_colour.png",
                 "confusion_eye_colour.png", "metrics.jsonl"):
        assert (tmp_path / "tagger" / name).is_file(), name

    loaded = load_tagger(tmp_path / "tagger")
    assert loaded.vocab == vocab
    np.testing.assert_allclose(loaded.predict(images[:5]), trained.predict(images[:5]), atol=1e-5)
    features = loaded.features(images[:5])
    assert features.shape[0] == 5 and features.ndim == 2
    big = np.stack([np.asarray(Image.fromarray(im).resize((96, 96))) for im in images[:3]])
    assert loaded.predict(big).shape == (3, len(vocab))                       # other sizes are resized
    assert all(sum(t.endswith(" hair") for t in tags) == 1 for tags in loaded.tags_of(loaded.predict(images)))

    crops = tmp_path / "crops"
    crops.mkdir()
    for i in range(3):
        Image.fromarray(images[i]).save(crops / f"c{i}.png")
    out = tag_folder(crops, tagger_path=tmp_path / "tagger")
    rows = read_tag_file(out)
    assert sorted(rows) == ["c0.png", "c1.png", "c2.png"]
    header = out.read_text().splitlines()[0].split(",")
    assert header[:2] == ["path", "tags"] and header[2:] == [f"p:{t}" for t in vocab.tags]


class RunsCode:
    """Unpickling this creates `marker`: the stand-in for a .pt file that runs code when loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_resume_continues_and_refuses_a_state_with_pickled_code(tmp_path):
    from tagger.train import train_tagger

    images, labels, vocab = colour_set(n=24)
    split = np.arange(len(images)) % 6 == 0
    data = write_packed(tmp_path / "packed", images, labels, vocab, np.arange(len(images)), split, source="test")
    out = tmp_path / "tagger"
    train_tagger([LabelledSet(data)], out, TaggerTrainConfig(epochs=1, batch_size=8))
    train_tagger([LabelledSet(data)], out, TaggerTrainConfig(epochs=2, batch_size=8))          # continues from state.pt
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]

    # another backbone cannot continue it: a clear error, also for a state written before states named theirs
    with pytest.raises(ValueError, match="state.pt: an interrupted run on backbone 'kyara_plain_32', not "
                                         "'kyara_plain_16': pass --backbone kyara_plain_32"):
        train_tagger([LabelledSet(data)], out, TaggerTrainConfig(backbone="kyara_plain_16", epochs=3, batch_size=8))
    state = torch.load(out / "state.pt", weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "backbone"}, out / "state.pt")
    with pytest.raises(ValueError, match="state.pt: an interrupted run of another network than 'kyara_plain_16'"):
        train_tagger([LabelledSet(data)], out, TaggerTrainConfig(backbone="kyara_plain_16", epochs=3, batch_size=8))

    marker = tmp_path / "ran"
    torch.save({"net": RunsCode(marker), "optimizer": {}, "epoch": 1}, out / "state.pt")
    with pytest.raises(ValueError, match="state.pt: refused: it holds pickled objects"):
        train_tagger([LabelledSet(data)], out, TaggerTrainConfig(epochs=3, batch_size=8))
    assert not marker.exists()


def test_training_can_start_from_a_trained_tagger(tmp_path):
    """--init: the new tagger starts with the old one's backbone and head rows, and adds the new tags."""
    from tagger.train import train_tagger

    images, labels, vocab = colour_set(n=24)
    split = np.arange(len(images)) % 6 == 0
    names = [str(i) for i in range(len(images))]
    data = write_packed(tmp_path / "packed", images, labels, vocab, np.arange(len(images)), split, source="test",
                        names=names)
    old = train_tagger([LabelledSet(data)], tmp_path / "old", TaggerTrainConfig(epochs=1, batch_size=8))
    (tmp_path / "smile.csv").write_text("id,smile\n" + "".join(f"{i},{i % 2}\n" for i in range(len(images))))
    new = train_tagger([LabelledSet(data, [tmp_path / "smile.csv"])], tmp_path / "new",
                       TaggerTrainConfig(epochs=0, init=str(tmp_path / "old")))
    assert new.vocab.tags == (*vocab.tags[:3], "smile", *vocab.tags[3:])
    shared = [new.vocab.index(t) for t in vocab.tags]
    np.testing.assert_allclose(new.predict(images[:6])[:, shared], old.predict(images[:6]), atol=1e-5)


def test_backbone_weights_refuse_pickled_code(tmp_path):
    from tagger.model import load_backbone_weights

    marker = tmp_path / "ran"
    torch.save({"conv_stem.weight": RunsCode(marker)}, tmp_path / "backbone.pt")
    backbone = TaggerNet("mobilenetv4_conv_small_050", 2).backbone
    with pytest.raises(ValueError, match="backbone.pt: refused: it holds pickled objects"):
        load_backbone_weights(backbone, tmp_path / "backbone.pt")
    assert not marker.exists()
    torch.save(backbone.state_dict(), tmp_path / "plain.pt")                # a plain state dict still loads
    load_backbone_weights(backbone, tmp_path / "plain.pt")


def test_average_precision_ranks_positives_first():
    truth = np.array([True, False, True, False])
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), truth) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2]), truth) == 1.0
    assert average_precision(np.zeros(3), np.zeros(3, bool)) is None


def test_missing_tagger_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tagger here"):
        load_tagger(tmp_path)


@pytest.mark.skipif(not (SHIPPED / "tagger.safetensors").is_file(), reason="no shipped tagger weights yet")
def test_shipped_tagger_loads_and_predicts():
    tagger = load_tagger()
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    probs = tagger.predict(images)
    assert probs.shape == (2, len(tagger.vocab))
    assert {g.name for g in tagger.vocab.exclusive_groups} == {"hair colour", "eye colour"}
    assert tagger.features(images).shape[0] == 2


def test_backbones_by_name_plain_cnn_keeps_full_resolution_in_its_first_block():
    from tagger.backbones import PlainCNN, create_backbone

    plain = create_backbone("kyara_plain_16").eval()
    assert isinstance(plain, PlainCNN) and plain.num_features == 64
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert plain.blocks[0](x).shape == (3, 16, 32, 32)     # its convs see every pixel; only its pool halves
        assert plain(x).shape == (3, 64)
        np.testing.assert_allclose(plain(x[:1]).numpy(), plain(x)[:1].numpy(), atol=1e-5)   # per image
    assert type(create_backbone("mobilenetv4_conv_small_050")).__module__.startswith("timm.")
    with pytest.raises(RuntimeError, match="no_such_net"):
        create_backbone("no_such_net")


def test_a_saved_tagger_records_the_backbone_of_its_net(tmp_path):
    vocab = Vocabulary(["blue hair", "red hair", "smile"])
    net = TaggerNet("kyara_plain_16", len(vocab)).eval()
    save_tagger(tmp_path, net, TaggerConfig(vocab.to_json(), backbone="mobilenetv4_conv_small_050"))
    loaded = load_tagger(tmp_path)
    assert loaded.config.backbone == "kyara_plain_16"
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict(images), Tagger(net, loaded.config).predict(images), atol=1e-6)


def test_a_second_trunk_alone_gives_the_tags_outside_the_colours():
    """With an attribute backbone, the non-exclusive tags' logits come from the second trunk only and the
    colours' from the first: changing the second trunk's weights moves smile and nothing else."""
    from tagger.model import attribute_columns
    vocab = Vocabulary(["blue hair", "red hair", "smile", "blush", "blue eyes", "red eyes"])
    assert sorted(attribute_columns(vocab)) == sorted([vocab.index("smile"), vocab.index("blush")])
    torch.manual_seed(0)
    net = TaggerNet("kyara_plain_16", len(vocab), attribute_backbone="kyara_plain_16",
                    attribute_columns=attribute_columns(vocab)).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        net.attribute_head.bias += 1.0
        after = net(x)
    moved = (after - before).abs().amax(0) > 0.5
    assert moved.tolist() == [t in ("smile", "blush") for t in vocab.tags]
    with pytest.raises(ValueError, match="no tags outside the exclusive groups"):
        TaggerNet("kyara_plain_16", 4, attribute_backbone="kyara_plain_16", attribute_columns=[])


def test_a_second_trunk_trained_from_a_colour_tagger_leaves_its_colours_alone(tmp_path):
    """--init with --attribute-backbone: the init tagger's trunk and head stay frozen (the colours' probabilities
    do not move by a bit), only the images with a smile label train the second trunk, which learns smile (a
    white square in the middle), and the saved tagger loads with both trunks."""
    from tagger.data import load_training_data
    from tagger.train import train_tagger

    images, labels, vocab = colour_set(n=48)
    smile = np.arange(len(images)) % 4 < 2
    images[smile, 12:20, 12:20] = 255
    split = np.arange(len(images)) % 8 == 0
    names = [str(i) for i in range(len(images))]
    data = write_packed(tmp_path / "packed", images, labels, vocab, np.arange(len(images)), split, source="test",
                        names=names)
    old = train_tagger([LabelledSet(data)], tmp_path / "old",
                       TaggerTrainConfig(backbone="kyara_plain_16", epochs=1, batch_size=8))
    # the last 8 faces have no smile label: they must not train the second trunk
    (tmp_path / "smile.csv").write_text("id,smile\n" + "".join(f"{i},{int(s)}\n" for i, s in enumerate(smile[:40])))
    sources = [LabelledSet(data, [tmp_path / "smile.csv"])]
    new = train_tagger(sources, tmp_path / "new",
                       TaggerTrainConfig(epochs=10, batch_size=8, lr=3e-3, init=str(tmp_path / "old"),
                                         attribute_backbone="kyara_plain_16"))
    known = load_training_data(sources)
    labelled = int(((known.split == "train") & (known.labels[:, known.vocab.index("smile")] >= 0)).sum())
    epochs = [json.loads(line) for line in (tmp_path / "new" / "metrics.jsonl").read_text().splitlines()]
    assert 0 < labelled < int((known.split == "train").sum())
    assert {e["images"] for e in epochs} == {labelled}
    colours = [new.vocab.index(t) for t in vocab.tags]
    np.testing.assert_allclose(new.predict(images)[:, colours], old.predict(images), atol=1e-6)
    p_smile = new.predict(images)[:, new.vocab.index("smile")]
    assert average_precision(p_smile, smile) > 0.9        # ranked by the white square (chance: 0.5)
    loaded = load_tagger(tmp_path / "new")
    assert loaded.config.attribute_backbone == "kyara_plain_16"
    np.testing.assert_allclose(loaded.predict(images[:6]), new.predict(images[:6]), atol=1e-6)
    assert json.loads((tmp_path / "new" / "tagger.json").read_text())["training"]["frozen_from"] == str(tmp_path / "old")
    # an interrupted two-trunk run continues only as what it was
    (tmp_path / "new" / "state.pt").rename(tmp_path / "state.pt")
    (tmp_path / "again").mkdir()
    (tmp_path / "state.pt").rename(tmp_path / "again" / "state.pt")
    with pytest.raises(ValueError, match="an interrupted run with --attribute-backbone kyara_plain_16 from a frozen "
                                         "--init: continue it with the same"):
        train_tagger(sources, tmp_path / "again", TaggerTrainConfig(epochs=11, batch_size=8, backbone="kyara_plain_16"))
    # going on from a two-trunk tagger needs a second trunk too
    with pytest.raises(ValueError, match="pass --attribute-backbone kyara_plain_16 to go on from it"):
        train_tagger(sources, tmp_path / "more", TaggerTrainConfig(epochs=1, batch_size=8, init=str(tmp_path / "new")))


def test_a_mouth_trunk_reads_its_tags_from_the_mouth_box_alone():
    """With a mouth backbone, smile's logit comes from the box around the mouth only: pixels outside the box
    move the other tags and never smile, pixels inside it move smile. A colour tag cannot be a mouth tag."""
    from tagger.model import MOUTH_BOX, attribute_columns, mouth_columns, mouth_view
    vocab = Vocabulary(["blue hair", "red hair", "smile", "blush", "blue eyes", "red eyes"])
    torch.manual_seed(0)
    net = TaggerNet("kyara_plain_16", len(vocab), attribute_backbone="kyara_plain_16",
                    attribute_columns=attribute_columns(vocab), mouth_backbone="kyara_plain_16",
                    mouth_columns=mouth_columns(vocab, ["smile"])).eval()
    assert mouth_view(torch.zeros(1, 3, 64, 64), MOUTH_BOX, 2).shape == (1, 3, 48, 72)   # rows 32-56, cols 14-50
    x = torch.randn(4, 3, 64, 64)
    outside, inside = x.clone(), x.clone()
    outside[:, :, :30] = torch.randn(4, 3, 30, 64)         # above the box: hair, eyes
    inside[:, :, 40:48, 24:40] = torch.randn(4, 3, 8, 16)  # the mouth
    with torch.no_grad():
        before, after_outside, after_inside = net(x), net(outside), net(inside)
    smile = vocab.index("smile")
    others = [i for i in range(len(vocab)) if i != smile]
    assert torch.equal(after_outside[:, smile], before[:, smile])
    assert not torch.equal(after_outside[:, others], before[:, others])
    assert not torch.equal(after_inside[:, smile], before[:, smile])
    with pytest.raises(ValueError, match="mouth tag 'red hair' is in the exclusive group"):
        mouth_columns(vocab, ["red hair"])
    with pytest.raises(ValueError, match="mouth tag 'grin' is not in the vocabulary"):
        mouth_columns(vocab, ["grin"])


def test_a_mouth_trunk_trained_from_a_tagger_leaves_every_other_tag_alone(tmp_path):
    """--init with --mouth-backbone: the init tagger's trunks and heads stay frozen (no other tag's probability
    moves by a bit), the mouth trunk learns smile (a white square at the mouth), and the tagger saves and loads
    with it; going on from it needs the same mouth trunk."""
    from tagger.train import train_tagger

    images, labels, vocab = colour_set(n=48)
    smile = np.arange(len(images)) % 4 < 2
    images[smile, 19:25, 11:21] = 255               # inside the mouth box of a 32 px face (rows 16-28, cols 7-25)
    split = np.arange(len(images)) % 8 == 0
    names = [str(i) for i in range(len(images))]
    data = write_packed(tmp_path / "packed", images, labels, vocab, np.arange(len(images)), split, source="test",
                        names=names)
    (tmp_path / "smile.csv").write_text("id,smile\n" + "".join(f"{i},{int(s)}\n" for i, s in enumerate(smile)))
    sources = [LabelledSet(data, [tmp_path / "smile.csv"])]
    old = train_tagger(sources, tmp_path / "old", TaggerTrainConfig(backbone="kyara_plain_16", epochs=1, batch_size=8))
    new = train_tagger(sources, tmp_path / "new",
                       TaggerTrainConfig(epochs=10, batch_size=8, lr=3e-3, init=str(tmp_path / "old"),
                                         mouth_backbone="kyara_plain_16", mouth_tags=("smile",)))
    others = [new.vocab.index(t) for t in vocab.tags]
    np.testing.assert_allclose(new.predict(images)[:, others], old.predict(images)[:, others], atol=1e-6)
    p_smile = new.predict(images)[:, new.vocab.index("smile")]
    assert average_precision(p_smile, smile) > 0.9        # ranked by the white square (chance: 0.5)
    loaded = load_tagger(tmp_path / "new")
    assert (loaded.config.mouth_backbone, loaded.config.mouth_tags) == ("kyara_plain_16", ["smile"])
    np.testing.assert_allclose(loaded.predict(images[:6]), new.predict(images[:6]), atol=1e-6)
    with pytest.raises(ValueError, match='pass --mouth-backbone kyara_plain_16 --mouth-tags "smile" to go on'):
        train_tagger(sources, tmp_path / "more", TaggerTrainConfig(epochs=1, batch_size=8, init=str(tmp_path / "new")))

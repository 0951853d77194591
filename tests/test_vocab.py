import numpy as np
import pytest

import json
from pathlib import Path

from common.vocab import GROUPS, PAPER_TAGS, TAGS, TagError, Vocabulary, split_tag_text


def test_paper_vocabulary_has_34_tags_and_male_comes_after_them():
    assert len(PAPER_TAGS) == 34 == len(set(PAPER_TAGS))
    assert TAGS == (*PAPER_TAGS, "male")
    sizes = {g.name: (len(g.tags), g.exclusive, g.at_most_one) for g in GROUPS}
    assert sizes == {"hair colour": (13, True, False), "hair length": (2, False, True),
                     "hair style": (3, False, False), "expression and accessories": (6, False, False),
                     "eye colour": (10, True, False), "character": (1, False, False)}
    # The paper's order within its "hair style" row is kept: the label vector of a paper model is unchanged.
    assert PAPER_TAGS[13:18] == ("long hair", "short hair", "twintails", "drill hair", "ponytail")
    assert Vocabulary.paper().tags == PAPER_TAGS and Vocabulary.full().tags == TAGS
    assert Vocabulary(["Male", "red hair"]).tags == ("red hair", "male")


def test_long_and_short_hair_at_once_is_a_clear_error():
    vocab = Vocabulary.full()
    with pytest.raises(TagError, match="'long hair' and 'short hair' are both in the at-most-one group "
                                       "'hair length'; pick one of: long hair, short hair"):
        vocab.parse("silver hair, long hair, short hair")
    assert vocab.parse("short hair, twintails, male") == ["short hair", "twintails", "male"]
    assert vocab.to_json()["groups"][1] == {"name": "hair length", "exclusive": False,
                                            "tags": ["long hair", "short hair"], "at_most_one": True}


def test_bundled_model_groups_are_unchanged():
    """The bundled model must still load: the runtime compares its manifest's groups with these."""
    manifest = json.loads((Path(__file__).parents[1] / "models" / "default" / "manifest.json").read_text())
    vocab = Vocabulary(manifest["tags"])
    assert vocab.tags == tuple(manifest["tags"])
    keys = ("name", "exclusive", "tags", "at_most_one")        # at_most_one only where true (hair length)
    assert vocab.to_json()["groups"] == [{k: g[k] for k in keys if k in g} for g in manifest["groups"]]


def test_aliases_and_paper_order():
    vocab = Vocabulary(["red eyes", "Gray_Hair", "blond hair"])
    assert vocab.tags == ("blonde hair", "grey hair", "red eyes")
    assert vocab == Vocabulary(["grey hair", "blonde hair", "red eyes"])
    assert [g.name for g in vocab.groups] == ["hair colour", "eye colour"]


def test_parse_refuses_unknown_and_two_colours_of_one_group():
    vocab = Vocabulary.paper()
    assert vocab.parse("silver hair, red eyes,smile") == ["silver hair", "red eyes", "smile"]
    with pytest.raises(TagError, match="unknown tag 'rainbow hair'; valid tags: blonde hair"):
        vocab.parse("rainbow hair")
    with pytest.raises(TagError, match="exclusive group 'hair colour'"):
        vocab.parse(["silver hair", "red hair"])
    with pytest.raises(TagError, match="'blonde hair' is named twice"):      # one tag in two spellings
        vocab.parse("blonde hair, blond hair")
    assert vocab.parse("") == [] and vocab.parse("  ") == []            # no tag chosen: the default
    for empty in (",,,", "smile,", "smile,, red eyes"):
        with pytest.raises(TagError, match="an empty tag"):
            vocab.parse(empty)
    subset = Vocabulary(["red hair", "blue eyes"])
    with pytest.raises(TagError, match="valid tags: red hair, blue eyes"):
        subset.parse("smile")


def test_split_tag_text_reads_our_format_and_mlds():
    assert split_tag_text("aqua hair aqua eyes") == ["aqua hair", "aqua eyes"]
    assert split_tag_text("long hair;smile") == ["long hair", "smile"]
    assert split_tag_text("open mouth") == ["open mouth"]


def test_sampled_labels_pick_one_colour_per_exclusive_group_by_frequency():
    vocab = Vocabulary(["red hair", "blue hair", "green eyes", "brown eyes", "smile"])
    frequency = {"red hair": 0.9, "blue hair": 0.1, "green eyes": 0.5, "brown eyes": 0.5, "smile": 0.25}
    labels = vocab.sample_labels([frequency[t] for t in vocab.tags], 4000, np.random.default_rng(0))
    col = vocab.index
    for group in vocab.exclusive_groups:
        assert (labels[:, [col(t) for t in group.tags]].sum(1) == 1).all()
    assert abs(labels[:, col("red hair")].mean() - 0.9) < 0.03
    assert abs(labels[:, col("smile")].mean() - 0.25) < 0.03
    forced = vocab.sample_labels([frequency[t] for t in vocab.tags], 100, np.random.default_rng(0),
                                 chosen=["blue hair", "smile"])
    assert (forced[:, col("blue hair")] == 1).all() and (forced[:, col("red hair")] == 0).all()
    assert (forced[:, col("smile")] == 1).all()


def test_sampled_hair_length_is_at_most_one_tag():
    vocab = Vocabulary(["long hair", "short hair", "smile"])
    labels = vocab.sample_labels([0.6, 0.3, 0.5], 4000, np.random.default_rng(0))
    long_, short = labels[:, vocab.index("long hair")], labels[:, vocab.index("short hair")]
    assert not (long_ * short).any()
    assert abs(long_.mean() - 0.6) < 0.03 and abs(short.mean() - 0.3) < 0.03   # and ~10 % neither
    over = vocab.sample_labels([0.9, 0.6, 0.5], 2000, np.random.default_rng(1))   # priors summing over 1
    assert (over[:, :2].sum(1) == 1).all()
    forced = vocab.sample_labels([0.6, 0.3, 0.5], 500, np.random.default_rng(0), chosen=["short hair"])
    assert (forced[:, vocab.index("short hair")] == 1).all() and (forced[:, vocab.index("long hair")] == 0).all()
    # Forcing one group leaves the draws of the others as they were.
    np.testing.assert_array_equal(forced[:, 2], vocab.sample_labels([0.6, 0.3, 0.5], 500, np.random.default_rng(0))[:, 2])

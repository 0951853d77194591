import numpy as np
import pytest

from tagger.vocab import PAPER_GROUPS, PAPER_TAGS, TagError, Vocabulary, split_tag_text


def test_paper_vocabulary_has_34_tags_in_four_groups():
    assert len(PAPER_TAGS) == 34 == len(set(PAPER_TAGS))
    sizes = {g.name: (len(g.tags), g.exclusive) for g in PAPER_GROUPS}
    assert sizes == {"hair colour": (13, True), "hair style": (5, False),
                     "expression and accessories": (6, False), "eye colour": (10, True)}


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
    assert vocab.parse("blonde hair, blond hair") == ["blonde hair"]    # one tag in two spellings
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

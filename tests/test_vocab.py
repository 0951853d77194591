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
    subset = Vocabulary(["red hair", "blue eyes"])
    with pytest.raises(TagError, match="valid tags: red hair, blue eyes"):
        subset.parse("smile")


def test_split_tag_text_reads_our_format_and_mlds():
    assert split_tag_text("aqua hair aqua eyes") == ["aqua hair", "aqua eyes"]
    assert split_tag_text("long hair;smile") == ["long hair", "smile"]
    assert split_tag_text("open mouth") == ["open mouth"]

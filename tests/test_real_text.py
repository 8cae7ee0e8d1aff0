"""Real-text inputs: WikiText article splits, seeded pair samples, and the English fact suite."""

from collections import Counter
from pathlib import Path

import pytest

from negdiff.suites import load_suite, sample_pairs
from negdiff.data import article_slice, article_starts, load_split
from negdiff.facts import TASKS, english_fact_pairs

WIKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext2" / "wiki.test.raw"

TEXT = "".join([
    " = Alpha = \n", " Alpha text . \n", " = = Section = = \n", " more alpha . \n",
    " = Beta = \n", " Beta text . \n",
    " = Gamma = \n", " Gamma text . \n",
    " = Delta = \n", " Delta text . \n",
])


def test_article_starts_skip_section_headings():
    lines = TEXT.splitlines(keepends=True)
    assert article_starts(lines) == [0, 4, 6, 8]
    assert article_starts(["preamble\n", " = A = \n"]) == [0, 1]


def test_article_halves_are_complementary_and_recorded():
    first, r1 = article_slice(TEXT, 0, 0.5)
    second, r2 = article_slice(TEXT, 0.5, 1)
    assert first + second == TEXT
    assert r1 == {"articles_total": 4, "articles": [0, 2], "first_title": "= Alpha =", "last_title": "= Beta =", "lines": 6}
    assert r2["articles"] == [2, 4] and r2["first_title"] == "= Gamma ="
    with pytest.raises(ValueError, match="select none"):
        article_slice(TEXT, 0.1, 0.2)
    with pytest.raises(ValueError, match="fractions"):
        article_slice(TEXT, 0.5, 0.5)


def test_load_split_records_the_source(tmp_path):
    f = tmp_path / "wiki.raw"
    f.write_text(TEXT)
    data = {"source": "local", "local": {"train": {"path": str(f), "articles": [0, 0.5]}, "valid": str(f)}}
    text, rec = load_split(data, "train")
    assert text.startswith(" = Alpha") and "Gamma" not in text
    assert rec["path"] == str(f) and len(rec["sha256"]) == 64 and rec["articles"] == [0, 2]
    whole, rec = load_split(data, "valid")
    assert whole == TEXT and "articles" not in rec
    with pytest.raises(ValueError, match="data.local.test"):
        load_split(data, "test")


@pytest.mark.skipif(not WIKI.is_file(), reason="needs ../shared/data/wikitext2")
def test_real_wikitext_test_split_by_article():
    data = {"source": "local", "local": {"train": {"path": str(WIKI), "articles": [0, 0.5]},
                                         "valid": {"path": str(WIKI), "articles": [0.5, 1]}}}
    a, ra = load_split(data, "train")
    b, rb = load_split(data, "valid")
    assert a + b == WIKI.read_text(encoding="utf-8")
    assert ra["sha256"] == "4f3e427e4aff23acff917a8a51aeae21bf12832256e26914c8fc250dcef4103c"
    assert ra["articles"][1] == rb["articles"][0] == ra["articles_total"] // 2


def _pairs(groups):
    return [{"sentence_good": f"{g} {k}", "sentence_bad": f"{g} x{k}", "UID": g} for g, n in groups.items() for k in range(n)]


def test_sample_pairs_is_seeded_per_group_and_in_file_order():
    pairs = _pairs({"a": 100, "b": 3, "c": 50})
    s0 = sample_pairs(pairs, 10, seed=0)
    assert Counter(p["UID"] for p in s0) == {"a": 10, "b": 3, "c": 10}
    assert s0 == sample_pairs(pairs, 10, seed=0)
    assert s0 != sample_pairs(pairs, 10, seed=1)
    idx = [pairs.index(p) for p in s0]
    assert idx == sorted(idx)
    # a group's sample does not depend on which other groups are present
    only_a = sample_pairs(_pairs({"a": 100}), 10, seed=0)
    assert only_a == [p for p in s0 if p["UID"] == "a"]
    assert sample_pairs(pairs, "all") == pairs
    with pytest.raises(ValueError):
        sample_pairs(pairs, 0)


def test_english_fact_pairs_differ_in_one_content_word():
    pairs = english_fact_pairs()
    assert pairs == english_fact_pairs(seed=0)
    uids = Counter(p["UID"] for p in pairs)
    assert len(uids) == len(TASKS) >= 5 and min(uids.values()) >= 20
    for p in pairs:
        g, b = p["sentence_good"].split(), p["sentence_bad"].split()
        assert len(g) == len(b)
        diff = [(x, y) for x, y in zip(g, b) if x != y]
        assert len(diff) == 1, p
        assert diff[0][0].rstrip(".") == p["word_good"] and diff[0][1].rstrip(".") == p["word_bad"]
        assert p["word_good"] != p["word_bad"]
    assert len({(p["sentence_good"], p["sentence_bad"]) for p in pairs}) == len(pairs)
    assert load_suite("english") == pairs
    facts = {p["sentence_good"] for p in pairs}
    assert {"The capital of France is Paris.", "Two plus three equals five.", "The day after Monday is Tuesday.",
            "The month after March is April.", "The opposite of hot is cold."} <= facts

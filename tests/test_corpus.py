"""Tests of the built-in toy grammar (negdiff.grammar), its suites' reader (negdiff.suites) and gold tags (negdiff.pos)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from negdiff.grammar import FORMAT_VERSION, generate_corpus
from negdiff.grammar.grammar import (
    MAX_WORDS,
    allowed_reflexives,
    generate_split,
    normalise,
)
from negdiff.grammar.lexicon import (
    ADJ_ANIMATE,
    ADJ_THING,
    ANIMALS,
    COLOR_THINGS,
    COLORS,
    EAT,
    FOODS,
    INTRANSITIVE,
    NAME_LIST,
    NOUNS,
    POS_TAGS,
    SENTENTIAL,
    SOUND,
    TRANSITIVE,
    lexicon,
)
from negdiff.pos import word_pos_for_offsets, word_spans
from negdiff.suites import read_pairs

SMALL = dict(train_words=20_000, valid_words=3_000, test_words=3_000, pairs_per_paradigm=20)
SPLITS = ("train", "valid", "test")
SUITES = ("blimp", "tse", "nonsyntactic")
BLIMP_FIELDS = ("sentence_good", "sentence_bad", "UID", "linguistics_term", "field", "pairID",
                "one_prefix_method", "simple_LM_method")
TSE_FIELDS = ("sentence_good", "sentence_bad", "template", "case")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "seed0"
    manifest = generate_corpus(out, seed=0, **SMALL)
    return out, manifest


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """Enough text to check distributional properties of the grammar."""
    out = tmp_path_factory.mktemp("corpus_medium")
    generate_corpus(out, seed=3, train_words=400_000, valid_words=1_000, test_words=1_000, pairs_per_paradigm=40)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ------------------------------------------------------------------------- layout, determinism


def test_layout(small):
    out, manifest = small
    for split in SPLITS:
        assert (out / f"{split}.txt").is_file() and (out / f"{split}.pos").is_file()
    for suite in SUITES:
        assert list((out / suite).glob("*.jsonl"))
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["format_version"] == FORMAT_VERSION and manifest["seed"] == 0
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]


def test_same_seed_identical_bytes(small, tmp_path):
    out, _ = small
    again = tmp_path / "again"
    generate_corpus(again, seed=0, **SMALL)
    assert _files(again) == _files(out)


def test_different_seed_differs(small, tmp_path):
    out, _ = small
    other = tmp_path / "seed1"
    generate_corpus(other, seed=1, **SMALL)
    assert (other / "train.txt").read_bytes() != (out / "train.txt").read_bytes()


def test_rerun_into_same_dir_overwrites(tmp_path):
    generate_corpus(tmp_path, seed=5, **SMALL)
    stale = tmp_path / "blimp" / "not_a_paradigm.jsonl"
    stale.write_text("{}\n")
    first = _files(tmp_path)
    generate_corpus(tmp_path, seed=5, **SMALL)
    assert not stale.exists()
    first.pop("blimp/not_a_paradigm.jsonl")
    assert _files(tmp_path) == first


# ------------------------------------------------------------------------- text and POS


def test_sizes(small):
    out, manifest = small
    for split in SPLITS:
        lines = _lines(out / f"{split}.txt")
        n = sum(len(l.split()) for l in lines)
        want = SMALL[f"{split}_words"]
        assert want <= n <= want + MAX_WORDS
        assert manifest["word_counts"][split] == n
        assert manifest["sentence_counts"][split] == len(lines)
        assert max(len(l.split()) for l in lines) <= MAX_WORDS
        assert 6 <= n / len(lines) <= 14


def test_text_format(small):
    out, _ = small
    for split in SPLITS:
        raw = (out / f"{split}.txt").read_text(encoding="utf-8")
        assert raw.endswith("\n") and raw == raw.lower()
        for line in raw.splitlines():
            assert line == " ".join(line.split()), repr(line)
            assert line.split()[-1] in (".", "?")


def test_pos_aligned(small):
    out, _ = small
    lex = lexicon()
    for split in SPLITS:
        words = _lines(out / f"{split}.txt")
        tags = _lines(out / f"{split}.pos")
        assert len(words) == len(tags)
        for w_line, t_line in zip(words, tags):
            ws, ts = w_line.split(), t_line.split()
            assert len(ws) == len(ts), (w_line, t_line)
            for w, t in zip(ws, ts):
                assert t in POS_TAGS
                if w != "that":          # that: DET, SCONJ (complementiser) or PRON (relative)
                    assert lex[w] == t, (w, t, w_line)


def test_that_is_tagged_by_function(small):
    out, _ = small
    tags = Counter()
    for w_line, t_line in zip(_lines(out / "train.txt"), _lines(out / "train.pos")):
        for w, t in zip(w_line.split(), t_line.split()):
            if w == "that":
                tags[t] += 1
    assert set(tags) == {"DET", "SCONJ", "PRON"}


# ------------------------------------------------------------------------- suites


def test_blimp_suite(small):
    out, manifest = small
    rows = read_pairs(out / "blimp")
    by_uid: dict[str, list[dict]] = {}
    for r in rows:
        for f in BLIMP_FIELDS:
            assert f in r, (f, r)
        assert r["sentence_good"] != r["sentence_bad"]
        assert r["field"] in ("syntax", "morphology", "syntax_semantics", "semantics")
        by_uid.setdefault(r["UID"], []).append(r)
    assert len(by_uid) >= 20
    terms = {r["linguistics_term"] for r in rows}
    assert len(terms) >= 8
    assert {"subject_verb_agreement", "determiner_noun_agreement", "anaphor_agreement", "npi_licensing",
            "argument_structure", "filler_gap_dependency", "ellipsis"} <= terms
    for uid in ("regular_plural_subject_verb_agreement_1", "distractor_agreement_relational_noun",
                "distractor_agreement_relative_clause", "distractor_agreement_object_relative_clause",
                "determiner_noun_agreement_1", "determiner_noun_agreement_2", "anaphor_gender_agreement",
                "anaphor_number_agreement", "npi_present_1", "transitive", "intransitive"):
        assert uid in by_uid
    for uid, rs in by_uid.items():
        assert len(rs) == SMALL["pairs_per_paradigm"], uid
        assert len({(r["sentence_good"], r["sentence_bad"]) for r in rs}) == len(rs), uid
        assert [r["pairID"] for r in rs] == [str(i) for i in range(len(rs))]
        assert len({r["linguistics_term"] for r in rs}) == 1
        assert (out / "blimp" / f"{uid}.jsonl").is_file()
    listed = {p["UID"]: p for p in manifest["paradigms"]}
    assert set(listed) == set(by_uid)
    assert all(listed[u]["count"] == len(by_uid[u]) for u in by_uid)


def test_tse_suite(small):
    out, manifest = small
    rows = read_pairs(out / "tse")
    templates = Counter()
    for r in rows:
        for f in TSE_FIELDS:
            assert f in r, (f, r)
        assert r["sentence_good"] != r["sentence_bad"]
        assert r["sentence_good"].split()[-1] not in (".", "?")       # M&L: no final punctuation
        assert r["case"]
        templates[r["template"]] += 1
    for t in ("simple_agrmt", "sent_comp", "vp_coord", "long_vp_coord", "prep_anim", "prep_inanim", "subj_rel",
              "obj_rel_across_anim", "obj_rel_within_anim", "obj_rel_across_inanim", "obj_rel_within_inanim",
              "obj_rel_no_comp_across_anim", "simple_reflexives", "reflexive_sent_comp", "reflexives_across",
              "simple_npi_anim", "npi_across_anim"):
        assert templates[t] > 0, t
    assert {t["template"] for t in manifest["templates"]} == set(templates)


def test_nonsyntactic_suite(small):
    out, manifest = small
    rows = read_pairs(out / "nonsyntactic")
    uids = {r["UID"] for r in rows}
    assert len(uids) >= 3
    for r in rows:
        for f in BLIMP_FIELDS:
            assert f in r
        assert r["linguistics_term"] == "world_knowledge" and r["field"] == "semantics"
        assert r["sentence_good"] != r["sentence_bad"]
    assert {p["UID"] for p in manifest["nonsyntactic"]} == uids


def test_pairs_minimal_and_in_lexicon(small):
    out, _ = small
    lex = lexicon()
    for suite in SUITES:
        for r in read_pairs(out / suite):
            g, b = r["sentence_good"].split(), r["sentence_bad"].split()
            assert set(g) <= set(lex) and set(b) <= set(lex), r
            assert _edit_distance(g, b) <= 4, r
            if r.get("UID", "").startswith(("regular_plural", "determiner_noun", "anaphor", "npi_present",
                                            "ellipsis", "distractor", "transitive", "intransitive")):
                assert len(g) == len(b) and _edit_distance(g, b) == 1, r


def test_no_pair_sentence_in_text(small):
    out, _ = small
    pair_keys = set()
    for suite in SUITES:
        for r in read_pairs(out / suite):
            pair_keys.add(normalise(r["sentence_good"]))
            pair_keys.add(normalise(r["sentence_bad"]))
    for split in SPLITS:
        for line in _lines(out / f"{split}.txt"):
            assert normalise(line) not in pair_keys, line


def test_forbidden_sentences_are_filtered():
    import random

    lines, _, _, _ = generate_split(random.Random(0), 5_000, set())
    common = Counter(normalise(l) for l in lines).most_common(5)
    forbidden = {s for s, _ in common}
    lines2, _, _, rejected = generate_split(random.Random(0), 5_000, forbidden)
    assert rejected > 0
    assert not forbidden & {normalise(l) for l in lines2}


# ------------------------------------------------------------------------- grammar sanity

_NOUN_NUM = {}
for _cls in NOUNS.values():
    for _n in _cls:
        _NOUN_NUM[_n.sg], _NOUN_NUM[_n.pl] = "sg", "pl"
_VERBS = INTRANSITIVE + TRANSITIVE + SENTENTIAL + tuple(SOUND.values()) + (EAT,)
_S3 = {v.s3 for v in _VERBS}
_BASE = {v.base for v in _VERBS}
_SG_DETS = {"this", "that", "a", "an", "every"}
_PL_DETS = {"these", "those", "many", "few", "several", "some", "any"}


def _subject_head(words, tags):
    """Index of the head noun of a sentence-initial 'DET (ADJ) NOUN', else None."""
    if len(tags) > 2 and tags[0] == "DET" and tags[1] == "NOUN":
        return 1
    if len(tags) > 3 and tags[0] == "DET" and tags[1] == "ADJ" and tags[2] == "NOUN":
        return 2
    return None


def _corpus(out):
    return [(w.split(), t.split()) for w, t in zip(_lines(out / "train.txt"), _lines(out / "train.pos"))]


def test_agreement_in_text(medium):
    checked = 0
    for words, tags in _corpus(medium):
        for i, t in enumerate(tags[:-1]):         # determiner-noun agreement everywhere
            if t == "DET" and words[i] in _SG_DETS | _PL_DETS:
                j = i + 1 + (tags[i + 1] == "ADJ")
                want = "sg" if words[i] in _SG_DETS else "pl"
                assert tags[j] == "NOUN" and _NOUN_NUM.get(words[j], want) == want, words
        h = _subject_head(words, tags)
        if h is not None and tags[h + 1] == "VERB":  # subject-verb agreement, possibly across a PP
            v = words[h + 1]
            if v in _S3:
                assert _NOUN_NUM[words[h]] == "sg", words
                checked += 1
            elif v in _BASE:
                assert _NOUN_NUM[words[h]] == "pl", words
                checked += 1
        if h is not None and tags[h + 1] == "ADP":
            k = h + 2 + (tags[h + 3] == "ADJ") + 1 + 1   # prep det (adj) noun -> verb
            if k < len(words) and tags[k] == "VERB" and words[k] in _S3 | _BASE:
                assert (words[k] in _S3) == (_NOUN_NUM[words[h]] == "sg"), words
                checked += 1
    assert checked > 1000


def test_npis_only_under_licensors(medium):
    n_npi = 0
    for words, _ in _corpus(medium):
        if "ever" in words or "any" in words:
            n_npi += 1
            assert words[-1] == "?" or {"not", "never", "no", "nobody"} & set(words), words
    assert n_npi > 100


def test_npi_licensor_in_relative_clause_does_not_license_main_clause(medium):
    """'no N that the M like have ever ...' is generated, 'the N that no M like have ever ...' never:
    when 'has/have ever' follows a relative clause ending in a verb, the clause's subject has 'no'."""
    sent_forms = {getattr(v, f) for v in SENTENTIAL for f in ("s3", "base", "past", "pp")}
    checked = 0
    for words, tags in _corpus(medium):
        for i, w in enumerate(words):
            if w == "ever" and i >= 2 and words[i - 1] in ("has", "have") and tags[i - 2] == "VERB":
                start = 1 + max([k for k in range(i) if tags[k] == "SCONJ" or words[k] in sent_forms], default=-1)
                if tags[start] in ("DET", "PRON") and start < i - 3:
                    assert words[start] in ("no", "nobody"), words
                    checked += 1
    assert checked > 10


def test_reflexives_agree_with_subject(medium):
    checked = 0
    for words, tags in _corpus(medium):
        h = _subject_head(words, tags)
        if h is not None and len(words) == h + 4 and tags[h + 1] == "VERB" and tags[h + 2] == "PRON":
            noun = next(n for c in NOUNS.values() for n in c if words[h] in (n.sg, n.pl))
            allowed = allowed_reflexives(_NOUN_NUM[words[h]], noun.cls, noun.gender)
            assert words[h + 2] in allowed, words
            checked += 1
    assert checked > 50


def test_world_knowledge_is_consistent(medium):
    sound_of = {a.sg: a.sound for a in ANIMALS} | {a.pl: a.sound for a in ANIMALS}
    food_of = {a.sg: a.food for a in ANIMALS} | {a.pl: a.food for a in ANIMALS}
    color_of = {t.sg: t.color for t in COLOR_THINGS} | {t.pl: t.color for t in COLOR_THINGS}
    sound_verb = {w: v.base for v in SOUND.values() for w in (v.s3, v.base, v.past, v.pp)}
    counts = Counter()
    for words, tags in _corpus(medium):
        h = _subject_head(words, tags)
        if h is None:
            continue
        rest = words[h + 1:]
        if rest and rest[0] in ("has", "have", "often", "always"):
            rest = rest[1:]
        if rest and rest[0] in sound_verb:
            assert sound_of[words[h]] == sound_verb[rest[0]], words
            counts["sound"] += 1
        if len(rest) == 3 and rest[0] in (EAT.s3, EAT.base, EAT.past, EAT.pp):
            assert food_of[words[h]] == rest[1], words
            counts["food"] += 1
        if len(rest) == 3 and rest[0] in ("is", "are", "was", "were") and rest[1] in COLORS:
            assert color_of[words[h]] == rest[1], words
            counts["color"] += 1
    assert min(counts["sound"], counts["food"], counts["color"]) > 30, counts


def _categories() -> dict[str, str]:
    """Coarse grammatical category of each word: nouns by class and number, verbs by kind,
    selectional class and form, adjectives by the nouns they modify, function words as themselves."""
    cat: dict[str, set[str]] = {}
    for cls, nouns in NOUNS.items():
        for n in nouns:
            cat.setdefault(n.sg, set()).add(f"N:{cls}:sg")
            cat.setdefault(n.pl, set()).add(f"N:{cls}:pl")
    for f in FOODS:
        cat.setdefault(f, set()).add("FOOD")
    for name, _ in NAME_LIST:
        cat.setdefault(name, set()).add("NAME")
    for v in _VERBS:
        for form in ("s3", "base", "past", "pp"):
            cat.setdefault(getattr(v, form), set()).add(f"V:{v.kind}:{form}")
    for a in set(ADJ_ANIMATE) | set(ADJ_THING):
        cat.setdefault(a, set()).add(f"A:{a in ADJ_ANIMATE}:{a in ADJ_THING}")
    for c in COLORS:
        cat.setdefault(c, set()).add("COLOR")
    out = {w: "|".join(sorted(c)) for w, c in cat.items()}
    for w in lexicon():
        out.setdefault(w, w)
    return out


def test_good_sentences_look_like_training_text(medium):
    """Every category trigram of every good pair sentence occurs in the training text, i.e. good
    sentences are built from constructions the grammar generates."""
    cat = _categories()
    seen = set()
    for words, _ in _corpus(medium):
        cs = ["<s>"] + [cat[w] for w in words]
        seen.update(zip(cs, cs[1:], cs[2:]))
    missing, total = [], 0
    for suite in SUITES:
        for r in read_pairs(medium / suite):
            g = r["sentence_good"].split()
            if g[-1] not in (".", "?"):
                g = g + ["."]
            cs = ["<s>"] + [cat[w] for w in g]
            total += len(cs) - 2
            missing += [(tg, r["sentence_good"]) for tg in zip(cs, cs[1:], cs[2:]) if tg not in seen]
    # a few rare combinations may be missing from 400k words of text (none from 3M)
    assert len(missing) <= 0.005 * total, (len(missing), total, missing[:10])


def test_bad_sentences_are_not_generated(medium):
    """No bad pair sentence appears in a larger sample of the grammar (pairs are excluded only by
    exact match with the training text, so this checks the grammar itself)."""
    import random

    lines, _, _, _ = generate_split(random.Random(11), 300_000, set())
    generated = {normalise(l) for l in lines}
    for suite in SUITES:
        if suite == "nonsyntactic":
            continue
        for r in read_pairs(medium / suite):
            assert normalise(r["sentence_bad"]) not in generated, r


# ------------------------------------------------------------------------- readers


def test_read_pairs_errors(tmp_path):
    good = {"sentence_good": "the dog barks .", "sentence_bad": "the dog bark .", "UID": "x"}
    f = tmp_path / "b_pairs.jsonl"
    f.write_text(json.dumps(good) + "\n" + "{not json\n")
    with pytest.raises(ValueError, match=r"b_pairs\.jsonl:2"):
        read_pairs(f)
    f.write_text(json.dumps(good) + "\n\n" + json.dumps({"sentence_good": "a", "UID": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"b_pairs\.jsonl:3.*sentence_bad"):
        read_pairs(f)
    f.write_text(json.dumps({"sentence_good": "a", "sentence_bad": "b"}) + "\n")
    with pytest.raises(ValueError, match=r"b_pairs\.jsonl:1.*UID"):
        read_pairs(f)
    f.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"b_pairs\.jsonl:1"):
        read_pairs(f)


def test_read_pairs_dir_sorted(tmp_path):
    for name, uid in (("b.jsonl", "b"), ("a.jsonl", "a")):
        (tmp_path / name).write_text(
            json.dumps({"sentence_good": "x y", "sentence_bad": "y x", "UID": uid}) + "\n")
    (tmp_path / "ignored.txt").write_text("junk")
    assert [r["UID"] for r in read_pairs(tmp_path)] == ["a", "b"]
    assert len(read_pairs(tmp_path / "b.jsonl")) == 1
    with pytest.raises(ValueError):
        read_pairs(tmp_path / "ignored.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError):
        read_pairs(empty)


def test_word_pos_for_offsets():
    text = "the dog barks .\nno cat ever slept .\n"
    pos = "DET NOUN VERB PUNCT\nDET NOUN ADV VERB PUNCT\n"
    offsets = [
        (0, 0),    # special token
        (0, 3),    # the
        (3, 7),    # " dog" (leading space)
        (8, 11),   # "bar" (part of barks)
        (11, 13),  # "ks"
        (14, 15),  # .
        (15, 16),  # newline
        (16, 18),  # no
        (18, 26),  # " cat ev" -> cat (3 chars) beats ev (2 chars)
        (26, 28),  # "er"
        (28, 36),  # " slept ." -> slept
        (35, 35),  # empty span
        (36, 36),  # at the end
    ]
    got = word_pos_for_offsets(text, pos, offsets)
    assert got == [None, "DET", "NOUN", "VERB", "VERB", "PUNCT", None, "DET", "NOUN", "ADV", "VERB", None, None]
    parsed = [line.split() for line in pos.splitlines()]
    assert word_pos_for_offsets(text, parsed, offsets) == got
    import numpy as np

    assert word_pos_for_offsets(text, parsed, np.array(offsets)) == got
    assert word_pos_for_offsets(text, parsed, []) == []
    with pytest.raises(ValueError):
        word_pos_for_offsets(text, "DET NOUN", offsets)


def test_word_spans_match_str_split():
    for text in ("", "  ", "a", " the  dog\tbarks .\n", "caf\u00e9\u00a0x\u3000y \n z"):
        starts, ends = word_spans(text)
        assert [text[a:b] for a, b in zip(starts.tolist(), ends.tolist())] == text.split()


def test_word_pos_for_offsets_on_corpus(small):
    out, _ = small
    text = (out / "valid.txt").read_text(encoding="utf-8")
    pos = (out / "valid.pos").read_text(encoding="utf-8")
    starts, ends = word_spans(text)
    # tokens = exactly the words, plus a newline token per line
    offsets = [(int(s), int(e)) for s, e in zip(starts, ends)]
    assert word_pos_for_offsets(text, pos, offsets) == pos.split()
    nl = [(i, i + 1) for i, ch in enumerate(text) if ch == "\n"]
    assert set(word_pos_for_offsets(text, pos, nl)) == {None}


def _edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]

"""The built-in corpus: a seeded probabilistic grammar of a small fragment of English.

``generate_corpus`` writes train/valid/test text (one sentence per line, lowercase, words and
punctuation separated by single spaces), gold Universal POS tags aligned word by word, and three
evaluation suites built from the *same* grammar:

* ``blimp/{UID}.jsonl``      BLiMP-style minimal pairs (syntax, morphology, syntax_semantics);
* ``tse/{template}.jsonl``   Marvin & Linzen (2018) targeted syntactic evaluation templates;
* ``nonsyntactic/{UID}.jsonl`` world-knowledge pairs: both sentences grammatical, the good one
  states a fact the grammar always encodes (animal sounds, animal food, object colours).

Design rules of the grammar (so every minimal pair is decidable from the training data):

* no bare plurals: every count noun phrase has a determiner (``the`` is number neutral; this/that/
  a/an/every are singular; these/those/many/few/several/some are plural; ``no`` is both);
  ``any`` (plural) appears only in a clause that licenses NPIs;
* NPIs (``ever``, ``any``) are licensed per clause: by ``not``/``never`` in the clause, by a subject
  ``no ...``/``nobody``, or by a matrix yes/no question; a licensor in a relative clause does not
  license the main clause;
* transitive verbs always have an object (or a filler-gap), intransitive verbs never do;
* reflexives are bound by the subject of their own clause: himself/herself (gendered humans and
  names; either one for the other singular humans), itself (singular animals), themselves (plural);
* each animal makes exactly one sound (dog barks, cat meows, ...) and eats exactly one food;
  certain objects have exactly one colour; these facts are never negated.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from negdiff.pos import align_tags

from negdiff.io import write_json, write_text

FORMAT_VERSION = 1

POS_TAGS: tuple[str, ...] = (
    "DET", "NOUN", "PROPN", "VERB", "AUX", "ADP", "PRON", "SCONJ", "ADV", "PART", "PUNCT", "CCONJ", "ADJ",
)

SG, PL = "sg", "pl"
HUMAN, ANIMAL, THING = "human", "animal", "thing"

# ----------------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class Noun:
    sg: str
    pl: str
    cls: str                      # human | animal | thing
    gender: str | None = None     # "m" / "f" for gendered humans
    irregular: bool = False
    sound: str | None = None      # animals: the one sound verb (base form)
    food: str | None = None       # animals: the one food (mass noun)
    color: str | None = None      # things with a fixed colour

    def form(self, num: str) -> str:
        return self.sg if num == SG else self.pl


@dataclass(frozen=True)
class Verb:
    s3: str        # present, 3rd person singular
    base: str      # present plural / bare form
    past: str
    pp: str        # past participle
    kind: str      # intr | tr | sent | sound | eat
    subj: str      # human | animate | any
    obj: str | None = None   # tr: animate | thing | any
    refl: bool = False
    wh: str = "no"           # sent: "no" (that-clauses), "both" (know), "only" (wonder)

    def finite(self, num: str, tense: str) -> str:
        if tense == "past":
            return self.past
        return self.s3 if num == SG else self.base


def _h(sg, pl=None, gender=None, irregular=False):
    return Noun(sg, pl or sg + "s", HUMAN, gender, irregular)


HUMANS = (
    _h("boy", gender="m"), _h("man", "men", "m", True), _h("king", gender="m"), _h("father", gender="m"),
    _h("girl", gender="f"), _h("woman", "women", "f", True), _h("queen", gender="f"), _h("mother", gender="f"),
    _h("teacher"), _h("doctor"), _h("student"), _h("farmer"), _h("pilot"), _h("author"),
    _h("senator"), _h("guard"), _h("customer"), _h("manager"),
    _h("child", "children", irregular=True), _h("person", "people", irregular=True),
)
ANIMALS = (
    Noun("dog", "dogs", ANIMAL, sound="bark", food="meat"),
    Noun("cat", "cats", ANIMAL, sound="meow", food="fish"),
    Noun("cow", "cows", ANIMAL, sound="moo", food="grass"),
    Noun("horse", "horses", ANIMAL, sound="neigh", food="hay"),
    Noun("duck", "ducks", ANIMAL, sound="quack", food="bread"),
    Noun("mouse", "mice", ANIMAL, irregular=True, sound="squeak", food="cheese"),
    Noun("goose", "geese", ANIMAL, irregular=True, sound="honk", food="corn"),
)
THINGS = (
    Noun("book", "books", THING), Noun("car", "cars", THING), Noun("box", "boxes", THING),
    Noun("table", "tables", THING), Noun("cup", "cups", THING), Noun("ball", "balls", THING),
    Noun("house", "houses", THING), Noun("chair", "chairs", THING), Noun("picture", "pictures", THING),
    Noun("letter", "letters", THING),
    Noun("banana", "bananas", THING, color="yellow"), Noun("tomato", "tomatoes", THING, color="red"),
    Noun("leaf", "leaves", THING, irregular=True, color="green"), Noun("plum", "plums", THING, color="purple"),
    Noun("cloud", "clouds", THING, color="white"),
)
NOUNS = {HUMAN: HUMANS, ANIMAL: ANIMALS, THING: THINGS}
COLOR_THINGS = tuple(n for n in THINGS if n.color)
FOODS = tuple(a.food for a in ANIMALS)
COLORS = tuple(n.color for n in COLOR_THINGS)

NAMES = {"m": ("john", "tom", "david", "peter", "paul"), "f": ("mary", "sarah", "anna", "emma", "lucy")}
NAME_LIST = tuple((n, g) for g in ("m", "f") for n in NAMES[g])

INTRANSITIVE = (
    Verb("laughs", "laugh", "laughed", "laughed", "intr", HUMAN),
    Verb("smiles", "smile", "smiled", "smiled", "intr", HUMAN),
    Verb("dances", "dance", "danced", "danced", "intr", HUMAN),
    Verb("cries", "cry", "cried", "cried", "intr", HUMAN),
    Verb("waits", "wait", "waited", "waited", "intr", HUMAN),
    Verb("sleeps", "sleep", "slept", "slept", "intr", "animate"),
    Verb("runs", "run", "ran", "run", "intr", "animate"),
    Verb("swims", "swim", "swam", "swum", "intr", "animate"),
    Verb("jumps", "jump", "jumped", "jumped", "intr", "animate"),
    Verb("falls", "fall", "fell", "fallen", "intr", "animate"),
)
TRANSITIVE = (
    Verb("sees", "see", "saw", "seen", "tr", "animate", "any", refl=True),
    Verb("likes", "like", "liked", "liked", "tr", "animate", "any", refl=True),
    Verb("watches", "watch", "watched", "watched", "tr", "animate", "any", refl=True),
    Verb("hates", "hate", "hated", "hated", "tr", "animate", "any", refl=True),
    Verb("admires", "admire", "admired", "admired", "tr", HUMAN, "animate", refl=True),
    Verb("helps", "help", "helped", "helped", "tr", HUMAN, "animate", refl=True),
    Verb("visits", "visit", "visited", "visited", "tr", HUMAN, "animate"),
    Verb("chases", "chase", "chased", "chased", "tr", "animate", "animate"),
    Verb("follows", "follow", "followed", "followed", "tr", "animate", "animate"),
    Verb("finds", "find", "found", "found", "tr", "animate", "any"),
    Verb("carries", "carry", "carried", "carried", "tr", HUMAN, THING),
    Verb("buys", "buy", "bought", "bought", "tr", HUMAN, THING),
    Verb("writes", "write", "wrote", "written", "tr", HUMAN, THING),
    Verb("breaks", "break", "broke", "broken", "tr", HUMAN, THING),
    Verb("draws", "draw", "drew", "drawn", "tr", HUMAN, "any"),
)
SENTENTIAL = (
    Verb("thinks", "think", "thought", "thought", "sent", HUMAN),
    Verb("says", "say", "said", "said", "sent", HUMAN),
    Verb("believes", "believe", "believed", "believed", "sent", HUMAN),
    Verb("hopes", "hope", "hoped", "hoped", "sent", HUMAN),
    Verb("knows", "know", "knew", "known", "sent", HUMAN, wh="both"),
    Verb("wonders", "wonder", "wondered", "wondered", "sent", HUMAN, wh="only"),
)
SOUND = {
    v.base: v for v in (
        Verb("barks", "bark", "barked", "barked", "sound", ANIMAL),
        Verb("meows", "meow", "meowed", "meowed", "sound", ANIMAL),
        Verb("moos", "moo", "mooed", "mooed", "sound", ANIMAL),
        Verb("neighs", "neigh", "neighed", "neighed", "sound", ANIMAL),
        Verb("quacks", "quack", "quacked", "quacked", "sound", ANIMAL),
        Verb("squeaks", "squeak", "squeaked", "squeaked", "sound", ANIMAL),
        Verb("honks", "honk", "honked", "honked", "sound", ANIMAL),
    )
}
EAT = Verb("eats", "eat", "ate", "eaten", "eat", ANIMAL)
IRREGULAR_PP = tuple(v for v in INTRANSITIVE + TRANSITIVE if v.pp != v.past and v.pp != v.base)

ADJ_ANIMATE = ("happy", "sad", "tired", "old", "young", "big", "small")
ADJ_THING = ("old", "new", "big", "small", "nice", "heavy")
ADJ = {HUMAN: ADJ_ANIMATE, ANIMAL: ADJ_ANIMATE, THING: ADJ_THING}
PREPS = ("near", "behind", "beside")

SG_DETS = ("the",) * 10 + ("a",) * 3 + ("this", "that", "every")
PL_DETS = ("the",) * 10 + ("these", "those", "many", "few", "several", "some")
# number-specific determiners usable in determiner-noun agreement pairs: (singular, plural)
DET_SWAPS = (("this", "these"), ("that", "those"), ("every", "many"))

_TAG = {}
for _w in ("the", "a", "an", "this", "that", "these", "those", "every", "many", "few", "several", "some", "no", "any"):
    _TAG[_w] = "DET"
for _w in ("does", "do", "did", "is", "are", "was", "were", "has", "have", "been"):
    _TAG[_w] = "AUX"


def _subj_ok(req: str, cls: str) -> bool:
    return req == "any" or req == cls or (req == "animate" and cls in (HUMAN, ANIMAL))


TR_FOR_SUBJ = {c: tuple(v for v in TRANSITIVE if _subj_ok(v.subj, c)) for c in (HUMAN, ANIMAL)}
TR_FOR_OBJ = {c: tuple(v for v in TRANSITIVE if _subj_ok(v.obj, c)) for c in (HUMAN, ANIMAL, THING)}
INTR_FOR = {c: tuple(v for v in INTRANSITIVE if _subj_ok(v.subj, c)) for c in (HUMAN, ANIMAL)}
REFL_FOR = {c: tuple(v for v in TR_FOR_SUBJ[c] if v.refl) for c in (HUMAN, ANIMAL)}


def lexicon() -> dict[str, str]:
    """Every word the grammar can produce, mapped to its POS tag."""
    lex: dict[str, str] = dict(_TAG)
    for nouns in NOUNS.values():
        for n in nouns:
            lex[n.sg] = lex[n.pl] = "NOUN"
    for f in FOODS:
        lex[f] = "NOUN"
    for n, _ in NAME_LIST:
        lex[n] = "PROPN"
    for v in INTRANSITIVE + TRANSITIVE + SENTENTIAL + tuple(SOUND.values()) + (EAT,):
        for w in (v.s3, v.base, v.past, v.pp):
            lex[w] = "VERB"
    for w in ADJ_ANIMATE + ADJ_THING + COLORS:
        lex[w] = "ADJ"
    for w in PREPS:
        lex[w] = "ADP"
    for w in ("himself", "herself", "itself", "themselves", "who", "which", "what", "nobody"):
        lex[w] = "PRON"
    for w in ("often", "always", "never", "ever", "too", "so"):
        lex[w] = "ADV"
    lex["not"] = "PART"
    lex["and"] = "CCONJ"
    lex["."] = lex["?"] = "PUNCT"
    return lex


# --------------------------------------------------------------------------------- grammar


class NPInfo:
    __slots__ = ("num", "cls", "gender", "lic", "noun", "det")

    def __init__(self, num, cls, gender=None, lic=False, noun=None, det=None):
        self.num, self.cls, self.gender, self.lic, self.noun, self.det = num, cls, gender, lic, noun, det


def _fix_article(words: list) -> list:
    for i in range(len(words) - 1):
        if words[i][0] == "a" and words[i][1] == "DET" and words[i + 1][0][0] in "aeiou":
            words[i] = ("an", "DET")
    return words


def reflexive(num: str, cls: str, gender: str | None, pick: float = 0.0) -> str:
    """The reflexive the grammar uses for a subject; ``pick`` in [0,1) chooses for ungendered humans."""
    if num == PL:
        return "themselves"
    if cls == ANIMAL:
        return "itself"
    if gender == "m":
        return "himself"
    if gender == "f":
        return "herself"
    return "himself" if pick < 0.5 else "herself"


def allowed_reflexives(num: str, cls: str, gender: str | None) -> frozenset[str]:
    """Every reflexive the grammar allows for a subject."""
    if num == PL:
        return frozenset({"themselves"})
    if cls == ANIMAL:
        return frozenset({"itself"})
    if gender is None:
        return frozenset({"himself", "herself"})
    return frozenset({reflexive(num, cls, gender)})


def _wrong_reflexive(num: str, cls: str, pick: float) -> str:
    """A reflexive of the other number."""
    if num == SG:
        return "themselves"
    if cls == ANIMAL:
        return "itself"
    return "himself" if pick < 0.5 else "herself"


class _Grammar:
    """Random sentence generator; every method returns a list of (word, tag) pairs."""

    def __init__(self, rng: random.Random):
        self.r = rng

    # -- small helpers
    def p(self, x: float) -> bool:
        return self.r.random() < x

    def c(self, seq: Sequence):
        return seq[int(self.r.random() * len(seq))]

    def num(self, p_sg: float = 0.5) -> str:
        return SG if self.r.random() < p_sg else PL

    def cls(self, req: str) -> str:
        if req == "animate":
            return HUMAN if self.p(0.6) else ANIMAL
        if req == "any":
            x = self.r.random()
            return HUMAN if x < 0.45 else (ANIMAL if x < 0.75 else THING)
        return req

    # -- noun phrases
    def simple_np(self, req: str, num: str | None = None, *, adj=0.1, no=0.0, any_=0.0, name=0.0,
                  nobody=0.0, noun: Noun | None = None, det: str | None = None):
        cls = noun.cls if noun is not None else self.cls(req)
        if cls == HUMAN and noun is None:
            if nobody and num != PL and self.p(nobody):
                return [("nobody", "PRON")], NPInfo(SG, HUMAN, None, True)
            if name and num != PL and self.p(name):
                n, g = self.c(NAME_LIST)
                return [(n, "PROPN")], NPInfo(SG, HUMAN, g)
        if noun is None:
            noun = self.c(NOUNS[cls])
        num = num or self.num()
        if det is None:
            if no and self.p(no):
                det = "no"
            elif any_ and num == PL and self.p(any_):
                det = "any"
            else:
                det = self.c(SG_DETS if num == SG else PL_DETS)
        words = [(det, "DET")]
        if adj and self.p(adj):
            words.append((self.c(ADJ[cls]), "ADJ"))
        words.append((noun.form(num), "NOUN"))
        return _fix_article(words), NPInfo(num, cls, noun.gender, det == "no", noun, det)

    def np(self, req: str, num: str | None = None, *, pp=0.0, rc=0.0, **kw):
        words, info = self.simple_np(req, num, **kw)
        if info.noun is not None and (pp or rc):
            x = self.r.random()
            if x < pp:
                words += self.pp()
            elif x < pp + rc:
                words += self.rel_clause(info)
        return words, info

    def pp(self):
        w, _ = self.simple_np("any", adj=0.08)
        return [(self.c(PREPS), "ADP")] + w

    def relpron(self, cls: str) -> tuple:
        if self.p(0.6):
            return ("that", "PRON")
        return ("who", "PRON") if cls != THING else ("which", "PRON")

    def rel_clause(self, head: NPInfo):
        if self.p(0.5):  # subject relative
            words = [self.relpron(head.cls)]
            tense = "pres" if self.p(0.6) else "past"
            if head.cls == THING:
                words.append(((("is", "are"), ("was", "were"))[tense == "past"][head.num == PL], "AUX"))
                words.append((self.c(ADJ_THING), "ADJ"))
                return words
            if self.p(0.35):
                v = self.c(INTR_FOR[head.cls])
                return words + [(v.finite(head.num, tense), "VERB")]
            v = self.c(TR_FOR_SUBJ[head.cls])
            o, _ = self.simple_np(self.cls(v.obj), adj=0.08, no=0.03)
            return words + [(v.finite(head.num, tense), "VERB")] + o
        # object relative: [that|who|which] SUBJ VERB __
        v = self.c(TR_FOR_OBJ[head.cls])
        words = [self.relpron(head.cls)] if self.p(0.7) else []
        s, si = self.simple_np(self.cls(v.subj), adj=0.08, no=0.1, name=0.15)
        words += s
        if si.lic and self.p(0.4):
            words += [("has" if si.num == SG else "have", "AUX"), ("ever", "ADV"), (v.pp, "VERB")]
        elif self.p(0.1):
            words += [("has" if si.num == SG else "have", "AUX"), (v.pp, "VERB")]
        else:
            words.append((v.finite(si.num, "pres" if self.p(0.6) else "past"), "VERB"))
        return words

    # -- verb groups
    _TENSES = ("pres",) * 36 + ("past",) * 26 + ("neg_pres",) * 8 + ("neg_past",) * 7 + ("perf",) * 13 + ("adv",) * 10
    _FACT_TENSES = ("pres",) * 50 + ("past",) * 27 + ("perf",) * 10 + ("adv",) * 13

    def verb_group(self, s: NPInfo, v: Verb, tense: str | None = None, *, fact=False, neg_ok=True):
        """Finite verb group for subject ``s``; returns (words, ellipsis_aux_kind or None, negated)."""
        if tense is None:
            tense = self.c(self._FACT_TENSES if fact else self._TENSES)
        if s.lic or not neg_ok:
            if tense in ("neg_pres", "neg_past"):
                tense = tense[4:]
        sg = s.num == SG
        if tense == "pres":
            return [(v.finite(s.num, "pres"), "VERB")], "do", False
        if tense == "past":
            return [(v.past, "VERB")], "did", False
        if tense == "neg_pres":
            return [("does" if sg else "do", "AUX"), ("not", "PART"), (v.base, "VERB")], None, True
        if tense == "neg_past":
            return [("did", "AUX"), ("not", "PART"), (v.base, "VERB")], None, True
        if tense == "perf":
            words = [("has" if sg else "have", "AUX")]
            adv = self.perf_adverb(s, fact, neg_ok)
            words += adv
            words.append((v.pp, "VERB"))
            ell = "have" if not adv or adv[0][0] in ("often", "always") else None
            return words, ell, any(w in ("not", "never") for w, _ in adv)
        # adverb + finite verb
        adv = self.c(("often", "always")) if (fact or s.lic or not neg_ok) else self.c(("often", "always", "never"))
        t = "pres" if self.p(0.55) else "past"
        words = [(adv, "ADV"), (v.finite(s.num, t), "VERB")]
        if adv == "never":
            return words, None, True
        return words, ("do" if t == "pres" else "did"), False

    def perf_adverb(self, s: NPInfo, fact=False, neg_ok=True):
        x = self.r.random()
        if s.lic:
            return [("ever", "ADV")] if x < 0.55 else []
        if fact or not neg_ok:
            return [] if x < 0.7 else [(self.c(("often", "always")), "ADV")]
        if x < 0.45:
            return []
        if x < 0.63:
            return [(self.c(("often", "always")), "ADV")]
        if x < 0.75:
            return [("never", "ADV")]
        if x < 0.88:
            return [("not", "PART")]
        return [("not", "PART"), ("ever", "ADV")]

    def obj_np(self, v: Verb, licensed: bool, *, pp=0.05, rc=0.05):
        return self.np(self.cls(v.obj), adj=0.15, pp=pp, rc=rc, no=0.02, any_=0.35 if licensed else 0.0)

    def vp(self, s: NPInfo, kind: str, tense: str | None = None, *, neg_ok=True, obj_mods=0.05):
        """Returns (words, ellipsis_aux_kind, licensed, verb)."""
        if kind == "cop":
            return self.cop_vp(s, tense, neg_ok=neg_ok)
        if kind == "intr":
            v = self.c(INTR_FOR[s.cls])
        elif kind == "tr":
            v = self.c(TR_FOR_SUBJ[s.cls])
        elif kind == "refl":
            v = self.c(REFL_FOR[s.cls])
        elif kind == "sound":
            v = SOUND[s.noun.sound]
        elif kind == "eat":
            v = EAT
        else:
            raise ValueError(kind)
        fact = kind in ("sound", "eat")
        words, ell, neg = self.verb_group(s, v, tense, fact=fact, neg_ok=neg_ok)
        lic = s.lic or neg
        if kind == "tr":
            o, _ = self.obj_np(v, lic, pp=obj_mods, rc=obj_mods)
            words += o
        elif kind == "refl":
            words.append((reflexive(s.num, s.cls, s.gender, self.r.random()), "PRON"))
        elif kind == "eat":
            words.append((s.noun.food, "NOUN"))
        return words, ell, lic, v

    def cop_vp(self, s: NPInfo, tense: str | None = None, *, neg_ok=True, color=False):
        sg = s.num == SG
        if tense is None:
            x = self.r.random()
            tense = "pres" if x < 0.5 else ("past" if x < 0.8 else "perf")
        adj = (s.noun.color if color else self.c(ADJ[s.cls]), "ADJ")
        if tense == "perf":
            adv = self.perf_adverb(s, color, neg_ok)
            words = [("has" if sg else "have", "AUX")] + adv + [("been", "AUX"), adj]
            neg = any(w in ("not", "never") for w, _ in adv)
            return words, (None if neg or (adv and adv[0][0] == "ever") else "have"), s.lic or neg, None
        aux = ((("is", "are"), ("was", "were"))[tense == "past"][not sg], "AUX")
        if neg_ok and not color and not s.lic and self.p(0.12):
            return [aux, ("not", "PART"), adj], None, True, None
        return [aux, adj], ("be_pres" if tense == "pres" else "be_past"), s.lic, None

    # -- sentences
    _KINDS = (("intr",) * 9 + ("tr",) * 13 + ("refl",) * 6 + ("cop",) * 6 + ("sent",) * 7 + ("coord",) * 5
              + ("sound",) * 4 + ("eat",) * 4 + ("color",) * 3 + ("ynq",) * 6 + ("whobj",) * 4 + ("whsubj",) * 2
              + ("embwh",) * 3 + ("ellipsis",) * 5 + ("npi",) * 4)

    def subject(self, req: str, **kw):
        opts = dict(pp=0.24, rc=0.24, adj=0.15, no=0.06, name=0.12, nobody=0.03)
        opts.update(kw)
        return self.np(req, **opts)

    def clause(self, kind: str, *, embedded=False):
        """Declarative clause (no final punctuation)."""
        mods = 0.5 if embedded else 1.0
        if kind == "sound" or kind == "eat":
            s, si = self.subject(ANIMAL, no=0, nobody=0, name=0, pp=0.2 * mods, rc=0.15 * mods)
            w, *_ = self.vp(si, kind)
            return s + w
        if kind == "color":
            s, si = self.np(THING, noun=self.c(COLOR_THINGS), pp=0.15 * mods, rc=0.05 * mods)
            w, *_ = self.cop_vp(si, "pres" if self.p(0.7) else "past", color=True)
            return s + w
        if kind == "cop":
            s, si = self.subject(THING if self.p(0.5) else "animate", pp=0.24 * mods, rc=0.3 * mods)
            w, *_ = self.cop_vp(si)
            return s + w
        if kind in ("intr", "tr", "refl"):
            s, si = self.subject("animate", pp=0.24 * mods, rc=0.24 * mods)
            w, *_ = self.vp(si, kind, obj_mods=0.1 * mods)
            return s + w
        raise ValueError(kind)

    def sentence(self) -> list:
        kind = self.c(self._KINDS)
        if kind in ("intr", "tr", "refl", "cop", "sound", "eat", "color"):
            return self.clause(kind) + [(".", "PUNCT")]
        return getattr(self, "s_" + kind)()

    def s_sent(self):
        s, si = self.subject(HUMAN, rc=0.08, pp=0.1)
        v = self.c(SENTENTIAL)
        if v.wh == "only" or (v.wh == "both" and self.p(0.3)):
            return self.s_embwh(s, si, v)
        w, *_ = self.verb_group(si, v)
        comp = [("that", "SCONJ")] if self.p(0.5) else []
        emb = self.clause(self.c(("intr",) * 3 + ("tr",) * 4 + ("refl",) * 2 + ("cop",) * 2 + ("sound", "eat", "color")),
                          embedded=True)
        return s + w + comp + emb + [(".", "PUNCT")]

    def s_embwh(self, s=None, si=None, v=None):
        if s is None:
            s, si = self.subject(HUMAN, rc=0.05, pp=0.1)
            v = self.c(SENTENTIAL[-2:])
        w, *_ = self.verb_group(si, v, neg_ok=False)
        if self.p(0.6):  # object gap: knows who/what SUBJ VERB __
            tv = self.c(TRANSITIVE)
            ocls = self.cls(tv.obj)
            s2, s2i = self.simple_np(self.cls(tv.subj), adj=0.08, name=0.15)
            wh = ("who" if ocls != THING else "what", "PRON")
            vg, *_ = self.verb_group(s2i, tv, self.c(("pres", "past", "pres", "past", "perf")), neg_ok=False)
            return s + w + [wh] + s2 + vg + [(".", "PUNCT")]
        # subject gap: knows who VERB OBJ
        si2 = NPInfo(SG, HUMAN)
        if self.p(0.4):
            iv = self.c(INTR_FOR[HUMAN])
            vg, *_ = self.verb_group(si2, iv, self.c(("pres", "past")))
            return s + w + [("who", "PRON")] + vg + [(".", "PUNCT")]
        tv = self.c(TR_FOR_SUBJ[HUMAN])
        vg, *_ = self.verb_group(si2, tv, self.c(("pres", "past")))
        o, _ = self.obj_np(tv, False, pp=0, rc=0)
        return s + w + [("who", "PRON")] + vg + o + [(".", "PUNCT")]

    def s_coord(self):
        s, si = self.subject("animate", rc=0.08, nobody=0, no=0)
        tense = "pres" if self.p(0.6) else "past"
        out = list(s)
        first = None
        for i in range(2):
            kind = self.c(("intr", "tr", "tr"))
            while True:
                v = self.c(INTR_FOR[si.cls] if kind == "intr" else TR_FOR_SUBJ[si.cls])
                if v is not first:
                    break
            first = v
            if i:
                out.append(("and", "CCONJ"))
            out.append((v.finite(si.num, tense), "VERB"))
            if kind == "tr":
                o, _ = self.obj_np(v, False, pp=0.03, rc=0.03)
                out += o
        return out + [(".", "PUNCT")]

    def s_ynq(self):
        x = self.r.random()
        s, si = self.np("animate" if x < 0.75 else "any", pp=0.1, rc=0.06, adj=0.1, name=0.12)
        sg = si.num == SG
        if si.cls == THING or x > 0.85:
            aux = (("is", "are"), ("was", "were"))[self.p(0.4)][not sg]
            return [(aux, "AUX")] + s + [(self.c(ADJ[si.cls]), "ADJ"), ("?", "PUNCT")]
        if x < 0.55:
            aux = ("does" if sg else "do") if self.p(0.55) else "did"
            words = [(aux, "AUX")] + s
            if self.p(0.15):
                words.append(("ever", "ADV"))
            form = "base"
        else:
            words = [("has" if sg else "have", "AUX")] + s
            if self.p(0.3):
                words.append(("ever", "ADV"))
            form = "pp"
        if self.p(0.4):
            v = self.c(INTR_FOR[si.cls])
            return words + [(getattr(v, form), "VERB"), ("?", "PUNCT")]
        v = self.c(TR_FOR_SUBJ[si.cls])
        o, _ = self.obj_np(v, True, pp=0.03, rc=0.03)
        return words + [(getattr(v, form), "VERB")] + o + [("?", "PUNCT")]

    def s_whobj(self):
        if self.p(0.2):  # long distance: who does SUBJ think [that] SUBJ2 VERB __ ?
            s, si = self.simple_np(HUMAN, adj=0.08, name=0.15)
            sv = self.c(SENTENTIAL[:4])
            tv = self.c(TRANSITIVE)
            ocls = self.cls(tv.obj)
            aux = ("does" if si.num == SG else "do") if self.p(0.6) else "did"
            s2, s2i = self.simple_np(self.cls(tv.subj), adj=0.08, name=0.15)
            comp = [("that", "SCONJ")] if self.p(0.4) else []
            return ([("who" if ocls != THING else "what", "PRON"), (aux, "AUX")] + s + [(sv.base, "VERB")] + comp
                    + s2 + [(tv.finite(s2i.num, "pres" if self.p(0.6) else "past"), "VERB"), ("?", "PUNCT")])
        tv = self.c(TRANSITIVE)
        ocls = self.cls(tv.obj)
        s, si = self.np(self.cls(tv.subj), pp=0.12, rc=0.05, adj=0.1, name=0.15)
        sg = si.num == SG
        if self.p(0.75):
            aux = ("does" if sg else "do") if self.p(0.55) else "did"
            form = tv.base
        else:
            aux, form = ("has" if sg else "have"), tv.pp
        return [("who" if ocls != THING else "what", "PRON"), (aux, "AUX")] + s + [(form, "VERB"), ("?", "PUNCT")]

    def s_whsubj(self):
        si = NPInfo(SG, HUMAN)
        kind = self.c(("intr", "tr", "tr", "refl"))
        words = [("who", "PRON")]
        if kind == "refl":
            v = self.c(REFL_FOR[HUMAN])
            vg, *_ = self.verb_group(si, v, self.c(("pres", "past", "perf")), neg_ok=False)
            return words + vg + [(self.c(("himself", "herself")), "PRON"), ("?", "PUNCT")]
        v = self.c(INTR_FOR[HUMAN] if kind == "intr" else TR_FOR_SUBJ[HUMAN])
        vg, *_ = self.verb_group(si, v, self.c(("pres", "past", "perf")), neg_ok=False)
        words += vg
        if kind == "tr":
            o, _ = self.obj_np(v, False, pp=0.05, rc=0.05)
            words += o
        return words + [("?", "PUNCT")]

    def s_ellipsis(self):
        kind = self.c(("intr", "tr", "tr", "refl", "cop"))
        req = THING if kind == "cop" and self.p(0.3) else "animate"
        s, si = self.np(req, pp=0.08, adj=0.1, name=0.15)
        while True:
            if kind == "cop":
                w, ell, *_ = self.cop_vp(si, neg_ok=False)
            else:
                w, ell, *_ = self.vp(si, kind, neg_ok=False, obj_mods=0.02)
            if ell is not None:
                break
        s2, s2i = self.simple_np(si.cls, adj=0.1, name=0.15)
        sg2 = s2i.num == SG
        aux = {"do": ("does", "do"), "did": ("did", "did"), "have": ("has", "have"),
               "be_pres": ("is", "are"), "be_past": ("was", "were")}[ell][not sg2]
        out = s + w + [("and", "CCONJ")]
        if self.p(0.6):
            out += s2 + [(aux, "AUX"), ("too", "ADV")]
        else:
            out += [("so", "ADV"), (aux, "AUX")] + s2
        return out + [(".", "PUNCT")]

    def s_npi(self):
        """A clause that shows an NPI under its licensor."""
        x = self.r.random()
        if x < 0.4:   # no/nobody subject + ever / any
            s, si = self.np("animate" if self.p(0.8) else THING, pp=0.1, rc=0.1, no=1.0, nobody=0.15)
            if si.cls == THING:
                w, *_ = self.cop_vp(si, "perf")
                return s + w + [(".", "PUNCT")]
            kind = self.c(("intr", "tr", "refl"))
            w, *_ = self.vp(si, kind, self.c(("perf", "perf", "past", "pres")))
            return s + w + [(".", "PUNCT")]
        s, si = self.np("animate", pp=0.15, rc=0.1, name=0.12)
        v = self.c(TR_FOR_SUBJ[si.cls])
        if x < 0.65:
            vg = self.verb_group(si, v, self.c(("neg_pres", "neg_past")))[0]
        elif x < 0.8:
            vg = [("never", "ADV"), (v.finite(si.num, self.c(("pres", "past"))), "VERB")]
        else:
            vg = [("has" if si.num == SG else "have", "AUX"), ("not", "PART")]
            if self.p(0.5):
                vg.append(("ever", "ADV"))
            vg.append((v.pp, "VERB"))
        o, _ = self.np(self.cls(v.obj), PL, adj=0.1, any_=1.0)
        return s + vg + o + [(".", "PUNCT")]


# ------------------------------------------------------------------------------ text output

MAX_WORDS = 25


def _norm(sentence: str) -> str:
    """Pair/corpus comparison key: single spaces, no final punctuation."""
    words = sentence.split()
    while words and words[-1] in (".", "?", "!"):
        words.pop()
    return " ".join(words)


def _generate_split(rng: random.Random, n_words: int, forbidden: set[str]):
    g = _Grammar(rng)
    lines: list[str] = []
    tags: list[str] = []
    total = 0
    rejected = 0
    while total < n_words:
        s = g.sentence()
        if len(s) > MAX_WORDS:
            continue
        words = [w for w, _ in s]
        text = " ".join(words)
        if " ".join(words[:-1]) in forbidden:
            rejected += 1
            continue
        lines.append(text)
        tags.append(" ".join(t for _, t in s))
        total += len(words)
    return lines, tags, total, rejected


# ------------------------------------------------------------------------------ minimal pairs


def _j(words) -> str:
    return " ".join(w for w, _ in words) if words and isinstance(words[0], tuple) else " ".join(words)


class _Pairs:
    """Minimal-pair generators. Each returns (good_words, bad_words) as lists of strings, plus a case."""

    def __init__(self, rng: random.Random):
        self.g = _Grammar(rng)
        self.r = rng

    # helpers -------------------------------------------------------------
    def p(self, x):
        return self.r.random() < x

    def c(self, seq):
        return self.g.c(seq)

    def det_np(self, noun: Noun, num: str, det: str | None = None, adj: str | None = None) -> list[str]:
        det = det or self.c(SG_DETS if num == SG else PL_DETS)
        words = [(det, "DET")] + ([(adj, "ADJ")] if adj else []) + [(noun.form(num), "NOUN")]
        return [w for w, _ in _fix_article(words)]

    def noun(self, cls: str, *, irregular: bool | None = None, gendered: bool | None = None) -> Noun:
        cls = self.g.cls(cls)
        pool = NOUNS[cls]
        if irregular is not None:
            pool = tuple(n for n in pool if n.irregular == irregular) or pool
        if gendered is not None:
            pool = tuple(n for n in pool if (n.gender is not None) == gendered)
        return self.c(pool)

    def subj(self, cls="animate", num=None, *, irregular=None, det=None, adj=0.1, name=0.0):
        """Simple subject (words, info); a name (singular human) with probability ``name``."""
        cls = self.g.cls(cls)
        noun = None if (cls == HUMAN and name and irregular is None and det is None) else self.noun(cls, irregular=irregular)
        w, i = self.g.simple_np(cls, num, adj=adj, name=name, noun=noun, det=det)
        return [x for x, _ in w], i

    def obj(self, v: Verb, *, num=None, adj=0.1):
        w, i = self.g.simple_np(self.g.cls(v.obj), num, adj=adj)
        return [x for x, _ in w], i

    def other(self, num):
        return PL if num == SG else SG

    def intr_or_tr(self, cls):
        """A present-tense predicate body: (verb, object words or [])."""
        if self.p(0.5):
            return self.c(INTR_FOR[cls]), []
        v = self.c(TR_FOR_SUBJ[cls])
        return v, self.obj(v)[0]

    @staticmethod
    def flip(v: Verb, num: str) -> tuple[str, str]:
        """(grammatical, ungrammatical) present forms for a subject of number num."""
        return (v.s3, v.base) if num == SG else (v.base, v.s3)

    # subject-verb agreement ------------------------------------------------
    def sva_verb(self, irregular: bool):
        s, si = self.subj("animate", irregular=irregular, adj=0.15)
        v, o = self.intr_or_tr(si.cls)
        good, bad = self.flip(v, si.num)
        return s + [good] + o + ["."], s + [bad] + o + ["."], si.num

    def sva_noun(self, irregular: bool):
        num = self.g.num()
        cls = self.g.cls("animate")
        n = self.noun(cls, irregular=irregular)
        adj = self.c(ADJ[cls]) if self.p(0.15) else None
        v, o = self.intr_or_tr(cls)
        verb = v.finite(num, "pres")
        return (self.det_np(n, num, "the", adj) + [verb] + o + ["."],
                self.det_np(n, self.other(num), "the", adj) + [verb] + o + ["."], num)

    def attractor_np(self, num, cls="animate"):
        n = self.noun(cls)
        return self.det_np(n, num)

    def sva_pp(self):
        s, si = self.subj("animate")
        att = [self.c(PREPS)] + self.attractor_np(self.other(si.num) if self.p(0.8) else si.num, "any")
        v, o = self.intr_or_tr(si.cls)
        good, bad = self.flip(v, si.num)
        return s + att + [good] + o + ["."], s + att + [bad] + o + ["."], si.num

    def sva_subj_rc(self):
        s, si = self.subj("animate")
        tv = self.c(TR_FOR_SUBJ[si.cls])
        att = self.attractor_np(self.other(si.num) if self.p(0.8) else si.num, self.g.cls(tv.obj))
        rc = [self.g.relpron(si.cls)[0], tv.finite(si.num, self.c(("pres", "past")))] + att
        v, o = self.intr_or_tr(si.cls)
        good, bad = self.flip(v, si.num)
        return s + rc + [good] + o + ["."], s + rc + [bad] + o + ["."], si.num

    def obj_rc(self, head_cls="animate", *, comp=True, head_num=None, emb_num=None):
        """(head words, head info, rc words, rc verb, rc subject number)."""
        s, si = self.subj(head_cls, head_num, adj=0.08)
        tv = self.c(TR_FOR_OBJ[si.cls])
        en = emb_num or (self.other(si.num) if self.p(0.8) else si.num)
        es = self.det_np(self.noun(self.g.cls(tv.subj)), en)
        rc = ([self.g.relpron(si.cls)[0]] if comp else []) + es
        return s, si, rc, tv, en

    def sva_obj_rc(self):
        s, si, rc, tv, en = self.obj_rc()
        rc = rc + [tv.finite(en, self.c(("pres", "past")))]
        v, o = self.intr_or_tr(si.cls)
        good, bad = self.flip(v, si.num)
        return s + rc + [good] + o + ["."], s + rc + [bad] + o + ["."], si.num

    def sva_in_obj_rc(self):
        s, si, rc, tv, en = self.obj_rc()
        good, bad = self.flip(tv, en)
        v, o = self.intr_or_tr(si.cls)
        tail = [v.finite(si.num, self.c(("pres", "past")))] + o + ["."]
        return s + rc + [good] + tail, s + rc + [bad] + tail, en

    def sva_sent_comp(self):
        s, si = self.subj(HUMAN, name=0.15)
        sv = self.c(SENTENTIAL[:5])
        main = s + [sv.finite(si.num, self.c(("pres", "past")))] + (["that"] if self.p(0.5) else [])
        e, ei = self.subj("animate", self.other(si.num) if si.num == PL or self.p(0.8) else si.num)
        v, o = self.intr_or_tr(ei.cls)
        good, bad = self.flip(v, ei.num)
        return main + e + [good] + o + ["."], main + e + [bad] + o + ["."], ei.num

    def sva_vp_coord(self):
        s, si = self.subj("animate")
        v1, o1 = self.intr_or_tr(si.cls)
        while True:
            v2, o2 = self.intr_or_tr(si.cls)
            if v2 is not v1:
                break
        good, bad = self.flip(v2, si.num)
        first = s + [v1.finite(si.num, "pres")] + o1 + ["and"]
        return first + [good] + o2 + ["."], first + [bad] + o2 + ["."], si.num

    def sva_copula(self):
        s, si = self.subj(THING, adj=0.1)
        att = [self.c(PREPS)] + self.attractor_np(self.other(si.num) if self.p(0.8) else si.num, "any")
        past = self.p(0.3)
        good, bad = (("is", "are"), ("was", "were"))[past][::1 if si.num == SG else -1]
        adj = self.c(ADJ_THING)
        return s + att + [good, adj, "."], s + att + [bad, adj, "."], si.num

    def sva_question(self):
        s, si = self.subj("animate", adj=0.1)
        v, o = self.intr_or_tr(si.cls)
        good, bad = ("does", "do") if si.num == SG else ("do", "does")
        if self.p(0.3):
            good, bad = ("has", "have") if si.num == SG else ("have", "has")
            return [good] + s + [v.pp] + o + ["?"], [bad] + s + [v.pp] + o + ["?"], si.num
        return [good] + s + [v.base] + o + ["?"], [bad] + s + [v.base] + o + ["?"], si.num

    def sva_perfect(self):
        s, si = self.subj("animate", adj=0.1)
        if self.p(0.25):
            att = [self.c(PREPS)] + self.attractor_np(self.other(si.num), "any")
            s = s + att
        v, o = self.intr_or_tr(si.cls)
        good, bad = ("has", "have") if si.num == SG else ("have", "has")
        return s + [good, v.pp] + o + ["."], s + [bad, v.pp] + o + ["."], si.num

    # determiner-noun agreement ----------------------------------------------
    def dna(self, *, swap: str, irregular: bool, adjective: bool):
        s, si = self.subj("animate", name=0.2)
        cls = self.g.cls("any")
        n = self.noun(cls, irregular=irregular)
        tv = self.c(tuple(v for v in TR_FOR_SUBJ[si.cls] if _subj_ok(v.obj, cls)))
        verb = tv.finite(si.num, self.c(("pres", "past", "past")))
        num = self.g.num()
        adj = self.c(ADJ[cls]) if adjective else None
        if swap == "noun":
            det = self.c(("this", "that", "a", "every") if num == SG else ("these", "those", "many", "several", "few"))
            good = self.det_np(n, num, det, adj)
            bad = self.det_np(n, self.other(num), det, adj)
        else:
            pair = self.c(DET_SWAPS)
            d_good, d_bad = pair if num == SG else pair[::-1]
            good = self.det_np(n, num, d_good, adj)
            bad = self.det_np(n, num, d_bad, adj)
        return s + [verb] + good + ["."], s + [verb] + bad + ["."], num

    # anaphors and binding -----------------------------------------------------
    def refl_subject(self, gendered: bool):
        if not gendered:
            return self.subj("animate", adj=0.1)
        if self.p(0.35):
            n, g = self.c(NAME_LIST)
            return [n], NPInfo(SG, HUMAN, g)
        return self._gendered()

    def _gendered(self):
        n = self.c(tuple(x for x in HUMANS if x.gender))
        w, i = self.g.simple_np(HUMAN, SG, adj=0.1, noun=n)
        return [x for x, _ in w], i

    def refl_verb(self, si: NPInfo) -> str:
        v = self.c(REFL_FOR[si.cls])
        t = self.c(("pres", "past", "past"))
        return v.finite(si.num, t)

    def anaphor_gender(self):
        s, si = self.refl_subject(True)
        good = reflexive(SG, HUMAN, si.gender)
        bad = "herself" if good == "himself" else "himself"
        vb = self.refl_verb(si)
        return s + [vb, good, "."], s + [vb, bad, "."], si.gender

    def anaphor_number(self):
        s, si = self.subj("animate", adj=0.1, name=0.15)
        vb = self.refl_verb(si)
        pick = self.r.random()
        good = reflexive(si.num, si.cls, si.gender, pick)
        bad = _wrong_reflexive(si.num, si.cls, pick)
        return s + [vb, good, "."], s + [vb, bad, "."], si.num

    def principle_a_domain(self):
        m, mi = self.subj(HUMAN, adj=0.05, name=0.2)
        sv = self.c(SENTENTIAL[:5])
        main = m + [sv.finite(mi.num, self.c(("pres", "past")))] + (["that"] if self.p(0.5) else [])
        # embedded subject differs from the main subject in number or gender
        for _ in range(100):
            e, ei = self.refl_subject(True) if self.p(0.5) else self.subj(HUMAN, adj=0.05)
            pick = self.r.random()
            good = reflexive(ei.num, HUMAN, ei.gender, pick)
            main_refl = reflexive(mi.num, HUMAN, mi.gender, 1 - pick)
            if main_refl not in allowed_reflexives(ei.num, HUMAN, ei.gender):
                break
        vb = self.refl_verb(ei)
        return main + e + [vb, good, "."], main + e + [vb, main_refl, "."], ei.num

    def principle_a_c_command(self):
        s, si = self.refl_subject(True) if self.p(0.5) else self.subj(HUMAN, adj=0.05)
        if s[0] in NAMES["m"] or s[0] in NAMES["f"]:
            s, si = self._gendered()
        tv = self.c(TR_FOR_SUBJ[HUMAN])
        pick = self.r.random()
        good = reflexive(si.num, HUMAN, si.gender, pick)
        for _ in range(100):
            att_n = self.noun(HUMAN)
            att_num = self.g.num()
            bad = reflexive(att_num, HUMAN, att_n.gender, 1 - pick)
            if bad not in allowed_reflexives(si.num, HUMAN, si.gender):
                break
        rc = [self.g.relpron(HUMAN)[0], tv.finite(si.num, self.c(("pres", "past")))] + self.det_np(att_n, att_num)
        vb = self.refl_verb(si)
        return s + rc + [vb, good, "."], s + rc + [vb, bad, "."], si.num

    # NPIs ----------------------------------------------------------------------
    def intr_pp(self, cls):
        """perfect-tense predicate after has/have [ADV]: (participle words)."""
        if self.p(0.5):
            return [self.c(INTR_FOR[cls]).pp]
        v = self.c(TR_FOR_SUBJ[cls])
        return [v.pp] + self.obj(v)[0]

    def npi_present_1(self):
        s, si = self.subj("animate")
        aux = "has" if si.num == SG else "have"
        rest = self.intr_pp(si.cls) + ["."]
        return s + [aux, self.c(("often", "always"))] + rest, s + [aux, "ever"] + rest, si.num

    def npi_present_2(self):
        s, si = self.subj("animate", name=0.15)
        v = self.c(TR_FOR_SUBJ[si.cls])
        verb = v.finite(si.num, self.c(("pres", "past")))
        n = self.noun(self.g.cls(v.obj))
        adj = [self.c(ADJ[n.cls])] if self.p(0.1) else []
        return s + [verb, "the"] + adj + [n.pl, "."], s + [verb, "any"] + adj + [n.pl, "."], si.num

    def npi_negation(self):
        s, si = self.subj("animate", name=0.15)
        v = self.c(TR_FOR_SUBJ[si.cls])
        verb = v.finite(si.num, self.c(("pres", "past")))
        n = self.noun(self.g.cls(v.obj))
        o = ["any", n.pl]
        return s + ["never", verb] + o + ["."], s + [self.c(("often", "always")), verb] + o + ["."], si.num

    def npi_question(self):
        s, si = self.subj("animate", name=0.15)
        aux = "has" if si.num == SG else "have"
        rest = self.intr_pp(si.cls)
        return [aux] + s + ["ever"] + rest + ["?"], s + [aux, "ever"] + rest + ["."], si.num

    def npi_no(self, cls="animate"):
        num = self.g.num()
        n = self.noun(cls)
        aux = "has" if num == SG else "have"
        rest = ["been", self.c(ADJ_THING)] if n.cls == THING else self.intr_pp(n.cls)
        nom = ([self.c(ADJ[n.cls])] if self.p(0.3) else []) + [n.form(num), aux, "ever"] + rest
        return ["no"] + nom, ["the"] + nom, num

    def npi_scope(self, cls="animate"):
        num = self.g.num()
        n = self.noun(cls)
        tv = self.c(TR_FOR_OBJ[n.cls])
        en = self.g.num()
        e = self.noun(self.g.cls(tv.subj)).form(en)
        rcv = tv.finite(en, "pres")
        aux = "has" if num == SG else "have"
        rest = ["been", self.c(ADJ_THING)] if n.cls == THING else self.intr_pp(n.cls)
        rp = self.g.relpron(n.cls)[0]
        good = ["no", n.form(num), rp, "the", e, rcv, aux, "ever"] + rest
        bad = ["the", n.form(num), rp, "no", e, rcv, aux, "ever"] + rest
        return good, bad, f"{num}_{en}"

    # argument structure ------------------------------------------------------
    def transitive(self):
        s, si = self.subj("animate", name=0.15)
        tense = self.c(("pres", "past"))
        tv = self.c(TR_FOR_SUBJ[si.cls])
        iv = self.c(INTR_FOR[si.cls])
        o = self.obj(tv)[0]
        return (s + [tv.finite(si.num, tense)] + o + ["."], s + [iv.finite(si.num, tense)] + o + ["."], si.num)

    def intransitive(self):
        s, si = self.subj("animate", name=0.15)
        tense = self.c(("pres", "past"))
        tv = self.c(TR_FOR_SUBJ[si.cls])
        iv = self.c(INTR_FOR[si.cls])
        return s + [iv.finite(si.num, tense), "."], s + [tv.finite(si.num, tense), "."], si.num

    def animate_subject(self):
        num = self.g.num()
        h = self.noun(HUMAN)
        t = self.noun(THING)
        det = self.c(SG_DETS if num == SG else PL_DETS)
        tv = self.c(TR_FOR_SUBJ[HUMAN])
        o = self.obj(tv)[0]
        verb = tv.finite(num, self.c(("pres", "past")))
        return self.det_np(h, num, det) + [verb] + o + ["."], self.det_np(t, num, det) + [verb] + o + ["."], num

    # filler-gap ---------------------------------------------------------------
    def _know(self):
        s, si = self.subj(HUMAN, name=0.2)
        return s + [SENTENTIAL[4].finite(si.num, self.c(("pres", "past")))]

    def _emb_obj_clause(self):
        tv = self.c(TRANSITIVE)
        e, ei = self.subj(self.g.cls(tv.subj), name=0.15)
        o, oi = self.obj(tv)
        wh = "what" if oi.cls == THING else "who"
        return e + [tv.finite(ei.num, self.c(("pres", "past")))], o, wh

    def wh_vs_that_no_gap(self):
        k = self._know()
        c, o, wh = self._emb_obj_clause()
        return k + ["that"] + c + o + ["."], k + [wh] + c + o + ["."], wh

    def wh_vs_that_with_gap(self):
        k = self._know()
        c, o, wh = self._emb_obj_clause()
        return k + [wh] + c + ["."], k + ["that"] + c + ["."], wh

    def wh_object_gap(self):
        tv = self.c(TRANSITIVE)
        s, si = self.subj(self.g.cls(tv.subj), name=0.15)
        o, oi = self.obj(tv)
        wh = "what" if oi.cls == THING else "who"
        aux = ("does" if si.num == SG else "do") if self.p(0.6) else "did"
        q = [wh, aux] + s + [tv.base]
        return q + ["?"], q + o + ["?"], wh

    def wh_object_gap_long(self):
        tv = self.c(TRANSITIVE)
        m, mi = self.subj(HUMAN, name=0.15)
        sv = self.c(SENTENTIAL[:4])
        aux = ("does" if mi.num == SG else "do") if self.p(0.6) else "did"
        e, ei = self.subj(self.g.cls(tv.subj), name=0.15)
        o, oi = self.obj(tv)
        wh = "what" if oi.cls == THING else "who"
        q = [wh, aux] + m + [sv.base] + (["that"] if self.p(0.4) else []) + e + [tv.finite(ei.num, self.c(("pres", "past")))]
        return q + ["?"], q + o + ["?"], wh

    def wh_subject_gap(self):
        tv = self.c(TR_FOR_SUBJ[HUMAN])
        verb = tv.finite(SG, self.c(("pres", "past")))
        o = self.obj(tv)[0]
        e, _ = self.subj(HUMAN, SG, name=0.15)
        return ["who", verb] + o + ["?"], ["who"] + e + [verb] + o + ["?"], "who"

    def rc_gap(self):
        s, si, rc, tv, en = self.obj_rc()
        rc = rc + [tv.finite(en, self.c(("pres", "past")))]
        filler = self.det_np(self.noun(self.g.cls(tv.obj)), self.g.num())
        v, o = self.intr_or_tr(si.cls)
        tail = [v.finite(si.num, self.c(("pres", "past")))] + o + ["."]
        return s + rc + tail, s + rc + filler + tail, si.num

    # ellipsis ------------------------------------------------------------------
    def _ell_first(self, kind: str):
        """(words of the first conjunct, ellipsis aux kind, subject class)."""
        if kind == "cop":
            s, si = self.subj("animate" if self.p(0.7) else THING, adj=0.05, name=0.15)
            past = self.p(0.4)
            aux = (("is", "are"), ("was", "were"))[past][si.num == PL]
            return s + [aux, self.c(ADJ[si.cls])], ("be_past" if past else "be_pres"), si.cls
        s, si = self.subj("animate", adj=0.05, name=0.15)
        v, o = self.intr_or_tr(si.cls)
        if kind == "perf":
            return s + ["has" if si.num == SG else "have", v.pp] + o, "have", si.cls
        past = kind == "past"
        return s + [v.finite(si.num, "past" if past else "pres")] + o, ("did" if past else "do"), si.cls

    _ELL_AUX = {"do": ("does", "do"), "did": ("did", "did"), "have": ("has", "have"),
                "be_pres": ("is", "are"), "be_past": ("was", "were")}

    def _ell(self, first, ell, s2, n2, aux_good, aux_bad, so: bool):
        if so:
            return first + ["and", "so", aux_good] + s2 + ["."], first + ["and", "so", aux_bad] + s2 + ["."]
        return first + ["and"] + s2 + [aux_good, "too", "."], first + ["and"] + s2 + [aux_bad, "too", "."]

    def ellipsis_agreement(self, so: bool):
        kind = self.c(("pres", "pres", "perf", "cop"))
        first, ell, cls = self._ell_first(kind)
        if ell == "be_past":
            ell = "be_pres"
            first = [("is" if w == "was" else "are" if w == "were" else w) for w in first]
        s2, s2i = self.subj(cls, adj=0.05, name=0.15)
        good, bad = self._ELL_AUX[ell][::1 if s2i.num == SG else -1]
        g, b = self._ell(first, ell, s2, s2i.num, good, bad, so)
        return g, b, s2i.num

    def ellipsis_tense(self):
        past = self.p(0.5)
        first, ell, cls = self._ell_first("past" if past else "pres")
        s2, s2i = self.subj(cls, adj=0.05, name=0.15)
        pres_aux = "does" if s2i.num == SG else "do"
        good, bad = ("did", pres_aux) if past else (pres_aux, "did")
        g, b = self._ell(first, ell, s2, s2i.num, good, bad, self.p(0.4))
        return g, b, "past" if past else "pres"

    def ellipsis_aux_type(self):
        cop = self.p(0.5)
        past = self.p(0.4)
        if cop:
            first, ell, cls = self._ell_first("cop")
            past = ell == "be_past"
        else:
            first, ell, cls = self._ell_first("past" if past else "pres")
        s2, s2i = self.subj(cls, adj=0.05, name=0.15)
        i = 0 if s2i.num == SG else 1
        be = self._ELL_AUX["be_past" if past else "be_pres"][i]
        do = self._ELL_AUX["did" if past else "do"][i]
        good, bad = (be, do) if cop else (do, be)
        g, b = self._ell(first, ell, s2, s2i.num, good, bad, self.p(0.4))
        return g, b, "copula" if cop else "verb"

    # irregular forms -------------------------------------------------------------
    def irregular_past(self):
        v = self.c(IRREGULAR_PP)
        s, si = self.subj("animate" if v.subj != HUMAN else HUMAN, name=0.15)
        o = self.obj(v)[0] if v.kind == "tr" else []
        return s + [v.past] + o + ["."], s + [v.pp] + o + ["."], v.base

    def irregular_perfect(self):
        v = self.c(IRREGULAR_PP)
        s, si = self.subj("animate" if v.subj != HUMAN else HUMAN, name=0.15)
        o = self.obj(v)[0] if v.kind == "tr" else []
        aux = "has" if si.num == SG else "have"
        return s + [aux, v.pp] + o + ["."], s + [aux, v.past] + o + ["."], v.base

    # world knowledge -------------------------------------------------------------
    def _animal_subject(self):
        a = self.c(ANIMALS)
        w, i = self.g.np(ANIMAL, noun=a, pp=0.15, adj=0.12)
        return [x for x, _ in w], i, a

    def _fact_verb(self, v: Verb, num: str, tense: str) -> list[str]:
        if tense == "perf":
            return ["has" if num == SG else "have", v.pp]
        if tense == "often":
            return [self.c(("often", "always")), v.finite(num, self.c(("pres", "past")))]
        return [v.finite(num, tense)]

    def animal_sound(self):
        s, si, a = self._animal_subject()
        wrong = self.c(tuple(x for x in ANIMALS if x is not a))
        tense = self.c(("pres", "pres", "past", "perf", "often"))
        g = self._fact_verb(SOUND[a.sound], si.num, tense)
        b = self._fact_verb(SOUND[wrong.sound], si.num, tense)
        if tense == "often":
            b[0] = g[0]
            b[1] = SOUND[wrong.sound].finite(si.num, "past" if g[1] == SOUND[a.sound].past else "pres")
        return s + g + ["."], s + b + ["."], a.sg

    def animal_sound_subject(self):
        a = self.c(ANIMALS)
        wrong = self.c(tuple(x for x in ANIMALS if x is not a))
        num = self.g.num()
        det = self.c(SG_DETS if num == SG else PL_DETS)
        tense = self.c(("pres", "past", "perf"))
        vb = self._fact_verb(SOUND[a.sound], num, tense)
        return self.det_np(a, num, det) + vb + ["."], self.det_np(wrong, num, det) + vb + ["."], a.sg

    def animal_food(self):
        s, si, a = self._animal_subject()
        wrong = self.c(tuple(x for x in ANIMALS if x is not a))
        tense = self.c(("pres", "pres", "past", "perf"))
        vb = self._fact_verb(EAT, si.num, tense)
        return s + vb + [a.food, "."], s + vb + [wrong.food, "."], a.sg

    def object_color(self):
        t = self.c(COLOR_THINGS)
        wrong = self.c(tuple(c for c in COLORS if c != t.color))
        w, i = self.g.np(THING, noun=t, pp=0.15)
        s = [x for x, _ in w]
        aux = (("is", "are"), ("was", "were"))[self.p(0.3)][i.num == PL]
        return s + [aux, t.color, "."], s + [aux, wrong, "."], t.sg


# (UID, linguistics_term, field, generator)
def _blimp_specs(P: _Pairs):
    sva, dna, ana = "subject_verb_agreement", "determiner_noun_agreement", "anaphor_agreement"
    npi, arg, fg, ell = "npi_licensing", "argument_structure", "filler_gap_dependency", "ellipsis"
    return [
        ("regular_plural_subject_verb_agreement_1", sva, "morphology", lambda: P.sva_verb(False)),
        ("regular_plural_subject_verb_agreement_2", sva, "morphology", lambda: P.sva_noun(False)),
        ("irregular_plural_subject_verb_agreement_1", sva, "morphology", lambda: P.sva_verb(True)),
        ("irregular_plural_subject_verb_agreement_2", sva, "morphology", lambda: P.sva_noun(True)),
        ("distractor_agreement_relational_noun", sva, "morphology", P.sva_pp),
        ("distractor_agreement_relative_clause", sva, "morphology", P.sva_subj_rc),
        ("distractor_agreement_object_relative_clause", sva, "morphology", P.sva_obj_rc),
        ("agreement_within_object_relative_clause", sva, "morphology", P.sva_in_obj_rc),
        ("agreement_sentential_complement", sva, "morphology", P.sva_sent_comp),
        ("agreement_vp_coordination", sva, "morphology", P.sva_vp_coord),
        ("distractor_agreement_copula", sva, "morphology", P.sva_copula),
        ("auxiliary_agreement_question", sva, "morphology", P.sva_question),
        ("auxiliary_agreement_perfect", sva, "morphology", P.sva_perfect),
        ("determiner_noun_agreement_1", dna, "morphology", lambda: P.dna(swap="noun", irregular=False, adjective=False)),
        ("determiner_noun_agreement_2", dna, "morphology", lambda: P.dna(swap="det", irregular=False, adjective=False)),
        ("determiner_noun_agreement_irregular_1", dna, "morphology", lambda: P.dna(swap="noun", irregular=True, adjective=False)),
        ("determiner_noun_agreement_irregular_2", dna, "morphology", lambda: P.dna(swap="det", irregular=True, adjective=False)),
        ("determiner_noun_agreement_with_adjective_1", dna, "morphology", lambda: P.dna(swap="noun", irregular=False, adjective=True)),
        ("determiner_noun_agreement_with_adj_2", dna, "morphology", lambda: P.dna(swap="det", irregular=False, adjective=True)),
        ("determiner_noun_agreement_with_adj_irregular_1", dna, "morphology", lambda: P.dna(swap="noun", irregular=True, adjective=True)),
        ("determiner_noun_agreement_with_adj_irregular_2", dna, "morphology", lambda: P.dna(swap="det", irregular=True, adjective=True)),
        ("anaphor_gender_agreement", ana, "morphology", P.anaphor_gender),
        ("anaphor_number_agreement", ana, "morphology", P.anaphor_number),
        ("principle_A_domain_1", "binding", "syntax_semantics", P.principle_a_domain),
        ("principle_A_c_command", "binding", "syntax_semantics", P.principle_a_c_command),
        ("npi_present_1", npi, "semantics", P.npi_present_1),
        ("npi_present_2", npi, "semantics", P.npi_present_2),
        ("sentential_negation_npi_licensor_present", npi, "semantics", P.npi_negation),
        ("matrix_question_npi_licensor_present", npi, "semantics", P.npi_question),
        ("no_npi_licensor_present", npi, "semantics", lambda: _punct(P.npi_no("any"))),
        ("npi_scope_relative_clause", npi, "semantics", lambda: _punct(P.npi_scope("any"))),
        ("transitive", arg, "syntax", P.transitive),
        ("intransitive", arg, "syntax", P.intransitive),
        ("animate_subject_trans", arg, "syntax", P.animate_subject),
        ("wh_vs_that_no_gap", fg, "syntax", P.wh_vs_that_no_gap),
        ("wh_vs_that_with_gap", fg, "syntax", P.wh_vs_that_with_gap),
        ("wh_questions_object_gap", fg, "syntax", P.wh_object_gap),
        ("wh_questions_object_gap_long_distance", fg, "syntax", P.wh_object_gap_long),
        ("wh_questions_subject_gap", fg, "syntax", P.wh_subject_gap),
        ("relative_clause_object_gap", fg, "syntax", P.rc_gap),
        ("ellipsis_aux_agreement", ell, "syntax", lambda: P.ellipsis_agreement(False)),
        ("ellipsis_so_inversion_agreement", ell, "syntax", lambda: P.ellipsis_agreement(True)),
        ("ellipsis_tense_match", ell, "syntax", P.ellipsis_tense),
        ("ellipsis_aux_type", ell, "syntax", P.ellipsis_aux_type),
        ("irregular_past_participle_verbs", "irregular_forms", "morphology", P.irregular_past),
        ("irregular_perfect_participle", "irregular_forms", "morphology", P.irregular_perfect),
    ]


def _punct(t):
    g, b, case = t
    return g + ["."], b + ["."], case


def _nonsyntactic_specs(P: _Pairs):
    wk = "world_knowledge"
    return [
        ("animal_sound_knowledge", wk, "semantics", P.animal_sound),
        ("animal_sound_subject_knowledge", wk, "semantics", P.animal_sound_subject),
        ("animal_food_knowledge", wk, "semantics", P.animal_food),
        ("object_color_knowledge", wk, "semantics", P.object_color),
    ]


# ---- Marvin & Linzen templates (no final punctuation) ------------------------------------


def _tse_specs(P: _Pairs):
    g = P.g

    def human(num):
        return P.det_np(P.noun(HUMAN), num, "the")

    def thing(num):
        return P.det_np(P.noun(THING), num, "the")

    def nums():
        return P.g.num(), P.g.num()

    def agree(v: Verb, num):
        return P.flip(v, num)

    def case(n1, role1, n2=None, role2=None):
        c = f"{'sing' if n1 == SG else 'plur'}_{role1}"
        if n2 is not None:
            c += f"_{'sing' if n2 == SG else 'plur'}_{role2}"
        return c

    def intr():
        return P.c(INTR_FOR[HUMAN])

    def simple_agrmt():
        n = g.num()
        s = human(n)
        gd, bd = agree(intr(), n)
        return s + [gd], s + [bd], case(n, "MS_MV")

    def sent_comp():
        n, m = nums()
        main = human(m) + [P.c(SENTENTIAL[:5]).past]
        s = human(n)
        gd, bd = agree(intr(), n)
        return main + s + [gd], main + s + [bd], case(n, "MS_MV", m, "BS")

    def vp_coord():
        n = g.num()
        s = human(n)
        v1 = intr()
        v2 = P.c(tuple(v for v in INTR_FOR[HUMAN] if v is not v1))
        gd, bd = agree(v2, n)
        first = s + [v1.finite(n, "pres"), "and"]
        return first + [gd], first + [bd], case(n, "MS_MV")

    def long_vp_coord():
        n = g.num()
        s = human(n)
        v1 = P.c(TR_FOR_SUBJ[HUMAN])
        v2 = P.c(tuple(v for v in TR_FOR_SUBJ[HUMAN] if v is not v1))
        o1 = P.obj(v1, adj=0.3)[0]
        o2 = P.obj(v2, adj=0.3)[0]
        gd, bd = agree(v2, n)
        first = s + [v1.finite(n, "pres")] + o1 + ["and"]
        return first + [gd] + o2, first + [bd] + o2, case(n, "MS_MV")

    def prep(anim: bool):
        def f():
            n, m = nums()
            s = human(n) if anim else thing(n)
            att = [P.c(PREPS)] + human(m)
            if anim:
                gd, bd = agree(intr(), n)
                return s + att + [gd], s + att + [bd], case(n, "MS_MV", m, "ES")
            gd, bd = ("is", "are")[::1 if n == SG else -1]
            adj = P.c(ADJ_THING)
            return s + att + [gd, adj], s + att + [bd, adj], case(n, "MS_MV", m, "ES")
        return f

    def subj_rel():
        n, m = nums()
        tv = P.c(TR_FOR_SUBJ[HUMAN])
        rc = ["that", tv.finite(n, "pres")] + P.det_np(P.noun(g.cls(tv.obj)), m, "the")
        s = human(n)
        gd, bd = agree(intr(), n)
        return s + rc + [gd], s + rc + [bd], case(n, "MS_MV", m, "ES")

    def obj_rel(anim: bool, within: bool, comp: bool):
        def f():
            n, m = nums()
            s = human(n) if anim else thing(n)
            tv = P.c(tuple(v for v in TR_FOR_OBJ[HUMAN if anim else THING] if v.subj in (HUMAN, "animate")))
            es = human(m)
            rc = (["that"] if comp else []) + es
            if anim:
                mg, mb = agree(intr(), n)
                main_good, main_bad = [mg], [mb]
            else:
                mg, mb = ("is", "are")[::1 if n == SG else -1]
                adj = P.c(ADJ_THING)
                main_good, main_bad = [mg, adj], [mb, adj]
            if within:
                eg, eb = agree(tv, m)
                return s + rc + [eg] + main_good, s + rc + [eb] + main_good, case(m, "ES_EV", n, "MS")
            ev = tv.finite(m, "pres")
            return s + rc + [ev] + main_good, s + rc + [ev] + main_bad, case(n, "MS_MV", m, "ES")
        return f

    def refl_pair(n, gender, pick):
        return reflexive(n, HUMAN, gender, pick), _wrong_reflexive(n, HUMAN, pick)

    def simple_reflexives():
        n = g.num()
        hn = P.noun(HUMAN)
        s = P.det_np(hn, n, "the")
        v = P.c(REFL_FOR[HUMAN])
        gd, bd = refl_pair(n, hn.gender, P.r.random())
        return s + [v.past, gd], s + [v.past, bd], case(n, "MS_ANPH")

    def reflexive_sent_comp():
        n, m = nums()
        if n == m:
            m = P.other(n)
        main = human(m) + [P.c(SENTENTIAL[:5]).past]
        hn = P.noun(HUMAN)
        s = P.det_np(hn, n, "the")
        v = P.c(REFL_FOR[HUMAN])
        gd, bd = refl_pair(n, hn.gender, P.r.random())
        return main + s + [v.past, gd], main + s + [v.past, bd], case(n, "MS_ANPH", m, "BS")

    def reflexives_across():
        n, m = nums()
        hn = P.noun(HUMAN)
        s = P.det_np(hn, n, "the")
        tv = P.c(tuple(v for v in TR_FOR_OBJ[HUMAN] if v.subj in (HUMAN, "animate")))
        rc = ["that"] + human(m) + [tv.finite(m, "pres")]
        v = P.c(REFL_FOR[HUMAN])
        gd, bd = refl_pair(n, hn.gender, P.r.random())
        return s + rc + [v.past, gd], s + rc + [v.past, bd], case(n, "MS_ANPH", m, "ES")

    def simple_npi(anim: bool):
        def f():
            gd, bd, n = P.npi_no(HUMAN if anim else THING)
            return gd, bd, case(n, "MS")
        return f

    def npi_across(anim: bool):
        def f():
            gd, bd, c = P.npi_scope(HUMAN if anim else THING)
            n, m = c.split("_")
            return gd, bd, case(n, "MS", m, "ES")
        return f

    specs = [
        ("simple_agrmt", simple_agrmt), ("sent_comp", sent_comp), ("vp_coord", vp_coord),
        ("long_vp_coord", long_vp_coord), ("prep_anim", prep(True)), ("prep_inanim", prep(False)),
        ("subj_rel", subj_rel),
    ]
    for anim in (True, False):
        a = "anim" if anim else "inanim"
        specs += [
            (f"obj_rel_across_{a}", obj_rel(anim, False, True)),
            (f"obj_rel_within_{a}", obj_rel(anim, True, True)),
            (f"obj_rel_no_comp_across_{a}", obj_rel(anim, False, False)),
            (f"obj_rel_no_comp_within_{a}", obj_rel(anim, True, False)),
        ]
    specs += [
        ("simple_reflexives", simple_reflexives), ("reflexive_sent_comp", reflexive_sent_comp),
        ("reflexives_across", reflexives_across),
        ("simple_npi_anim", simple_npi(True)), ("simple_npi_inanim", simple_npi(False)),
        ("npi_across_anim", npi_across(True)), ("npi_across_inanim", npi_across(False)),
    ]
    return specs


def _collect(gen: Callable, n: int, max_tries: int) -> list[tuple[str, str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    tries = 0
    while len(out) < n and tries < max_tries:
        tries += 1
        good, bad, case = gen()
        gs, bs = _j(good), _j(bad)
        if gs == bs or (gs, bs) in seen:
            continue
        seen.add((gs, bs))
        out.append((gs, bs, str(case)))
    return out


def _jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows)


def _seeded(seed: int, stream: str) -> random.Random:
    return random.Random(f"negdiff-corpus/{seed}/{stream}")


def build_suites(seed: int, pairs_per_paradigm: int):
    """All minimal-pair suites: {"blimp": {uid: rows}, "tse": {template: rows}, "nonsyntactic": {uid: rows}}."""
    suites: dict[str, dict[str, list[dict]]] = {"blimp": {}, "tse": {}, "nonsyntactic": {}}
    max_tries = 50 * pairs_per_paradigm + 200
    for suite, specs_fn in (("blimp", _blimp_specs), ("nonsyntactic", _nonsyntactic_specs)):
        for uid, term, field, gen in specs_fn(_Pairs(_seeded(seed, suite))):
            rows = _collect(gen, pairs_per_paradigm, max_tries)
            suites[suite][uid] = [
                {"sentence_good": g, "sentence_bad": b, "field": field, "linguistics_term": term, "UID": uid,
                 "simple_LM_method": True, "one_prefix_method": True, "two_prefix_method": False,
                 "lexically_identical": False, "pairID": str(i)}
                for i, (g, b, _) in enumerate(rows)
            ]
    for template, gen in _tse_specs(_Pairs(_seeded(seed, "tse"))):
        rows = _collect(gen, pairs_per_paradigm, max_tries)
        suites["tse"][template] = [
            {"sentence_good": g, "sentence_bad": b, "template": template, "case": c, "pairID": str(i)}
            for i, (g, b, c) in enumerate(rows)
        ]
    return suites


# ------------------------------------------------------------------------------ entry point


def generate_corpus(out_dir, *, seed: int = 0, train_words: int = 3_000_000, valid_words: int = 100_000,
                    test_words: int = 100_000, pairs_per_paradigm: int = 200) -> dict:
    """Write the corpus, its POS tags and all minimal-pair suites into ``out_dir``; return the manifest.

    Every file is written atomically; ``manifest.json`` is written last (and holds no timings, so
    the same seed gives byte-identical files).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suites = build_suites(seed, pairs_per_paradigm)
    forbidden: set[str] = set()
    for rows_by_name in suites.values():
        for rows in rows_by_name.values():
            for r in rows:
                forbidden.add(_norm(r["sentence_good"]))
                forbidden.add(_norm(r["sentence_bad"]))

    splits = {}
    for split, n_words in (("train", train_words), ("valid", valid_words), ("test", test_words)):
        lines, tags, total, rejected = _generate_split(_seeded(seed, split), n_words, forbidden)
        write_text(out / f"{split}.txt", "\n".join(lines) + "\n" if lines else "")
        write_text(out / f"{split}.pos", "\n".join(tags) + "\n" if tags else "")
        splits[split] = {"words": total, "sentences": len(lines), "requested_words": n_words,
                         "rejected_pair_collisions": rejected,
                         "mean_sentence_words": round(total / max(len(lines), 1), 3)}

    manifest_suites: dict[str, list[dict]] = {}
    for suite, rows_by_name in suites.items():
        d = out / suite
        d.mkdir(parents=True, exist_ok=True)
        for name, rows in rows_by_name.items():
            write_text(d / f"{name}.jsonl", _jsonl(rows))
        for stale in d.glob("*.jsonl"):
            if stale.stem not in rows_by_name:
                stale.unlink()
        entries = []
        for name, rows in rows_by_name.items():
            if suite == "tse":
                cases: dict[str, int] = {}
                for r in rows:
                    cases[r["case"]] = cases.get(r["case"], 0) + 1
                entries.append({"template": name, "count": len(rows), "cases": dict(sorted(cases.items()))})
            else:
                entries.append({"UID": name, "count": len(rows), "linguistics_term": rows[0]["linguistics_term"] if rows else None,
                                "field": rows[0]["field"] if rows else None})
        manifest_suites[suite] = entries

    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "negdiff.corpus",
        "seed": seed,
        "pairs_per_paradigm": pairs_per_paradigm,
        "splits": splits,
        "word_counts": {k: v["words"] for k, v in splits.items()},
        "sentence_counts": {k: v["sentences"] for k, v in splits.items()},
        "paradigms": manifest_suites["blimp"],
        "templates": manifest_suites["tse"],
        "nonsyntactic": manifest_suites["nonsyntactic"],
        "n_pair_sentences_excluded": len(forbidden),
        "pos_tags": list(POS_TAGS),
        "lexicon_size": len(lexicon()),
        "max_sentence_words": MAX_WORDS,
    }
    write_json(out / "manifest.json", manifest)
    return manifest


# ------------------------------------------------------------------------------ readers

REQUIRED_PAIR_FIELDS = ("sentence_good", "sentence_bad")


def read_pairs(path_or_dir) -> list[dict]:
    """Read one ``.jsonl`` file, or every ``*.jsonl`` in a directory (sorted by file name).

    Raises ``ValueError`` naming the file and line for malformed JSON, a non-object line, missing or
    non-string ``sentence_good``/``sentence_bad``, or a line with neither ``UID`` nor ``template``.
    Blank lines are skipped.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"), key=lambda p: p.name)
        if not files:
            raise ValueError(f"{path}: no .jsonl files")
    elif path.exists():
        files = [path]
    else:
        raise FileNotFoundError(
            f"minimal-pair benchmark {path} does not exist: expected a .jsonl file or a directory of "
            "*.jsonl files (one JSON object per line with sentence_good, sentence_bad and UID or template)"
        )
    rows: list[dict] = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{f}:{lineno}: invalid JSON: {err.msg}") from None
                if not isinstance(obj, dict):
                    raise ValueError(f"{f}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                for key in REQUIRED_PAIR_FIELDS:
                    if not isinstance(obj.get(key), str) or not obj[key].strip():
                        raise ValueError(f"{f}:{lineno}: missing or empty field {key!r}")
                if "UID" not in obj and "template" not in obj:
                    raise ValueError(f"{f}:{lineno}: missing field 'UID' (or 'template')")
                rows.append(obj)
    return rows


# str.isspace() code points: whitespace separates words exactly as str.split() does
_SPACE_CODES = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760, *range(8192, 8203), 8232, 8233, 8239, 8287, 12288)
_SPACE_LUT = np.zeros(_SPACE_CODES[-1] + 1, dtype=bool)
_SPACE_LUT[list(_SPACE_CODES)] = True


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Character (start, end) offsets of the whitespace-delimited words of ``text`` (as str.split())."""
    if not text:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        is_space = _SPACE_LUT[:256][codes]
    else:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        is_space = _SPACE_LUT[np.minimum(codes, len(_SPACE_LUT) - 1)] & (codes < len(_SPACE_LUT))
    edges = np.diff(np.concatenate(([1], is_space.view(np.int8), [1])).astype(np.int8))
    return np.flatnonzero(edges == -1).astype(np.int64), np.flatnonzero(edges == 1).astype(np.int64)


_SPAN_CACHE: dict = {}


def _spans_and_tags(text: str, pos_lines):
    key = (text, pos_lines) if isinstance(pos_lines, str) else None
    if key is not None and key in _SPAN_CACHE:
        return _SPAN_CACHE[key]
    if isinstance(pos_lines, str):
        tags = pos_lines.split()
    else:
        tags = [t for line in pos_lines for t in (line.split() if isinstance(line, str) else line)]
    starts, ends = word_spans(text)
    if len(tags) != len(starts):
        raise ValueError(f"text has {len(starts)} words but {len(tags)} POS tags were given")
    value = (starts, ends, tags)
    if key is not None:
        _SPAN_CACHE.clear()          # keep only the latest split (texts are large)
        _SPAN_CACHE[key] = value
    return value


def word_pos_for_offsets(text: str, pos_lines, offsets) -> list[str | None]:
    """POS tag of the word each token overlaps most (ties: the first such word); None for no overlap.

    ``text`` is a split's text exactly as read from its ``.txt`` file; ``pos_lines`` is the
    ``.pos`` content (str) or its parsed lines (list of tag lists); ``offsets`` are the tokens'
    character (start, end) spans into ``text``. Empty spans (e.g. (0, 0) of special tokens) give None.
    Word spans are cached for the latest (text, str pos) pair, so calling batch by batch is cheap.
    """
    starts, ends, tags = _spans_and_tags(text, pos_lines)
    return align_tags(starts, ends, tags, offsets)


__all__ = [
    "POS_TAGS", "FORMAT_VERSION", "generate_corpus", "read_pairs", "word_pos_for_offsets", "word_spans",
    "lexicon", "build_suites",
]


def sample_pairs(pairs: list[dict], per_group: int | str, seed: int = 0) -> list[dict]:
    """A seeded sample of ``per_group`` pairs of each paradigm (``UID``) or TSE template, in file order.

    ``"all"`` (or a count at least the group's size) keeps every pair. Each group's sample is drawn
    with ``numpy.random.default_rng(SeedSequence([seed, crc32(group)]))``, so it depends only on the
    seed, the group name and that group's pairs, never on the other files present."""
    import zlib

    groups: dict[str, list[int]] = {}
    for k, pair in enumerate(pairs):
        groups.setdefault(pair.get("UID") or pair.get("template") or "", []).append(k)
    if per_group == "all":
        return list(pairs)
    if isinstance(per_group, bool) or not isinstance(per_group, int) or per_group < 1:
        raise ValueError(f"pairs per paradigm must be a positive int or 'all', got {per_group!r}")
    keep: list[int] = []
    for name, idx in groups.items():
        if len(idx) <= per_group:
            keep.extend(idx)
            continue
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))
        keep.extend(idx[j] for j in rng.choice(len(idx), size=per_group, replace=False))
    return [pairs[k] for k in sorted(keep)]


def load_suite(where: str, *, builtin_dir: str | Path | None = None) -> list[dict]:
    """Minimal pairs from ``"builtin"`` (the generated suite in ``builtin_dir``), ``"english"`` (the
    real-English fact suite of :mod:`negdiff.facts`), a directory or file of JSON lines, or
    ``"hf:DATASET"`` (every config of a Hugging Face dataset, e.g. ``hf:nyu-mll/blimp``, split "train")."""
    if where == "english":
        from negdiff.facts import english_fact_pairs

        return english_fact_pairs()
    if where == "builtin":
        if builtin_dir is None:
            raise ValueError("the built-in suite needs its directory")
        return read_pairs(builtin_dir)
    if where.startswith("hf:"):
        name = where[3:]
        try:
            import datasets
        except ImportError:
            raise ImportError(f"suite {where!r} needs the `datasets` package (pip install datasets)") from None
        try:
            configs = datasets.get_dataset_config_names(name)
            pairs = []
            for cfg in sorted(configs):
                pairs.extend(dict(row) for row in datasets.load_dataset(name, cfg, split="train"))
        except Exception as err:
            raise RuntimeError(
                f"could not load suite {where!r} ({type(err).__name__}: {err}); offline, point the suite at a "
                "local directory of JSON-lines files instead (e.g. BLiMP's data/*.jsonl)"
            ) from None
        return pairs
    path = Path(where)
    if not path.exists():
        raise FileNotFoundError(f"benchmark suite {where!r} does not exist: expected a directory of *.jsonl files")
    return read_pairs(path)

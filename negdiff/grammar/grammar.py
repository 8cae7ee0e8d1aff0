"""The toy grammar's sentences: noun phrases, clauses and the seeded generation of a text split."""

from __future__ import annotations

import random
from typing import Sequence

from negdiff.grammar.lexicon import (
    ADJ,
    ADJ_THING,
    ANIMAL,
    COLOR_THINGS,
    EAT,
    HUMAN,
    INTR_FOR,
    NAME_LIST,
    NOUNS,
    PL,
    PL_DETS,
    PREPS,
    REFL_FOR,
    SENTENTIAL,
    SG,
    SG_DETS,
    SOUND,
    THING,
    TR_FOR_OBJ,
    TR_FOR_SUBJ,
    TRANSITIVE,
    Noun,
    Verb,
)


class NPInfo:
    __slots__ = ("num", "cls", "gender", "lic", "noun", "det")

    def __init__(self, num, cls, gender=None, lic=False, noun=None, det=None):
        self.num, self.cls, self.gender, self.lic, self.noun, self.det = num, cls, gender, lic, noun, det


def fix_article(words: list) -> list:
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


def wrong_reflexive(num: str, cls: str, pick: float) -> str:
    """A reflexive of the other number."""
    if num == SG:
        return "themselves"
    if cls == ANIMAL:
        return "itself"
    return "himself" if pick < 0.5 else "herself"


class Grammar:
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
        return fix_article(words), NPInfo(num, cls, noun.gender, det == "no", noun, det)

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


MAX_WORDS = 25


def normalise(sentence: str) -> str:
    """Pair/corpus comparison key: single spaces, no final punctuation."""
    words = sentence.split()
    while words and words[-1] in (".", "?", "!"):
        words.pop()
    return " ".join(words)


def generate_split(rng: random.Random, n_words: int, forbidden: set[str]):
    g = Grammar(rng)
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

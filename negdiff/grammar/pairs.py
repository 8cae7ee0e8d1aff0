"""Minimal-pair generators: for each paradigm, a good sentence of the grammar and its one-change bad twin."""

from __future__ import annotations

import random

from negdiff.grammar.grammar import (
    Grammar,
    NPInfo,
    allowed_reflexives,
    fix_article,
    reflexive,
    wrong_reflexive,
)
from negdiff.grammar.lexicon import (
    ADJ,
    ADJ_THING,
    ANIMAL,
    ANIMALS,
    COLOR_THINGS,
    COLORS,
    DET_SWAPS,
    EAT,
    HUMAN,
    HUMANS,
    INTR_FOR,
    IRREGULAR_PP,
    NAME_LIST,
    NAMES,
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
    fits_role,
)


def join_words(words) -> str:
    return " ".join(w for w, _ in words) if words and isinstance(words[0], tuple) else " ".join(words)


class PairGenerator:
    """Minimal-pair generators. Each returns (good_words, bad_words) as lists of strings, plus a case."""

    def __init__(self, rng: random.Random):
        self.g = Grammar(rng)
        self.r = rng

    # helpers -------------------------------------------------------------
    def p(self, x):
        return self.r.random() < x

    def c(self, seq):
        return self.g.c(seq)

    def det_np(self, noun: Noun, num: str, det: str | None = None, adj: str | None = None) -> list[str]:
        det = det or self.c(SG_DETS if num == SG else PL_DETS)
        words = [(det, "DET")] + ([(adj, "ADJ")] if adj else []) + [(noun.form(num), "NOUN")]
        return [w for w, _ in fix_article(words)]

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
        tv = self.c(tuple(v for v in TR_FOR_SUBJ[si.cls] if fits_role(v.obj, cls)))
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
        bad = wrong_reflexive(si.num, si.cls, pick)
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

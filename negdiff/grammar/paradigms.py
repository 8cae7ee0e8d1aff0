"""The paradigms of the built-in suites: BLiMP-style (UID, term, field), Marvin & Linzen templates, and
the non-syntactic fact pairs, each a generator of :class:`negdiff.grammar.pairs.PairGenerator`."""

from __future__ import annotations

from functools import partial

from negdiff.grammar.grammar import reflexive, wrong_reflexive
from negdiff.grammar.lexicon import (
    ADJ_THING,
    HUMAN,
    INTR_FOR,
    PREPS,
    REFL_FOR,
    SENTENTIAL,
    SG,
    THING,
    TR_FOR_OBJ,
    TR_FOR_SUBJ,
)
from negdiff.grammar.pairs import PairGenerator


def blimp_specs(P: PairGenerator):
    """(UID, linguistics_term, field, generator) of every BLiMP-style paradigm, in file order."""
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
        ("no_npi_licensor_present", npi, "semantics", lambda: with_punct(P.npi_no("any"))),
        ("npi_scope_relative_clause", npi, "semantics", lambda: with_punct(P.npi_scope("any"))),
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


def with_punct(t):
    g, b, case = t
    return g + ["."], b + ["."], case


def nonsyntactic_specs(P: PairGenerator):
    wk = "world_knowledge"
    return [
        ("animal_sound_knowledge", wk, "semantics", P.animal_sound),
        ("animal_sound_subject_knowledge", wk, "semantics", P.animal_sound_subject),
        ("animal_food_knowledge", wk, "semantics", P.animal_food),
        ("object_color_knowledge", wk, "semantics", P.object_color),
    ]


# ---- Marvin & Linzen templates (no final punctuation) ------------------------------------


def _case(n1, role1, n2=None, role2=None) -> str:
    """A TSE case label: ``sing_MS_MV``, ``plur_MS_MV_sing_ES`` ..."""
    c = f"{'sing' if n1 == SG else 'plur'}_{role1}"
    if n2 is not None:
        c += f"_{'sing' if n2 == SG else 'plur'}_{role2}"
    return c


class TseTemplates:
    """The Marvin & Linzen templates over one :class:`PairGenerator`; each returns (good, bad, case)."""

    def __init__(self, P: PairGenerator):
        self.P = P
        self.g = P.g

    # helpers -----------------------------------------------------------------
    def human(self, num):
        return self.P.det_np(self.P.noun(HUMAN), num, "the")

    def thing(self, num):
        return self.P.det_np(self.P.noun(THING), num, "the")

    def nums(self):
        return self.g.num(), self.g.num()

    def intr(self):
        return self.P.c(INTR_FOR[HUMAN])

    @staticmethod
    def refl_pair(n, gender, pick):
        return reflexive(n, HUMAN, gender, pick), wrong_reflexive(n, HUMAN, pick)

    # agreement ---------------------------------------------------------------
    def simple_agrmt(self):
        n = self.g.num()
        s = self.human(n)
        gd, bd = self.P.flip(self.intr(), n)
        return s + [gd], s + [bd], _case(n, "MS_MV")

    def sent_comp(self):
        P = self.P
        n, m = self.nums()
        main = self.human(m) + [P.c(SENTENTIAL[:5]).past]
        s = self.human(n)
        gd, bd = P.flip(self.intr(), n)
        return main + s + [gd], main + s + [bd], _case(n, "MS_MV", m, "BS")

    def vp_coord(self):
        P = self.P
        n = self.g.num()
        s = self.human(n)
        v1 = self.intr()
        v2 = P.c(tuple(v for v in INTR_FOR[HUMAN] if v is not v1))
        gd, bd = P.flip(v2, n)
        first = s + [v1.finite(n, "pres"), "and"]
        return first + [gd], first + [bd], _case(n, "MS_MV")

    def long_vp_coord(self):
        P = self.P
        n = self.g.num()
        s = self.human(n)
        v1 = P.c(TR_FOR_SUBJ[HUMAN])
        v2 = P.c(tuple(v for v in TR_FOR_SUBJ[HUMAN] if v is not v1))
        o1 = P.obj(v1, adj=0.3)[0]
        o2 = P.obj(v2, adj=0.3)[0]
        gd, bd = P.flip(v2, n)
        first = s + [v1.finite(n, "pres")] + o1 + ["and"]
        return first + [gd] + o2, first + [bd] + o2, _case(n, "MS_MV")

    def prep(self, anim: bool):
        P = self.P
        n, m = self.nums()
        s = self.human(n) if anim else self.thing(n)
        att = [P.c(PREPS)] + self.human(m)
        if anim:
            gd, bd = P.flip(self.intr(), n)
            return s + att + [gd], s + att + [bd], _case(n, "MS_MV", m, "ES")
        gd, bd = ("is", "are")[::1 if n == SG else -1]
        adj = P.c(ADJ_THING)
        return s + att + [gd, adj], s + att + [bd, adj], _case(n, "MS_MV", m, "ES")

    def subj_rel(self):
        P = self.P
        n, m = self.nums()
        tv = P.c(TR_FOR_SUBJ[HUMAN])
        rc = ["that", tv.finite(n, "pres")] + P.det_np(P.noun(self.g.cls(tv.obj)), m, "the")
        s = self.human(n)
        gd, bd = P.flip(self.intr(), n)
        return s + rc + [gd], s + rc + [bd], _case(n, "MS_MV", m, "ES")

    def obj_rel(self, anim: bool, within: bool, comp: bool):
        P = self.P
        n, m = self.nums()
        s = self.human(n) if anim else self.thing(n)
        tv = P.c(tuple(v for v in TR_FOR_OBJ[HUMAN if anim else THING] if v.subj in (HUMAN, "animate")))
        es = self.human(m)
        rc = (["that"] if comp else []) + es
        if anim:
            mg, mb = P.flip(self.intr(), n)
            main_good, main_bad = [mg], [mb]
        else:
            mg, mb = ("is", "are")[::1 if n == SG else -1]
            adj = P.c(ADJ_THING)
            main_good, main_bad = [mg, adj], [mb, adj]
        if within:
            eg, eb = P.flip(tv, m)
            return s + rc + [eg] + main_good, s + rc + [eb] + main_good, _case(m, "ES_EV", n, "MS")
        ev = tv.finite(m, "pres")
        return s + rc + [ev] + main_good, s + rc + [ev] + main_bad, _case(n, "MS_MV", m, "ES")

    # reflexives --------------------------------------------------------------
    def simple_reflexives(self):
        P = self.P
        n = self.g.num()
        hn = P.noun(HUMAN)
        s = P.det_np(hn, n, "the")
        v = P.c(REFL_FOR[HUMAN])
        gd, bd = self.refl_pair(n, hn.gender, P.r.random())
        return s + [v.past, gd], s + [v.past, bd], _case(n, "MS_ANPH")

    def reflexive_sent_comp(self):
        P = self.P
        n, m = self.nums()
        if n == m:
            m = P.other(n)
        main = self.human(m) + [P.c(SENTENTIAL[:5]).past]
        hn = P.noun(HUMAN)
        s = P.det_np(hn, n, "the")
        v = P.c(REFL_FOR[HUMAN])
        gd, bd = self.refl_pair(n, hn.gender, P.r.random())
        return main + s + [v.past, gd], main + s + [v.past, bd], _case(n, "MS_ANPH", m, "BS")

    def reflexives_across(self):
        P = self.P
        n, m = self.nums()
        hn = P.noun(HUMAN)
        s = P.det_np(hn, n, "the")
        tv = P.c(tuple(v for v in TR_FOR_OBJ[HUMAN] if v.subj in (HUMAN, "animate")))
        rc = ["that"] + self.human(m) + [tv.finite(m, "pres")]
        v = P.c(REFL_FOR[HUMAN])
        gd, bd = self.refl_pair(n, hn.gender, P.r.random())
        return s + rc + [v.past, gd], s + rc + [v.past, bd], _case(n, "MS_ANPH", m, "ES")

    # NPIs --------------------------------------------------------------------
    def simple_npi(self, anim: bool):
        gd, bd, n = self.P.npi_no(HUMAN if anim else THING)
        return gd, bd, _case(n, "MS")

    def npi_across(self, anim: bool):
        gd, bd, c = self.P.npi_scope(HUMAN if anim else THING)
        n, m = c.split("_")
        return gd, bd, _case(n, "MS", m, "ES")


def tse_specs(P: PairGenerator):
    """(template, generator) of every Marvin & Linzen template, in the order of their files."""
    T = TseTemplates(P)
    specs = [
        ("simple_agrmt", T.simple_agrmt), ("sent_comp", T.sent_comp), ("vp_coord", T.vp_coord),
        ("long_vp_coord", T.long_vp_coord), ("prep_anim", partial(T.prep, True)),
        ("prep_inanim", partial(T.prep, False)), ("subj_rel", T.subj_rel),
    ]
    for anim in (True, False):
        a = "anim" if anim else "inanim"
        specs += [
            (f"obj_rel_across_{a}", partial(T.obj_rel, anim, False, True)),
            (f"obj_rel_within_{a}", partial(T.obj_rel, anim, True, True)),
            (f"obj_rel_no_comp_across_{a}", partial(T.obj_rel, anim, False, False)),
            (f"obj_rel_no_comp_within_{a}", partial(T.obj_rel, anim, True, False)),
        ]
    specs += [
        ("simple_reflexives", T.simple_reflexives), ("reflexive_sent_comp", T.reflexive_sent_comp),
        ("reflexives_across", T.reflexives_across),
        ("simple_npi_anim", partial(T.simple_npi, True)), ("simple_npi_inanim", partial(T.simple_npi, False)),
        ("npi_across_anim", partial(T.npi_across, True)), ("npi_across_inanim", partial(T.npi_across, False)),
    ]
    return specs

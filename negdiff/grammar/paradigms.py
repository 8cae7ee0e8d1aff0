"""The paradigms of the built-in suites: BLiMP-style (UID, term, field), Marvin & Linzen templates, and
the non-syntactic fact pairs, each a generator of :class:`negdiff.grammar.pairs.PairGenerator`."""

from __future__ import annotations



from negdiff.grammar.lexicon import (
    ADJ_THING, HUMAN, INTR_FOR, PREPS, REFL_FOR, SENTENTIAL, SG,
    THING, TR_FOR_OBJ, TR_FOR_SUBJ, Verb,
)
from negdiff.grammar.grammar import reflexive, wrong_reflexive
from negdiff.grammar.pairs import PairGenerator

def blimp_specs(P: PairGenerator):
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


def tse_specs(P: PairGenerator):
    g = P.g

    def make_human(num):
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
        s = make_human(n)
        gd, bd = agree(intr(), n)
        return s + [gd], s + [bd], case(n, "MS_MV")

    def sent_comp():
        n, m = nums()
        main = make_human(m) + [P.c(SENTENTIAL[:5]).past]
        s = make_human(n)
        gd, bd = agree(intr(), n)
        return main + s + [gd], main + s + [bd], case(n, "MS_MV", m, "BS")

    def vp_coord():
        n = g.num()
        s = make_human(n)
        v1 = intr()
        v2 = P.c(tuple(v for v in INTR_FOR[HUMAN] if v is not v1))
        gd, bd = agree(v2, n)
        first = s + [v1.finite(n, "pres"), "and"]
        return first + [gd], first + [bd], case(n, "MS_MV")

    def long_vp_coord():
        n = g.num()
        s = make_human(n)
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
            s = make_human(n) if anim else thing(n)
            att = [P.c(PREPS)] + make_human(m)
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
        s = make_human(n)
        gd, bd = agree(intr(), n)
        return s + rc + [gd], s + rc + [bd], case(n, "MS_MV", m, "ES")

    def obj_rel(anim: bool, within: bool, comp: bool):
        def f():
            n, m = nums()
            s = make_human(n) if anim else thing(n)
            tv = P.c(tuple(v for v in TR_FOR_OBJ[HUMAN if anim else THING] if v.subj in (HUMAN, "animate")))
            es = make_human(m)
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
        return reflexive(n, HUMAN, gender, pick), wrong_reflexive(n, HUMAN, pick)

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
        main = make_human(m) + [P.c(SENTENTIAL[:5]).past]
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
        rc = ["that"] + make_human(m) + [tv.finite(m, "pres")]
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

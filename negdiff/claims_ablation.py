"""Claims about what zeroing the WNs' negative pre-activations does (C1-C6, C9), one function each.

Operationalisations, fixed before any model's result was looked at (positive = the paper's direction):

- **C1 / C9**: BLiMP / TSE accuracy drop under neg_zero on the WNs minus the drop on random neurons
  (same count per layer; the control's seeds are resampled with the pairs).
- **C2**: the same against the perplexity-matched set; ``n/a`` when the match did not converge.
- **C3**: the interaction (WN syntax drop − WN non-syntactic drop) − (matched syntax drop − matched
  non-syntactic drop), both simple effects beside it.
- **C4**: difference in differences of excess surprisal, (function − content POS) under the WNs minus
  the same under the matched set; text resampled in windows of consecutive tokens.
- **C5a/b/c**: the first layer group's single-group drop minus the largest other; the least-squares
  rise of the cumulative drop from the first to the last group; the all-groups drop minus the largest
  single-group drop.
- **C6**: the least-squares change, over the checkpoints whose baseline BLiMP accuracy is above chance
  (the lower end of its 95% interval above ``claims.chance``), of the WN drop minus the random drop.

A neg_zero claim is ``n/a`` on a model where neg_zero is the identity (ReLU), with that reason.
"""

from __future__ import annotations

import numpy as np

from negdiff.claim_data import surprisal_blocks
from negdiff.claim_registry import (
    Context,
    Finding,
    claim,
    drop,
    fitted_change,
    matched_note,
    matched_reason,
    neg_zero_reason,
    pair_finding,
    seeds_note,
)
from negdiff.conditions import set_name
from negdiff.stats import Draw, Resampler


# --------------------------------------------------------------------------- accuracy claims


def _vs_random(ctx: Context, suite: str, label: str) -> Finding:
    metric = f"{label} drop (points): wn@{ctx.main_percent:g} − random@{ctx.main_percent:g}"
    ck = ctx.final
    if ck is None:
        return Finding(metric, "accuracy_points", na="no checkpoint")
    if neg_zero_reason(ctx):
        return Finding(metric, "accuracy_points", na=neg_zero_reason(ctx))
    c = ctx.conds
    note, sd = seeds_note(ctx, suite)
    f = pair_finding(ctx, metric, lambda d, w: drop(ctx, d, w, suite, ck, c["wn"]) - drop(ctx, d, w, suite, ck, c["random"]),
                     [(suite, ck, c["wn"]), (suite, ck, c["random"])], f"final checkpoint {ck}; {note}",
                     lambda d, w: (drop(ctx, d, w, suite, ck, c["wn"]), drop(ctx, d, w, suite, ck, c["random"])))
    f.control_sd = sd
    return f


def matched_na(ctx: Context) -> str | None:
    """Why a claim against the perplexity-matched set does not apply (no checkpoint, neg_zero is the
    identity, the control did not match), or None."""
    return ("no checkpoint" if ctx.final is None else None) or neg_zero_reason(ctx) or matched_reason(ctx)


@claim("C1", "neg_zero on the WNs drops BLiMP accuracy more than on random neurons (same count per layer)")
def c1(ctx: Context) -> Finding:
    return _vs_random(ctx, "blimp", "BLiMP")


@claim("C9", "neg_zero on the WNs drops TSE accuracy more than on random neurons (same count per layer)")
def c9(ctx: Context) -> Finding:
    return _vs_random(ctx, "tse", "TSE")


@claim("C2", "neg_zero on the WNs drops BLiMP accuracy more than on a perplexity-matched set")
def c2(ctx: Context) -> Finding:
    metric = "BLiMP drop (points): wn − ppl_matched"
    ck, c = ctx.final, ctx.conds
    if matched_na(ctx):
        return Finding(metric, "accuracy_points", na=matched_na(ctx), note=matched_note(ctx))
    return pair_finding(ctx, metric, lambda d, w: drop(ctx, d, w, "blimp", ck, c["wn"]) - drop(ctx, d, w, "blimp", ck, c["ppl_matched"]),
                        [("blimp", ck, c["wn"]), ("blimp", ck, c["ppl_matched"])], matched_note(ctx),
                        lambda d, w: (drop(ctx, d, w, "blimp", ck, c["wn"]), drop(ctx, d, w, "blimp", ck, c["ppl_matched"])))


@claim("C3", "double dissociation: (WN syntax − non-syntactic drop) exceeds (matched syntax − non-syntactic drop)")
def c3(ctx: Context) -> Finding:
    metric = "interaction (points): (wn BLiMP − wn non-syn) − (matched BLiMP − matched non-syn) drops"
    ck, c = ctx.final, ctx.conds
    if matched_na(ctx):
        return Finding(metric, "accuracy_points", na=matched_na(ctx), note=matched_note(ctx))

    def gap(d, w, method):
        return drop(ctx, d, w, "blimp", ck, c[method]) - drop(ctx, d, w, "nonsyntactic", ck, c[method])

    items = [(s, ck, c[m]) for s in ("blimp", "nonsyntactic") for m in ("wn", "ppl_matched")]
    f = pair_finding(ctx, metric, lambda d, w: gap(d, w, "wn") - gap(d, w, "ppl_matched"), items, matched_note(ctx),
                     lambda d, w: (gap(d, w, "wn"), gap(d, w, "ppl_matched")))
    if f.na is None:
        rs = ctx.resampler()
        simple = []
        for m in ("wn", "ppl_matched"):
            for s in ("blimp", "nonsyntactic"):
                iv = rs.interval(lambda d, s=s, m=m: drop(ctx, d, "correct", s, ck, c[m]))
                simple.append(f"{m} {s} drop {iv.estimate:.3g} [{iv.low:.3g}, {iv.high:.3g}]")
        f.note = "; ".join([f.note] + simple) if f.note else "; ".join(simple)
    return f


def _layer_conditions(ctx: Context) -> tuple[list[str], list[str]]:
    """neg_zero wn@main conditions of the single and of the cumulative layer groups, in group order
    (those with per-pair rows at the final checkpoint); the last cumulative group is the all-scope
    condition."""
    wn, ck = set_name("wn", ctx.main_percent), ctx.final
    if ck is None:
        return [], []
    singles = []
    while ctx.pairs.has("blimp", ck, f"neg_zero|{wn}|single:{len(singles)}"):
        singles.append(f"neg_zero|{wn}|single:{len(singles)}")
    cums = [f"neg_zero|{wn}|cumulative:{g}" for g in range(len(singles) - 1)] + [ctx.conds["wn"]]
    return singles, [c for c in cums if ctx.pairs.has("blimp", ck, c)]


def _layer_claim(ctx: Context, metric: str, stat, parts, need: int = 2) -> Finding:
    ck = ctx.final
    reason = ("no checkpoint" if ck is None else None) or neg_zero_reason(ctx)
    singles, cums = _layer_conditions(ctx)
    if not reason and (len(singles) < need or len(cums) != len(singles)):
        reason = f"needs single and cumulative rows for >= {need} layer groups (evaluation.layer_group_size)"
    if reason:
        return Finding(metric, "accuracy_points", na=reason)
    S = lambda d, w: [drop(ctx, d, w, "blimp", ck, s) for s in singles]  # noqa: E731
    C = lambda d, w: [drop(ctx, d, w, "blimp", ck, s) for s in cums]  # noqa: E731
    return pair_finding(ctx, metric, lambda d, w: stat(S(d, w), C(d, w)), [("blimp", ck, s) for s in singles + cums],
                        f"{len(singles)} layer groups", lambda d, w: parts(S(d, w), C(d, w)))


@claim("C5a", "early layers matter most: the first layer group's single-group drop exceeds every other group's")
def c5a(ctx: Context) -> Finding:
    return _layer_claim(ctx, "BLiMP drop (points): first group alone − largest other single group",
                        lambda s, c: s[0] - np.max(np.stack(s[1:]), axis=0),
                        lambda s, c: (s[0], np.max(np.stack(s[1:]), axis=0)))


@claim("C5b", "damage accumulates: the cumulative drop rises with depth (fitted rise, first to last group)")
def c5b(ctx: Context) -> Finding:
    return _layer_claim(ctx, "BLiMP cumulative drop (points): least-squares rise from the first to the last group",
                        lambda s, c: fitted_change(c), lambda s, c: (c[-1], c[0]))


@claim("C5c", "the cumulative drop over all groups exceeds the largest single-group drop")
def c5c(ctx: Context) -> Finding:
    return _layer_claim(ctx, "BLiMP drop (points): all groups − largest single group",
                        lambda s, c: c[-1] - np.max(np.stack(s), axis=0),
                        lambda s, c: (c[-1], np.max(np.stack(s), axis=0)), need=1)


@claim("C6", "the harm grows over training: WN − random BLiMP drop rises over the checkpoints above chance")
def c6(ctx: Context) -> Finding:
    metric = "fitted change over checkpoints of (wn − random) BLiMP drop (points)"
    reason = neg_zero_reason(ctx)
    if reason:
        return Finding(metric, "accuracy_points", na=reason)
    if len(ctx.checkpoints) < 2:
        return Finding(metric, "accuracy_points", na="one checkpoint: no training dynamics")
    c, rs = ctx.conds, None
    eligible, dropped = [], []
    for ck, step in ctx.checkpoints:
        if not all(ctx.pairs.has("blimp", ck, x) for x in ("baseline", c["wn"], c["random"])):
            continue
        rs = rs or ctx.resampler()
        base = rs.interval(lambda d, ck=ck: ctx.pairs.mean(d, "correct", "blimp", ck, "baseline"))
        (eligible if base.low > ctx.chance else dropped).append((ck, step, base))
    if len(eligible) < 2:
        return Finding(metric, "accuracy_points", na=(
            f"fewer than two checkpoints with baseline BLiMP above chance ({ctx.chance:g}, lower 95% bound): "
            f"{len(eligible)} of {len(eligible) + len(dropped)}"))
    cks = [e[0] for e in eligible]
    gap = lambda d, w, ck: drop(ctx, d, w, "blimp", ck, c["wn"]) - drop(ctx, d, w, "blimp", ck, c["random"])  # noqa: E731
    note = "checkpoints above chance: " + ", ".join(f"{ck} (baseline {b.estimate:.3f})" for ck, _, b in eligible)
    if dropped:
        note += "; at or below chance, left out: " + ", ".join(ck for ck, _, _ in dropped)
    f = pair_finding(ctx, metric, lambda d, w: fitted_change([gap(d, w, ck) for ck in cks]),
                     [("blimp", ck, x) for ck in cks for x in (c["wn"], c["random"])], note,
                     lambda d, w: (gap(d, w, cks[-1]), gap(d, w, cks[0])))
    if f.na is None:
        per = [rs.interval(lambda d, ck=ck: gap(d, "correct", ck)) for ck in cks]
        f.note += "; wn − random per checkpoint: " + ", ".join(
            f"{ck} {iv.estimate:.3g} [{iv.low:.3g}, {iv.high:.3g}]" for ck, iv in zip(cks, per))
    return f


@claim("C4", "excess surprisal under WN ablation falls on function-word POS more than under the matched set")
def c4(ctx: Context) -> Finding:
    metric = "difference in differences (nats): wn (function − content) − matched (function − content) excess surprisal"
    ck, c = ctx.final, ctx.conds
    reason = matched_na(ctx)
    if reason is None and (ctx.surprisal is None or ctx.surprisal.height == 0):
        reason = "no surprisal table"
    blocks = None if reason else surprisal_blocks(ctx.surprisal, ctx.model, ck, [c["wn"], c["ppl_matched"]], ctx.block_tokens)
    if reason is None and blocks is None:
        reason = f"no surprisal rows for baseline, {c['wn']} and {c['ppl_matched']} at {ck}"
    if reason:
        return Finding(metric, "surprisal_nats", na=reason, note=matched_note(ctx))
    n_blocks = len(next(iter(blocks.values()))[0])
    rs = Resampler({"text": np.zeros(n_blocks)}, n_boot=ctx.n_boot, seed=ctx.seed)

    def contrast(d: Draw, cond: str) -> np.ndarray:
        return d.ratio("text", *blocks[(cond, "function")]) - d.ratio("text", *blocks[(cond, "content")])

    iv = rs.interval(lambda d: contrast(d, c["wn"]) - contrast(d, c["ppl_matched"]))
    ident = rs.identity()
    n_tok = {cls: int(blocks[(c["wn"], cls)][1].sum()) for cls in ("function", "content")}
    note = (f"{n_blocks} windows of {ctx.block_tokens} tokens; tagged tokens: function {n_tok['function']}, "
            f"content {n_tok['content']}; {matched_note(ctx)}")
    return Finding(metric, "surprisal_nats", float(contrast(ident, c["wn"])[0]), float(contrast(ident, c["ppl_matched"])[0]),
                   interval=iv, n=n_tok["function"] + n_tok["content"], note=note)

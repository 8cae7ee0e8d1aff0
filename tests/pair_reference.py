"""A one-shot minimal-pair scorer for tests: one table row per pair, from
:func:`negdiff.logprobs.sentence_logprobs` (the pipeline itself scores pairs through
:func:`negdiff.sweep.evaluate_conditions`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from negdiff.logprobs import sentence_logprobs

PAIR_FIELDS = ("UID", "linguistics_term", "template", "case", "field", "phenomenon")


def minimal_pair_accuracy(
    model,
    tokenizer,
    pairs: list[dict[str, Any]],
    *,
    reduce: str = "sum",
    batch_size: int = 64,
    prepend_bos: bool = True,
):
    """Score minimal pairs; one row per pair with logp_good, logp_bad, correct (good > bad).

    The pair's ``UID`` / ``linguistics_term`` / ``template`` / ``case`` (etc.) fields are carried
    over when present in any pair.
    """
    import polars as pl

    pairs = list(pairs)
    for k, p in enumerate(pairs):
        if "sentence_good" not in p or "sentence_bad" not in p:
            raise KeyError(f"pair {k} lacks sentence_good/sentence_bad: keys {sorted(p)}")
    good = [p["sentence_good"] for p in pairs]
    bad = [p["sentence_bad"] for p in pairs]
    lp = sentence_logprobs(
        model, tokenizer, good + bad, batch_size=batch_size, prepend_bos=prepend_bos, reduce=reduce
    )
    lg, lb = lp[: len(pairs)], lp[len(pairs) :]
    cols: dict[str, Any] = {"pair_index": np.arange(len(pairs), dtype=np.int64)}
    for f in PAIR_FIELDS:
        if any(f in p for p in pairs):
            vals = [p.get(f) for p in pairs]
            try:
                cols[f] = pl.Series(f, vals, strict=True)
            except (TypeError, pl.exceptions.PolarsError):
                cols[f] = [None if v is None else str(v) for v in vals]
    cols["sentence_good"] = good
    cols["sentence_bad"] = bad
    cols["logp_good"] = lg
    cols["logp_bad"] = lb
    cols["correct"] = lg > lb
    return pl.DataFrame(cols)

"""Language-model evaluations: strided perplexity, sentence log-probabilities, minimal pairs.

Conventions
-----------
* ``perplexity`` walks a token stream with :func:`negdiff.data.iter_windows`; every token is
  predicted exactly once, from the context of its window. Without a BOS token the very first token
  of each window cannot be predicted and is skipped (with ``stride < window`` only the first token
  of the stream is affected). With ``bos_token_id`` every window is fed as ``[bos] + window`` and
  the window holds ``window - 1`` stream tokens, so the model never sees more than ``window``
  positions.
* ``sentence_logprobs`` scores ``log P(sentence)``; with ``prepend_bos`` the first token is scored
  too, conditioned on BOS. Results are float64, in input order, and do not depend on batch size,
  order or padding (batches are length-sorted and right-padded with an attention mask).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch

from negdiff.tokenizer import bos_token_id

PAIR_FIELDS = ("UID", "linguistics_term", "template", "case", "field", "phenomenon")


def _device(model) -> torch.device:
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device


def _token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """log P(input_ids[:, t] | input_ids[:, :t]) for t >= 1, float64, shape [B, T-1]."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    logits = out.logits[:, :-1].to(torch.float64)
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def _pad_id(tokenizer, fallback: int) -> int:
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        v = getattr(tokenizer, name, None) if tokenizer is not None else None
        if v is not None:
            return int(v)
    return int(fallback)


def _batches(order: list[int], batch_size: int) -> Iterable[list[int]]:
    for k in range(0, len(order), batch_size):
        yield order[k : k + batch_size]


@torch.no_grad()
def perplexity(
    model,
    stream_ids: np.ndarray,
    *,
    window: int,
    stride: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 8,
    bos_token_id: int | None = None,
) -> float:
    """Strided-window perplexity ``exp(mean NLL)`` of a token stream (see module docstring)."""
    from negdiff.data import iter_windows

    ids = np.asarray(stream_ids, dtype=np.int64).reshape(-1)
    if max_tokens is not None:
        ids = ids[: int(max_tokens)]
    n_ctx = window - 1 if bos_token_id is not None else window
    if n_ctx < 1 or (bos_token_id is None and window < 2):
        raise ValueError(f"window={window} is too small to predict anything")
    stride = n_ctx if stride is None else min(int(stride), n_ctx)
    wins = iter_windows(len(ids), n_ctx, stride)
    device = _device(model)
    was_training = model.training
    model.eval()
    total_nll = 0.0
    total_n = 0
    try:
        for batch in _batches(wins, batch_size):
            seqs, scored = [], []
            for w in batch:
                seq = ids[w.start : w.end]
                lo = w.keep_from - w.start  # first scored position inside the window
                if bos_token_id is not None:
                    seq = np.concatenate([[bos_token_id], seq])
                    lo += 1
                else:
                    lo = max(lo, 1)
                seqs.append(seq)
                scored.append((lo, len(seq)))
            T = max(len(s) for s in seqs)
            if T < 2:
                continue
            inp = np.zeros((len(seqs), T), dtype=np.int64)
            mask = np.zeros((len(seqs), T), dtype=np.int64)
            for i, s in enumerate(seqs):
                inp[i, : len(s)] = s
                mask[i, : len(s)] = 1
            lp = _token_logprobs(
                model, torch.from_numpy(inp).to(device), torch.from_numpy(mask).to(device)
            ).cpu()
            for i, (lo, hi) in enumerate(scored):
                # token at position p is predicted by logits at p-1 -> lp[:, p-1]
                if hi > lo:
                    total_nll -= float(lp[i, lo - 1 : hi - 1].sum())
                    total_n += hi - lo
    finally:
        model.train(was_training)
    if total_n == 0:
        raise ValueError("perplexity: no tokens to score")
    return math.exp(total_nll / total_n)


@torch.no_grad()
def sentence_logprobs(
    model,
    tokenizer,
    sentences: list[str],
    *,
    batch_size: int = 64,
    prepend_bos: bool = True,
    reduce: str = "sum",
) -> np.ndarray:
    """``log P(sentence)`` per sentence: summed over its tokens ("sum") or per-token mean ("mean")."""
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    sentences = list(sentences)
    if not sentences:
        return np.zeros(0, dtype=np.float64)
    enc = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    bos = bos_token_id(tokenizer) if prepend_bos else None
    seqs = [([bos] if bos is not None else []) + list(e) for e in enc]
    for s, text in zip(seqs, sentences):
        if len(s) < 2:
            raise ValueError(
                f"sentence {text!r} has no scorable token"
                + ("" if prepend_bos else " (single token and prepend_bos=False)")
            )
    pad = _pad_id(tokenizer, 0)
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    device = _device(model)
    was_training = model.training
    model.eval()
    out = np.zeros(len(seqs), dtype=np.float64)
    try:
        for batch in _batches(order, batch_size):
            T = max(len(seqs[i]) for i in batch)
            inp = np.full((len(batch), T), pad, dtype=np.int64)
            mask = np.zeros((len(batch), T), dtype=np.int64)
            for r, i in enumerate(batch):
                inp[r, : len(seqs[i])] = seqs[i]
                mask[r, : len(seqs[i])] = 1
            lp = _token_logprobs(
                model, torch.from_numpy(inp).to(device), torch.from_numpy(mask).to(device)
            ).cpu().numpy()
            for r, i in enumerate(batch):
                vals = lp[r, : len(seqs[i]) - 1]
                out[i] = vals.sum() if reduce == "sum" else vals.mean()
    finally:
        model.train(was_training)
    return out


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

"""Log-probability primitives: strided windows over a stream, padded batch plans, perplexity, sentences.

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
* A :class:`LogprobPlan` applies the LM head only to the states that predict a scored token, in
  float32 whatever the weights' dtype, then takes a float64 log-softmax; with ``share_prefixes`` it
  feeds sequences as prefix trees (:mod:`negdiff.packing`), so a minimal pair's common prefix is
  computed once. Either way the numbers equal one unpadded sequence at a time to float rounding.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import numpy as np
import torch

from negdiff import packing
from negdiff.models import model_device
from negdiff.tokenizer import bos_token_id


def pad_id(tokenizer, fallback: int = 0) -> int:
    """The id batches are right-padded with: the tokenizer's pad, else its EOS, else its BOS id."""
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        v = getattr(tokenizer, name, None) if tokenizer is not None else None
        if v is not None:
            return int(v)
    return int(fallback)


def stream_windows(
    n_tokens: int, *, window: int, stride: int | None = None, bos_token_id: int | None = None
) -> list[tuple[int, int, int]]:
    """``(start, end, first)`` per window of a stream, with the conventions of :func:`perplexity`.

    Stream tokens ``start..end-1`` are fed (after a BOS when ``bos_token_id`` is given) and tokens
    ``first..end-1`` are scored; every scorable token is scored by exactly one window. Without a BOS the
    first token of a window cannot be predicted, so ``first >= start + 1``.
    """
    from negdiff.data import iter_windows, stream_window

    n_ctx = stream_window(window, bos_token_id is not None)
    if n_ctx < 1 or (bos_token_id is None and window < 2):
        raise ValueError(f"window={window} is too small to predict anything")
    stride = n_ctx if stride is None else min(int(stride), n_ctx)
    out = []
    for w in iter_windows(int(n_tokens), n_ctx, stride):
        first = w.keep_from if bos_token_id is not None else max(w.keep_from, w.start + 1)
        out.append((w.start, w.end, first))
    return out


class LogprobPlan:
    """Token sequences cut into padded batches once, to be scored by any model state.

    ``sequences[i]`` is scored at positions ``first_scored[i] .. len-1`` (default 1: every token but
    the first, which has no context); ``run(model)`` returns, per sequence, the float64 log-probs
    ``log P(seq[p] | seq[:p])`` of those positions (float64 log-softmax of float32 logits). Batches
    hold at most ``batch_size`` sequences (and, with ``max_batch_tokens``, at most that many padded
    positions). Layout (:mod:`negdiff.packing`): one sequence per row, length-sorted and right-padded
    under an attention mask; or, for the sequences ``share_prefixes`` marks (all with True), prefix
    trees of at most ``row_tokens`` nodes, so that tokens several sequences share from their start (a
    minimal pair's common prefix) are computed once (those sequences' batches come first). Building the plan once and running it under several interventions avoids
    re-tokenising and re-padding.
    """

    def __init__(
        self,
        sequences: list,
        first_scored: list[int] | None = None,
        *,
        batch_size: int = 64,
        max_batch_tokens: int | None = None,
        pad_id: int = 0,
        share_prefixes: bool | list[bool] = False,
        row_tokens: int = 64,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
        firsts = [1] * len(seqs) if first_scored is None else [int(f) for f in first_scored]
        if len(firsts) != len(seqs):
            raise ValueError(f"{len(seqs)} sequences but {len(firsts)} first_scored entries")
        for i, (s, f) in enumerate(zip(seqs, firsts)):
            if f < 1:
                raise ValueError(f"sequence {i}: first scored position {f} < 1 (position 0 has no context)")
        self.n_items = len(seqs)
        self.first_scored = firsts
        self.n_scored = np.array([max(0, len(s) - f) for s, f in zip(seqs, firsts)], dtype=np.int64)
        share = [bool(share_prefixes)] * len(seqs) if isinstance(share_prefixes, bool) else \
            [bool(s) for s in share_prefixes]
        if len(share) != len(seqs):
            raise ValueError(f"{len(seqs)} sequences but {len(share)} share_prefixes entries")
        kw = dict(batch_size=batch_size, max_batch_tokens=max_batch_tokens, pad_id=pad_id)
        self.batches: list[packing.PackedBatch] = []
        for tree in (True, False):
            idx = [i for i in range(len(seqs)) if share[i] == tree]
            if not idx:
                continue
            sub_seqs, sub_firsts = [seqs[i] for i in idx], [firsts[i] for i in idx]
            sub = (packing.tree_batches(sub_seqs, sub_firsts, row_tokens=row_tokens, **kw) if tree
                   else packing.plain_batches(sub_seqs, sub_firsts, **kw))
            for b in sub:
                b.items = [idx[j] for j in b.items]
            self.batches.extend(sub)

    @property
    def n_positions(self) -> int:
        """Padded positions over all batches (what one run feeds the model)."""
        return int(sum(b.input_ids.numel() for b in self.batches))

    @torch.no_grad()
    def run(self, model, batch_context: Callable[[int], Any] | None = None, *,
            scored_head: bool = True) -> list[np.ndarray]:
        """Score every sequence; ``batch_context(k)``, if given, is a context manager entered around
        the forward of batch ``k`` (e.g. to record or replay intermediate states).

        With ``scored_head`` the backbone (``model.base_model``) runs and the LM head is applied, in
        float32 whatever the weights' dtype, only to the states that predict a scored token; without
        it the whole model runs and the logits it returns (in its dtype) at those states are used.
        """
        out: list[np.ndarray] = [np.zeros(0, dtype=np.float64)] * self.n_items
        device = model_device(model)
        head = float32_head(model) if scored_head else None
        check_tree_layout(model, self.batches)
        dtype = model.get_input_embeddings().weight.dtype
        was_training = model.training
        model.eval()
        try:
            for k, b in enumerate(self.batches):
                if b.n_entries == 0:
                    continue
                inputs = model_inputs(b, device, dtype)
                with (batch_context(k) if batch_context is not None else contextlib.nullcontext()):
                    if head is None:
                        states = model(**inputs, use_cache=False).logits
                    else:
                        states = model.base_model(**inputs, use_cache=False)[0]
                lp = entry_logprobs(states.reshape(-1, states.shape[-1]), b, head)
                if not np.isfinite(lp).all():
                    _raise_nonfinite_logprob(lp, b, k, self.first_scored)
                for i, idx in zip(b.items, b.item_entries):
                    out[i] = lp[idx]
        finally:
            model.train(was_training)
        return out


def float32_head(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The LM head (``get_output_embeddings()``, a linear layer) as a float32 function of the states:
    the module itself when its weight is float32 (its hooks fire), else its weight and bias in float32."""
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    if head is None or not isinstance(weight, torch.Tensor):
        raise ValueError(f"{type(model).__name__} has no linear output embedding to score with")
    if weight.dtype == torch.float32:
        return lambda h: head(h.to(weight.device, torch.float32))
    bias = getattr(head, "bias", None)
    w32, b32 = weight.float(), (bias.float() if isinstance(bias, torch.Tensor) else None)
    return lambda h: torch.nn.functional.linear(h.to(w32.device, torch.float32), w32, b32)


def sliding_window(model) -> int | None:
    """The attention window of a model with sliding-window attention in use, else None."""
    cfg = model.config
    window = getattr(cfg, "sliding_window", None)
    if window is None or getattr(cfg, "use_sliding_window", True) is False:
        return None
    return int(window)


def check_tree_layout(model, batches: list[packing.PackedBatch]) -> None:
    """Raise where prefix-tree batches cannot be run exactly: a tree's 4D mask replaces the model's
    own, so a sliding window shorter than a packed sequence would be ignored."""
    window = sliding_window(model)
    depth = max((b.max_depth for b in batches if b.tree), default=0)
    if window is not None and depth > window:
        raise ValueError(f"share_prefixes: a packed sequence of {depth} tokens exceeds the model's sliding "
                         f"window ({window}); build the plan with share_prefixes=False")


def model_inputs(b: packing.PackedBatch, device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The forward's keyword inputs for one batch: a tree batch's mask as an additive ``[B, 1, N, N]``
    mask in the model's dtype (0 where a node may attend, the dtype's minimum elsewhere) and its
    depths as position ids; a plain batch's 2D attention mask as is."""
    ids = b.input_ids.to(device)
    if not b.tree:
        return {"input_ids": ids, "attention_mask": b.attention_mask.to(device)}
    mask = torch.zeros(b.attention_mask.shape, dtype=dtype).masked_fill_(~b.attention_mask, torch.finfo(dtype).min)
    return {"input_ids": ids, "attention_mask": mask[:, None].to(device), "position_ids": b.position_ids.to(device)}


def entry_logprobs(states: torch.Tensor, b: packing.PackedBatch,
                   head: Callable[[torch.Tensor], torch.Tensor] | None, chunk: int = 256) -> np.ndarray:
    """float64 log-prob of every entry of ``b``: ``log_softmax`` in float64 of the logits at the entry's
    state, at its target token. ``states`` are the flattened ``[B * N, D]`` backbone states (with
    ``head``: the float32 LM head, :func:`float32_head`) or logits (``head`` None), taken at
    ``b.hidden_index`` in chunks of ``chunk`` states."""
    lp = torch.empty(b.n_entries, dtype=torch.float64)
    entry_hidden = b.entry_hidden.to(states.device)
    bounds = torch.searchsorted(entry_hidden, torch.arange(0, len(b.hidden_index) + chunk, chunk,
                                                         device=states.device)).tolist()
    for c, lo in enumerate(range(0, len(b.hidden_index), chunk)):
        e0, e1 = bounds[c], bounds[c + 1]
        sel = states[b.hidden_index[lo:lo + chunk].to(states.device)]
        if head is not None:
            sel = head(sel)
        lsm = torch.log_softmax(sel.to(torch.float64), dim=-1)
        rows = entry_hidden[e0:e1].to(lsm.device) - lo
        lp[e0:e1] = lsm[rows, b.entry_target[e0:e1].to(lsm.device)].cpu()
    return lp.numpy()


def _raise_nonfinite_logprob(lp: np.ndarray, batch: packing.PackedBatch, k: int, firsts: list[int]) -> None:
    """Stop on a NaN / inf log-prob, naming the sequence and token position of the first one."""
    j = int(np.flatnonzero(~np.isfinite(lp))[0])
    item, pos = next((i, firsts[i] + int(np.flatnonzero(idx == j)[0]))
                     for i, idx in zip(batch.items, batch.item_entries) if (idx == j).any())
    raise ValueError(
        f"non-finite log-prob {float(lp[j])} for sequence {item} (batch {k}), token position "
        f"{pos} (token id {int(batch.entry_target[j])}): the model's logits are not finite there"
    )


def _reduce(vals: np.ndarray, reduce: str) -> float:
    return float(vals.sum()) if reduce == "sum" else float(vals.mean())


def _check_reduce(reduce: str) -> None:
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")


def stream_token_logprobs(
    model,
    stream_ids: np.ndarray,
    *,
    window: int,
    stride: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 8,
    bos_token_id: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, logp)``: every scored stream token's index and float64 log-prob, in stream order.

    Windows as in :func:`stream_windows`; ``perplexity == exp(-logp.mean())``.
    """
    ids = np.asarray(stream_ids, dtype=np.int64).reshape(-1)
    if max_tokens is not None:
        ids = ids[: int(max_tokens)]
    plan, positions = window_plan(ids, window=window, stride=stride, bos_token_id=bos_token_id,
                                  batch_size=batch_size)
    lps = plan.run(model)
    logp = np.concatenate(lps) if lps else np.zeros(0, dtype=np.float64)
    return positions, logp


def window_sequences(
    ids: np.ndarray, *, window: int, stride: int | None = None, bos_token_id: int | None = None
) -> tuple[list[np.ndarray], list[int], np.ndarray]:
    """The strided windows of ``ids`` as model inputs: ``(sequences, first_scored, positions)``.

    ``sequences[k]`` is window k (after the BOS, if any), scored from position ``first_scored[k]``;
    the concatenated scored tokens are the stream tokens ``positions`` (in order, each once).
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    wins = stream_windows(len(ids), window=window, stride=stride, bos_token_id=bos_token_id)
    shift = 1 if bos_token_id is not None else 0
    seqs, firsts, positions = [], [], []
    for start, end, first in wins:
        seq = ids[start:end]
        if shift:
            seq = np.concatenate([np.array([bos_token_id], dtype=np.int64), seq])
        seqs.append(seq)
        firsts.append(first - start + shift)
        positions.append(np.arange(first, end, dtype=np.int64))
    pos = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    return seqs, firsts, pos


def window_plan(
    ids: np.ndarray,
    *,
    window: int,
    stride: int | None = None,
    bos_token_id: int | None = None,
    batch_size: int = 8,
    max_batch_tokens: int | None = None,
) -> tuple[LogprobPlan, np.ndarray]:
    """A :class:`LogprobPlan` over the strided windows of ``ids`` and the scored tokens' stream indices.

    Concatenating ``plan.run(model)`` gives the log-probs of the tokens at ``positions`` (in order).
    """
    seqs, firsts, pos = window_sequences(ids, window=window, stride=stride, bos_token_id=bos_token_id)
    plan = LogprobPlan(seqs, firsts, batch_size=batch_size, max_batch_tokens=max_batch_tokens)
    return plan, pos


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
    _, logp = stream_token_logprobs(
        model, stream_ids, window=window, stride=stride, max_tokens=max_tokens,
        batch_size=batch_size, bos_token_id=bos_token_id,
    )
    if logp.size == 0:
        raise ValueError("perplexity: no tokens to score")
    return math.exp(-float(logp.mean()))


def encode_sentences(tokenizer, sentences: list[str], prepend_bos: bool = True) -> list[np.ndarray]:
    """Token ids (int64) per sentence, without special tokens, after a BOS with ``prepend_bos``.

    One batched tokenizer call. Raises if a sentence leaves nothing to score (fewer than 2 ids).
    """
    sentences = list(sentences)
    if not sentences:
        return []
    enc = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    bos = bos_token_id(tokenizer) if prepend_bos else None
    out = []
    for e, text in zip(enc, sentences):
        seq = np.asarray(([bos] if bos is not None else []) + list(e), dtype=np.int64)
        if len(seq) < 2:
            raise ValueError(
                f"sentence {text!r} has no scorable token"
                + ("" if prepend_bos else " (single token and prepend_bos=False)")
            )
        out.append(seq)
    return out


def sequence_logprobs(
    model,
    encoded: list,
    *,
    batch_size: int = 64,
    reduce: str = "sum",
    pad_id: int = 0,
) -> np.ndarray:
    """``log P(seq[1:] | seq[0])`` per pre-tokenised sequence, summed ("sum") or averaged ("mean")."""
    _check_reduce(reduce)
    if not len(encoded):
        return np.zeros(0, dtype=np.float64)
    lps = LogprobPlan(encoded, batch_size=batch_size, pad_id=pad_id).run(model)
    return np.array([_reduce(v, reduce) for v in lps], dtype=np.float64)


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
    _check_reduce(reduce)
    enc = encode_sentences(tokenizer, sentences, prepend_bos=prepend_bos)
    return sequence_logprobs(model, enc, batch_size=batch_size, reduce=reduce, pad_id=pad_id(tokenizer))

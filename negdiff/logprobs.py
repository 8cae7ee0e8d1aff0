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
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import numpy as np
import torch

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
    """Token sequences cut into padded, length-sorted batches once, to be scored by any model state.

    ``sequences[i]`` is scored at positions ``first_scored[i] .. len-1`` (default 1: every token but
    the first, which has no context); ``run(model)`` returns, per sequence, the float64 log-probs
    ``log P(seq[p] | seq[:p])`` of those positions. Sequences are sorted by length (ties: input order)
    and cut into batches of at most ``batch_size`` sequences (and, with ``max_batch_tokens``, at most
    that many padded positions); padding is on the right, under an attention mask. Building the plan
    once and running it under several interventions avoids re-tokenising and re-padding.
    """

    def __init__(
        self,
        sequences: list,
        first_scored: list[int] | None = None,
        *,
        batch_size: int = 64,
        max_batch_tokens: int | None = None,
        pad_id: int = 0,
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
        self.n_scored = np.array([max(0, len(s) - f) for s, f in zip(seqs, firsts)], dtype=np.int64)
        order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
        self.batches: list[dict[str, Any]] = []
        k = 0
        while k < len(order):
            batch = [order[k]]
            k += 1
            while k < len(order) and len(batch) < batch_size and (
                max_batch_tokens is None or (len(batch) + 1) * len(seqs[order[k]]) <= max_batch_tokens
            ):
                batch.append(order[k])
                k += 1
            T = max(len(seqs[i]) for i in batch)
            inp = np.full((len(batch), T), int(pad_id), dtype=np.int64)
            mask = np.zeros((len(batch), T), dtype=np.int64)
            rows, cols = [], []
            for r, i in enumerate(batch):
                inp[r, : len(seqs[i])] = seqs[i]
                mask[r, : len(seqs[i])] = 1
                pos = np.arange(firsts[i], len(seqs[i]), dtype=np.int64)
                rows.append(np.full(len(pos), r, dtype=np.int64))
                cols.append(pos)
            rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
            self.batches.append({
                "items": batch,
                "input_ids": torch.from_numpy(inp),
                "attention_mask": torch.from_numpy(mask),
                # logits at p-1 predict the token at p
                "rows": torch.from_numpy(rows_a),
                "cols": torch.from_numpy(cols_a - 1),
                "targets": torch.from_numpy(inp[rows_a, cols_a]),
                "counts": [int(self.n_scored[i]) for i in batch],
            })

    @property
    def n_positions(self) -> int:
        """Padded positions over all batches (what one run feeds the model)."""
        return int(sum(b["input_ids"].numel() for b in self.batches))

    @torch.no_grad()
    def run(self, model, batch_context: Callable[[int], Any] | None = None) -> list[np.ndarray]:
        """Score every sequence; ``batch_context(k)``, if given, is a context manager entered around
        the forward of batch ``k`` (e.g. to record or replay intermediate states)."""
        out: list[np.ndarray] = [np.zeros(0, dtype=np.float64)] * self.n_items
        device = model_device(model)
        was_training = model.training
        model.eval()
        try:
            for k, b in enumerate(self.batches):
                if b["rows"].numel() == 0:
                    continue
                with (batch_context(k) if batch_context is not None else contextlib.nullcontext()):
                    logits = model(
                        input_ids=b["input_ids"].to(device),
                        attention_mask=b["attention_mask"].to(device),
                        use_cache=False,
                    ).logits
                rows, cols = b["rows"].to(logits.device), b["cols"].to(logits.device)
                sel = logits[rows, cols].to(torch.float64)
                lp = torch.log_softmax(sel, dim=-1)
                lp = lp.gather(-1, b["targets"].to(logits.device)[:, None]).squeeze(-1).cpu().numpy()
                if not np.isfinite(lp).all():
                    _raise_nonfinite_logprob(lp, b, k)
                for i, part in zip(b["items"], np.split(lp, np.cumsum(b["counts"])[:-1])):
                    out[i] = part
        finally:
            model.train(was_training)
        return out


def _raise_nonfinite_logprob(lp: np.ndarray, batch: dict[str, Any], k: int) -> None:
    """Stop on a NaN / inf log-prob, naming the sequence and token position of the first one."""
    j = int(np.flatnonzero(~np.isfinite(lp))[0])
    row = int(batch["rows"][j])
    pos = int(batch["cols"][j]) + 1  # the scored token's position in its sequence
    raise ValueError(
        f"non-finite log-prob {float(lp[j])} for sequence {batch['items'][row]} (batch {k}), token position "
        f"{pos} (token id {int(batch['targets'][j])}): the model's logits are not finite there"
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

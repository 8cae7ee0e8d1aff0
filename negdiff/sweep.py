"""The condition sweep: every intervention condition on one loaded model, scored on minimal pairs,
perplexity and surprisal.

One job per (model, checkpoint): :func:`prepare_eval_data` tokenises every suite and text stream once,
:func:`evaluate_conditions` then scores all of them under each :class:`Condition`, reusing the padded
batches (a :class:`negdiff.logprobs.LogprobPlan`) across conditions. Unique sentences are scored once per
condition even when several suites or pairs share them; conditions whose masks are identical (for
instance every condition whose layer scope holds none of its set's neurons, which equals the
baseline) are computed once.

Conventions follow :mod:`negdiff.logprobs`: a pair suite's sentence score is ``log P`` summed over its
tokens (BLiMP-format suites) or averaged per token (TSE), with the first token conditioned on BOS when
``prepend_bos``; perplexity and surprisal use the strided windows of :func:`negdiff.logprobs.perplexity`
(``window`` model positions including the BOS; each token predicted once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import polars as pl

from negdiff import logprobs, models
from negdiff.hooks import hook_name, hooks
from negdiff.suites import SUITES
from negdiff.interventions import condition_masks, intervene
from negdiff.conditions import Condition, checkpoint_step

__all__ = [
    "Condition",
    "EvalData",
    "SuiteData",
    "METRICS_SCHEMA",
    "PAIRS_SCHEMA",
    "SURPRISAL_SCHEMA",
    "prepare_eval_data",
    "evaluate_conditions",
    "with_run_keys",
]

METRICS_SCHEMA: dict[str, pl.DataType] = {
    "condition": pl.String,
    "intervention": pl.String,
    "set": pl.String,
    "scope": pl.String,
    "n_neurons": pl.Int64,
    "suite": pl.String,
    "level": pl.String,
    "group": pl.String,
    "n": pl.Int64,
    "value": pl.Float64,
    "margin": pl.Float64,
}

PAIRS_SCHEMA: dict[str, pl.DataType] = {
    "condition": pl.String,
    "suite": pl.String,
    "pair": pl.Int64,  # index of the pair in its suite (same across conditions: pairs are matched)
    "group": pl.String,  # the pair's paradigm (BLiMP-format) or template (TSE)
    "correct": pl.Boolean,
    "margin": pl.Float64,  # score(good) - score(bad)
}

SURPRISAL_SCHEMA: dict[str, pl.DataType] = {
    "condition": pl.String,
    "token": pl.Int64,
    "pos": pl.String,
    "surprisal": pl.Float32,
}

@dataclass
class SuiteData:
    """One minimal-pair suite, pointing into :attr:`EvalData.sentences`."""

    name: str
    reduce: str
    good: np.ndarray  # int64 [P], index of each pair's good sentence
    bad: np.ndarray  # int64 [P]
    # level -> (sorted group labels, int64 [P] group index per pair, -1 where the pair has no label)
    groups: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return int(self.good.shape[0])


@dataclass
class EvalData:
    """Everything a job evaluates, tokenised once (see :func:`prepare_eval_data`)."""

    sentences: list[np.ndarray]  # unique encoded sentences (BOS first when prepend_bos)
    suites: dict[str, SuiteData]  # in evaluation order
    ppl_ids: np.ndarray  # int64 stream for perplexity (may be empty: no ppl rows)
    surprisal_ids: np.ndarray  # int64 stream for surprisal (may be empty: no surprisal rows)
    surprisal_offsets: np.ndarray  # int64 [N, 2] character offsets into the surprisal text
    surprisal_pos: list[str | None] | None  # POS per surprisal token, or None
    window: int
    stride: int
    bos_token_id: int | None
    pad_id: int

    @property
    def n_sentences(self) -> int:
        return len(self.sentences)


def _group_index(labels: list[Any]) -> tuple[list[str], np.ndarray]:
    present = sorted({str(v) for v in labels if v is not None})
    lookup = {g: k for k, g in enumerate(present)}
    idx = np.array([-1 if v is None else lookup[str(v)] for v in labels], dtype=np.int64)
    return present, idx


def _gold_pos_tagger(pos_content) -> Callable[[str, np.ndarray], list[str | None]]:
    from negdiff.pos import word_pos_for_offsets

    def tag(text: str, offsets: np.ndarray) -> list[str | None]:
        return word_pos_for_offsets(text, pos_content, offsets)

    return tag


def _encode_stream(tokenizer, text: str | None, n_tokens: int):
    from negdiff.data import TokenStream, encode_text

    if not text or n_tokens <= 0:
        return TokenStream(np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
    return encode_text(tokenizer, text, max_tokens=int(n_tokens))


def _suite_sentence_index(suites: Mapping[str, list[dict]]
                          ) -> tuple[dict[str, int], dict[str, tuple[list[int], list[int], list[dict]]]]:
    """Unique sentences across suites (in first-seen order, suites in :data:`SUITES` order) and, per
    non-empty suite, its pairs' (good indices, bad indices, pairs)."""
    sent_index: dict[str, int] = {}
    suite_refs: dict[str, tuple[list[int], list[int], list[dict]]] = {}
    for name in SUITES:  # fixed suite order
        pairs = list(suites.get(name) or [])
        if not pairs:
            continue
        good, bad = [], []
        for k, p in enumerate(pairs):
            if "sentence_good" not in p or "sentence_bad" not in p:
                raise KeyError(f"{name} pair {k} lacks sentence_good/sentence_bad: keys {sorted(p)}")
            good.append(sent_index.setdefault(p["sentence_good"], len(sent_index)))
            bad.append(sent_index.setdefault(p["sentence_bad"], len(sent_index)))
        suite_refs[name] = (good, bad, pairs)
    return sent_index, suite_refs


def _suite_data(suite_refs: Mapping[str, tuple[list[int], list[int], list[dict]]]) -> dict[str, SuiteData]:
    """A :class:`SuiteData` per suite of ``suite_refs`` (as from :func:`_suite_sentence_index`)."""
    suite_data: dict[str, SuiteData] = {}
    for name, (good, bad, pairs) in suite_refs.items():
        spec = SUITES[name]
        groups = {}
        for level, fld in spec.levels:
            if any(p.get(fld) is not None for p in pairs):
                groups[level] = _group_index([p.get(fld) for p in pairs])
        suite_data[name] = SuiteData(
            name, spec.reduce, np.asarray(good, dtype=np.int64), np.asarray(bad, dtype=np.int64), groups
        )
    return suite_data


def _encode_streams(tokenizer, ppl_text: str | None, surprisal_text: str | None,
                    ppl_tokens: int, surprisal_tokens: int):
    """The ppl and surprisal token streams (one tokenisation when both are the same text)."""
    if ppl_text and surprisal_text and ppl_text == surprisal_text:
        both = _encode_stream(tokenizer, ppl_text, max(ppl_tokens, surprisal_tokens))
        return both.head(ppl_tokens), both.head(surprisal_tokens)
    ppl_stream = _encode_stream(tokenizer, ppl_text, ppl_tokens)
    surp_stream = _encode_stream(tokenizer, surprisal_text, surprisal_tokens)
    return ppl_stream, surp_stream


def _surprisal_pos_tags(surprisal_text: str | None, surp_stream, surprisal_pos,
                        pos_tagger: Callable[[str, np.ndarray], list[str | None]] | None
                        ) -> list[str | None] | None:
    """POS per surprisal token, from ``pos_tagger`` or the gold tags ``surprisal_pos`` (else None)."""
    if pos_tagger is None and surprisal_pos is not None:
        pos_tagger = _gold_pos_tagger(surprisal_pos)
    pos = None
    if pos_tagger is not None and len(surp_stream):
        pos = list(pos_tagger(surprisal_text, surp_stream.offsets))
        if len(pos) != len(surp_stream):
            raise ValueError(f"pos_tagger returned {len(pos)} tags for {len(surp_stream)} tokens")
    return pos


def prepare_eval_data(
    tokenizer,
    *,
    suites: Mapping[str, list[dict]],
    ppl_text: str | None,
    surprisal_text: str | None,
    surprisal_pos: str | list | None,
    ppl_tokens: int,
    surprisal_tokens: int,
    window: int | None,
    stride: int | None,
    prepend_bos: bool,
    pos_tagger: Callable[[str, np.ndarray], list[str | None]] | None = None,
) -> EvalData:
    """Tokenise every suite and stream once.

    ``suites`` maps a suite name of :data:`SUITES` to its pairs (as from
    :func:`negdiff.suites.read_pairs`); missing or empty suites give no rows. Sentences are
    deduplicated across suites and tokenised in one batched call. ``ppl_text`` / ``surprisal_text``
    are cut to their first ``ppl_tokens`` / ``surprisal_tokens`` tokens (one tokenisation when both
    are the same text). POS per surprisal token comes from ``pos_tagger(text, offsets)``, by default
    the gold-tag lookup :func:`negdiff.pos.word_pos_for_offsets` on ``surprisal_pos`` (the
    ``.pos`` content); with neither, ``pos`` is None.
    """
    from negdiff.tokenizer import bos_token_id as _bos

    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        raise ValueError(f"unknown suite(s) {unknown}; known: {sorted(SUITES)}")
    bos = _bos(tokenizer) if prepend_bos else None
    if ppl_text or surprisal_text:  # validate the window once, with the same rules as perplexity
        logprobs.stream_windows(0, window=window, stride=stride, bos_token_id=bos)

    sent_index, suite_refs = _suite_sentence_index(suites)
    sentences = logprobs.encode_sentences(tokenizer, list(sent_index), prepend_bos=prepend_bos)
    suite_data = _suite_data(suite_refs)
    ppl_stream, surp_stream = _encode_streams(
        tokenizer, ppl_text, surprisal_text, ppl_tokens, surprisal_tokens
    )
    pos = _surprisal_pos_tags(surprisal_text, surp_stream, surprisal_pos, pos_tagger)

    return EvalData(
        sentences=sentences,
        suites=suite_data,
        ppl_ids=np.asarray(ppl_stream.ids, dtype=np.int64),
        surprisal_ids=np.asarray(surp_stream.ids, dtype=np.int64),
        surprisal_offsets=np.asarray(surp_stream.offsets, dtype=np.int64).reshape(-1, 2),
        surprisal_pos=pos,
        window=int(window or 0),
        stride=int(stride or 0),
        bos_token_id=bos,
        pad_id=logprobs.pad_id(tokenizer),
    )


# --------------------------------------------------------------------------------------------------
# evaluation


class _Plan:
    """All sequences of one EvalData in one LogprobPlan: unique sentences (as prefix trees with
    ``share_prefixes``), then ppl / surprisal windows (one per row)."""

    def __init__(self, data: EvalData, batch_size: int, max_batch_tokens: int | None,
                 share_prefixes: bool = True, scored_head: bool = True):
        seqs: list[np.ndarray] = list(data.sentences)
        firsts: list[int] = [1] * len(seqs)
        self.n_sent = len(seqs)

        def add_stream(ids: np.ndarray):
            if len(ids) == 0:
                return None
            w_seqs, w_first, positions = logprobs.window_sequences(
                ids, window=data.window, stride=data.stride, bos_token_id=data.bos_token_id
            )
            lo = len(seqs)
            seqs.extend(w_seqs)
            firsts.extend(w_first)
            return (lo, len(seqs), positions)

        self.ppl = add_stream(data.ppl_ids)
        if self.ppl is not None and np.array_equal(data.ppl_ids, data.surprisal_ids):
            self.surprisal = self.ppl  # same stream, same windows: score once
        else:
            self.surprisal = add_stream(data.surprisal_ids)
        self.scored_head = scored_head
        self.plan = logprobs.LogprobPlan(
            seqs, firsts, batch_size=batch_size, max_batch_tokens=max_batch_tokens, pad_id=data.pad_id,
            share_prefixes=[share_prefixes and k < self.n_sent for k in range(len(seqs))],
        )

    def run(self, model, batch_context=None) -> dict[str, Any]:
        lps = self.plan.run(model, batch_context, scored_head=self.scored_head)
        out: dict[str, Any] = {"sentences": lps[: self.n_sent]}
        for key in ("ppl", "surprisal"):
            ref = getattr(self, key)
            if ref is None:
                out[key] = None
            else:
                lo, hi, positions = ref
                vals = np.concatenate(lps[lo:hi]) if hi > lo else np.zeros(0)
                out[key] = (positions, vals)
        return out


def _pair_frame(cond_name: str, suite: SuiteData, scores: np.ndarray) -> pl.DataFrame:
    """One row per pair of a suite under one condition (for paired statistics across conditions)."""
    diff = scores[suite.good] - scores[suite.bad]
    level = next(iter(suite.groups), None)
    if level is None:
        group = pl.Series("group", [None] * suite.n_pairs, dtype=pl.String)
    else:
        labels, idx = suite.groups[level]
        group = pl.Series("group", [labels[k] if k >= 0 else None for k in idx.tolist()], dtype=pl.String)
    return pl.DataFrame({
        "condition": pl.Series("condition", [cond_name] * suite.n_pairs, dtype=pl.String),
        "suite": pl.Series("suite", [suite.name] * suite.n_pairs, dtype=pl.String),
        "pair": pl.Series("pair", np.arange(suite.n_pairs, dtype=np.int64)),
        "group": group,
        "correct": pl.Series("correct", diff > 0),
        "margin": pl.Series("margin", diff.astype(np.float64)),
    })


def _suite_rows(suite: SuiteData, scores: np.ndarray) -> list[tuple]:
    """(suite, level, group, n, accuracy, mean margin) rows of one pair suite."""
    lg, lb = scores[suite.good], scores[suite.bad]
    diff = lg - lb
    correct = (lg > lb).astype(np.float64)
    rows = [(suite.name, "overall", "all", suite.n_pairs, float(correct.mean()), float(diff.mean()))]
    for level, (labels, idx) in suite.groups.items():
        keep = idx >= 0
        k = idx[keep]
        n = np.bincount(k, minlength=len(labels))
        acc = np.bincount(k, weights=correct[keep], minlength=len(labels))
        mar = np.bincount(k, weights=diff[keep], minlength=len(labels))
        for g, label in enumerate(labels):
            if n[g]:
                rows.append((suite.name, level, label, int(n[g]), float(acc[g] / n[g]), float(mar[g] / n[g])))
    return rows


class _PrefixCache:
    """Record block outputs in the baseline run; replay them to skip the unmodified leading blocks."""

    def __init__(self, model, plan: _Plan, masks: list[dict[int, np.ndarray]], budget_bytes: int):
        self.model = model
        starts = sorted({min(cm) for cm in masks if cm and min(cm) > 0}, reverse=True)
        elem = next(model.parameters()).element_size()
        per_start = plan.plan.n_positions * models.d_model(model) * elem
        self.starts: list[int] = []
        for s in starts:
            if (len(self.starts) + 1) * per_start <= budget_bytes:
                self.starts.append(s)
        self.store: dict[int, dict[int, Any]] = {s: {} for s in self.starts}

    @property
    def enabled(self) -> bool:
        return bool(self.starts)

    def record(self, k: int):
        """Hooks for batch ``k`` of the baseline run: keep the output of every block a start follows."""
        def keep(s: int):
            def hook(module, args, output):
                self.store[s][k] = output

            return hook

        return hooks(self.model, [(hook_name(s - 1), "output", keep(s)) for s in self.starts])

    def replay_context(self, start: int):
        """For a condition whose first masked layer is ``start``: a function of the batch index giving
        the hooks that replace blocks ``0..start-1`` by the recorded output (None if not recorded)."""
        if start not in self.store:
            return None

        def replay(k: int):
            out = self.store[start][k]

            def stub(*args, **kwargs):
                return out

            return hooks(self.model, [(hook_name(b), "replace", stub) for b in range(start)])

        return replay

    def clear(self) -> None:
        self.store.clear()


def _checked_masks(model, conditions: list[Condition], selection: pl.DataFrame | None,
                   empty_sets: Iterable[str]) -> list[dict[int, np.ndarray]]:
    """Every condition's masks, failing on bad conditions before spending any compute."""
    names = [c.name for c in conditions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate condition names: {dupes}")
    # sets known to hold no neuron (e.g. a ppl-matched search that ended at m = 0) have no table rows
    return [condition_masks(model, c, selection, empty_sets) for c in conditions]


def _surprisal_columns(plan: _Plan, data: EvalData) -> tuple[pl.Series | None, pl.Series | None]:
    """The ``token`` and ``pos`` columns of every condition's surprisal frame (None without one)."""
    if plan.surprisal is None:
        return None, None
    positions = plan.surprisal[2]
    if data.surprisal_pos is not None:
        surp_pos = pl.Series("pos", [data.surprisal_pos[i] for i in positions.tolist()], dtype=pl.String)
    else:
        surp_pos = pl.Series("pos", [None] * len(positions), dtype=pl.String)
    surp_tok = pl.Series("token", positions, dtype=pl.Int64)
    return surp_tok, surp_pos


def _mask_keys(conditions: list[Condition], masks: list[dict[int, np.ndarray]]
               ) -> tuple[list[dict[int, np.ndarray]], list[Any]]:
    """Masks restricted to layers with a neuron, and a key per condition (equal keys: equal runs)."""
    masks = [{l: m for l, m in cm.items() if m.any()} for cm in masks]
    keys: list[Any] = [
        None if not cm else (c.intervention, tuple((l, cm[l].tobytes()) for l in sorted(cm)))
        for c, cm in zip(conditions, masks)
    ]
    return masks, keys


def _eval_bar(progress: bool, total: int):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, unit="cond", desc="evaluate")
    except ImportError:  # pragma: no cover
        return None


def _run_condition(model, plan: _Plan, prefix: _PrefixCache, cache: dict[Any, dict[str, Any]],
                   cond: Condition, cmask: dict[int, np.ndarray], key: Any) -> dict[str, Any]:
    """One condition's plan result, computed once per mask key (the baseline first when replaying)."""
    if prefix.enabled and None not in cache:
        # the baseline, recording the block outputs that later conditions start from
        cache[None] = plan.run(model, prefix.record)
    res = cache.get(key)
    if res is None:
        if cmask:
            with intervene(model, cmask, cond.intervention):
                res = plan.run(model, prefix.replay_context(min(cmask)))
        else:
            res = plan.run(model)
        cache[key] = res
    return res


def _score_condition(cond: Condition, n_masked: int, res: dict[str, Any], data: EvalData,
                     surp_tok: pl.Series | None, surp_pos: pl.Series | None,
                     metric_rows: list[tuple], pair_frames: list[pl.DataFrame],
                     surprisal_frames: list[pl.DataFrame]) -> None:
    """Append one condition's metric rows, pair frames and surprisal frame."""
    head = (cond.name, cond.intervention, cond.set, cond.scope, n_masked)
    if res["ppl"] is not None:
        nll = -res["ppl"][1]
        mean_nll = float(nll.mean())
        metric_rows.append(head + ("ppl", "overall", "all", int(nll.size), float(np.exp(mean_nll)), mean_nll))
    if data.suites:
        sent_scores = np.array([v.sum() for v in res["sentences"]], dtype=np.float64)
        sent_means = None
        for suite in data.suites.values():
            if suite.reduce == "mean":
                if sent_means is None:
                    sent_means = np.array([v.mean() for v in res["sentences"]], dtype=np.float64)
                scores = sent_means
            else:
                scores = sent_scores
            metric_rows.extend(head + r for r in _suite_rows(suite, scores))
            pair_frames.append(_pair_frame(cond.name, suite, scores))
    if res["surprisal"] is not None:
        surprisal_frames.append(pl.DataFrame({
            "token": surp_tok,
            "pos": surp_pos,
            "surprisal": pl.Series("surprisal", (-res["surprisal"][1]).astype(np.float32), dtype=pl.Float32),
        }).with_columns(pl.lit(cond.name, dtype=pl.String).alias("condition")))


def _output_tables(metric_rows: list[tuple], pair_frames: list[pl.DataFrame],
                   surprisal_frames: list[pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The ``{"metrics", "pairs", "surprisal"}`` tables from the collected rows and frames."""
    metrics = pl.DataFrame(metric_rows, schema=METRICS_SCHEMA, orient="row")
    if surprisal_frames:
        surprisal = pl.concat(surprisal_frames, how="vertical").select(
            [pl.col(k).cast(v) for k, v in SURPRISAL_SCHEMA.items()]
        )
    else:
        surprisal = pl.DataFrame(schema=SURPRISAL_SCHEMA)
    pairs = pl.concat(pair_frames, how="vertical") if pair_frames else pl.DataFrame(schema=PAIRS_SCHEMA)
    return {"metrics": metrics, "pairs": pairs, "surprisal": surprisal}


def evaluate_conditions(
    model,
    data: EvalData,
    conditions: list[Condition],
    selection: pl.DataFrame | None,
    *,
    batch_size: int = 64,
    max_batch_tokens: int | None = 8192,
    progress: bool = True,
    timings: dict[str, float] | None = None,
    prefix_cache_bytes: int = 1 << 30,
    empty_sets: Iterable[str] = (),
    share_prefixes: bool = True,
    scored_head: bool = True,
) -> dict[str, pl.DataFrame]:
    """Score ``data`` under every condition; ``{"metrics", "pairs", "surprisal"}`` tables (module docstring).

    A condition's masks are the rows of ``selection`` whose ``set`` equals ``condition.set``,
    restricted to ``condition.layers`` (:func:`negdiff.interventions.masks_from_selection`); the
    evaluation runs under ``intervene(model, masks, condition.intervention)``. ``intervention ==
    "none"`` is the unmodified model. A set name absent from ``selection`` raises; a scope holding
    none of the set's neurons gives ``n_neurons == 0`` and the baseline's numbers. Batches hold at
    most ``batch_size`` sequences and ``max_batch_tokens`` padded positions. ``timings``, when given,
    receives the seconds spent per condition name.

    Prefix reuse: a condition whose first masked layer is ``s > 0`` computes blocks ``0..s-1``
    exactly as the baseline does, so the baseline run records block ``s-1``'s output per batch and
    that condition replays it instead of running those blocks (``"replace"`` hooks of
    :func:`negdiff.hooks.hooks` on ``blocks.0 .. blocks.{s-1}`` for the duration of the batch). The recorded states are kept while they fit in
    ``prefix_cache_bytes`` (deepest start layers first); 0 disables the reuse.

    Sentences go in prefix trees (``share_prefixes``: a pair's common prefix computed once,
    :mod:`negdiff.packing`); the LM head runs in float32 at scored positions only (``scored_head``).
    Both False: the earlier path (a sentence per row, full logits), equal to float32 rounding.
    """
    masks = _checked_masks(model, conditions, selection, empty_sets)

    plan = _Plan(data, batch_size, max_batch_tokens, share_prefixes, scored_head)
    surp_tok, surp_pos = _surprisal_columns(plan, data)

    # masks restricted to layers with a neuron; conditions with equal masks share one computation
    masks, keys = _mask_keys(conditions, masks)
    prefix = _PrefixCache(model, plan, masks, prefix_cache_bytes)
    bar = _eval_bar(progress, len(conditions))

    cache: dict[Any, dict[str, Any]] = {}
    metric_rows: list[tuple] = []
    pair_frames: list[pl.DataFrame] = []
    surprisal_frames: list[pl.DataFrame] = []
    try:
        for cond, cmask, key in zip(conditions, masks, keys):
            t0 = time.perf_counter()
            n_masked = int(sum(int(m.sum()) for m in cmask.values()))
            res = _run_condition(model, plan, prefix, cache, cond, cmask, key)
            _score_condition(cond, n_masked, res, data, surp_tok, surp_pos,
                             metric_rows, pair_frames, surprisal_frames)
            dt = time.perf_counter() - t0
            if timings is not None:
                timings[cond.name] = dt
            if bar is not None:
                bar.set_postfix_str(f"{cond.name} {dt:.2f}s")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        prefix.clear()

    return _output_tables(metric_rows, pair_frames, surprisal_frames)


# --------------------------------------------------------------------------------------------------
# how an evaluation job labels its tables


def with_run_keys(table: pl.DataFrame, model: str, checkpoint: str) -> pl.DataFrame:
    """``table`` with leading ``model``, ``checkpoint`` and ``step`` columns."""
    return table.select(
        pl.lit(model).alias("model"),
        pl.lit(checkpoint).alias("checkpoint"),
        pl.lit(checkpoint_step(checkpoint), dtype=pl.Int64).alias("step"),
        pl.all(),
    )

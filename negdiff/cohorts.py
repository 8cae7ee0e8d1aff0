"""The WD of fixed cohorts of neurons at one model state, measured on held-out tokens.

C7 ("the WN cohort's WD grows over training") is read off this table. Its tokens come from the
held-out perplexity text (:func:`cohort_token_stream`), never from the dumped tokens that selected
the cohort, and the WN cohort is measured together with its controls: the random sets of the same
size per layer and a ``layer`` cohort of (a seeded sample of) every layer's neurons. The
pre-activations come from :func:`negdiff.capture.recorded_batches`, the activation dump's own path.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import polars as pl
import torch

from negdiff import models
from negdiff.capture import recorded_batches
from negdiff.data import encode_text, iter_windows, stream_window
from negdiff.wasserstein import wd_to_normal

__all__ = ["COHORT_WD_SCHEMA", "LAYER_COHORT", "LAYER_COHORT_SIZE", "cohort_token_stream", "cohort_wd",
           "layer_cohort", "selection_cohorts"]

COHORT_WD_SCHEMA: dict[str, pl.DataType] = {
    "cohort": pl.String,  # the set's name: wn@1, random@1, random@1#1, ..., or "layer" (see cohort_wd)
    "layer": pl.Int32,
    "neuron": pl.Int32,
    "wd": pl.Float64,
    "wd_neg": pl.Float64,
    "wd_pos": pl.Float64,
    "frac_negative": pl.Float64,
}

LAYER_COHORT = "layer"
LAYER_COHORT_SIZE = 512  # neurons per layer in the ``layer`` cohort (all of a layer when it has fewer)


def cohort_token_stream(tokenizer, text: str, *, evaluation: Mapping, activations: Mapping) -> tuple[np.ndarray, int]:
    """The tokens :func:`cohort_wd` is measured on, disjoint from those the activation dump used.

    ``text`` is the ``evaluation.ppl_split`` text. When ``evaluation.ppl_split`` differs from
    ``activations.split`` the stream is its first ``evaluation.cohort_wd_tokens`` tokens; when they are
    the same split, the first ``activations.max_tokens`` tokens (the dumped ones, which scored and
    selected the neurons) are skipped and the next ``cohort_wd_tokens`` taken. Returns ``(ids, skip)``.
    Raises ValueError, naming the config keys, when fewer than ``cohort_wd_tokens`` tokens remain.
    """
    n = int(evaluation["cohort_wd_tokens"])
    same = evaluation["ppl_split"] == activations["split"]
    skip = int(activations["max_tokens"]) if same else 0
    ids = np.asarray(encode_text(tokenizer, text, max_tokens=skip + n).ids, dtype=np.int64)[skip:]
    if len(ids) < n:
        where = (
            f"evaluation.ppl_split == activations.split == {activations['split']!r}, so the first "
            f"activations.max_tokens={skip} tokens (the dumped ones) are skipped and {len(ids)} remain"
            if same else f"the evaluation.ppl_split={evaluation['ppl_split']!r} text has {len(ids)} tokens"
        )
        raise ValueError(
            f"cohort WD needs evaluation.cohort_wd_tokens={n} held-out tokens, but {where}; lower "
            "evaluation.cohort_wd_tokens, choose another evaluation.ppl_split or lower activations.max_tokens"
        )
    return ids[:n], skip


def layer_cohort(n_layers: int, n_neurons: int, *, seed: int, size: int = LAYER_COHORT_SIZE) -> pl.DataFrame:
    """``layer``, ``neuron`` rows: every neuron of each layer if it has at most ``size``, else ``size`` of
    them drawn without replacement with ``numpy.random.default_rng((seed, layer))`` (sorted)."""
    if size < 1:
        raise ValueError(f"layer cohort size must be >= 1, got {size}")
    lay, neu = [], []
    for layer in range(n_layers):
        if n_neurons <= size:
            pick = np.arange(n_neurons)
        else:
            pick = np.sort(np.random.default_rng((int(seed), layer)).choice(n_neurons, size, replace=False))
        lay.append(np.full(len(pick), layer, np.int64))
        neu.append(pick.astype(np.int64))
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))
    return pl.DataFrame({"layer": cat(lay), "neuron": cat(neu)})


def selection_cohorts(selection: pl.DataFrame, names: Iterable[str],
                      empty_sets: Iterable[str] = ()) -> dict[str, pl.DataFrame]:
    """``{set name: its rows}`` of the selection table. A set absent from the table is an error unless
    it is in ``empty_sets`` (the selection record's sets with no neurons), which gives zero rows."""
    if "set" not in selection.columns:
        raise ValueError("selection table lacks a 'set' column")
    names = list(names)
    present = set(selection["set"].unique().to_list()) | set(empty_sets)
    absent = [name for name in names if name not in present]
    if absent:
        raise ValueError(f"cohort set(s) {absent} not in the selection table (sets: {sorted(present)})")
    return {name: selection.filter(pl.col("set") == name) for name in names}


def _check_cohort(name: str, cohort: pl.DataFrame, n_layers: int, n_neu: int) -> pl.DataFrame:
    """``cohort``'s ``layer``, ``neuron`` as Int64, sorted; errors name the cohort."""
    missing = {"layer", "neuron"} - set(cohort.columns)
    if missing:
        raise ValueError(f"cohort {name!r} lacks column(s) {sorted(missing)}")
    coh = cohort.select(pl.col("layer").cast(pl.Int64), pl.col("neuron").cast(pl.Int64)).sort("layer", "neuron")
    if coh.is_duplicated().any():
        raise ValueError(f"cohort {name!r} has duplicate (layer, neuron) rows")
    if coh.height and (coh["layer"].min() < 0 or coh["layer"].max() >= n_layers
                       or coh["neuron"].min() < 0 or coh["neuron"].max() >= n_neu):
        raise IndexError(f"cohort {name!r} has (layer, neuron) outside [0, {n_layers}) x [0, {n_neu})")
    return coh


def _capture_columns(model, ids: np.ndarray, cols: dict[int, np.ndarray], *, window: int, stride: int,
                     bos_token_id: int | None, batch_size: int) -> dict[int, np.ndarray]:
    """Float32 pre-activations [T, k] of the neurons ``cols[layer]`` over every stream token, one forward
    per batch of windows (:func:`negdiff.capture.recorded_batches`, as the dump records them)."""
    layers = sorted(cols)
    device = models.model_device(model)
    index = {l: torch.as_tensor(np.array(cols[l], dtype=np.int64), device=device) for l in layers}
    chunks: dict[int, list[torch.Tensor]] = {l: [] for l in layers}
    was_training = model.training
    model.eval()
    try:
        for pre, _, _ in recorded_batches(model, ids, iter_windows(len(ids), int(window), int(stride)),
                                           layers=layers, batch_size=batch_size, bos_token_id=bos_token_id,
                                           n_target=len(ids), capture_mlp_input=False):
            with torch.inference_mode():  # kept in the model dtype until the end: half the memory of float32
                for l in layers:
                    chunks[l].append(pre[l].index_select(-1, index[l].to(pre[l].device)).cpu())
    finally:
        model.train(was_training)
    return {l: torch.cat(chunks[l]).float().numpy() for l in layers}


def cohort_wd(
    model,
    stream_ids: np.ndarray,
    cohorts: Mapping[str, pl.DataFrame],
    *,
    window: int,
    stride: int,
    max_tokens: int | None,
    bos_token_id: int | None,
    batch_size: int = 16,
) -> pl.DataFrame:
    """WD to N(0, 1) (exact mode) of several named sets of neurons at this model state.

    ``cohorts`` maps a name (``wn@1``, ``random@1``, ``random@1#1``, ``layer``, ...) to a table with
    columns ``layer``, ``neuron`` (other columns are ignored). Every cohort is measured on the same
    tokens in one pass: a single forward per batch of windows captures the union of their neurons, and a
    neuron shared by several cohorts is computed once. Pass held-out tokens
    (:func:`cohort_token_stream`), not those that selected the cohort. Pre-activations are captured over
    strided windows of the first ``max_tokens`` stream tokens, each token recorded once
    (:func:`negdiff.data.iter_windows`), exactly as :func:`negdiff.activations.dump_activations`
    does: ``window`` is the config's ``evaluation.window``, the positions the model sees per window
    with the BOS (when ``bos_token_id`` is given) included, so a window holds ``window - 1`` stream
    tokens after a BOS (:func:`negdiff.data.stream_window`). Returns one row per (cohort, neuron),
    cohorts in the given order and each sorted by layer, neuron, with ``wd``, ``wd_neg``, ``wd_pos``,
    ``frac_negative`` (:data:`COHORT_WD_SCHEMA`); an empty cohort has no rows.
    """
    n_layers, n_neu = models.n_layers(model), models.n_neurons(model)
    checked = {name: _check_cohort(name, c, n_layers, n_neu) for name, c in cohorts.items()}
    union = pl.concat([pl.DataFrame(schema={"layer": pl.Int64, "neuron": pl.Int64}), *checked.values()])
    union = union.unique().sort("layer", "neuron")
    if union.height == 0:
        return pl.DataFrame(schema=COHORT_WD_SCHEMA)
    ids = np.asarray(stream_ids, dtype=np.int64).reshape(-1)
    if max_tokens is not None:
        ids = ids[: int(max_tokens)]
    if len(ids) == 0:
        raise ValueError("cohort_wd: empty token stream")
    n_ctx = stream_window(window, bos_token_id is not None)
    if n_ctx < 1:
        raise ValueError(f"cohort_wd: window must be >= {2 if bos_token_id is not None else 1} "
                         f"(model positions, BOS included), got {window}")
    cols = {l: g["neuron"].to_numpy() for (l,), g in union.group_by("layer", maintain_order=True)}
    acts = _capture_columns(model, ids, cols, window=n_ctx, stride=stride, bos_token_id=bos_token_id,
                            batch_size=batch_size)
    stats = []
    for l, neurons in cols.items():
        st = wd_to_normal(acts.pop(l), mode="exact", layer=l)
        stats.append(pl.DataFrame({"layer": np.full(len(neurons), l, np.int64), "neuron": neurons,
                                   **{k: st[k] for k in ("wd", "wd_neg", "wd_pos", "frac_negative")}}))
    stats = pl.concat(stats)
    frames = [coh.join(stats, on=["layer", "neuron"], how="left", maintain_order="left")
              .with_columns(pl.lit(name, dtype=pl.String).alias("cohort")) for name, coh in checked.items()]
    return pl.concat(frames).select([pl.col(k).cast(v) for k, v in COHORT_WD_SCHEMA.items()])

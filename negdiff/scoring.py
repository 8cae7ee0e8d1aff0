"""Per-neuron score tables: WD and MD of every neuron of a layer, read block by block from a dump.

The measures are defined in :mod:`negdiff.wasserstein` (WD, ``wd_neg``/``wd_pos``, the zero-variance
and non-finite conventions) and :mod:`negdiff.mapping_difficulty` (MD). :func:`score_layer` draws the MD
pairs once per layer with ``md_seed`` and computes every neuron's WD in ``mode`` ``exact``, ``sample``
or ``streaming``; :func:`top_neurons` is the selection's rule for the WNs.

Implementation notes
--------------------
:func:`score_layer` reads ``neuron_block`` neurons at a time (``[T, B]`` float32), copies them
into a neuron-major ``[B, T]`` buffer (tiled transpose), sorts each row in place with numpy's
SIMD sort, wraps the rows zero-copy as a polars DataFrame (one column per neuron) and computes
the per-column statistics in a lazy ``LazyFrame.map_batches`` whose kernel works column by
column in float64 with cache-resident scratch. Per-block results are assembled into the output
table with polars. ``engine="polars"`` computes the same statistics with pure polars
expressions (sort, z-score, closed-form terms with ``scipy.special.ndtr`` applied to
expressions, filtered sums); it agrees to ~1e-13 but is far slower (polars' float sort is slower
than numpy's, and per-column ``map_batches`` UDFs contend for the GIL; timings in BENCHMARKS.md §1),
so it is kept only as a cross-check.
Memory: one neuron-major ``[B, T]`` buffer, allocated once per layer and reused by every block
(readers with ``iter_pre_activation`` transpose each shard straight into it, so no ``[T, B]``
block exists; others add one ``[T, B]`` block), one shard, the MD pair rows, and ``2 T`` float64
scratch. Timings and memory: ``benchmarks/bench_scoring.py``, BENCHMARKS.md §1.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterable

import numpy as np
import polars as pl
import torch

from negdiff.mapping_difficulty import md_pairs as draw_md_pairs
from negdiff.mapping_difficulty import dx_normalised, dy_normalised, md_from_normalised
from negdiff.wasserstein import STATS, column_stats, mode_refs, polars_stats_frame, raise_nonfinite, warn_zero_var

__all__ = [
    "score_layer",
    "score_activations",
    "top_neurons",
    "SCORE_SCHEMA",
]

SCORE_SCHEMA: dict[str, Any] = {
    "layer": pl.Int32,
    "neuron": pl.Int32,
    "wd": pl.Float64,
    "wd_neg": pl.Float64,
    "wd_pos": pl.Float64,
    "md": pl.Float64,
    "mean": pl.Float64,
    "std": pl.Float64,
    "frac_negative": pl.Float64,
}

_VALID_MODES = ("exact", "sample", "streaming")


def _neuron_major(block: np.ndarray, rows: int = 256, out: np.ndarray | None = None) -> np.ndarray:
    """[T, B] -> a C-contiguous [B, T] copy (into ``out`` when given), transposed in cache-sized
    row tiles."""
    t, b = block.shape
    if out is None:
        out = np.empty((b, t), block.dtype)
    for s in range(0, t, rows):
        out[:, s:s + rows] = block[s:s + rows].T
    return out


def _fill_neuron_major(reader, layer: int, start: int, stop: int, n_tokens: int,
                       buf: np.ndarray | None) -> np.ndarray:
    """Neurons ``start:stop`` of ``layer`` as a neuron-major [B, T] array, written into ``buf``
    (reused across blocks) when it fits.

    Readers with ``iter_pre_activation`` (the dump reader) are read shard by shard and each shard
    block is transposed straight into the buffer, so no [T, B] block is ever materialised. Reusing
    one buffer matters: a fresh 100+ MB allocation per block costs more in page faults than the
    transpose itself (BENCHMARKS.md §1).
    """
    b = stop - start

    def target(dtype) -> np.ndarray:
        if buf is not None and buf.dtype == dtype and buf.shape[0] >= b and buf.shape[1] == n_tokens:
            return buf[:b]
        return np.empty((b, n_tokens), dtype)

    def as_float(block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        return block if block.dtype in (np.float32, np.float64) else block.astype(np.float32)

    if hasattr(reader, "iter_pre_activation"):
        nm = None
        pos = 0
        for block in reader.iter_pre_activation(layer, start, stop):
            block = as_float(block)
            if block.ndim != 2 or block.shape[1] != b or pos + block.shape[0] > n_tokens:
                raise ValueError(f"layer {layer}: iter_pre_activation({start}, {stop}) gave a block "
                                 f"of shape {block.shape} at token {pos} ({n_tokens} tokens, "
                                 f"{b} neurons expected)")
            if nm is None:
                nm = target(block.dtype)
            _neuron_major(block, out=nm[:, pos:pos + block.shape[0]])
            pos += block.shape[0]
        if pos != n_tokens:
            raise ValueError(f"layer {layer}: iter_pre_activation({start}, {stop}) gave {pos} "
                             f"tokens, expected {n_tokens}")
        return nm
    block = as_float(reader.read_pre_activation(layer, start, stop))
    if block.shape != (n_tokens, b):
        raise ValueError(f"layer {layer}: read_pre_activation({start}, {stop}) returned "
                         f"shape {block.shape}, expected {(n_tokens, b)}")
    return _neuron_major(block, out=target(block.dtype))


_STAT_SCHEMA = {k: pl.Float64 for k in STATS}


def _block_stats(nm: np.ndarray, start: int, mode: str, seed: int,
                 engine: str = "numpy") -> np.ndarray:
    """Statistics [B, len(STATS)] of a neuron-major float32 block [B, T] (sorted in place).

    The block is wrapped zero-copy as a polars DataFrame, one column per neuron.
    ``engine="numpy"`` (default): a lazy ``map_batches`` over the frame runs the numpy kernel
    column by column. ``engine="polars"``: the same statistics as pure polars expressions
    (slower, kept as a cross-check; see :func:`polars_stats_frame`).
    """
    b, n = nm.shape
    ref, q, w = mode_refs(n, mode, seed)
    names = [f"n{start + k}" for k in range(b)]
    if engine == "polars":
        frame = pl.DataFrame({name: nm[k] for k, name in enumerate(names)})
        out = polars_stats_frame(frame, n, ref, q)
        return np.array([out[name][0].to_list() for name in names], dtype=np.float64)
    if engine != "numpy":
        raise ValueError(f"engine must be 'numpy' or 'polars', got {engine!r}")
    nm.sort(axis=1)  # numpy's SIMD sort, in place on our own neuron-major copy
    frame = pl.DataFrame({name: nm[k] for k, name in enumerate(names)})  # zero-copy columns

    def kernel(df: pl.DataFrame) -> pl.DataFrame:
        rows = []
        for s in df.iter_columns():
            col = s.to_numpy()
            if not (math.isfinite(col[0]) and math.isfinite(col[-1])):  # NaN sorts last
                rows.append((math.nan,) * len(STATS))
            else:
                rows.append(column_stats(col, ref, q, w))
        arr = np.array(rows, dtype=np.float64).reshape(len(rows), len(STATS))
        return pl.DataFrame({k: arr[:, i] for i, k in enumerate(STATS)})

    stats = frame.lazy().map_batches(kernel, schema=_STAT_SCHEMA).collect()
    return stats.to_numpy()


def _chunks(reader, layer: int, start: int, stop: int, rows: int = 8192):
    """Token chunks [t, stop - start] of a neuron block: the reader's shards when it streams them,
    otherwise row slices of one full read (memory then follows the token count)."""
    if hasattr(reader, "iter_pre_activation"):
        yield from reader.iter_pre_activation(layer, start, stop)
        return
    block = np.asarray(reader.read_pre_activation(layer, start, stop))
    for s in range(0, block.shape[0], rows):
        yield block[s:s + rows]


def _streaming_block(reader, layer: int, start: int, stop: int, n_tokens: int, grid,
                     md_rows: tuple[np.ndarray, np.ndarray] | None):
    """Streaming statistics of one neuron block: (stats [B, len(STATS)], yi, yj).

    Pass 1 merges chunk moments and gathers the MD pairs' values; pass 2 fills the histogram.
    """
    from negdiff import streaming as St

    b = stop - start
    mom = St.moments_init(b)
    yi = yj = None
    if md_rows is not None:
        pi, pj = md_rows
        yi = np.empty((pi.size, b), np.float32)
        yj = np.empty((pj.size, b), np.float32)
    pos = 0
    for chunk in _chunks(reader, layer, start, stop):
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != b:
            raise ValueError(f"layer {layer}: pre-activation chunk of shape {chunk.shape}, "
                             f"expected [t, {b}]")
        mom = St.moments_update(mom, chunk)
        if md_rows is not None:
            for idx, out in ((pi, yi), (pj, yj)):
                sel = np.flatnonzero((idx >= pos) & (idx < pos + chunk.shape[0]))
                out[sel] = chunk[idx[sel] - pos]
        pos += chunk.shape[0]
    if pos != n_tokens:
        raise ValueError(f"layer {layer}: read {pos} tokens, expected {n_tokens}")
    if not bool(torch.isfinite(mom.min).all() and torch.isfinite(mom.max).all()):
        raise_nonfinite(np.asarray(reader.read_pre_activation(layer, start, stop)), layer, start)
    # int32 counts (half the cache footprint of the scattered increments) while they cannot overflow
    hist = St.hist_init(b, grid, dtype=torch.int32 if n_tokens < 2**31 else torch.int64)
    std = mom.std
    for chunk in _chunks(reader, layer, start, stop):
        St.hist_update(hist, chunk, mom.mean, std)
    return _stream_stats(hist, mom), yi, yj


def _stream_stats(hist, mom) -> np.ndarray:
    """[B, len(STATS)] from a streaming histogram and its moments (numpy or tensors)."""
    from negdiff import streaming as St

    m = mom.numpy()
    wd = St.w1_from_histogram(hist, m)
    zero_var = m.min == m.max
    mean = np.where(zero_var, m.min, m.mean)
    return np.stack([wd["wd"], wd["wd_neg"], wd["wd_pos"], mean, m.std, m.n_neg / m.n,
                     zero_var.astype(np.float64)], axis=1)


class _MdPairs:
    """A layer's MD token pairs (kept: ``dx > 0``) and their normalised input distances, set up once
    per layer; only the MLP-input rows the pairs touch are read."""

    def __init__(self, reader, layer: int, n_tokens: int, n_pairs: int, seed: int):
        pi, pj = draw_md_pairs(n_tokens, n_pairs, seed)
        rows = np.unique(np.concatenate([pi, pj]))
        x = np.asarray(reader.read_mlp_input(layer, rows))
        if x.shape[0] != rows.size:
            raise ValueError(f"layer {layer}: read_mlp_input returned {x.shape[0]} rows, "
                             f"expected {rows.size}")
        keep, self.dxn = dx_normalised(x, np.searchsorted(rows, pi), np.searchsorted(rows, pj))
        self.i, self.j = pi[keep], pj[keep]

    def md(self, yi: np.ndarray, yj: np.ndarray, layer: int, start: int) -> np.ndarray:
        """MD of a block of neurons from the pairs' pre-activations ``yi``, ``yj`` [P, B]."""
        dyn = dy_normalised(yi, yj, layer=layer, neuron_offset=start)
        return md_from_normalised(self.dxn, dyn, layer)


def _histogram_block(reader, mom, hist, layer: int, start: int, stop: int, pairs: _MdPairs | None):
    """Statistics of a block from a ``keep: histograms`` dump's moments and histograms, and the MD
    pairs' values from its token sample: (stats, yi, yj)."""
    from negdiff import streaming as St

    sl = slice(start, stop)
    stats = _stream_stats(St.Histogram(hist.grid, hist.slots[sl], hist.tail_n[sl], hist.tail_sum[sl]),
                          St.Moments(mom.n, mom.mean[sl], mom.m2[sl], mom.min[sl], mom.max[sl],
                                     mom.n_neg[sl]))
    if pairs is None:
        return stats, None, None
    y = np.asarray(reader.read_pre_activation(layer, start, stop))
    return stats, y[pairs.i], y[pairs.j]


def _block_frame(layer: int, start: int, stop: int, stats: np.ndarray, md: np.ndarray) -> pl.DataFrame:
    cols = {k: stats[:, i] for i, k in enumerate(STATS) if k != "zero_var"}
    return pl.DataFrame(
        {
            "layer": np.full(stop - start, layer, np.int32),
            "neuron": np.arange(start, stop, dtype=np.int32),
            **cols,
            "md": md,
        }
    ).with_columns(pl.col("md").fill_nan(None))


def _layer_pairs(reader, layer: int, n_tokens: int, md_pairs: int, md_seed: int) -> _MdPairs | None:
    """The layer's MD pairs, or None when the dump has no MLP inputs or fewer than 2 tokens."""
    if not bool(reader.has_mlp_input):
        return None
    if n_tokens < 2:
        warnings.warn(f"layer {layer}: fewer than 2 tokens; md left null", UserWarning, stacklevel=3)
        return None
    return _MdPairs(reader, layer, n_tokens, md_pairs, md_seed)


def score_layer(reader, layer: int, *, mode: str = "exact", seed: int = 0,
                neuron_block: int = 256, md_pairs: int = 4096,
                md_seed: int = 0, engine: str = "numpy", bins: int = 4096,
                z_range: float = 8.0) -> pl.DataFrame:
    """Score every neuron of one layer; one row per neuron (schema ``SCORE_SCHEMA``).

    Keywords are named as in the config's ``scoring`` section: ``md_pairs`` is the number of MD token
    pairs (drawn by :func:`negdiff.mapping_difficulty.md_pairs` with ``md_seed``); ``bins`` /
    ``z_range`` set the z-grid of ``mode="streaming"`` (ignored otherwise).
    """
    if mode not in _VALID_MODES:
        raise ValueError(f"mode must be one of {_VALID_MODES}, got {mode!r}")
    if neuron_block < 1:
        raise ValueError(f"neuron_block must be positive, got {neuron_block}")
    n_tokens = int(reader.n_tokens)
    n_neurons = int(reader.n_neurons(layer))
    if n_tokens < 1:
        raise ValueError(f"layer {layer}: no tokens to score")
    pairs = _layer_pairs(reader, layer, n_tokens, md_pairs, md_seed)

    from_histograms = getattr(reader, "keep", "all") == "histograms"
    if from_histograms:
        if mode != "streaming":
            raise ValueError(
                f"activation dump {getattr(reader, 'path', '?')} keeps histograms, not every token "
                f"(activations.keep: histograms): it can only be scored with scoring.mode: streaming, got {mode!r}")
        mom, hist = reader.histogram(layer)
    grid = None
    if mode == "streaming":
        from negdiff import streaming as St

        grid = St.Grid(int(bins), float(z_range))
    parts: list[pl.DataFrame] = []
    buf: np.ndarray | None = None  # one neuron-major [B, T] buffer, reused by every block
    for start in range(0, n_neurons, neuron_block):
        stop = min(start + neuron_block, n_neurons)
        nm = None
        if from_histograms:  # the dump's moments and histograms; MD over its token sample
            stats, yi, yj = _histogram_block(reader, mom, hist, layer, start, stop, pairs)
        elif mode == "streaming":
            stats, yi, yj = _streaming_block(reader, layer, start, stop, n_tokens, grid,
                                             (pairs.i, pairs.j) if pairs is not None else None)
        else:
            nm = _fill_neuron_major(reader, layer, start, stop, n_tokens, buf)
            if buf is None:
                buf = nm
            if pairs is not None:  # gather the MD pairs' values before the rows are sorted in place
                yi, yj = nm[:, pairs.i].T, nm[:, pairs.j].T
            stats = _block_stats(nm, start, mode, seed, engine)
            if np.isnan(stats[:, 0]).any():  # error path: re-read the block to name the token
                raise_nonfinite(np.asarray(reader.read_pre_activation(layer, start, stop)), layer, start)
        warn_zero_var(np.flatnonzero(stats[:, -1] > 0), layer, start, mode)
        md = pairs.md(yi, yj, layer, start) if pairs is not None else np.full(stop - start, np.nan)
        if pairs is not None:
            del yi, yj
        parts.append(_block_frame(layer, start, stop, stats, md))
        del nm
    if not parts:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    return pl.concat(parts).select(
        [pl.col(k).cast(v) for k, v in SCORE_SCHEMA.items()]
    )


def score_activations(reader, layers: Iterable[int] | None = None, **kw) -> pl.DataFrame:
    """:func:`score_layer` over ``layers`` (default: all of ``reader.layers``), sorted by
    (layer, neuron)."""
    layers = list(reader.layers) if layers is None else list(layers)
    frames = [score_layer(reader, int(layer), **kw) for layer in layers]
    if not frames:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    return pl.concat(frames).sort(["layer", "neuron"])


def top_neurons(scores: pl.DataFrame, percent: float) -> pl.DataFrame:
    """Top ``percent`` % of neurons by ``wd`` within each layer.

    Per layer ``count = max(1, round(N * percent / 100))`` (Python ``round``, i.e. halves to
    even) with ``N`` the layer's rows in ``scores``; ties in ``wd`` go to the lower neuron
    index. Zero-variance (constant, e.g. dead) neurons have a defined WD but rank after every
    neuron that varies, so they are selected only when nothing else is left. Rows come back
    ordered by layer, then rank (``wd`` descending).
    """
    if not (0 < percent <= 100) or not math.isfinite(percent):
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    sizes = scores.group_by("layer").len()
    counts = pl.DataFrame(
        {
            "layer": sizes["layer"],
            "_count": [max(1, round(n * percent / 100)) for n in sizes["len"].to_list()],
        },
        schema_overrides={"layer": scores.schema["layer"], "_count": pl.Int64},
    )
    return (
        scores.with_columns(
            (pl.col("std") > 0).fill_null(True).alias("_varies") if "std" in scores.columns else pl.lit(True).alias("_varies")
        )
        .sort(["layer", "_varies", "wd", "neuron"], descending=[False, True, True, False],
              nulls_last=True)
        .drop("_varies")
        .with_columns(pl.int_range(pl.len()).over("layer").alias("_rank"))
        .join(counts, on="layer", how="left")
        .filter(pl.col("_rank") < pl.col("_count"))
        .drop(["_rank", "_count"])
    )

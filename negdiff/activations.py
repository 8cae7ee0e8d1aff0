"""Writing MLP pre-activation dumps: sharded safetensors with bounded memory (read by :mod:`negdiff.activation_reader`).

Layout of a dump directory::

    shard-00000.safetensors   pre_activation.{layer} [t, N], mlp_input.{layer} [t, d] (optional),
    shard-00001.safetensors   token_ids [t] int64, offsets [t, 2] int64, position [t] int64
    ...
    manifest.json             written last; a directory without it is not a dump

Tokens are in stream order; ``position`` is the token's index inside the window it was recorded in
(not counting a prepended BOS token, which is never recorded). The manifest's ``window`` is the stream
tokens per window (the ``window`` argument less the BOS, :func:`negdiff.data.stream_window`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import save_file

from negdiff import architectures
from negdiff import models
from negdiff.capture import check_layers, recorded_batches
from negdiff.data import TokenStream, iter_windows, stream_window
from negdiff.activation_reader import DUMP_DTYPES, FORMAT_VERSION, HISTOGRAMS, KEEP_MODES, MANIFEST, SHARD_GLOB, shard_name
from negdiff.io import atomic_path, write_json

log = logging.getLogger(__name__)

_INDEX_BYTES_PER_TOKEN = 8 + 16 + 8  # token_ids, offsets, position (int64)


def estimate_dump_bytes(
    n_tokens: int, n_layers: int, n_neurons: int, d_model: int, dtype: str, capture_mlp_input: bool
) -> int:
    """Tensor payload of a dump, in bytes (safetensors headers excluded; they are tiny)."""
    itemsize = torch.empty((), dtype=DUMP_DTYPES[dtype]).element_size()
    width = n_neurons + (d_model if capture_mlp_input else 0)
    return int(n_tokens) * (n_layers * width * itemsize + _INDEX_BYTES_PER_TOKEN)


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent (where free disk space can be measured)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _clear_dump_dir(out_dir: Path) -> None:
    (out_dir / MANIFEST).unlink(missing_ok=True)  # first: a half-cleared dir is never trusted
    (out_dir / HISTOGRAMS).unlink(missing_ok=True)
    for p in out_dir.glob(SHARD_GLOB):
        p.unlink()
    for p in out_dir.glob(".tmp-shard-*"):
        p.unlink()


class _HostStager:
    """Device-to-host copies of a batch's dump rows, overlapped with the next batch's forward on CUDA.

    ``push(device_rows, host_rows)`` returns the batches whose rows are on the host, ready for the
    shard writer. On the CPU that is the pushed batch itself. On CUDA the copies go on a side stream
    (after an event on the compute stream) into pinned host memory, so they run while the next batch's
    forward is computed; the batch comes back from the next ``push`` (or ``drain``), once its copy is done.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        self.pending: list[tuple[dict, Any]] = []

    def push(self, rows: dict[str, torch.Tensor], host_rows: dict[str, torch.Tensor]) -> list[dict]:
        if not self.cuda:
            return [{**{k: v.cpu() for k, v in rows.items()}, **host_rows}]
        ready = torch.cuda.Event()
        ready.record()
        out = dict(host_rows)
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(ready)
            for k, v in rows.items():
                out[k] = torch.empty(v.shape, dtype=v.dtype, pin_memory=True)
                out[k].copy_(v, non_blocking=True)
                v.record_stream(self.stream)  # the allocator keeps v until the copy has run
            done = torch.cuda.Event()
            done.record(self.stream)
        done_before, self.pending = self.pending, [(out, done)]
        return self._wait(done_before)

    def drain(self) -> list[dict]:
        done, self.pending = self.pending, []
        return self._wait(done)

    @staticmethod
    def _wait(items) -> list[dict]:
        for _, ev in items:
            ev.synchronize()
        return [rows for rows, _ in items]


class _ShardWriter:
    """Fixed-size buffers for one shard; flushes to ``shard-k.safetensors`` when full."""

    def __init__(self, out_dir: Path, layers: list[int], n_neurons: int, d_model: int,
                 dtype: torch.dtype, dtype_name: str, capture_mlp_input: bool,
                 tokens_per_shard: int, total_tokens: int):
        self.out_dir = out_dir
        self.layers = layers
        self.n_neurons = n_neurons
        self.d_model = d_model
        self.dtype = dtype
        self.dtype_name = dtype_name
        self.capture_mlp_input = capture_mlp_input
        self.tokens_per_shard = tokens_per_shard
        self.total_tokens = total_tokens  # upper bound on tokens still to come, for sizing the last shard
        self.shards: list[dict[str, Any]] = []
        self.written = 0
        self._buf: dict[str, torch.Tensor] | None = None
        self._fill = 0

    @torch.inference_mode(False)  # ordinary tensors, filled in place wherever add() is called
    def _new_buffer(self) -> None:
        size = min(self.tokens_per_shard, self.total_tokens - self.written)
        buf = {f"pre_activation.{l}": torch.empty(size, self.n_neurons, dtype=self.dtype) for l in self.layers}
        if self.capture_mlp_input:
            buf.update({f"mlp_input.{l}": torch.empty(size, self.d_model, dtype=self.dtype) for l in self.layers})
        buf["token_ids"] = torch.empty(size, dtype=torch.int64)
        buf["offsets"] = torch.empty(size, 2, dtype=torch.int64)
        buf["position"] = torch.empty(size, dtype=torch.int64)
        self._buf, self._fill = buf, 0

    def add(self, rows: dict[str, torch.Tensor]) -> None:
        """Append rows (all tensors with the same first dimension, already on CPU in the dump dtype)."""
        n = next(iter(rows.values())).shape[0]
        done = 0
        while done < n:
            if self._buf is None:
                self._new_buffer()
            cap = next(iter(self._buf.values())).shape[0]
            take = min(n - done, cap - self._fill)
            for name, t in rows.items():
                self._buf[name][self._fill : self._fill + take] = t[done : done + take]
            self._fill += take
            done += take
            if self._fill == cap:
                self.flush()

    def flush(self) -> None:
        if self._buf is None or self._fill == 0:
            self._buf = None
            return
        k = len(self.shards)
        cap = next(iter(self._buf.values())).shape[0]
        tensors = self._buf if self._fill == cap else {n: t[: self._fill].clone() for n, t in self._buf.items()}
        path = self.out_dir / shard_name(k)
        info = {
            "format_version": FORMAT_VERSION,
            "shard": k,
            "first_token": self.written,
            "n_tokens": self._fill,
            "dtype": self.dtype_name,
        }
        # one metadata key: safetensors writes a multi-key metadata map in a per-process random order,
        # which would make equal dumps differ in their bytes
        metadata = {"negdiff": json.dumps(info, sort_keys=True)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        self.shards.append({"file": path.name, "n_tokens": self._fill, "bytes": path.stat().st_size})
        self.written += self._fill
        self._buf, self._fill = None, 0


def _row_tensors(pre: dict[int, torch.Tensor], mlp: dict[int, torch.Tensor], dtype: torch.dtype,
                 rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """A batch's shard tensors (from recorded_batches), or only its ``rows``, in the dump dtype, on the
    model's device."""
    def pick(t):
        return t if rows is None else t[rows.to(t.device)]

    out = {f"pre_activation.{l}": pick(t).to(dtype) for l, t in pre.items()}
    out.update({f"mlp_input.{l}": pick(t).to(dtype) for l, t in mlp.items()})
    return out


def _index_rows(ids: np.ndarray, offsets: np.ndarray, spans: list) -> dict[str, torch.Tensor]:
    """token_ids, offsets and position of a batch's recorded tokens (spans from recorded_batches)."""
    return {
        "token_ids": torch.from_numpy(np.concatenate([ids[a:z] for a, z, _ in spans])),
        "offsets": torch.from_numpy(np.concatenate([offsets[a:z] for a, z, _ in spans])),
        "position": torch.from_numpy(np.concatenate([np.arange(p, p + z - a, dtype=np.int64) for a, z, p in spans])),
    }


def sample_rows(n_tokens: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded uniform sample (without replacement) of ``size`` of ``n_tokens``
    recorded tokens (all of them when ``size >= n_tokens``)."""
    if size >= n_tokens:
        return np.arange(n_tokens, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_tokens, size=size, replace=False)).astype(np.int64)


def _check_dump_args(*, dtype: str, keep: str, grid, tokens_per_shard: int, batch_size: int,
                     max_tokens: int | None, sample_tokens: int) -> None:
    if dtype not in DUMP_DTYPES:
        raise ValueError(f"dump dtype must be one of {sorted(DUMP_DTYPES)}, got {dtype!r}")
    if keep not in KEEP_MODES:
        raise ValueError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
    if keep == "histograms" and grid is None:
        raise ValueError("keep='histograms' needs a grid (negdiff.streaming.Grid: bins, z_range)")
    if tokens_per_shard < 1:
        raise ValueError(f"tokens_per_shard must be >= 1, got {tokens_per_shard}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens}")
    if sample_tokens < 1:
        raise ValueError(f"sample_tokens must be >= 1, got {sample_tokens}")


def _stream_arrays(stream: TokenStream) -> tuple[np.ndarray, np.ndarray]:
    """The stream's token ids [n] and character offsets [n, 2] as int64, checked."""
    ids = np.asarray(stream.ids, dtype=np.int64)
    offsets = np.asarray(stream.offsets, dtype=np.int64).reshape(-1, 2)
    if ids.ndim != 1 or offsets.shape[0] != ids.shape[0]:
        raise ValueError(f"token stream has {ids.shape} ids but {offsets.shape} offsets")
    if ids.shape[0] == 0:
        raise ValueError("token stream is empty")
    return ids, offsets


def _tokens_to_record(n_stream: int, max_tokens: int | None, keep: str) -> int:
    n_target = n_stream if max_tokens is None else min(int(max_tokens), n_stream)
    if max_tokens is not None and n_stream < max_tokens:
        warnings.warn(
            f"token stream has only {n_stream} tokens, fewer than max_tokens={max_tokens}; dumping all of them",
            stacklevel=3,
        )
    if keep == "histograms" and n_target >= 2**31:
        raise ValueError(f"keep='histograms' counts in int32: at most 2**31 - 1 tokens, got {n_target}")
    return n_target


def _stream_tokens_per_window(model, window: int, bos_token_id: int | None) -> int:
    """Stream tokens per window (``window`` less the BOS), checked against the model's context."""
    bos = 0 if bos_token_id is None else 1
    n_ctx = stream_window(window, bos_token_id is not None)
    if n_ctx < 1:
        raise ValueError(f"window must be >= {1 + bos} (model positions, BOS included), got {window}")
    max_ctx = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if max_ctx is not None and window > max_ctx:
        raise ValueError(f"window {window} ({n_ctx} tokens + {bos} BOS) exceeds the model's context of {max_ctx} tokens")
    return n_ctx


def _checked_disk_estimate(out_dir: Path, n_rows: int, layers: list[int], N: int, D: int, dtype: str,
                           capture_mlp_input: bool, keep: str, grid) -> int:
    """The dump's size in bytes; refuses (before anything is touched) when the disk has less free."""
    estimate = estimate_dump_bytes(n_rows, len(layers), N, D, dtype, capture_mlp_input)
    if keep == "histograms":
        estimate += len(layers) * N * ((grid.bins + 2) * 4 + 8 * 8 + 5 * 8)
    free = shutil.disk_usage(_existing_ancestor(out_dir)).free
    if free < estimate:
        raise OSError(
            f"not enough disk space for the activation dump in {out_dir}: need about "
            f"{estimate / 2**30:.2f} GiB ({estimate} bytes = {n_rows} tokens x {len(layers)} layers x "
            f"{N} neurons{f' + {D} MLP inputs' if capture_mlp_input else ''} x {dtype}"
            f"{' + histograms' if keep == 'histograms' else ''}), "
            f"{free / 2**30:.2f} GiB ({free} bytes) free"
        )
    return estimate


def _progress_bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, unit="tok", desc=desc)


def _batch_passes(model, ids: np.ndarray, windows, *, layers: list[int], batch_size: int,
                  bos_token_id: int | None, n_target: int, capture_mlp_input: bool, progress: bool,
                  desc: str, passes: int):
    """``batches(k)``: pass ``k`` of the model over the windows (:func:`negdiff.capture.recorded_batches`),
    with a progress bar; MLP inputs are only needed (for the shards or the sample) in pass 0."""
    def batches(k):
        bar = _progress_bar(progress, n_target, desc + (f" (pass {k + 1}/{passes})" if passes > 1 else ""))
        try:
            yield from recorded_batches(model, ids, windows, layers=layers, batch_size=batch_size,
                                         bos_token_id=bos_token_id, n_target=n_target,
                                         capture_mlp_input=capture_mlp_input and k == 0, bar=bar)
        finally:
            if bar is not None:
                bar.close()

    return batches


def _record(batches, writer: _ShardWriter, stager: _HostStager, *, keep: str, layers: list[int], grid,
            sample: np.ndarray | None, tdtype: torch.dtype, ids: np.ndarray, offsets: np.ndarray) -> dict | None:
    """Run the passes and write every shard; returns the manifest's ``histograms`` entry (None for
    ``keep="all"``)."""
    histograms = None
    if keep == "all":
        for pre, mlp, spans in batches(0):
            for rows in stager.push(_row_tensors(pre, mlp, tdtype), _index_rows(ids, offsets, spans)):
                writer.add(rows)
    else:
        histograms = _dump_histograms(batches, layers, writer.n_neurons, grid, sample, writer, stager, tdtype,
                                      ids, offsets)
    for rows in stager.drain():
        writer.add(rows)
    writer.flush()
    if writer.written != writer.total_tokens:  # pragma: no cover - internal invariant
        raise RuntimeError(f"dumped {writer.written} tokens, expected {writer.total_tokens}")
    return histograms


def _manifest(model, writer: _ShardWriter, *, keep: str, n_target: int, max_tokens: int | None,
              layers: list[int], n_layers_total: int, dtype: str, n_ctx: int, stride: int,
              bos_token_id: int | None, capture_mlp_input: bool, tokens_per_shard: int, estimate: int,
              meta: dict | None) -> dict:
    """The dump's manifest (without the ``histograms`` / ``sample`` entries of ``keep="histograms"``)."""
    return {
        "format_version": FORMAT_VERSION,
        "keep": keep,
        "n_tokens": writer.written,
        "n_tokens_seen": n_target,
        "max_tokens": max_tokens,
        "layers": layers,
        "n_layers_model": n_layers_total,
        "n_neurons": writer.n_neurons,
        "d_model": writer.d_model,
        "dtype": dtype,
        "model_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "window": n_ctx,  # stream tokens per window: the window argument less the BOS
        "stride": stride,
        "bos_token_id": bos_token_id,
        "capture_mlp_input": capture_mlp_input,
        "tokens_per_shard": tokens_per_shard,
        "estimated_bytes": estimate,
        "architecture": architectures.arch_spec(model).name,
        "shards": writer.shards,
        "meta": dict(meta or {}),
    }


def dump_activations(
    model,
    stream: TokenStream,
    out_dir: str | os.PathLike,
    *,
    layers: Sequence[int] | None = None,
    window: int,
    stride: int,
    max_tokens: int | None,
    tokens_per_shard: int,
    dtype: str = "float32",
    capture_mlp_input: bool = False,
    batch_size: int = 8,
    bos_token_id: int | None = None,
    meta: dict | None = None,
    progress: bool = True,
    keep: str = "all",
    grid=None,
    sample_tokens: int = 8192,
    sample_seed: int = 0,
) -> dict:
    """Run ``model`` over strided windows of ``stream`` and dump the recorded tokens' pre-activations.

    ``window`` is the positions the model sees per window, BOS included (the config's
    ``activations.window``): with ``bos_token_id`` each window holds ``window - 1`` stream tokens
    (:func:`negdiff.data.stream_window`), and ``stride`` must not exceed that. Returns the manifest (also written to ``out_dir/manifest.json``, last). ``max_tokens=None`` records
    the whole stream; a stream shorter than ``max_tokens`` records all of it, with a warning.

    ``keep="histograms"`` stores, instead of every recorded token, the per-neuron moments and z-grid
    histograms of all of them (``grid``, a :class:`negdiff.streaming.Grid`) in ``histograms.safetensors``,
    computed on the model's device during the dump: pass 1 runs the model over the windows and merges
    the moments, pass 2 runs it again and counts the z-scores (the grid needs the final mean and std).
    The shards then hold only the rows of ``sample_tokens`` recorded tokens, drawn uniformly with
    ``sample_seed`` (:func:`sample_rows`), for mapping difficulty and the example-neuron figure.
    Its cost is one more forward and no per-token writes; its size is ``layers x N x (bins + 2) x 4``
    bytes plus the sample.
    """
    _check_dump_args(dtype=dtype, keep=keep, grid=grid, tokens_per_shard=tokens_per_shard, batch_size=batch_size,
                     max_tokens=max_tokens, sample_tokens=sample_tokens)
    ids, offsets = _stream_arrays(stream)
    n_layers_total = models.n_layers(model)
    layers = list(range(n_layers_total)) if layers is None else [int(l) for l in layers]
    if not layers:
        raise ValueError("layers must name at least one layer (or be None for all)")
    check_layers(model, layers)
    N, D = models.n_neurons(model), models.d_model(model)
    n_target = _tokens_to_record(int(ids.shape[0]), max_tokens, keep)
    n_ctx = _stream_tokens_per_window(model, window, bos_token_id)
    sample = sample_rows(n_target, sample_tokens, sample_seed) if keep == "histograms" else None
    n_rows = n_target if sample is None else int(sample.size)
    out_dir = Path(out_dir)
    estimate = _checked_disk_estimate(out_dir, n_rows, layers, N, D, dtype, capture_mlp_input, keep, grid)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_dump_dir(out_dir)

    tdtype = DUMP_DTYPES[dtype]
    writer = _ShardWriter(out_dir, layers, N, D, tdtype, dtype, capture_mlp_input, tokens_per_shard, n_rows)
    windows = iter_windows(int(ids.shape[0]), n_ctx, stride)
    passes = 1 if keep == "all" else 2

    batches = _batch_passes(model, ids, windows, layers=layers, batch_size=batch_size, bos_token_id=bos_token_id,
                            n_target=n_target, capture_mlp_input=capture_mlp_input,
                            progress=progress, desc=f"dump {out_dir.name}", passes=passes)

    try:
        histograms = _record(batches, writer, _HostStager(models.model_device(model)), keep=keep, layers=layers,
                             grid=grid, sample=sample, tdtype=tdtype, ids=ids, offsets=offsets)
        manifest = _manifest(model, writer, keep=keep, n_target=n_target, max_tokens=max_tokens, layers=layers,
                             n_layers_total=n_layers_total, dtype=dtype, n_ctx=n_ctx, stride=stride,
                             bos_token_id=bos_token_id, capture_mlp_input=capture_mlp_input,
                             tokens_per_shard=tokens_per_shard, estimate=estimate, meta=meta)
        if histograms is not None:
            manifest["histograms"] = histograms
            manifest["sample"] = {"tokens": n_rows, "of": n_target, "seed": sample_seed}
        write_json(out_dir / MANIFEST, manifest)
    except BaseException:
        # a failed or interrupted dump leaves no shard behind (the manifest is never written)
        _clear_dump_dir(out_dir)
        raise
    return manifest


def _dump_histograms(batches, layers, N, grid, sample, writer, stager, tdtype, ids, offsets) -> dict:
    """Both passes of ``keep="histograms"``; writes ``histograms.safetensors`` and the sample rows
    (through ``stager`` to ``writer``; the caller drains it); returns the manifest's ``histograms`` entry."""
    from negdiff import streaming as St

    moments: dict[int, St.Moments] = {}
    pos = 0
    for pre, mlp, spans in batches(0):
        n = next(iter(pre.values())).shape[0]
        for l in layers:
            moments[l] = St.moments_update(moments.get(l) or St.moments_init(N, pre[l].device), pre[l])
        lo, hi = np.searchsorted(sample, [pos, pos + n])
        if hi > lo:
            rows = torch.from_numpy(sample[lo:hi] - pos)
            index = {k: v[rows] for k, v in _index_rows(ids, offsets, spans).items()}
            for ready in stager.push(_row_tensors(pre, mlp, tdtype, rows), index):
                writer.add(ready)
        pos += n
    hists = {l: St.hist_init(N, grid, moments[l].mean.device, dtype=torch.int32) for l in layers}
    std = {l: moments[l].std for l in layers}
    for pre, _, _ in batches(1):
        for l in layers:
            St.hist_update(hists[l], pre[l], moments[l].mean, std[l])
    tensors: dict[str, torch.Tensor] = {}
    for l in layers:
        m, h = moments[l], hists[l]
        tensors.update({
            f"slots.{l}": h.slots, f"tail_n.{l}": h.tail_n, f"tail_sum.{l}": h.tail_sum,
            f"mean.{l}": m.mean, f"m2.{l}": m.m2, f"min.{l}": m.min, f"max.{l}": m.max, f"n_neg.{l}": m.n_neg,
        })
    tensors = {k: v.contiguous().cpu() for k, v in tensors.items()}
    path = writer.out_dir / HISTOGRAMS
    info = {"bins": grid.bins, "z_range": grid.z_range, "n_tokens": pos}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"negdiff": json.dumps(info, sort_keys=True)})
    return {"file": HISTOGRAMS, "bins": grid.bins, "z_range": grid.z_range, "bytes": path.stat().st_size}

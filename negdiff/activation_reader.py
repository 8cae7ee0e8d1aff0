"""Reading MLP pre-activation dumps: the dump format and a lazy reader.

Layout of a dump directory (written by :func:`negdiff.activations.dump_activations`)::

    shard-00000.safetensors   pre_activation.{layer} [t, N], mlp_input.{layer} [t, d] (optional),
    shard-00001.safetensors   token_ids [t] int64, offsets [t, 2] int64, position [t] int64
    ...
    histograms.safetensors    keep="histograms" only: per-layer moments and z-grid histograms
    manifest.json             written last; a directory without it is not a dump

Tokens are in stream order; ``position`` is the token's index inside the window it was recorded in
(not counting a prepended BOS token, which is never recorded). The manifest's ``window`` is the stream
tokens per window (the ``window`` argument less the BOS, :func:`negdiff.data.stream_window`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from safetensors import safe_open

from negdiff.io import read_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HISTOGRAMS = "histograms.safetensors"  # keep="histograms": per-layer moments and z-grid histograms
KEEP_MODES = ("all", "histograms")
SHARD_GLOB = "shard-*.safetensors"
DUMP_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def _open_shard(f: Path, dump: Path):
    try:
        return safe_open(str(f), framework="pt")
    except Exception as err:  # safetensors raises SafetensorError (header) or OSError; neither names the file
        raise ValueError(
            f"activation dump {dump}: shard {f} cannot be read ({type(err).__name__}: {err}); "
            "it is corrupted: rerun the dump (snakemake --forcerun dump_activations)"
        ) from err


class ActivationReader:
    """Lazy reader of a dump directory: reads only the requested tensors (and columns) from each shard."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        mpath = self.path / MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(
                f"activation dump {self.path} has no {MANIFEST} (missing, or the dump did not finish)"
            )
        self.manifest: dict = read_json(mpath)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{mpath}: format_version {self.manifest.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        self.layers: list[int] = [int(l) for l in self.manifest["layers"]]
        self.n_tokens: int = int(self.manifest["n_tokens"])
        self.has_mlp_input: bool = bool(self.manifest["capture_mlp_input"])
        self.dtype: str = self.manifest["dtype"]
        self.shards: list[dict] = list(self.manifest["shards"])
        self._files: list[Path] = []
        for s in self.shards:
            f = self._checked_file(s, "shard ")
            self._check_shard_header(f, int(s["n_tokens"]))
            self._files.append(f)
        self.keep: str = self.manifest.get("keep", "all")
        self.n_tokens_seen: int = int(self.manifest.get("n_tokens_seen", self.n_tokens))
        if self.keep == "histograms":
            self._checked_file(self.manifest["histograms"])
        self._bounds = np.cumsum([0] + [int(s["n_tokens"]) for s in self.shards])
        if int(self._bounds[-1]) != self.n_tokens:
            raise ValueError(f"{mpath}: shards hold {int(self._bounds[-1])} tokens, manifest says {self.n_tokens}")

    def _checked_file(self, entry: dict, what: str = "") -> Path:
        """The dump's file ``entry["file"]``, present and of the manifest's ``entry["bytes"]`` size."""
        f = self.path / entry["file"]
        if not f.is_file():
            raise FileNotFoundError(f"activation dump {self.path}: {what}{f} is missing")
        size = f.stat().st_size
        if size != int(entry["bytes"]):
            raise ValueError(
                f"activation dump {self.path}: {what}{f} has {size} bytes, manifest says {entry['bytes']} "
                f"(truncated or rewritten)"
            )
        return f

    def histogram(self, layer: int):
        """``(Moments, Histogram)`` of ``layer`` over all ``n_tokens_seen`` recorded tokens, from a
        ``keep="histograms"`` dump (numpy arrays; see :mod:`negdiff.streaming`)."""
        from negdiff import streaming as St

        if self.keep != "histograms":
            raise KeyError(f"activation dump {self.path} holds no histograms (keep={self.keep!r})")
        layer = self._check_layer(layer)
        info = self.manifest["histograms"]
        with self._open(self.path / info["file"]) as fh:
            t = {k: fh.get_tensor(f"{k}.{layer}").numpy() for k in
                 ("slots", "tail_n", "tail_sum", "mean", "m2", "min", "max", "n_neg")}
        grid = St.Grid(int(info["bins"]), float(info["z_range"]))
        mom = St.Moments(self.n_tokens_seen, t["mean"], t["m2"], t["min"], t["max"], t["n_neg"])
        return mom, St.Histogram(grid, t["slots"], t["tail_n"], t["tail_sum"])

    def _open(self, f: Path):
        """``safe_open`` whose failures (a corrupted header, ...) name the shard file."""
        return _open_shard(f, self.path)

    def _check_shard_header(self, f: Path, n_tokens: int) -> None:
        """The shard's header parses and lists exactly the tensors and shapes the manifest implies."""
        n_neurons, d_model = int(self.manifest["n_neurons"]), int(self.manifest["d_model"])
        expected = {f"pre_activation.{l}": [n_tokens, n_neurons] for l in self.layers}
        if self.has_mlp_input:
            expected.update({f"mlp_input.{l}": [n_tokens, d_model] for l in self.layers})
        expected.update({"token_ids": [n_tokens], "offsets": [n_tokens, 2], "position": [n_tokens]})
        with self._open(f) as fh:
            names = set(fh.keys())
            shapes = {k: list(fh.get_slice(k).get_shape()) for k in names & set(expected)}
        if names != set(expected):
            raise ValueError(
                f"activation dump {self.path}: shard {f} holds tensors {sorted(names)}, expected "
                f"{sorted(expected)} (corrupted or from another dump)"
            )
        bad = {k: v for k, v in shapes.items() if v != expected[k]}
        if bad:
            raise ValueError(
                f"activation dump {self.path}: shard {f} has shapes {bad}, the manifest implies "
                f"{ {k: expected[k] for k in bad} } (corrupted or from another dump)"
            )

    def __repr__(self) -> str:
        return f"ActivationReader({str(self.path)!r}, n_tokens={self.n_tokens}, layers={self.layers})"

    def _check_layer(self, layer: int) -> int:
        layer = int(layer)
        if layer not in self.layers:
            raise KeyError(f"layer {layer} not in activation dump {self.path} (layers {self.layers})")
        return layer

    def n_neurons(self, layer: int | None = None) -> int:
        if layer is not None:
            self._check_layer(layer)
        return int(self.manifest["n_neurons"])

    @property
    def d_model(self) -> int:
        return int(self.manifest["d_model"])

    @property
    def meta(self) -> dict:
        return self.manifest.get("meta", {})

    @staticmethod
    def _to_numpy(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
        if t.is_floating_point():
            t = t.to(torch.float32)
        return t.numpy().astype(dtype, copy=False)

    def iter_pre_activation(self, layer: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Per-shard blocks [t_k, stop-start] float32, in token order (memory bounded by one shard)."""
        layer = self._check_layer(layer)
        name = f"pre_activation.{layer}"
        start, stop, _ = slice(start, stop).indices(self.n_neurons())
        for f in self._files:
            with self._open(f) as fh:
                yield self._to_numpy(fh.get_slice(name)[:, start:stop])

    def read_pre_activation(self, layer: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Neurons ``start:stop`` of ``layer`` for all tokens: [n_tokens, stop-start] float32."""
        layer = self._check_layer(layer)
        start, stop, _ = slice(start, stop).indices(self.n_neurons())
        out = np.empty((self.n_tokens, max(stop - start, 0)), dtype=np.float32)
        for k, block in enumerate(self.iter_pre_activation(layer, start, stop)):
            out[self._bounds[k] : self._bounds[k + 1]] = block
        return out

    def read_mlp_input(self, layer: int, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """MLP inputs of ``layer``: [n_tokens, d] float32, or only the given token ``rows`` (in that order)."""
        if not self.has_mlp_input:
            raise KeyError(f"activation dump {self.path} was written without MLP inputs")
        layer = self._check_layer(layer)
        name = f"mlp_input.{layer}"
        if rows is None:
            out = np.empty((self.n_tokens, self.d_model), dtype=np.float32)
            for k, f in enumerate(self._files):
                with self._open(f) as fh:
                    out[self._bounds[k] : self._bounds[k + 1]] = self._to_numpy(fh.get_tensor(name))
            return out
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_tokens):
            raise IndexError(f"rows out of range [0, {self.n_tokens})")
        out = np.empty((rows.size, self.d_model), dtype=np.float32)
        shard_of = np.searchsorted(self._bounds, rows, side="right") - 1
        for k in np.unique(shard_of):
            sel = np.nonzero(shard_of == k)[0]
            local = rows[sel] - self._bounds[k]
            lo, hi = int(local.min()), int(local.max()) + 1
            with self._open(self._files[k]) as fh:
                block = self._to_numpy(fh.get_slice(name)[lo:hi])
            out[sel] = block[local - lo]
        return out

    def _read_index(self, name: str) -> np.ndarray:
        parts = []
        for f in self._files:
            with self._open(f) as fh:
                parts.append(fh.get_tensor(name).numpy())
        if not parts:
            return np.zeros((0, 2) if name == "offsets" else (0,), dtype=np.int64)
        return np.concatenate(parts).astype(np.int64, copy=False)

    def token_ids(self) -> np.ndarray:
        return self._read_index("token_ids")

    def offsets(self) -> np.ndarray:
        return self._read_index("offsets")

    def positions(self) -> np.ndarray:
        return self._read_index("position")

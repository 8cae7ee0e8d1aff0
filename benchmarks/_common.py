"""Shared helpers of the benchmark scripts (not part of the negdiff library).

Every benchmark compares two things in one run (the machine is shared and noisy, so only ratios
measured side by side mean anything) and prints ``RATIO <name> <value>`` as its last line.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def machine() -> str:
    """One line naming the machine: CPU model, cores, load average, torch device."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return f"{cpu}; {os.cpu_count()} cores; load avg {', '.join(f'{x:.2f}' for x in load)}"


def heavy_tailed(n_tokens: int, n_neurons: int, seed: int = 0, chunk: int = 8192) -> np.ndarray:
    """A heavy-tailed, skewed float32 [T, N] matrix, generated in chunks.

    Per neuron ``a = loc + scale * (z + k z|z| + s (z^2 - 1))`` with ``z ~ N(0,1)``, a tail weight
    ``k`` in [0, 0.6] and skew ``s`` in [-0.3, 0.3] (so WD spreads from ~0 to well above 0.1), and a
    few neurons with heavier tails (``k = 2``), like the Wasserstein neurons of a real model.
    """
    rng = np.random.default_rng(seed)
    loc = rng.normal(-0.2, 0.3, n_neurons).astype(np.float32)
    scale = rng.uniform(0.2, 2.0, n_neurons).astype(np.float32)
    k = rng.uniform(0.0, 0.6, n_neurons).astype(np.float32)
    k[rng.random(n_neurons) < 0.02] = 2.0
    s = rng.uniform(-0.3, 0.3, n_neurons).astype(np.float32)
    out = np.empty((n_tokens, n_neurons), np.float32)
    for a in range(0, n_tokens, chunk):
        z = rng.standard_normal((min(chunk, n_tokens - a), n_neurons), dtype=np.float32)
        out[a:a + chunk] = loc + scale * (z + k * z * np.abs(z) + s * (z * z - 1.0))
    return out


class ArrayReader:
    """In-memory reader with the ActivationReader interface that score_layer uses."""

    def __init__(self, acts: dict[int, np.ndarray], mlp_in: dict[int, np.ndarray] | None = None):
        self._acts = acts
        self._x = mlp_in
        self.layers = sorted(acts)
        self.n_tokens = next(iter(acts.values())).shape[0]
        self.has_mlp_input = mlp_in is not None

    def n_neurons(self, layer=None):
        return next(iter(self._acts.values())).shape[1]

    def read_pre_activation(self, layer, start=0, stop=None):
        return np.ascontiguousarray(self._acts[layer][:, start:stop])

    def iter_pre_activation(self, layer, start=0, stop=None, shard=8192):
        a = self._acts[layer]
        for s in range(0, a.shape[0], shard):
            yield np.ascontiguousarray(a[s:s + shard, start:stop])

    def read_mlp_input(self, layer, rows=None):
        x = self._x[layer]
        return x if rows is None else x[np.asarray(rows)]


@contextmanager
def timer(out: dict, key: str):
    t0 = time.perf_counter()
    yield
    out[key] = time.perf_counter() - t0


def best_of(fn, repeat: int = 1) -> float:
    """Smallest wall time of ``repeat`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_peak_rss(code: str, env: dict | None = None) -> tuple[float, int, str]:
    """Run ``python -c code`` in a child; return (wall s, ru_maxrss bytes, stdout).

    Beware: a child's ``ru_maxrss`` includes the parent's resident pages at fork/exec time, so a
    child that must report its own peak prints ``VmHWM`` from ``/proc/self/status``.
    """
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=str(REPO),
                         env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"child failed ({p.returncode}):\n{out}")
    return wall, int(ru.ru_maxrss) * 1024, out


def write_dump(path: Path, acts: np.ndarray, tokens_per_shard: int = 8192,
               mlp_in: np.ndarray | None = None) -> None:
    """A one-layer activation dump (the layout of negdiff.activations) from an array [T, N]."""
    import torch
    from safetensors.torch import save_file

    from negdiff import activation_reader as A

    path.mkdir(parents=True, exist_ok=True)
    t, n = acts.shape
    shards = []
    for k, a in enumerate(range(0, t, tokens_per_shard)):
        b = min(a + tokens_per_shard, t)
        tensors = {"pre_activation.0": torch.from_numpy(np.ascontiguousarray(acts[a:b])),
                   "token_ids": torch.zeros(b - a, dtype=torch.int64),
                   "offsets": torch.zeros(b - a, 2, dtype=torch.int64),
                   "position": torch.arange(b - a, dtype=torch.int64)}
        if mlp_in is not None:
            tensors["mlp_input.0"] = torch.from_numpy(np.ascontiguousarray(mlp_in[a:b]))
        f = path / A.shard_name(k)
        save_file(tensors, str(f), metadata={"negdiff": "{}"})
        shards.append({"file": f.name, "n_tokens": b - a, "bytes": f.stat().st_size})
    manifest = {"format_version": A.FORMAT_VERSION, "n_tokens": t, "layers": [0], "n_neurons": n,
                "d_model": 0 if mlp_in is None else mlp_in.shape[1], "dtype": "float32",
                "capture_mlp_input": mlp_in is not None, "tokens_per_shard": tokens_per_shard,
                "shards": shards, "meta": {}}
    (path / A.MANIFEST).write_text(json.dumps(manifest))


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.0f} MiB" if abs(n) >= 2**20 else f"{n / 2**10:.0f} KiB"


def base_parser(doc: str, *, repeat: int | None = None, threads: bool = False):
    """The benchmarks' argument parser: the docstring's first line, ``--quick`` (the smoke test's tiny
    sizes), and where asked ``--repeat`` (best of N) and ``--threads`` (torch threads)."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (the smoke test)")
    if repeat is not None:
        p.add_argument("--repeat", type=int, default=repeat, help="best of N, interleaved")
    if threads:
        p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p


_SIZE_ARGS = {"hidden": "hidden_size", "layers": "num_layers", "heads": "num_heads",
              "intermediate": "intermediate_size", "context": "context"}


def add_size_args(p) -> None:
    """``--hidden/--layers/--heads/--intermediate/--context``: a random model larger than config.yaml's."""
    for k in _SIZE_ARGS:
        p.add_argument(f"--{k}", type=int, default=None, help="random model size (default: config.yaml's tiny)")


def model_sizes(args) -> dict:
    """The ``tiny_model`` size overrides given on the command line."""
    return {key: getattr(args, k) for k, key in _SIZE_ARGS.items() if getattr(args, k, None) is not None}


def add_device_args(p) -> None:
    """``--device`` and ``--model-dtype`` (the CUDA timings of benchmarks 2-4)."""
    p.add_argument("--device", default="cpu", help='torch device, e.g. "cuda" (ratios then on wall time)')
    p.add_argument("--model-dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weights dtype of the benchmark's model")


def describe_device(device: str) -> str:
    import torch

    if str(device).startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))} ({device}, CUDA {torch.version.cuda})"
    return "CPU"


def sync(device) -> None:
    """Wait for queued CUDA work, so that a timer stopped next measures it."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def timed_on(device, fn):
    """:func:`timed` that waits for the device's queued work before stopping the clocks."""
    def run():
        out = fn()
        sync(device)
        return out
    return timed(run)


def ratio_line(name: str, value: float) -> str:
    return f"RATIO {name} {value:.3f}"


DEFAULT_SIZES = {"hidden_size": 64, "num_layers": 4, "num_heads": 4, "intermediate_size": 256,
                 "context": 128, "vocab_size": 1024}  # config.yaml's tiny models


def tiny_model(arch: str = "llama", seed: int = 0, **sizes):
    """A randomly initialised model with the default config's tiny sizes (speed does not depend
    on the weights). ``arch``: llama, gpt_neox or opt."""
    import torch
    import transformers as T

    from negdiff.architectures import tiny_config

    s = {**DEFAULT_SIZES, **sizes}
    cfg = tiny_config(arch, **s, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(seed)
    return T.AutoModelForCausalLM.from_config(cfg).eval()


def timed(fn):
    """``(result, wall s, CPU s)`` of ``fn()``; CPU is this process's user + system time (all its
    threads). On a shared machine the CPU time of single-threaded work is far steadier than its
    wall time, so single-process comparisons report both and take their ratio on CPU time."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0

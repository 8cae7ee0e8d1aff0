"""Benchmark 1: exact WD scoring against the official method and against the hardware limit.

    python benchmarks/bench_scoring.py            # 131072 x 2048 (and memory at 32768 / 131072 tokens)
    python benchmarks/bench_scoring.py --quick    # seconds; for the smoke test

Compared in one run, on one heavy-tailed float32 matrix [tokens, neurons]:

* **negdiff**: ``scoring.score_layer`` (exact mode, the default; and sample mode for the value check),
  one process, reading the matrix through an in-memory reader that yields 8192-token shards like
  the dump reader does.
* **official**: the official code's method, re-implemented here only: per neuron, z-score and
  ``scipy.stats.wasserstein_distance(z, s)`` against a seeded normal sample ``s`` of equal size,
  over ``--workers`` processes (fork; the matrix in memory). Also timed in one process on a
  subset of neurons and extrapolated linearly (labelled as such).
* **limit**: what any exact W1 must do: ``np.sort`` of every neuron column (a neuron-major copy,
  sorted along its contiguous axis; the copy itself is not counted) plus one float64 mean/std pass.

Memory: each token count is written as a real one-layer dump (8192-token safetensors shards) and
scored in a child process through ``ActivationReader``; the child's peak RSS (``VmHWM``) minus a
child that only imports and opens the reader is reported next to the neuron-major buffer
``block x tokens x 4`` bytes and the full matrix.

The last line is ``RATIO exact_vs_limit <t_exact / t_limit>`` (goal <= 1.5), on CPU time (both
are single-threaded; on a shared machine CPU time is much steadier than wall time, which is printed
too); the line before is ``RATIO official_vs_exact <t_official / t_exact>`` on wall time (the
official method runs in worker processes).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (ArrayReader, base_parser, fmt_bytes, heavy_tailed, machine, ratio_line, run_peak_rss,  # noqa: E402
                     timed, write_dump)

from negdiff import scoring as S  # noqa: E402

_A: np.ndarray | None = None  # the official method's in-memory matrix (inherited by fork)
_S_REF: np.ndarray | None = None


def _official_init(seed: int, n: int) -> None:
    global _S_REF
    _S_REF = np.random.default_rng(seed).standard_normal(n)


def _official_neuron(j: int) -> float:
    x = _A[:, j].astype(np.float64)
    z = (x - x.mean()) / x.std()
    return float(wasserstein_distance(z, _S_REF))


def official(a: np.ndarray, neurons: np.ndarray, workers: int, seed: int) -> np.ndarray:
    global _A
    _A = a
    if workers <= 1:
        _official_init(seed, a.shape[0])
        return np.array([_official_neuron(int(j)) for j in neurons])
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_official_init, initargs=(seed, a.shape[0])) as pool:
        return np.array(pool.map(_official_neuron, [int(j) for j in neurons], chunksize=8))


def limit(a: np.ndarray) -> dict[str, tuple[float, float]]:
    """(wall s, CPU s) of: the neuron-major copy [not counted], the sort, the moments pass."""
    nm, w_tr, c_tr = timed(lambda: np.ascontiguousarray(a.T))
    _, w_sort, c_sort = timed(lambda: nm.sort(axis=1))
    del nm

    def moments():
        s = np.zeros(a.shape[1])
        s2 = np.zeros(a.shape[1])
        for i in range(0, a.shape[0], 1024):  # float64 sum and sum of squares, row chunks
            c = a[i:i + 1024].astype(np.float64)
            s += c.sum(axis=0)
            s2 += np.einsum("ij,ij->j", c, c)
        mean = s / a.shape[0]
        return np.sqrt(np.maximum(s2 / a.shape[0] - mean * mean, 0))

    _, w_mom, c_mom = timed(moments)
    return {"copy": (w_tr, c_tr), "sort": (w_sort, c_sort), "moments": (w_mom, c_mom)}


CHILD = r"""
import sys, time, warnings
warnings.simplefilter("ignore")
from negdiff.activation_reader import ActivationReader
from negdiff import scoring as S
r = ActivationReader(sys.argv[1] if len(sys.argv) > 1 else {path!r})
t = 0.0
if {score}:
    t0 = time.perf_counter()
    df = S.score_layer(r, 0, neuron_block={block}, mode={mode!r})
    t = time.perf_counter() - t0
# VmHWM: this process's own peak RSS (ru_maxrss of a child also counts the parent's pages at exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print("T", t, int(hwm) * 1024)
"""


def child_peak(path: Path, score: bool, block: int = 1, mode: str = "exact") -> tuple[float, int]:
    """(scoring seconds, peak RSS bytes) of a child that opens the dump and maybe scores it."""
    _, _, out = run_peak_rss(CHILD.format(path=str(path), score=score, block=block, mode=mode))
    _, secs, peak = out.split()
    return float(secs), int(peak)


def memory_rows(tokens: list[int], n_neurons: int, blocks: list[int], seed: int,
                modes: tuple[str, ...] = ("exact",)) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="negdiff-bench-") as tmp:
        for t in tokens:
            path = Path(tmp) / f"dump{t}"
            write_dump(path, heavy_tailed(t, n_neurons, seed))
            _, base = child_peak(path, False)
            for mode in modes:
                for b in blocks:
                    secs, peak = child_peak(path, True, b, mode)
                    rows.append(f"| {mode} | {t} | {b} | {secs:.2f} | {fmt_bytes(peak - base)} | "
                                f"{fmt_bytes(b * t * 4)} | {fmt_bytes(t * n_neurons * 4)} |")
            for f in path.iterdir():
                f.unlink()
    return rows


def main(argv=None) -> None:
    p = base_parser(__doc__)
    p.add_argument("--tokens", type=int, default=131072)
    p.add_argument("--neurons", type=int, default=2048)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--official-neurons", type=int, default=0, help="0: all neurons")
    p.add_argument("--serial-neurons", type=int, default=128,
                   help="neurons timed for the official method in one process (extrapolated)")
    p.add_argument("--memory-tokens", type=int, nargs="*", default=[32768, 131072])
    p.add_argument("--memory-blocks", type=int, nargs="*", default=[64, 256])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.tokens, args.neurons, args.block = 2048, 32, 16
        args.serial_neurons, args.memory_tokens, args.memory_blocks = 8, [], [16]
    warnings.simplefilter("ignore")  # zero-variance warnings cannot occur; keep the output clean
    print(f"machine: {machine()}")
    T, N = args.tokens, args.neurons
    a = heavy_tailed(T, N, args.seed)
    reader = ArrayReader({0: a})
    print(f"matrix: {T} tokens x {N} neurons float32 ({fmt_bytes(a.nbytes)}), block {args.block}")

    lim = limit(a)
    w_limit = lim["sort"][0] + lim["moments"][0]
    c_limit = lim["sort"][1] + lim["moments"][1]
    exact, w_exact, c_exact = timed(lambda: S.score_layer(reader, 0, mode="exact", neuron_block=args.block))
    sample, w_sample, c_sample = timed(
        lambda: S.score_layer(reader, 0, mode="sample", seed=args.seed, neuron_block=args.block))
    t_exact = w_exact

    n_off = N if args.official_neurons <= 0 else min(args.official_neurons, N)
    sel = np.arange(n_off)
    t0 = time.perf_counter()
    off = official(a, sel, args.workers, args.seed)
    t_off = (time.perf_counter() - t0) * N / n_off
    n_ser = min(args.serial_neurons, N)
    t0 = time.perf_counter()
    official(a, np.arange(n_ser), 1, args.seed)
    t_ser = (time.perf_counter() - t0) * N / n_ser
    diff = float(np.max(np.abs(off - sample["wd"].to_numpy()[:n_off])))

    print("| timed (one process) | wall s | CPU s |")
    print("| --- | --- | --- |")
    for name, (w, c) in lim.items():
        print(f"| limit: {name}{' (not counted)' if name == 'copy' else ''} | {w:.2f} | {c:.2f} |")
    print(f"| **limit** = sort + moments | {w_limit:.2f} | {c_limit:.2f} |")
    print(f"| negdiff exact | {w_exact:.2f} | {c_exact:.2f} |")
    print(f"| negdiff sample mode | {w_sample:.2f} | {c_sample:.2f} |")
    print(f"official, {args.workers} workers: {t_off:.2f} s"
          + ("" if n_off == N else f" (timed on {n_off} neurons, x{N / n_off:.1f})"))
    print(f"official, 1 process: {t_ser:.2f} s (timed on {n_ser} neurons, x{N / n_ser:.1f}); "
          f"{t_ser / N * 1e3:.1f} ms per neuron")
    print(f"sample mode vs official: max |dWD| = {diff:.2e} over {n_off} neurons "
          f"({'OK' if diff <= 1e-6 else 'FAIL'} at 1e-6)")

    if args.memory_tokens:
        print("memory (child process via ActivationReader; peak RSS above an import-only child):")
        print("| mode | tokens | block | score s | peak RSS extra | block buffer B x T x 4 | full matrix |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for row in memory_rows(args.memory_tokens, N, args.memory_blocks, args.seed):
            print(row)
    print(f"RATIO official_1proc_vs_exact {t_ser / t_exact:.3f}")
    print(ratio_line("official_vs_exact", t_off / t_exact))
    print(f"exact vs limit on wall time: {w_exact / w_limit:.3f}")
    print(ratio_line("exact_vs_limit", c_exact / c_limit))  # CPU time
    if diff > 1e-6:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Benchmark 2: streaming WD (moments + z-grid histogram) against the exact scorer.

    python benchmarks/bench_streaming.py            # 131072 x 2048, memory at 32768 / 131072 tokens
    python benchmarks/bench_streaming.py --quick    # seconds; for the smoke test

Compared in one run on one heavy-tailed float32 matrix, both through ``scoring.score_layer`` with
the same neuron block and an in-memory reader that yields 8192-token shards:

* **exact**: ``mode="exact"`` (sort-based, closed form);
* **streaming**: ``mode="streaming"`` (two passes over the shards, ``bins`` bins on
  ``[-z_range, z_range)``).

Reported: both times, the largest |difference| of ``wd`` / ``wd_neg`` / ``wd_pos`` against the
stated bound (``negdiff.streaming.error_bound``), the top-1% neurons per layer (overlap with
exact) on the synthetic matrix and on every activation dump found under ``--dumps`` (default:
``results/activations/*/*``, the default pipeline's models), and peak memory (child process,
``VmHWM``) of streaming mode at two token counts. The last line is
``RATIO exact_vs_streaming <t_exact / t_streaming>`` on CPU time (both single-threaded; steadier
than wall time on a shared machine; wall times are printed too) (goal >= 3).
"""

from __future__ import annotations

import glob
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (REPO, ArrayReader, add_device_args, base_parser, describe_device, fmt_bytes,  # noqa: E402
                     heavy_tailed, machine, ratio_line, timed, timed_on)
from bench_scoring import memory_rows  # noqa: E402

from negdiff import scoring as S  # noqa: E402
from negdiff import streaming as St  # noqa: E402


def overlap(exact, stream, percent: float = 1.0) -> list[tuple[int, int, int]]:
    """Per layer: (layer, |top exact|, |top exact & top streaming|)."""
    te = S.top_neurons(exact, percent)
    ts = S.top_neurons(stream, percent)
    out = []
    for layer in sorted(set(te["layer"].to_list())):
        a = set(te.filter(te["layer"] == layer)["neuron"].to_list())
        b = set(ts.filter(ts["layer"] == layer)["neuron"].to_list())
        out.append((layer, len(a), len(a & b)))
    return out


def main(argv=None) -> None:
    p = base_parser(__doc__, repeat=2, threads=True)
    p.add_argument("--tokens", type=int, default=131072)
    p.add_argument("--neurons", type=int, default=2048)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--bins", type=int, default=4096)
    p.add_argument("--z-range", type=float, default=8.0)
    p.add_argument("--dumps", default=str(REPO / "results" / "activations" / "*" / "*"),
                   help="glob of activation dumps for the top-1%% overlap")
    p.add_argument("--memory-tokens", type=int, nargs="*", default=[32768, 131072])
    p.add_argument("--seed", type=int, default=0)
    add_device_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.tokens, args.neurons, args.block, args.memory_tokens = 2048, 32, 32, []
        args.bins, args.repeat = 256, 1
        args.dumps = ""
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; torch {torch.__version__}, {args.threads} thread(s)")
    grid = St.Grid(args.bins, args.z_range)
    bound = St.error_bound(grid)
    a = heavy_tailed(args.tokens, args.neurons, args.seed)
    reader = ArrayReader({0: a})
    print(f"matrix: {args.tokens} tokens x {args.neurons} neurons float32, block {args.block}; "
          f"grid {args.bins} bins on [-{args.z_range:g}, {args.z_range:g}), bound {bound:.2e}")

    w_e = c_e = w_s = c_s = float("inf")
    for _ in range(args.repeat):  # interleaved, best of
        exact, w, c = timed(lambda: S.score_layer(reader, 0, neuron_block=args.block))
        w_e, c_e = min(w_e, w), min(c_e, c)
        stream, w, c = timed(lambda: S.score_layer(reader, 0, mode="streaming", neuron_block=args.block,
                                                   bins=args.bins, z_range=args.z_range))
        w_s, c_s = min(w_s, w), min(c_s, c)
    print(f"exact: {w_e:.2f} s wall, {c_e:.2f} s CPU; streaming: {w_s:.2f} s wall, {c_s:.2f} s CPU "
          f"(best of {args.repeat}); exact / streaming on wall time {w_e / w_s:.3f}")
    ok = True
    for c in ("wd", "wd_neg", "wd_pos"):
        err = float((exact[c] - stream[c]).abs().max())
        ok &= err <= bound
        print(f"max |d{c}| = {err:.2e} (bound {bound:.2e}; {err / bound:.1%} of it)")
    for c in ("mean", "std", "frac_negative"):
        print(f"max |d{c}| = {float((exact[c] - stream[c]).abs().max()):.1e}")
    (_, n, k), = overlap(exact, stream)
    print(f"synthetic matrix: top-1% overlap {k}/{n}")

    dumps = sorted(glob.glob(args.dumps)) if args.dumps else []
    if dumps:
        from negdiff.activation_reader import ActivationReader

        print("| dump | tokens | layer | top-1% | overlap | max abs dwd |")
        print("| --- | --- | --- | --- | --- | --- |")
        for d in dumps:
            r = ActivationReader(d)
            e = S.score_activations(r, neuron_block=args.block)
            s = S.score_activations(r, mode="streaming", neuron_block=args.block, bins=args.bins,
                                    z_range=args.z_range)
            for layer, n, k in overlap(e, s):
                dwd = float((e.filter(e["layer"] == layer)["wd"]
                             - s.filter(s["layer"] == layer)["wd"]).abs().max())
                print(f"| {Path(d).parent.name}/{Path(d).name} | {r.n_tokens} | {layer} | {n} | "
                      f"{k}/{n} | {dwd:.1e} |")
    if args.memory_tokens:
        print("memory (child process via ActivationReader; peak RSS above an import-only child):")
        print("| mode | tokens | block | score s | peak RSS extra | block buffer B x T x 4 | full matrix |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for row in memory_rows(args.memory_tokens, args.neurons, [args.block], args.seed,
                               modes=("exact", "streaming")):
            print(row)
    if args.device != "cpu":
        # the dump-time path (activations.keep: histograms): the pre-activations are already on the
        # device; both passes of 8192-token chunks there, W1 from the histogram on the host
        dev = torch.device(args.device)
        x = torch.from_numpy(a).to(dev)

        def on_device():
            mom = St.moments_init(args.neurons, dev)
            for s in range(0, args.tokens, 8192):
                mom = St.moments_update(mom, x[s:s + 8192])
            h = St.hist_init(args.neurons, grid, dev, dtype=torch.int32)
            std = mom.std
            for s in range(0, args.tokens, 8192):
                St.hist_update(h, x[s:s + 8192], mom.mean, std)
            return St.w1_from_histogram(h, mom)

        on_device()  # warm-up (CUDA context, kernels)
        w_d = float("inf")
        for _ in range(args.repeat):
            res, w, _ = timed_on(dev, on_device)
            w_d = min(w_d, w)
        err = float(np.abs(res["wd"] - exact["wd"].to_numpy()).max())
        ok &= err <= bound
        print(f"streaming accumulation on {describe_device(dev)}: {w_d:.3f} s wall (both passes over the "
              f"device-resident matrix + W1 on the host); max |dwd| vs exact {err:.2e}; exact on the CPU "
              f"{w_e:.2f} s wall")
        print(ratio_line(f"exact_cpu_vs_streaming_{dev.type}", w_e / w_d))  # wall time
    print(ratio_line("exact_vs_streaming", c_e / c_s))  # CPU time
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

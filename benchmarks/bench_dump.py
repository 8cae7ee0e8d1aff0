"""Benchmark 3: activation dump throughput against a bare forward pass over the same windows.

    python benchmarks/bench_dump.py            # default config's tiny models, 32768 tokens
    python benchmarks/bench_dump.py --quick    # seconds; for the smoke test

Compared in one run, alternating, best of ``--repeat``:

* **dump**: ``negdiff.activations.dump_activations`` (every layer, pre-activations + MLP inputs,
  float32, 8192-token safetensors shards written to a temporary directory: writes included);
* **forward**: the same backbone over the same windows and batches (BOS prepended), with no hook
  and nothing kept.

The model is randomly initialised with the default config's sizes (tiny-llama: hidden 64, 4 layers,
MLP 256, context 128; speed does not depend on the weights), on random token ids. The last line is
``RATIO dump_vs_forward <dump tokens/s / forward tokens/s>``, the smallest over the models, on CPU
time (single-threaded; wall times are printed too) (goal >= 0.85).

``--keep histograms`` also times ``keep="histograms"`` (two forwards, moments and z-grid histograms
on the model's device, a token sample; ``RATIO histograms_vs_forward`` before the last line).
``--device cuda`` runs everything on the GPU (model in ``--model-dtype``; the ratios are then on wall
time, and the dump's device-to-host copies overlap the next batch's forward); ``--hidden`` etc. give
a larger random model than the default config's tiny one.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (add_device_args, add_size_args, base_parser, describe_device, machine,  # noqa: E402
                     model_sizes, ratio_line, timed_on, tiny_model)

import torch  # noqa: E402

from negdiff import activations as A  # noqa: E402
from negdiff.capture import window_batches  # noqa: E402
from negdiff.data import TokenStream, iter_windows  # noqa: E402


def bare_forward(model, ids: np.ndarray, window: int, stride: int, max_tokens: int, batch_size: int,
                 bos: int) -> int:
    backbone = getattr(model, "base_model", model)
    device = next(model.parameters()).device
    recorded = 0
    with torch.inference_mode():
        for batch in window_batches(iter_windows(ids.size, window, stride), batch_size):
            if recorded >= max_tokens:
                break
            rows = np.stack([ids[w.start:w.end] for w in batch])
            rows = np.concatenate([np.full((len(batch), 1), bos, np.int64), rows], axis=1)
            backbone(input_ids=torch.from_numpy(rows).to(device), use_cache=False)
            recorded += sum(w.end - w.keep_from for w in batch)
    return min(recorded, max_tokens)


def main(argv=None) -> None:
    p = base_parser(__doc__, repeat=3, threads=True)
    p.add_argument("--archs", nargs="*", default=["llama", "gpt_neox", "opt"])
    p.add_argument("--tokens", type=int, default=32768)
    p.add_argument("--window", type=int, default=128, help="model input length, BOS included")
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--model", default=None,
                   help="a saved model folder (e.g. results/models/smollm2-135m/main) instead of the random tiny ones; "
                        "dump dtype float16 as in config/smollm2.yaml")
    p.add_argument("--dtype", default="float32", help="dump dtype")
    p.add_argument("--keep", nargs="*", default=["all"], choices=["all", "histograms"],
                   help="dump modes to time against the forward")
    p.add_argument("--bins", type=int, default=4096, help="keep histograms: z-grid bins")
    p.add_argument("--sample-tokens", type=int, default=8192, help="keep histograms: token sample")
    add_size_args(p)
    add_device_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.tokens, args.repeat = ["llama"], 256, 1
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    print(f"machine: {machine()}; torch {torch.__version__}, {args.threads} thread(s), {describe_device(dev)}; "
          f"model dtype {args.model_dtype}, dump dtype {args.dtype}")
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 1024, size=args.tokens + args.window, dtype=np.int64)  # ids < every vocab here
    stream = TokenStream(ids, np.zeros((ids.size, 2), np.int64))
    w_in = args.window - 1  # stream tokens per window of the bare forward (the BOS is the window's first position)
    print("| model | forward tok/s (wall / CPU) | dump tok/s (wall / CPU) | dump / forward (wall / CPU) |")
    print("| --- | --- | --- | --- |")
    if args.model:
        from negdiff.models import load_model

        loaded = {Path(args.model).name if Path(args.model).name != "main" else Path(args.model).parent.name:
                  load_model(args.model)[0]}
    else:
        sizes = model_sizes(args)
        loaded = {f"{'tiny' if not sizes else 'random'}-{arch}": tiny_model(arch, **sizes) for arch in args.archs}
    from negdiff.streaming import Grid

    ratios = {keep: [] for keep in args.keep}
    for name, model in loaded.items():
        model.to(device=dev, dtype=getattr(torch, args.model_dtype))
        best = {k: [np.inf, np.inf] for k in ["fwd", *args.keep]}
        with tempfile.TemporaryDirectory(prefix="negdiff-bench-dump-") as tmp:
            bare_forward(model, ids, w_in, args.stride, min(args.tokens, 2048), args.batch_size, 1)  # warm-up
            for _ in range(args.repeat):  # interleaved, best of
                n_fwd, w, c = timed_on(dev, lambda: bare_forward(model, ids, w_in, args.stride, args.tokens,
                                                                 args.batch_size, 1))
                best["fwd"] = [min(best["fwd"][0], w), min(best["fwd"][1], c)]
                for keep in args.keep:
                    extra = ({"keep": "histograms", "grid": Grid(args.bins, 8.0), "sample_tokens": args.sample_tokens}
                             if keep == "histograms" else {})
                    man, w, c = timed_on(dev, lambda: A.dump_activations(
                        model, stream, Path(tmp) / "dump", window=args.window, stride=args.stride,
                        max_tokens=args.tokens, tokens_per_shard=8192, capture_mlp_input=True, dtype=args.dtype,
                        batch_size=args.batch_size, bos_token_id=1, progress=False, **extra))
                    best[keep] = [min(best[keep][0], w), min(best[keep][1], c)]
                    assert man["n_tokens_seen"] == n_fwd == args.tokens, (man["n_tokens_seen"], n_fwd)
        wf, cf = best["fwd"]
        for keep in args.keep:
            wd, cd = best[keep]
            ratios[keep].append(wf / wd if cuda else cf / cd)
            label = name if keep == "all" else f"{name}, keep histograms"
            print(f"| {label} | {n_fwd / wf:,.0f} / {n_fwd / cf:,.0f} | {n_fwd / wd:,.0f} / {n_fwd / cd:,.0f} "
                  f"| {wf / wd:.3f} / {cf / cd:.3f} |")
        model.to("cpu")
    basis = "wall time" if cuda else "CPU time"
    if "histograms" in ratios:
        print(f"(ratios on {basis})")
        print(ratio_line("histograms_vs_forward", min(ratios["histograms"])))
    if "all" in ratios:
        print(ratio_line("dump_vs_forward", min(ratios["all"])))


if __name__ == "__main__":
    main()

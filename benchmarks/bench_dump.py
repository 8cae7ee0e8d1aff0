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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, ratio_line, timed, tiny_model  # noqa: E402

import torch  # noqa: E402

from negdiff import activations as A  # noqa: E402
from negdiff.data import TokenStream, iter_windows  # noqa: E402


def bare_forward(model, ids: np.ndarray, window: int, stride: int, max_tokens: int, batch_size: int,
                 bos: int) -> int:
    backbone = getattr(model, "base_model", model)
    recorded = 0
    with torch.inference_mode():
        for batch in A._batches(iter_windows(ids.size, window, stride), batch_size):
            if recorded >= max_tokens:
                break
            rows = np.stack([ids[w.start:w.end] for w in batch])
            rows = np.concatenate([np.full((len(batch), 1), bos, np.int64), rows], axis=1)
            backbone(input_ids=torch.from_numpy(rows), use_cache=False)
            recorded += sum(w.end - w.keep_from for w in batch)
    return min(recorded, max_tokens)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", nargs="*", default=["llama", "gpt_neox", "opt"])
    p.add_argument("--tokens", type=int, default=32768)
    p.add_argument("--window", type=int, default=128, help="model input length, BOS included")
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", default=None,
                   help="a saved model folder (e.g. results/models/smollm2-135m/main) instead of the random tiny ones; "
                        "dump dtype float16 as in config/smollm2.yaml")
    p.add_argument("--dtype", default="float32", help="dump dtype")
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.tokens, args.repeat = ["llama"], 256, 1
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; torch {torch.__version__}, {args.threads} thread(s), CPU")
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 1024, size=args.tokens + args.window, dtype=np.int64)  # ids < every vocab here
    stream = TokenStream(ids, np.zeros((ids.size, 2), np.int64))
    w_in = args.window - 1
    ratios = []
    print("| model | forward tok/s (wall / CPU) | dump tok/s (wall / CPU) | dump / forward (wall / CPU) |")
    print("| --- | --- | --- | --- |")
    if args.model:
        from negdiff.models import load_model

        loaded = {Path(args.model).name if Path(args.model).name != "main" else Path(args.model).parent.name:
                  load_model(args.model)[0]}
    else:
        loaded = {f"tiny-{arch}": tiny_model(arch) for arch in args.archs}
    for name, model in loaded.items():
        best = {"fwd": [np.inf, np.inf], "dump": [np.inf, np.inf]}
        with tempfile.TemporaryDirectory(prefix="negdiff-bench-dump-") as tmp:
            for _ in range(args.repeat):  # interleaved, best of
                n_fwd, w, c = timed(lambda: bare_forward(model, ids, w_in, args.stride, args.tokens,
                                                         args.batch_size, 1))
                best["fwd"] = [min(best["fwd"][0], w), min(best["fwd"][1], c)]
                man, w, c = timed(lambda: A.dump_activations(
                    model, stream, Path(tmp) / "dump", window=w_in, stride=args.stride,
                    max_tokens=args.tokens, tokens_per_shard=8192, capture_mlp_input=True, dtype=args.dtype,
                    batch_size=args.batch_size, bos_token_id=1, progress=False))
                best["dump"] = [min(best["dump"][0], w), min(best["dump"][1], c)]
        assert man["n_tokens"] == n_fwd == args.tokens, (man["n_tokens"], n_fwd)
        (wf, cf), (wd, cd) = best["fwd"], best["dump"]
        ratios.append(cf / cd)
        print(f"| {name} | {n_fwd / wf:,.0f} / {n_fwd / cf:,.0f} | {n_fwd / wd:,.0f} / {n_fwd / cd:,.0f} "
              f"| {wf / wd:.3f} / {cf / cd:.3f} |")
    print(ratio_line("dump_vs_forward", min(ratios)))


if __name__ == "__main__":
    main()

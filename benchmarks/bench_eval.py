"""Benchmark 4: ablated minimal-pair evaluation: hook on vs off, and negdiff vs the official method.

    python benchmarks/bench_eval.py            # the default pipeline's BLiMP-format suite
    python benchmarks/bench_eval.py --quick    # seconds; for the smoke test

Compared in one run on the same pairs and the same model, best of ``--repeat``:

* **off**: ``negdiff.logprobs.sentence_logprobs`` on both sentences of every pair (length-sorted batches of ``--batch-size``,
  summed log-probs, BOS prepended), no hook;
* **neg_zero**: the same under ``interventions.intervene(model, masks, "neg_zero")`` with 1% of
  each layer's neurons masked (seeded; the hook's cost does not depend on which);
* **official**: the official batched BLiMP method, re-implemented here only: batches of 128 in
  input order, padded on the right with EOS under an attention mask, full logits, summed token
  log-probs per sentence (BOS prepended as negdiff does, so both score the same tokens).

Pairs: ``results/corpus/blimp/*.jsonl`` (the default run's generated suite) with its tokenizer
``results/tokenizer`` when they exist, else a small synthetic suite with the tests' word-level
tokenizer. Model: the default config's tiny-llama sizes, randomly initialised (or ``--model``, a
saved model folder). Accuracies are compared pair by pair (off vs official; neg_zero vs official
under the same hook). Ratios are on CPU time (single-threaded; steadier than wall time on a shared
machine; wall times are printed too; with ``--device cuda`` they are on wall time). Last line: ``RATIO neg_zero_vs_off <throughput on / off>`` (goal >= 0.9);
the line before: ``RATIO negdiff_vs_official <throughput negdiff / official>`` (goal >= 1).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (REPO, add_device_args, add_size_args, base_parser, describe_device, machine,  # noqa: E402
                     model_sizes, ratio_line, sync, tiny_model)

import torch  # noqa: E402

from negdiff import interventions, logprobs, models  # noqa: E402
from negdiff.tokenizer import bos_token_id  # noqa: E402


def load_pairs(limit: int, quick: bool):
    blimp = REPO / "results" / "corpus" / "blimp"
    tok_dir = REPO / "results" / "tokenizer"
    if not quick and blimp.is_dir() and tok_dir.is_dir():
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(str(tok_dir))
        pairs = []
        for f in sorted(blimp.glob("*.jsonl")):
            pairs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return tok, pairs[:limit], f"{blimp.relative_to(REPO)} ({len(pairs)} pairs, first {min(limit, len(pairs))})"
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import _WORDS, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(limit):
        words = list(rng.choice(_WORDS[:40], size=rng.integers(4, 12)))
        bad = words.copy()
        i = int(rng.integers(0, len(bad) - 1))
        bad[i], bad[i + 1] = bad[i + 1], bad[i]
        pairs.append({"sentence_good": " ".join(words), "sentence_bad": " ".join(bad)})
    return tok, pairs, f"synthetic ({limit} pairs, word-level tokenizer)"


@torch.no_grad()
def official_logprobs(model, tok, sentences: list[str], batch_size: int = 128) -> np.ndarray:
    """The official method: input-order batches, right padding with EOS, summed log-probs."""
    bos, eos = bos_token_id(tok), tok.eos_token_id
    device = next(model.parameters()).device
    enc = tok(sentences, add_special_tokens=False)["input_ids"]
    out = np.empty(len(sentences))
    for s in range(0, len(enc), batch_size):
        chunk = [[bos] + list(e) for e in enc[s:s + batch_size]]
        T = max(map(len, chunk))
        ids = torch.full((len(chunk), T), eos, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for r, e in enumerate(chunk):
            ids[r, :len(e)] = torch.tensor(e)
            mask[r, :len(e)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        lp = torch.log_softmax(logits[:, :-1].to(torch.float64), dim=-1)
        lp = lp.gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]
        out[s:s + len(chunk)] = lp.sum(dim=1).cpu().numpy()
    return out


def main(argv=None) -> None:
    p = base_parser(__doc__, repeat=3, threads=True)
    p.add_argument("--pairs", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64, help="negdiff's (config evaluation.batch_size)")
    p.add_argument("--model", default=None, help="saved model folder (default: random tiny-llama)")
    p.add_argument("--percent", type=float, default=1.0)
    p.add_argument("--tie", type=float, default=1e-3, help="margins within this many nats of 0 are ties")
    add_size_args(p)
    add_device_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.pairs, args.repeat = 16, 1
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    print(f"machine: {machine()}; torch {torch.__version__}, {args.threads} thread(s), {describe_device(dev)}; "
          f"model dtype {args.model_dtype}")
    tok, pairs, what = load_pairs(args.pairs, args.quick)
    if args.model:
        model = models.load_model(args.model)[0]
    else:
        model = tiny_model("llama", vocab_size=max(len(tok), 8), **model_sizes(args))
    model.to(device=dev, dtype=getattr(torch, args.model_dtype))
    n_layers, n_neurons = models.n_layers(model), models.n_neurons(model)
    rng = np.random.default_rng(0)
    k = max(1, round(n_neurons * args.percent / 100))
    masks = {l: np.isin(np.arange(n_neurons), rng.choice(n_neurons, k, replace=False))
             for l in range(n_layers)}
    print(f"pairs: {what}; model: {args.model or 'tiny-llama (random init)'}; "
          f"neg_zero on {k}/{n_neurons} neurons x {n_layers} layers")
    good = [q["sentence_good"] for q in pairs]
    bad = [q["sentence_bad"] for q in pairs]

    def negdiff_run():  # margins logP(good) - logP(bad)
        lp = logprobs.sentence_logprobs(model, tok, good + bad, batch_size=args.batch_size)
        return lp[:len(pairs)] - lp[len(pairs):]

    def official_run():
        lp = official_logprobs(model, tok, good + bad)
        return lp[:len(pairs)] - lp[len(pairs):]

    names = ["off", "neg_zero", "official", "official_neg_zero"]
    wall = {k: np.inf for k in names}
    cpu = {k: np.inf for k in names}
    res = {}

    def run(name):
        fn = negdiff_run if name in ("off", "neg_zero") else official_run
        if "neg_zero" not in name:
            return fn()
        with interventions.intervene(model, masks, "neg_zero"):
            return fn()

    for _ in range(args.repeat):  # interleaved, so drifting load hits every method alike
        for name in names:
            t0, c0 = time.perf_counter(), time.process_time()
            res[name] = run(name)
            sync(dev)
            wall[name] = min(wall[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    n = len(pairs)
    print("| method | pairs/s (wall) | pairs/s (CPU) | accuracy |")
    print("| --- | --- | --- | --- |")
    for name in names:
        print(f"| {name} | {n / wall[name]:,.0f} | {n / cpu[name]:,.0f} | {(res[name] > 0).mean():.4f} |")
    # a pair decided differently counts only when neither method's margin is within rounding of a tie
    # (batching changes the float32 reductions, most on a GPU): --tie nats
    diffs = {}
    for ours, theirs in (("off", "official"), ("neg_zero", "official_neg_zero")):
        a, b = res[ours], res[theirs]
        flip = (a > 0) != (b > 0)
        diffs[ours] = int((flip & (np.minimum(np.abs(a), np.abs(b)) > args.tie)).sum())
        print(f"{ours} vs {theirs}: max |margin difference| {np.abs(a - b).max():.2e} nats; {int(flip.sum())} pairs "
              f"decided differently, {diffs[ours]} of them with both margins beyond {args.tie:g} nats")
    diff_off, diff_on = diffs["off"], diffs["neg_zero"]
    print(f"on wall time: negdiff / official {wall['official'] / wall['off']:.3f}, "
          f"neg_zero / off {wall['off'] / wall['neg_zero']:.3f}")
    t = wall if cuda else cpu  # CPU time on the CPU (steadier there); wall time on a GPU
    print(f"(ratios on {'wall' if cuda else 'CPU'} time)")
    print(ratio_line("negdiff_vs_official", t["official"] / t["off"]))
    print(ratio_line("neg_zero_vs_off", t["off"] / t["neg_zero"]))
    if diff_off or diff_on:
        sys.exit(1)


if __name__ == "__main__":
    main()

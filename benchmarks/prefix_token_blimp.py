"""Baseline BLiMP accuracy of a model with either prefix token: its tokenizer's BOS and <|endoftext|> (issue #18).

A measurement, not a timing:
    python benchmarks/prefix_token_blimp.py MODEL_FOLDER BLIMP_DIR PER_PARADIGM
"""
import sys

import numpy as np
import polars as pl
import torch

from negdiff.conditions import BASELINE
from negdiff.models import load_model
from negdiff.suites import load_suite, sample_pairs
from negdiff.sweep import evaluate_conditions, prepare_eval_data
from negdiff.tokenizer import use_prefix_token

torch.set_num_threads(1)
folder, blimp, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs = sample_pairs(load_suite(blimp), per, seed=0)
model, tok = load_model(folder)
out = {}
for token in (None, "<|endoftext|>"):
    prefix = use_prefix_token(tok, token)
    data = prepare_eval_data(tok, suites={"blimp": pairs}, ppl_text=None, surprisal_text=None, surprisal_pos=None,
                             ppl_tokens=0, surprisal_tokens=0, window=None, stride=None, prepend_bos=True)
    t = evaluate_conditions(model, data, [BASELINE], None, batch_size=64, progress=False)["pairs"].sort("pair")
    out[prefix["bos_token"]] = t
    c = t["correct"].cast(pl.Float64).to_numpy()
    print(f"{prefix['bos_token']} (id {prefix['bos_token_id']}): BLiMP accuracy {100 * c.mean():.2f}% "
          f"of {len(c)} pairs, mean margin {t['margin'].mean():.4f} nats")
(a, ta), (b, tb) = out.items()
d = tb["correct"].cast(pl.Float64).to_numpy() - ta["correct"].cast(pl.Float64).to_numpy()
rng = np.random.default_rng(0)
boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
print(f"{b} - {a}: {100 * d.mean():+.2f} points, 95% CI [{100 * np.quantile(boot, 0.025):+.2f}, "
      f"{100 * np.quantile(boot, 0.975):+.2f}] (pair bootstrap, 2000); decisions that differ: {int((d != 0).sum())}")

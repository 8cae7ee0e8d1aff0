"""Minimal pairs scored as prefix trees (negdiff.packing, LogprobPlan(share_prefixes=True)) and with the
LM head in float32 at scored positions only, against one unpadded sequence at a time, on tiny models of
every architecture: shared prefixes, only a BOS or nothing in common, one sentence a prefix of the
other, duplicates, padding, batch size and order, intervention hooks, the sweep's prefix replay, and
bf16 weights."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from conftest import ARCHS, build_tiny_model
from negdiff import models, packing
from negdiff.conditions import Condition
from negdiff.interventions import intervene
from negdiff.logprobs import LogprobPlan, check_tree_layout, model_inputs
from negdiff.sweep import evaluate_conditions, prepare_eval_data

BOS = 1
ATOL = 2e-5  # float32 rounding of a different batch layout (the tiny models' logits are O(10))

# (good, bad) token ids
PAIRS = [
    ([BOS, 10, 11, 12, 13, 14], [BOS, 10, 11, 15, 13, 14]),  # differ in the middle
    ([BOS, 20, 21, 22], [BOS, 23, 21, 22]),  # only the BOS in common
    ([30, 31, 32, 33], [34, 31, 32]),  # nothing in common (no BOS)
    ([BOS, 40, 41], [BOS, 40, 41, 42, 43]),  # one is a prefix of the other
    ([BOS, 10, 11, 12, 50], [BOS, 10, 11, 12, 51, 52, 53, 54, 55]),  # shares a prefix with pair 0 too
    ([BOS, 60, 61, 62, 63, 64, 65, 66, 67], [BOS, 60, 61, 62, 63, 64, 65, 66, 68]),  # differ at the end
    ([BOS, 70], [BOS, 71]),  # one scored token each
]
SEQS = [np.array(s) for pair in PAIRS for s in pair] + [np.array([BOS, 20, 21, 22]), np.array([BOS])]


def _reference(model, seqs) -> list[np.ndarray]:
    """Per-token float64 log-probs of seq[1:], one unpadded sequence at a time, the model's own logits."""
    out = []
    with torch.no_grad():
        for s in seqs:
            if len(s) < 2:
                out.append(np.zeros(0))
                continue
            logits = model(input_ids=torch.tensor([s.tolist()])).logits[0].double()
            lp = torch.log_softmax(logits, -1)
            out.append(np.array([float(lp[t - 1, s[t]]) for t in range(1, len(s))]))
    return out


def _assert_close(got, ref, atol=ATOL):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.dtype == np.float64 and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=0, atol=atol)


@pytest.mark.parametrize("arch", ARCHS)
def test_prefix_trees_equal_full_sequences(loaded, arch):
    model = loaded(arch)
    ref = _reference(model, SEQS)
    for scored_head in (True, False):
        for row_tokens in (1, 7, 64):  # one sequence per tree, small trees, everything in few trees
            plan = LogprobPlan(SEQS, batch_size=5, pad_id=0, share_prefixes=True, row_tokens=row_tokens)
            assert all(b.tree for b in plan.batches)
            _assert_close(plan.run(model, scored_head=scored_head), ref)
    # the plain layout, with and without the float32 head at scored positions, is the same too
    for scored_head in (True, False):
        _assert_close(LogprobPlan(SEQS, batch_size=3).run(model, scored_head=scored_head), ref)


def test_shared_prefix_is_fed_once():
    plan = LogprobPlan([np.array(s) for s in PAIRS[0]], share_prefixes=True)
    (b,) = plan.batches
    # BOS 10 11 once, then 12 13 14 (good, sorted first) and 15 13 14 (bad) at the same depths
    assert b.input_ids[0].tolist() == [BOS, 10, 11, 12, 13, 14, 15, 13, 14]
    assert b.position_ids[0].tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5]
    # 5 + 5 scored tokens, the first two shared: 8 entries from 7 states (the state of 11 predicts 12 and 15)
    assert b.n_entries == 8 and len(b.hidden_index) == 7
    allowed = b.attention_mask[0]
    assert allowed[:, :3].tril().equal(torch.ones(9, 3, dtype=torch.bool).tril())  # all see the prefix
    assert not allowed[6:, 3:6].any() and not allowed[3:6, 6:].any()  # not each other's continuation
    assert allowed[6:, 6:].equal(torch.ones(3, 3, dtype=torch.bool).tril())


def test_identical_sequences_and_nothing_to_score():
    seqs = [np.array([BOS, 5, 6]), np.array([BOS, 5, 6]), np.array([BOS]), np.array([], dtype=np.int64)]
    plan = LogprobPlan(seqs, share_prefixes=True)
    assert plan.batches[0].input_ids.shape == (1, 3)
    model = build_tiny_model("llama")
    out = plan.run(model)
    np.testing.assert_array_equal(out[0], out[1])
    assert out[2].shape == (0,) and out[3].shape == (0,)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batch_size_and_order_independence(loaded, arch):
    model = loaded(arch)
    ref = _reference(model, SEQS)
    perm = np.random.default_rng(0).permutation(len(SEQS))
    for batch_size, row_tokens, max_batch_tokens in ((1, 64, None), (4, 12, None), (64, 200, 40)):
        plan = LogprobPlan([SEQS[i] for i in perm], batch_size=batch_size, max_batch_tokens=max_batch_tokens,
                           share_prefixes=True, row_tokens=row_tokens)
        if max_batch_tokens is not None:
            assert all(b.input_ids.numel() <= max_batch_tokens or b.input_ids.shape[0] == 1 for b in plan.batches)
        got = plan.run(model)
        _assert_close([got[int(np.flatnonzero(perm == i)[0])] for i in range(len(SEQS))], ref)


def _masks(model, seed=0):
    rng = np.random.default_rng(seed)
    N = models.n_neurons(model)
    return {layer: rng.random(N) < 0.3 for layer in range(models.n_layers(model))}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("operation", ["neg_zero", "full"])
def test_prefix_trees_under_intervention_hooks(loaded, arch, operation):
    model = loaded(arch)
    masks = _masks(model)
    with intervene(model, masks, operation):
        ref = _reference(model, SEQS)
        got = LogprobPlan(SEQS, batch_size=4, share_prefixes=True, row_tokens=16).run(model)
    _assert_close(got, ref)
    if operation == "full":  # the hooks did act
        assert not np.allclose(np.concatenate(ref), np.concatenate(_reference(model, SEQS)), atol=1e-3)


def _words_tokenizer():
    from conftest import build_tiny_tokenizer

    return build_tiny_tokenizer()


SUITE = [
    {"sentence_good": "the cat sat on a mat .", "sentence_bad": "the cat sat a on mat .", "UID": "u1"},
    {"sentence_good": "the dog ran to the park .", "sentence_bad": "the dog ran the to park .", "UID": "u1"},
    {"sentence_good": "she reads books every night .", "sentence_bad": "books she reads every night .", "UID": "u2"},
    {"sentence_good": "birds sang", "sentence_bad": "birds sang in tall trees", "UID": "u2"},
    {"sentence_good": "the cat sat on a mat .", "sentence_bad": "the cat sat on the mat .", "UID": "u3"},
]


@pytest.mark.parametrize("arch", ARCHS)
def test_sweep_with_prefix_replay_equals_earlier_path(tiny_hf_model, arch):
    """evaluate_conditions: prefix trees + float32 head vs the earlier path (a sentence per row, full
    logits), under conditions that replay the baseline's block outputs (first masked layer 1)."""
    model, tok = models.load_model(tiny_hf_model(arch))
    N = models.n_neurons(model)
    sel = pl.DataFrame({"set": ["s"] * 12, "layer": [0] * 6 + [1] * 6,
                        "neuron": [int(n) for n in np.random.default_rng(1).choice(N, 12, replace=False)]})
    conds = [Condition("baseline", "none", "none", "all", ()),
             Condition("full|s|single:1", "full", "s", "single:1", (1,)),
             Condition("pos_zero|s|all", "pos_zero", "s", "all", (0, 1))]
    data = prepare_eval_data(tok, suites={"blimp": SUITE, "tse": SUITE[:3]}, ppl_text=None, surprisal_text=None,
                             surprisal_pos=None, ppl_tokens=0, surprisal_tokens=0, window=None, stride=None,
                             prepend_bos=True)
    runs = {}
    for share, head, cache in ((True, True, 1 << 30), (True, True, 0), (False, False, 1 << 30)):
        runs[share, head, cache] = evaluate_conditions(model, data, conds, sel, batch_size=3, progress=False,
                                                       prefix_cache_bytes=cache, share_prefixes=share,
                                                       scored_head=head)["pairs"]
    new, no_replay, old = runs[True, True, 1 << 30], runs[True, True, 0], runs[False, False, 1 << 30]
    assert new.equals(no_replay)  # the replay is exact on the tree layout too
    assert new["correct"].to_list() == old["correct"].to_list()
    np.testing.assert_allclose(new["margin"].to_numpy(), old["margin"].to_numpy(), rtol=0, atol=ATOL)
    assert (new.filter(pl.col("condition") != "baseline")["margin"].to_numpy()
            != new.filter(pl.col("condition") == "baseline")["margin"].to_numpy()[None].repeat(2, 0).ravel()).any()


def _float64_head(model, plan) -> list[np.ndarray]:
    """Per sequence, log-probs from a float64 LM head at the very states the plan's forwards produce."""
    W = model.get_output_embeddings().weight.double()
    dtype = model.get_input_embeddings().weight.dtype
    out = [np.zeros(0)] * plan.n_items
    with torch.no_grad():
        for b in plan.batches:
            states = model.base_model(**model_inputs(b, "cpu", dtype), use_cache=False)[0]
            h = states.reshape(-1, states.shape[-1])[b.hidden_index].double()
            lp = torch.log_softmax(h @ W.T, -1)[b.entry_hidden, b.entry_target].numpy()
            for i, idx in zip(b.items, b.item_entries):
                out[i] = lp[idx]
    return out


def test_float32_head_on_bfloat16_model():
    """Issue #17: log-probs from float32 logits whatever the weights' dtype. On a bf16 model the
    float32 head is within 1e-4 nats of a float64 head at the same states, far closer than the bf16
    logits the model itself returns; both stay near the float32 model's values."""
    model32 = build_tiny_model("llama")
    model16 = build_tiny_model("llama").to(torch.bfloat16)
    ref32 = np.concatenate(_reference(model32, SEQS))
    for share in (False, True):
        plan = LogprobPlan(SEQS, batch_size=4, share_prefixes=share)
        exact = np.concatenate(_float64_head(model16, plan))
        new = np.concatenate(plan.run(model16, scored_head=True))
        old = np.concatenate(plan.run(model16, scored_head=False))
        err_new, err_old = np.abs(new - exact).max(), np.abs(old - exact).max()
        assert err_new < 1e-4 and err_old > 10 * err_new, (err_new, err_old)
        assert np.abs(new - ref32).max() <= np.abs(old - ref32).max() + 0.05


def test_tree_layout_refuses_a_sliding_window_shorter_than_a_sequence():
    model = build_tiny_model("mistral")
    model.config.sliding_window = 3
    plan = LogprobPlan(SEQS, share_prefixes=True)
    with pytest.raises(ValueError, match="sliding"):
        plan.run(model)
    check_tree_layout(model, LogprobPlan(SEQS).batches)  # plain rows: the model applies its own window


def test_share_prefixes_per_sequence():
    plan = LogprobPlan(SEQS, share_prefixes=[i < 4 for i in range(len(SEQS))])
    trees = [b for b in plan.batches if b.tree]
    assert sorted(i for b in trees for i in b.items) == [0, 1, 2, 3]
    assert sorted(i for b in plan.batches for i in b.items) == list(range(len(SEQS)))
    with pytest.raises(ValueError, match="share_prefixes"):
        LogprobPlan(SEQS, share_prefixes=[True])
    assert packing.tree_batches([], [], batch_size=4, max_batch_tokens=None, pad_id=0) == []

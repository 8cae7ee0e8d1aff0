"""Tokenizer training, tiny-model configs and the CPU training loop (seconds)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from negdiff.architectures import ARCHITECTURES
from negdiff.tokenizer import train_tokenizer
from negdiff.training import build_model, make_config, train_model

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, context=32)


def _toy_lines(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    sg = ["dog", "cat", "teacher", "pilot", "author"]
    verbs = ["barks", "sleeps", "smiles", "runs", "laughs"]
    out = []
    for _ in range(n):
        plural = rnd.random() < 0.5
        noun = rnd.choice(sg) + ("s" if plural else "")
        subj = f"the {noun}"
        if rnd.random() < 0.4:
            subj += f" near the {rnd.choice(sg)}{rnd.choice(['', 's'])}"
        verb = rnd.choice(verbs)
        if plural:
            verb = verb[:-1] if verb.endswith("s") else verb
        out.append(f"{subj} {verb} .")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    (d / "train.txt").write_text("\n".join(_toy_lines(3000, 0)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(_toy_lines(300, 1)) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def tok_dir(corpus, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer([str(corpus / "train.txt")], d, vocab_size=300)
    return d


# --------------------------------------------------------------------------------------------------
# tokenizer


def test_tokenizer_deterministic_and_loadable(corpus, tok_dir, tmp_path):
    from transformers import AutoTokenizer

    again = tmp_path / "again"
    train_tokenizer([str(corpus / "train.txt")], again, vocab_size=300)
    assert (again / "tokenizer.json").read_bytes() == (tok_dir / "tokenizer.json").read_bytes()

    assert json.loads((tok_dir / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    tok = AutoTokenizer.from_pretrained(tok_dir)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.bos_token_id == tok.eos_token_id == tok.pad_token_id == tok.unk_token_id == eot
    assert len(tok) <= 300
    # no special tokens added implicitly
    assert eot not in tok("the dog barks .")["input_ids"]
    assert tok.decode(tok("the dogs near the cat bark .")["input_ids"]) == "the dogs near the cat bark ."


def test_tokenizer_offsets_are_exact(tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    text = "the dogs near the cat bark .\nthe pilots smile .\nzebra quux , xylophone !"
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    pieces = [text[a:b] for a, b in enc["offset_mapping"]]
    # trim_offsets: no token's span includes the space before it
    assert "".join(pieces) == text.replace(" ", "")
    assert all(not p.startswith(" ") for p in pieces)
    # every token's offsets cover exactly its (space-trimmed) text, in order, without overlap
    prev_end = 0
    for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]):
        assert prev_end <= a <= b
        decoded = tok.decode([tid])
        assert decoded.strip() == text[a:b].strip() and text[a:b] in decoded
        prev_end = b
    assert "".join(tok.decode([t]) for t in enc["input_ids"]) == text


def test_tokenizer_rejects_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        train_tokenizer([str(tmp_path / "nope.txt")], tmp_path / "tok")


# --------------------------------------------------------------------------------------------------
# configs


@pytest.mark.parametrize(
    "arch,module_attr,act",
    [("llama", "gate_proj", torch.nn.SiLU), ("gpt_neox", "dense_h_to_4h", torch.nn.GELU), ("opt", "fc1", torch.nn.ReLU)],
)
def test_make_config_module_types(arch, module_attr, act, tok_dir):
    from transformers import AutoTokenizer

    from negdiff.models import n_layers, n_neurons, pre_activation_modules

    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = make_config(arch, vocab_size=len(tok), tokenizer=tok, **TINY)
    assert cfg.model_type == arch
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (tok.bos_token_id,) * 3
    model = build_model(cfg, seed=0)
    assert type(model).__name__ == ARCHITECTURES[arch].model_class
    assert n_layers(model) == TINY["num_layers"] and n_neurons(model) == TINY["intermediate_size"]
    mods = pre_activation_modules(model)
    for block_mod in mods:
        assert isinstance(block_mod, torch.nn.Linear)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    assert module_attr in names
    acts = [m for m in model.modules() if isinstance(m, act) or type(m).__name__.lower().startswith(act.__name__.lower())]
    assert acts, f"{arch}: no {act.__name__} activation module"
    if arch == "opt":
        assert cfg.do_layer_norm_before and cfg.enable_bias and cfg.activation_function == "relu"
        assert cfg.ffn_dim == TINY["intermediate_size"] and cfg.word_embed_proj_dim == TINY["hidden_size"]
    if arch == "llama":
        assert cfg.hidden_act == "silu"
    if arch == "gpt_neox":
        assert cfg.hidden_act == "gelu"


def test_make_config_unknown_arch():
    with pytest.raises(ValueError, match="supported: .*llama.*gpt_neox.*opt"):
        make_config("mamba", vocab_size=100, **TINY)


# --------------------------------------------------------------------------------------------------
# training


def _train(out, corpus, tok_dir, arch="llama", steps=20, seed=0, **kw):
    return train_model(
        architecture=arch,
        model_hparams=TINY,
        tokenizer_dir=tok_dir,
        train_text_path=corpus / "train.txt",
        valid_text_path=corpus / "valid.txt",
        out_dir=out,
        steps=steps,
        batch_size=8,
        lr=1e-2,
        warmup=2,
        weight_decay=0.01,
        seed=seed,
        checkpoints=[0, 8, 16, steps],
        threads=1,
        eval_tokens=2000,
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def trained(corpus, tok_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny-llama"
    rec = _train(out, corpus, tok_dir)
    return out, rec


def test_training_writes_loadable_checkpoints(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, rec = trained
    for step in (0, 8, 16, 20):
        d = out / f"step{step}"
        assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()
        model = AutoModelForCausalLM.from_pretrained(d)
        tok = AutoTokenizer.from_pretrained(d)
        assert model.config.model_type == "llama"
        ids = torch.tensor([tok("the dog barks .")["input_ids"]])
        assert torch.isfinite(model(ids).logits).all()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_training_json_fields(trained):
    out, rec = trained
    on_disk = json.loads((out / "training.json").read_text())
    assert on_disk["steps"] == 20 and on_disk["seed"] == 0 and on_disk["architecture"] == "llama"
    for key in ("hparams", "n_params", "checkpoints", "loss_curve", "wall_seconds", "tokens_seen"):
        assert key in on_disk
    assert [c["step"] for c in on_disk["checkpoints"]] == [0, 8, 16, 20]
    assert [c["name"] for c in on_disk["checkpoints"]] == ["step0", "step8", "step16", "step20"]
    assert all(np.isfinite(c["valid_ppl"]) and c["valid_ppl"] > 1 for c in on_disk["checkpoints"])
    assert on_disk["tokens_seen"] == 20 * 8 * TINY["context"]
    assert on_disk["hparams"]["hidden_size"] == 32
    assert on_disk["n_params"] == rec["n_params"] > 0
    # training helps
    curve = on_disk["loss_curve"]
    assert len(curve) >= 5 and curve[-1]["loss"] < curve[0]["loss"] - 0.5
    ppl = [c["valid_ppl"] for c in on_disk["checkpoints"]]
    assert ppl[-1] < ppl[0] / 2


def test_step0_is_the_seeded_init(trained, tok_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = trained
    tok = AutoTokenizer.from_pretrained(tok_dir)
    fresh = build_model(make_config("llama", vocab_size=len(tok), tokenizer=tok, **TINY), seed=0)
    loaded = AutoModelForCausalLM.from_pretrained(out / "step0")
    a, b = fresh.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    other = build_model(make_config("llama", vocab_size=len(tok), tokenizer=tok, **TINY), seed=1)
    assert not torch.equal(other.state_dict()["model.embed_tokens.weight"], a["model.embed_tokens.weight"])


def test_same_seed_same_weights(trained, corpus, tok_dir, tmp_path):
    from safetensors.torch import load_file

    out, rec = trained
    again = tmp_path / "again"
    rec2 = _train(again, corpus, tok_dir)
    for step in (0, 8, 20):
        t1 = load_file(out / f"step{step}" / "model.safetensors")
        t2 = load_file(again / f"step{step}" / "model.safetensors")
        assert t1.keys() == t2.keys()
        for k in t1:
            assert torch.equal(t1[k], t2[k]), (step, k)
    assert rec2["loss_curve"] == rec["loss_curve"]
    assert [c["valid_ppl"] for c in rec2["checkpoints"]] == [c["valid_ppl"] for c in rec["checkpoints"]]


@pytest.mark.parametrize("arch", ["gpt_neox", "opt"])
def test_other_architectures_train(arch, corpus, tok_dir, tmp_path):
    rec = _train(tmp_path / arch, corpus, tok_dir, arch=arch, steps=16)
    assert rec["model_type"] == arch
    assert rec["loss_curve"][-1]["loss"] < rec["loss_curve"][0]["loss"]
    assert (tmp_path / arch / "step16" / "model.safetensors").is_file()


def test_train_model_validates_arguments(corpus, tok_dir, tmp_path):
    with pytest.raises(ValueError, match="outside"):
        train_model(
            architecture="llama", model_hparams=TINY, tokenizer_dir=tok_dir,
            train_text_path=corpus / "train.txt", valid_text_path=corpus / "valid.txt",
            out_dir=tmp_path / "x", steps=5, batch_size=2, lr=1e-3, warmup=1, weight_decay=0.0,
            seed=0, checkpoints=[0, 10], progress=False,
        )
    with pytest.raises(KeyError, match="context"):
        train_model(
            architecture="llama", model_hparams={k: v for k, v in TINY.items() if k != "context"},
            tokenizer_dir=tok_dir, train_text_path=corpus / "train.txt",
            valid_text_path=corpus / "valid.txt", out_dir=tmp_path / "y", steps=5, batch_size=2,
            lr=1e-3, warmup=1, weight_decay=0.0, seed=0, checkpoints=[0, 5], progress=False,
        )

"""Shared fixtures: tiny randomly initialised Hugging Face models, one per supported architecture.

Nothing is downloaded: each model is built from a config, seeded, and saved with ``save_pretrained``
(safetensors) together with a tiny word-level fast tokenizer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from negdiff import architectures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ARCHS = list(architectures.ARCHITECTURES)  # every record is exercised by the parametrised tests

TINY_VOCAB = 100
TINY_HIDDEN = 32
TINY_LAYERS = 2
TINY_INTERMEDIATE = 64
TINY_CONTEXT = 128

TINY_WORDS = (
    "the cat sat on a mat and the dog ran to the park while birds sang in tall trees "
    "she reads books every night because stories make her happy . , ! ?"
).split()


def tiny_config(arch: str):
    """A tiny config of ``arch`` (negdiff.architectures.tiny_config), with grouped-query attention
    where the architecture has it and untied embeddings, to exercise more of each model."""
    extra: dict = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if architectures.arch_spec(arch).gated:  # the llama family
        extra.update(num_key_value_heads=2, tie_word_embeddings=False)
    if arch == "qwen3":
        extra["head_dim"] = 8
    return architectures.tiny_config(arch, vocab_size=TINY_VOCAB, hidden_size=TINY_HIDDEN, num_layers=TINY_LAYERS,
                                     num_heads=4, intermediate_size=TINY_INTERMEDIATE, context=TINY_CONTEXT, **extra)


def build_tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for w in TINY_WORDS:
        if w not in vocab and len(vocab) < TINY_VOCAB:
            vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def build_tiny_model(arch: str, seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch))
    # spread the (otherwise tiny, N(0, 0.02)) weights so pre-activations are O(1) and of both signs
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory):
    """Factory ``tiny_hf_model(arch) -> Path``: a saved tiny model + tokenizer dir (built once per arch)."""
    cache: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in cache:
            path = tmp_path_factory.mktemp(f"tiny-{arch}")
            build_tiny_model(arch).save_pretrained(path, safe_serialization=True)
            build_tiny_tokenizer().save_pretrained(path)
            cache[arch] = path
        return cache[arch]

    return make


@pytest.fixture(scope="session", params=ARCHS)
def tiny_model_path(request, tiny_hf_model) -> Path:
    """Parametrised over every supported architecture."""
    return tiny_hf_model(request.param)


@pytest.fixture(scope="module")
def loaded(tiny_hf_model):
    """``loaded(arch)``: the tiny model of an architecture, loaded through negdiff once per module."""
    from negdiff import models

    cache = {}

    def get(arch):
        if arch not in cache:
            cache[arch] = models.load_model(tiny_hf_model(arch))[0]
        return cache[arch]

    return get

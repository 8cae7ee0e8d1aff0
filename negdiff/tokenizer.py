"""Byte-level BPE tokenizer for the tiny models trained on the generated corpus.

The tokenizer is trained with HF ``tokenizers`` and saved as a ``PreTrainedTokenizerFast`` so
``AutoTokenizer.from_pretrained(out_dir)`` loads it and offset mappings work.  It has exactly one
special token, ``<|endoftext|>``, used as bos/eos/pad/unk (GPT-2 / Pythia style).
"""

from __future__ import annotations

import os
from pathlib import Path

from negdiff.io import atomic_dir

SPECIAL_TOKEN = "<|endoftext|>"


def _build_backend(train_files: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # trim_offsets: the offset of " dog" is that of "dog" (the leading space is not part of the word)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[SPECIAL_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([os.fspath(f) for f in train_files], trainer=trainer)
    return tok


def train_tokenizer(train_files: list[str], out_dir, *, vocab_size: int = 1024, seed: int = 0):
    """Train a byte-level BPE tokenizer on ``train_files`` and save it to ``out_dir``.

    Deterministic: the same files give the same ``tokenizer.json`` bytes.  BPE training in
    ``tokenizers`` is deterministic (ties broken by pair order), so ``seed`` only exists for
    interface symmetry and is recorded nowhere that could change the output.
    """
    from transformers import PreTrainedTokenizerFast

    del seed  # BPE merges are a deterministic function of the counts
    if not train_files:
        raise ValueError("train_tokenizer needs at least one training file")
    for f in train_files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"tokenizer training file {f} does not exist")
    if vocab_size < 257:
        raise ValueError(f"vocab_size must be >= 257 (256 bytes + <|endoftext|>), got {vocab_size}")

    backend = _build_backend(list(train_files), vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=SPECIAL_TOKEN,
        eos_token=SPECIAL_TOKEN,
        pad_token=SPECIAL_TOKEN,
        unk_token=SPECIAL_TOKEN,
        model_max_length=1_000_000,
        padding_side="right",
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
    )
    with atomic_dir(out_dir) as tmp:
        save_tokenizer(tokenizer, tmp)
    return load_tokenizer(out_dir)


def save_tokenizer(tokenizer, directory) -> None:
    """``tokenizer.save_pretrained(directory)``, naming the class portably.

    transformers 5 records ``"tokenizer_class": "TokenizersBackend"``, which transformers 4 cannot
    resolve; ``PreTrainedTokenizerFast`` loads the same files under both.
    """
    import json

    tokenizer.save_pretrained(os.fspath(directory))
    cfg_path = Path(directory) / "tokenizer_config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if cfg.get("tokenizer_class") == "TokenizersBackend":
            cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
            cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.fspath(path))


def bos_token_id(tokenizer) -> int:
    """The id prepended to every window and sentence: the tokenizer's BOS, else its EOS (GPT-2 style)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        bos = getattr(tokenizer, "eos_token_id", None)
    if bos is None:
        raise ValueError(
            f"prepend_bos is on but tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has neither a BOS nor an EOS token"
        )
    return int(bos)


def use_prefix_token(tokenizer, token: str | None = None, *, key: str = "bos_token") -> dict:
    """Make ``token`` the prefix every window and sentence starts with, and return what it resolved to.

    ``token`` (the config key ``key``, e.g. ``models.smollm2-135m.bos_token``) must be one entry of the
    tokenizer's vocabulary; it becomes the tokenizer's BOS, so :func:`bos_token_id` (which the dumps,
    perplexity, surprisal, cohort WD and pair scoring all prepend) returns its id. Every encoding in negdiff
    runs without special tokens, so nothing else changes. ``None`` keeps the tokenizer's own BOS (else its
    EOS), as without this call. Returns ``{"bos_token": str, "bos_token_id": int}``."""
    if token is not None:
        vocab = tokenizer.get_vocab()
        if token not in vocab:
            special = list(getattr(tokenizer, "all_special_tokens", []))
            raise ValueError(
                f"config key {key}: {token!r} is not a single token in the vocabulary of tokenizer "
                f"{getattr(tokenizer, 'name_or_path', '?')!r} (its special tokens: {special})"
            )
        tokenizer.bos_token = token
        if tokenizer.bos_token_id != vocab[token]:
            raise ValueError(f"config key {key}: tokenizer did not take {token!r} (id {vocab[token]}) as its BOS")
    idx = bos_token_id(tokenizer)
    return {"bos_token": tokenizer.convert_ids_to_tokens(idx), "bos_token_id": idx}

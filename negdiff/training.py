"""Train tiny causal LMs (llama / gpt_neox / opt) from scratch on a text corpus, on CPU.

Design
------
* The training text is tokenised into one stream (:func:`negdiff.data.encode_text`). Each step draws
  ``batch_size`` random windows; every window starts at the beginning of a line and is fed as
  ``[bos] + context-1 stream tokens`` (so the model learns that BOS is a sentence start, which is how
  :func:`negdiff.logprobs.sentence_logprobs` scores minimal pairs), and the loss covers every position.
* AdamW (no decay on biases / norms), linear warmup then cosine decay to ``min_lr_ratio * lr``,
  gradient clipping at 1.0. ``torch.manual_seed(seed)`` before model init; the data order comes from
  its own ``numpy`` generator seeded with ``seed``. Given ``seed`` and ``threads`` the run is
  bit-for-bit deterministic.
* At every step in ``checkpoints`` (0 = the initialisation, before any update) the model and
  tokenizer are saved atomically to ``out_dir/step{N}/`` and validation perplexity is computed on
  the first ``eval_tokens`` tokens of the validation text (non-overlapping windows of ``context``).
* ``out_dir/training.json`` records the run (written atomically, last).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from negdiff.architectures import ARCHITECTURES, TRAINABLE, tiny_config
from negdiff.config import checkpoint_name
from negdiff.io import atomic_dir, write_json
from negdiff.tokenizer import save_tokenizer

SUPPORTED = TRAINABLE  # the architectures whose record carries from-scratch training keywords

# names accepted in the model_hparams dict given to train_model
HPARAM_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "context")


def _special_ids(tokenizer) -> tuple[int, int, int]:
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if bos is None or eos is None or pad is None:
        raise ValueError("the tokenizer needs an eos (or bos) token")
    return int(bos), int(eos), int(pad)


def make_config(
    architecture: str,
    *,
    vocab_size: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    context: int,
    tokenizer=None,
):
    """A from-scratch config for a tiny ``llama`` / ``gpt_neox`` / ``opt`` model.

    * llama: SiLU-gated MLP (``gate_proj``/``up_proj``/``down_proj``), RMSNorm, RoPE.
    * gpt_neox: GELU MLP (``dense_h_to_4h``), parallel residual, partial RoPE (Pythia style).
    * opt: ReLU MLP (``fc1``), pre-LayerNorm, learned positions, biases.

    All three tie input and output embeddings and use no dropout. The keywords beyond the sizes are
    the architecture record's ``training`` entry (:data:`negdiff.architectures.ARCHITECTURES`).
    """
    if architecture not in SUPPORTED:
        raise ValueError(
            f"unknown architecture {architecture!r}; supported: {', '.join(SUPPORTED)}"
        )
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} is not divisible by num_heads={num_heads}")
    if tokenizer is not None:
        bos, eos, pad = _special_ids(tokenizer)
        vocab_size = max(int(vocab_size), len(tokenizer))
    else:
        bos = eos = pad = 0
    return tiny_config(
        architecture,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_size=intermediate_size,
        context=context,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=True,
        use_cache=True,
        **ARCHITECTURES[architecture].training,
    )


def build_model(config, seed: int):
    """Instantiate a freshly initialised model for ``config`` after ``torch.manual_seed(seed)``."""
    import transformers

    model_cls = getattr(transformers, ARCHITECTURES[config.model_type].model_class)
    torch.manual_seed(seed)
    try:
        model = model_cls._from_config(config, attn_implementation="sdpa")
    except (TypeError, ValueError, ImportError):
        torch.manual_seed(seed)
        model = model_cls(config)
    return model.to(torch.float32)


def _line_start_positions(stream, text: str) -> np.ndarray:
    """Indices of the tokens that begin a (non-blank) line of ``text``."""
    if len(stream) == 0:
        return np.zeros(0, dtype=np.int64)
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per char
    after_newline = np.ones(len(chars) + 1, dtype=bool)  # after_newline[i]: char i starts a line
    after_newline[1:] = chars == ord("\n")
    starts = stream.offsets[:, 0]
    ends = stream.offsets[:, 1]
    ok = after_newline[starts] & (ends > starts)
    # a token starting a line must not be a whitespace (newline) token, e.g. of a blank line
    first = chars[np.minimum(starts, len(chars) - 1)]
    ok &= ~np.isin(first, np.array([ord(c) for c in " \t\r\n"], dtype=np.uint32))
    return np.flatnonzero(ok).astype(np.int64)


def _lr_factor(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if steps <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    seen = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _save_checkpoint(model, tokenizer, path: Path) -> None:
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tokenizer, tmp)


def _check_train_args(hp: dict, steps: int, checkpoints: list[int]) -> tuple[list[int], int]:
    """Validate train_model's arguments; returns (sorted unique checkpoint steps, context)."""
    missing = [k for k in HPARAM_KEYS if k not in hp]
    if missing:
        raise KeyError(f"model_hparams lacks {missing}; needs {list(HPARAM_KEYS)}")
    unknown = sorted(set(hp) - set(HPARAM_KEYS) - {"vocab_size"})
    if unknown:
        raise KeyError(f"unknown model_hparams {unknown}; expected {list(HPARAM_KEYS)} (+ vocab_size)")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ckpts = sorted(set(int(c) for c in checkpoints))
    bad = [c for c in ckpts if not 0 <= c <= steps]
    if bad:
        raise ValueError(f"checkpoint steps {bad} outside [0, {steps}]")
    context = int(hp["context"])
    if context < 2:
        raise ValueError("context must be >= 2")
    return ckpts, context


def _prepare_train_data(tokenizer, train_text_path, valid_text_path, context: int, eval_tokens: int):
    """Tokenise the texts; returns (train ids tensor, window start positions, valid ids, n_train)."""
    from negdiff.data import encode_text, read_text

    train_text = read_text(train_text_path)
    valid_text = read_text(valid_text_path)
    train_stream = encode_text(tokenizer, train_text)
    valid_ids = encode_text(tokenizer, valid_text).ids[: int(eval_tokens)]
    n_train = len(train_stream)
    span = context - 1  # stream tokens per window, after the BOS
    starts = _line_start_positions(train_stream, train_text)
    starts = starts[starts + span + 1 <= n_train]  # +1: the target of the last input position
    if len(starts) == 0:
        raise ValueError(
            f"training text {train_text_path} is too short: {n_train} tokens for context {context}"
        )
    del train_text
    train_ids = torch.from_numpy(train_stream.ids)
    return train_ids, starts, valid_ids, n_train


def _init_model(architecture: str, hp: dict, tokenizer, context: int, seed: int):
    """The config and freshly initialised model; returns (config, model, n_params, n_embedding)."""
    config = make_config(
        architecture,
        vocab_size=int(hp.get("vocab_size", len(tokenizer))),
        hidden_size=hp["hidden_size"],
        num_layers=hp["num_layers"],
        num_heads=hp["num_heads"],
        intermediate_size=hp["intermediate_size"],
        context=context,
        tokenizer=tokenizer,
    )
    model = build_model(config, seed)
    n_params = sum(p.numel() for p in model.parameters())
    n_emb = model.get_input_embeddings().weight.numel()
    return config, model, n_params, n_emb


def _make_optimizer(model, *, lr: float, weight_decay: float, steps: int, warmup: int,
                    min_lr_ratio: float):
    """AdamW (no decay on biases / norms) and its warmup + cosine LambdaLR schedule."""
    optim = torch.optim.AdamW(
        _param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95), eps=1e-8
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: _lr_factor(s, steps, warmup, min_lr_ratio)
    )
    return optim, sched


def _train_bar(progress: bool, steps: int, architecture: str):
    if not progress:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=steps, desc=f"train {architecture}", file=sys.stderr, mininterval=5.0)
    except ImportError:  # pragma: no cover
        return None


def _checkpoint(model, tokenizer, valid_ids, *, step: int, context: int, out_dir: Path,
                records: list[dict[str, Any]], bar, architecture: str) -> None:
    """Validation perplexity, then save ``out_dir/step{N}/`` atomically; appends to ``records``."""
    from negdiff.logprobs import perplexity

    name = checkpoint_name(step)
    model.eval()
    ppl = perplexity(model, valid_ids, window=context, batch_size=16)
    _save_checkpoint(model, tokenizer, out_dir / name)
    model.train()
    records.append({"step": step, "name": name, "valid_ppl": ppl})
    if bar is not None:
        bar.write(f"[{architecture}] step {step}: valid ppl {ppl:.3f}", file=sys.stderr)


def _train_loop(model, optim, sched, *, rng, train_ids, starts, bos: int, context: int,
                batch_size: int, steps: int, ckpts: list[int], grad_clip: float, log_every: int,
                architecture: str, bar, checkpoint: Callable[[int], None]
                ) -> tuple[list[dict[str, Any]], int]:
    """The step loop (checkpointing at the steps in ``ckpts``); returns (loss curve, tokens seen)."""
    span = context - 1
    loss_curve: list[dict[str, Any]] = []
    bos_col = torch.full((batch_size, 1), bos, dtype=torch.long)
    offs = torch.arange(span + 1)
    model.train()
    acc_loss, acc_n = 0.0, 0
    tokens_seen = 0
    for step in range(steps + 1):
        if step in ckpts:
            checkpoint(step)
        if step == steps:
            break
        idx = torch.from_numpy(starts[rng.integers(0, len(starts), size=batch_size)])
        seq = train_ids[idx[:, None] + offs]  # [B, span+1]
        inputs = torch.cat([bos_col, seq[:, :-1]], dim=1)  # [B, context]
        targets = seq  # position t (input token t) predicts stream token t
        logits = model(input_ids=inputs, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1)
        )
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optim.step()
        sched.step()
        tokens_seen += int(targets.numel())
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise FloatingPointError(f"training loss became {lv} at step {step} ({architecture})")
        acc_loss += lv
        acc_n += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            loss_curve.append({"step": step + 1, "loss": acc_loss / acc_n})
            acc_loss, acc_n = 0.0, 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.3f}", refresh=False)
    return loss_curve, tokens_seen


def _training_record(*, architecture: str, config, hp: dict, batch_size: int, lr: float,
                     warmup: int, weight_decay: float, min_lr_ratio: float, grad_clip: float,
                     n_params: int, n_emb: int, steps: int, seed: int, threads: int,
                     records: list[dict[str, Any]], loss_curve: list[dict[str, Any]],
                     n_train: int, tokens_seen: int, valid_ids, t0: float, t_train: float
                     ) -> dict[str, Any]:
    """The training.json record."""
    return {
        "architecture": architecture,
        "model_type": config.model_type,
        "hparams": {
            **{k: hp[k] for k in HPARAM_KEYS},
            "vocab_size": int(config.vocab_size),
            "batch_size": int(batch_size),
            "lr": float(lr),
            "warmup": int(warmup),
            "weight_decay": float(weight_decay),
            "min_lr_ratio": float(min_lr_ratio),
            "grad_clip": float(grad_clip),
        },
        "n_params": int(n_params),
        "n_params_non_embedding": int(n_params - n_emb),
        "steps": int(steps),
        "seed": int(seed),
        "threads": int(threads),
        "checkpoints": records,
        "final_valid_ppl": records[-1]["valid_ppl"] if records else None,
        "loss_curve": loss_curve,
        "train_tokens_available": int(n_train),
        "tokens_seen": int(tokens_seen),
        "eval_tokens": int(len(valid_ids)),
        "wall_seconds": time.time() - t0,
        "train_seconds": time.time() - t_train,
    }


def train_model(
    *,
    architecture: str,
    model_hparams: dict,
    tokenizer_dir,
    train_text_path,
    valid_text_path,
    out_dir,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int,
    weight_decay: float,
    seed: int,
    checkpoints: list[int],
    threads: int = 1,
    eval_tokens: int = 20000,
    progress: bool = True,
    min_lr_ratio: float = 0.1,
    grad_clip: float = 1.0,
    log_every: int | None = None,
) -> dict[str, Any]:
    """Train one model; write ``out_dir/step{N}/`` for each checkpoint and ``out_dir/training.json``.

    ``model_hparams`` holds hidden_size, num_layers, num_heads, intermediate_size, context (and
    optionally vocab_size; by default the tokenizer's size). Returns the training.json record.
    """
    from transformers import AutoTokenizer

    t0 = time.time()
    hp = dict(model_hparams)
    ckpts, context = _check_train_args(hp, steps, checkpoints)

    torch.set_num_threads(int(threads))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer_dir))
    bos, _, _ = _special_ids(tokenizer)
    train_ids, starts, valid_ids, n_train = _prepare_train_data(
        tokenizer, train_text_path, valid_text_path, context, eval_tokens
    )

    config, model, n_params, n_emb = _init_model(architecture, hp, tokenizer, context, seed)

    optim, sched = _make_optimizer(model, lr=lr, weight_decay=weight_decay, steps=steps,
                                   warmup=warmup, min_lr_ratio=min_lr_ratio)
    rng = np.random.default_rng(seed)
    if log_every is None:
        log_every = max(1, min(10, steps // 20))

    records: list[dict[str, Any]] = []
    bar = _train_bar(progress, steps, architecture)

    def checkpoint(step: int) -> None:
        _checkpoint(model, tokenizer, valid_ids, step=step, context=context, out_dir=out_dir,
                    records=records, bar=bar, architecture=architecture)

    t_train = time.time()
    loss_curve, tokens_seen = _train_loop(
        model, optim, sched, rng=rng, train_ids=train_ids, starts=starts, bos=bos, context=context,
        batch_size=batch_size, steps=steps, ckpts=ckpts, grad_clip=grad_clip, log_every=log_every,
        architecture=architecture, bar=bar, checkpoint=checkpoint,
    )
    if bar is not None:
        bar.close()

    record = _training_record(
        architecture=architecture, config=config, hp=hp, batch_size=batch_size, lr=lr,
        warmup=warmup, weight_decay=weight_decay, min_lr_ratio=min_lr_ratio, grad_clip=grad_clip,
        n_params=n_params, n_emb=n_emb, steps=steps, seed=seed, threads=threads, records=records,
        loss_curve=loss_curve, n_train=n_train, tokens_seen=tokens_seen, valid_ids=valid_ids,
        t0=t0, t_train=t_train,
    )
    write_json(out_dir / "training.json", record)
    return record

"""Activation capture: the MLP pre-activations (and inputs) of chosen layers, recorded on every forward.

:func:`capture_pre_activations` records them through the hook points of :mod:`negdiff.hooks`;
:func:`recorded_batches` is the one path that runs a model over strided windows of a token stream for
that purpose (batching by window length, the BOS in front, each token recorded once, every forward
stopped after the deepest layer asked for, finite values checked). The activation dump
(:func:`negdiff.activations.dump_activations`) and the cohort WD (:func:`negdiff.cohorts.cohort_wd`)
both read their pre-activations from it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from negdiff import models
from negdiff.data import Window
from negdiff.hooks import hook_name, hooks, run_until

log = logging.getLogger(__name__)

__all__ = ["Capture", "capture_pre_activations", "check_layers", "recorded_batches", "window_batches"]


@dataclass
class Capture:
    """Filled by :func:`capture_pre_activations`; each forward overwrites the entries."""

    layers: list[int]
    pre_activation: dict[int, torch.Tensor] = field(default_factory=dict)
    mlp_input: dict[int, torch.Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.pre_activation.clear()
        self.mlp_input.clear()


def check_layers(model: nn.Module, layers: Sequence[int]) -> list[int]:
    """``layers`` as ints, checked: each in range for ``model`` and none repeated."""
    n = models.n_layers(model)
    layers = [int(l) for l in layers]
    bad = [l for l in layers if not 0 <= l < n]
    if bad:
        raise IndexError(f"layers {bad} out of range: model has {n} layers")
    if len(set(layers)) != len(layers):
        raise ValueError(f"duplicate layers in {layers}")
    return layers


@contextlib.contextmanager
def capture_pre_activations(
    model: nn.Module, layers: list[int] | None = None, *, capture_input: bool = False
) -> Iterator[Capture]:
    """Record each listed layer's pre-activation (and, if asked, the MLP input) on every forward.

    ``Capture.pre_activation[l]`` is the output at hook point ``blocks.{l}.mlp.hook_pre`` (detached,
    not copied), shaped [B, T, n_neurons]; ``Capture.mlp_input[l]`` that module's first positional input
    [B, T, d]. ``layers=None`` means all layers. OPT applies its MLP to hidden states flattened to
    [B*T, d]; the captured tensors are reshaped back to [B, T, ...] (a view of the same values), using
    the shape of the block's input recorded by an ``"input"`` hook on ``blocks.{l}``.
    The hooks are removed on exit, also when the body raises.
    """
    layers = check_layers(model, range(models.n_layers(model)) if layers is None else layers)
    cap = Capture(layers=list(layers))
    lead_shape: dict[int, torch.Size] = {}

    def block_hook(layer: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states")
            if isinstance(hidden, torch.Tensor):
                lead_shape[layer] = hidden.shape[:-1]

        return hook

    def unflatten(layer: int, t: torch.Tensor) -> torch.Tensor:
        # OPT runs its MLP on hidden states flattened to [B*T, d]; report [B, T, ...] like the others
        lead = lead_shape.get(layer)
        if lead is not None and t.shape[:-1] != lead and t.shape[:-1].numel() == lead.numel():
            t = t.reshape(*lead, t.shape[-1])
        return t

    def pre_hook(layer: int):
        def hook(module, args, output):
            cap.pre_activation[layer] = unflatten(layer, output.detach())
            if capture_input:
                cap.mlp_input[layer] = unflatten(layer, args[0].detach())

        return hook

    attach = []
    for layer in layers:
        attach.append((hook_name(layer), "input", block_hook(layer)))
        attach.append((hook_name(layer, "mlp.hook_pre"), "output", pre_hook(layer)))
    with hooks(model, attach):
        yield cap


def window_batches(windows: Sequence[Window], batch_size: int) -> Iterator[list[Window]]:
    """Consecutive windows of equal length, at most ``batch_size`` at a time (order preserved)."""
    batch: list[Window] = []
    for w in windows:
        if batch and (len(batch) == batch_size or (w.end - w.start) != (batch[0].end - batch[0].start)):
            yield batch
            batch = []
        batch.append(w)
    if batch:
        yield batch



def _check_finite(name: str, layer: int, values: torch.Tensor, batch: list[Window], keep: list[tuple[int, int]],
                  bos: int) -> None:
    """``values`` [B, T, *]; raise ValueError naming layer and position of the first non-finite kept value."""
    # Fast path: one reduction (NaN and inf propagate through a sum); only a non-finite sum (or a
    # float32 overflow of one) pays for the elementwise test.
    if bool(torch.isfinite(values.sum())) or bool(torch.isfinite(values).all()):
        return
    for b, (w, (lo, hi)) in enumerate(zip(batch, keep)):
        v = values[b, lo:hi]
        bad = ~torch.isfinite(v)
        if bool(bad.any()):
            idx = int(bad.reshape(bad.shape[0], -1).any(dim=1).nonzero()[0, 0])
            neuron = int(bad[idx].reshape(-1).nonzero()[0, 0])
            pos_in_window = lo - bos + idx
            raise ValueError(
                f"non-finite {name} at layer {layer}, position {pos_in_window} of window "
                f"[{w.start}, {w.end}) (stream token {w.start + pos_in_window}), neuron/dim {neuron}: "
                f"{float(v[idx].reshape(-1)[neuron])}"
            )


def _kept_positions(batch: list[Window], bos: int, budget: int) -> list[tuple[int, int]]:
    """Per window of a batch, ``(lo, hi)`` of its recorded positions in model-input coordinates
    (after the BOS), truncated so that at most ``budget`` tokens are recorded in all."""
    keep: list[tuple[int, int]] = []
    for w in batch:
        lo = w.keep_from - w.start + bos
        hi = min(w.end - w.start + bos, lo + budget)
        budget -= hi - lo
        keep.append((lo, hi))
    return keep


def _check_captured(cap: Capture, layers: list[int], capture_mlp_input: bool, batch: list[Window],
                    keep: list[tuple[int, int]], bos: int) -> None:
    """One reduction (one device sync) for the whole batch; per layer only when it is not finite."""
    captured = [cap.pre_activation[l] for l in layers] + [cap.mlp_input[l] for l in layers if capture_mlp_input]
    if bool(torch.isfinite(torch.stack([v.sum(dtype=torch.float32) for v in captured]).sum())):
        return
    for l in layers:
        _check_finite("pre-activation", l, cap.pre_activation[l], batch, keep, bos)
        if capture_mlp_input:
            _check_finite("MLP input", l, cap.mlp_input[l], batch, keep, bos)


def recorded_batches(model, ids: np.ndarray, windows: Sequence[Window], *, layers: list[int], batch_size: int,
                      bos_token_id: int | None, n_target: int, capture_mlp_input: bool,
                      bar=None) -> Iterator[tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], list]]:
    """One forward per batch of windows; yields ``(pre_activation, mlp_input, spans)`` per batch.

    ``windows`` (:func:`negdiff.data.iter_windows`) index the stream ``ids``; each is fed after
    ``bos_token_id`` when one is given. ``pre_activation[l]`` [n, N] (and ``mlp_input[l]`` [n, d] when
    captured) are the batch's recorded tokens, in stream order, on the model's device in its dtype
    (finite: checked here); ``spans`` lists ``(stream start, stream end, position in window)`` of the
    recorded runs. Stops after ``n_target`` recorded tokens. Only the backbone runs (no LM head:
    logits over a large vocabulary would dwarf the activations), and each forward stops once the
    deepest requested layer has been captured (:func:`negdiff.hooks.run_until`).
    """
    bos = 0 if bos_token_id is None else 1
    device = models.model_device(model)
    last = hook_name(max(layers), "mlp.hook_pre")
    log.info("capturing %s%s, each forward stopped after %s",
             ", ".join(hook_name(l, "mlp.hook_pre") for l in layers), " (and MLP inputs)" if capture_mlp_input else "",
             last)
    recorded = 0
    # inference mode only around each forward and gather, never across a yield: the caller's own
    # in-place work (shard buffers, histograms) must not run in a mode it did not ask for
    with capture_pre_activations(model, layers, capture_input=capture_mlp_input) as cap:
        for batch in window_batches(windows, batch_size):
            if recorded >= n_target:
                break
            rows = np.stack([ids[w.start : w.end] for w in batch])
            if bos:
                rows = np.concatenate([np.full((len(batch), 1), bos_token_id, np.int64), rows], axis=1)
            cap.clear()
            with torch.inference_mode():
                run_until(model, last, input_ids=torch.from_numpy(rows).to(device), use_cache=False)
            missing = [l for l in layers if l not in cap.pre_activation]
            if missing:
                raise RuntimeError(f"forward did not reach the pre-activation modules of layers {missing}")
            keep = _kept_positions(batch, bos, n_target - recorded)
            _check_captured(cap, layers, capture_mlp_input, batch, keep, bos)
            kept = [(b, lo, hi) for b, (lo, hi) in enumerate(keep) if hi > lo]
            with torch.inference_mode():
                pre = {l: torch.cat([cap.pre_activation[l][b, lo:hi] for b, lo, hi in kept]) for l in layers}
                mlp = ({l: torch.cat([cap.mlp_input[l][b, lo:hi] for b, lo, hi in kept]) for l in layers}
                       if capture_mlp_input else {})
            cap.clear()
            spans = [(batch[b].start + lo - bos, batch[b].start + hi - bos, lo - bos) for b, lo, hi in kept]
            n_new = sum(hi - lo for _, lo, hi in kept)
            yield pre, mlp, spans
            recorded += n_new
            if bar is not None:
                bar.update(n_new)

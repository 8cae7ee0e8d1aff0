"""Neuron-level interventions on the MLP nonlinearity, one mask-based mechanism for every architecture.

For a neuron with pre-activation ``a`` and base nonlinearity ``act`` (SiLU / GELU / ReLU, see
:data:`negdiff.architectures.ARCHITECTURES`), the operations replace the neuron's *output* ``act(a)``:

============  ===========================  ======================================  ==========================
operation     definition                   output for a masked neuron              the identity iff (ReLU?)
============  ===========================  ======================================  ==========================
neg_zero      a' = max(a, 0)               0 where a < 0, act(a) otherwise (the    act(a) = 0 for a < 0 (yes)
                                           paper's main intervention: the
                                           negative region is removed)
full          a' = 0                       0 (the neuron is removed)               act = 0 everywhere (no)
pos_zero      a' = min(a, 0)               0 where a > 0, act(a) otherwise         act(a) = 0 for a > 0 (no)
sign_flip     |act(a)| where act(a) < 0    -act(a) where act(a) < 0, act(a)        act(a) >= 0 (yes)
                                           otherwise
pos_relu      identity for a > 0           a where a > 0, act(a) otherwise         act(a) = a for a > 0 (yes)
============  ===========================  ======================================  ==========================

The last column is derived, never special-cased: :data:`negdiff.architectures.NONLINEARITIES` records each
nonlinearity's properties (one field per fact) and :data:`negdiff.architectures.IDENTITY_RULES` which of them
make an operation the identity; :func:`negdiff.architectures.identity_operations` lists the identity
operations of an architecture. On ReLU (OPT) these are neg_zero, sign_flip and pos_relu; on SiLU, GELU
and GELU-tanh none. The pipeline never evaluates an identity operation: its conditions are left out
(:func:`negdiff.conditions.conditions_for`) and, where neg_zero is the identity, the
perplexity-matched search is skipped (:func:`negdiff.selection.matched_control`). The functions here
still apply them if asked (numerically a no-op).

Every operation is a function of ``a`` and ``act(a)`` alone (all supported nonlinearities have
``act(0) == 0``: :attr:`negdiff.architectures.Nonlinearity.zero_at_zero`), so one mechanism serves all of
them: a hook on each layer's nonlinearity module (hook point ``blocks.{l}.mlp.hook_post``, :mod:`negdiff.hooks`)
reads the module's input ``a`` and its output ``act(a)`` and returns ``torch.where(mask, new, out)``.
Unmasked neurons, and masked neurons outside the operation's region, keep the original output
tensor's values bit for bit. The mask is over the last dimension, so OPT's flattened [B*T, N] MLP
activations work unchanged.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import polars as pl
import torch
from torch import nn

from negdiff import models
from negdiff.architectures import IDENTITY_RULES, NONLINEARITIES, arch_spec
from negdiff.hooks import hook_name, hooks

__all__ = ["OPERATIONS", "Operation", "apply_operation", "condition_masks", "intervene", "masks_from_selection", "operation"]

@dataclass(frozen=True)
class Operation:
    """One intervention: ``fn(a, out)`` gives every element's new output from the pre-activation ``a``
    and the unmodified output ``out = act(a)``; ``zero_for_zero`` says it writes 0 where act(a) is
    replaced by act(0) (a' = 0), so it assumes ``act(0) == 0``."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    zero_for_zero: bool


# the registry: adding an operation is one entry here (its identity rule lives with the nonlinearity facts)
OPERATIONS: dict[str, Operation] = {}


def operation(name: str, *, zero_for_zero: bool):
    """Register ``fn(a, out)`` as the operation ``name``."""
    def register(fn):
        if name in OPERATIONS:
            raise ValueError(f"operation {name!r} registered twice")
        OPERATIONS[name] = Operation(name, fn, zero_for_zero)
        return fn

    return register


@operation("neg_zero", zero_for_zero=True)
def _neg_zero(a, out):
    return torch.where(a < 0, out.new_zeros(()), out)


@operation("full", zero_for_zero=True)
def _full(a, out):
    return out.new_zeros(()).expand_as(out)


@operation("pos_zero", zero_for_zero=True)
def _pos_zero(a, out):
    return torch.where(a > 0, out.new_zeros(()), out)


@operation("sign_flip", zero_for_zero=False)
def _sign_flip(a, out):
    return torch.where(out < 0, -out, out)


@operation("pos_relu", zero_for_zero=False)
def _pos_relu(a, out):
    return torch.where(a > 0, a.to(out.dtype), out)


# the nonlinearity facts name the operations too (their identity rules), without importing this module
if tuple(IDENTITY_RULES) != tuple(OPERATIONS):
    raise ImportError(f"IDENTITY_RULES {tuple(IDENTITY_RULES)} != OPERATIONS {tuple(OPERATIONS)}")


def _check_operation(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS)}")


def _operate(a: torch.Tensor, out: torch.Tensor, operation: str) -> torch.Tensor:
    """``operation`` applied to every element (``a`` pre-activation, ``out = act(a)``)."""
    return OPERATIONS[operation].fn(a, out)


def apply_operation(a: torch.Tensor, out: torch.Tensor, operation: str, mask: torch.Tensor,
                    cols: torch.Tensor | None = None, inplace: bool = False) -> torch.Tensor:
    """The post-activation after ``operation`` on the neurons selected by ``mask``.

    ``a`` is the pre-activation and ``out = act(a)`` the unmodified post-activation (same shape,
    [..., N]); ``mask`` is bool [N] (broadcast over the leading dims) or of ``a``'s full shape.
    Assumes ``act(0) == 0``. Returns a new tensor (or, with ``inplace`` and a per-neuron mask,
    ``out`` itself, modified); elements outside ``mask`` (and masked elements the operation leaves
    alone) are taken from ``out`` unchanged.
    """
    _check_operation(operation)
    if a.shape != out.shape:
        raise ValueError(f"pre-activation shape {tuple(a.shape)} != output shape {tuple(out.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
    if mask.dim() == 1 and mask.shape[0] == out.shape[-1]:
        # a per-neuron mask: copy the output once and operate on the masked columns only
        # (a few percent of them), instead of three full-size passes; ``cols`` (the mask's
        # indices on out's device) may be given by a caller that reuses them
        if cols is None:
            cols = torch.nonzero(mask.to(out.device)).squeeze(1)
        new = out if inplace else out.clone()
        new[..., cols] = _operate(a[..., cols], out[..., cols], operation)
        return new
    return torch.where(mask.to(out.device), _operate(a, out, operation), out)


def _as_bool_mask(layer: int, mask, n_neurons: int) -> torch.Tensor:
    if isinstance(mask, torch.Tensor):
        t = mask.detach()
    else:
        arr = np.asarray(mask)
        if arr.dtype != np.bool_:
            raise TypeError(f"layer {layer}: neuron mask must be boolean, got dtype {arr.dtype}")
        t = torch.from_numpy(arr.copy())
    if t.dtype != torch.bool:
        raise TypeError(f"layer {layer}: neuron mask must be boolean, got dtype {t.dtype}")
    if tuple(t.shape) != (n_neurons,):
        raise ValueError(
            f"layer {layer}: neuron mask has shape {tuple(t.shape)}, expected ({n_neurons},) "
            f"(one entry per MLP neuron)"
        )
    return t


def _validated_masks(model: nn.Module, neuron_mask: Mapping[int, object]) -> dict[int, torch.Tensor]:
    n_layers = models.n_layers(model)
    n_neurons = models.n_neurons(model)
    masks: dict[int, torch.Tensor] = {}
    for layer, mask in neuron_mask.items():
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer keys must be ints, got {layer!r}")
        layer = int(layer)
        if not 0 <= layer < n_layers:
            raise IndexError(f"layer {layer} out of range: model has {n_layers} layers")
        masks[layer] = _as_bool_mask(layer, mask, n_neurons)
    return masks


@contextlib.contextmanager
def intervene(model: nn.Module, neuron_mask: Mapping[int, np.ndarray | torch.Tensor],
              operation: str) -> Iterator[None]:
    """Apply ``operation`` to the masked neurons of every listed layer during the ``with`` body.

    ``neuron_mask`` maps layer index -> bool [n_neurons]; absent layers (and all-False masks) are left
    untouched, so an empty dict is a no-op. Shapes, layer indices and the operation name are checked
    before any hook is registered; the hooks are removed on exit, also when the body raises.
    Hooks registered later on the same modules (e.g. captures) see the modified output.
    """
    _check_operation(operation)
    spec = arch_spec(model)
    # neg_zero / full / pos_zero output 0 in place of act(0) (a' = 0): they rely on act(0) == 0
    nonlinearity = NONLINEARITIES.get(spec.activation)
    if OPERATIONS[operation].zero_for_zero and not (nonlinearity and nonlinearity.zero_at_zero):
        raise ValueError(f"{spec.name}: nonlinearity {spec.activation!r} is not known to satisfy act(0) == 0")
    masks = _validated_masks(model, neuron_mask)

    def make_hook(layer: int, mask: torch.Tensor):
        per_device: dict[torch.device, torch.Tensor] = {}

        def hook(module, args, output):
            a = args[0]
            if a.shape[-1] != mask.shape[0] or output.shape != a.shape:
                raise RuntimeError(
                    f"layer {layer}: activation module input {tuple(a.shape)} / output "
                    f"{tuple(output.shape)} do not match the neuron mask ({mask.shape[0]},)"
                )
            m = per_device.get(output.device)
            if m is None:
                dm = mask.to(output.device)
                m = per_device[output.device] = (dm, torch.nonzero(dm).squeeze(1))
            # the activation's output is a fresh tensor that only the next projection reads: modify it
            # in place (saving a full copy per layer) unless autograd may need it
            return apply_operation(a, output, operation, m[0], cols=m[1],
                                   inplace=not (torch.is_grad_enabled() and output.requires_grad))

        return hook

    attach = [(hook_name(layer, "mlp.hook_post"), "output", make_hook(layer, masks[layer]))
              for layer in sorted(masks) if bool(masks[layer].any())]
    with hooks(model, attach):
        yield


def masks_from_selection(selection: pl.DataFrame, n_layers: int, n_neurons: int, *,
                         layers: Iterable[int] | None = None) -> dict[int, np.ndarray]:
    """Bool masks [n_neurons] per layer from a table with columns ``layer``, ``neuron`` (one set).

    Only layers with at least one selected neuron appear in the result; ``layers`` restricts the
    result to a layer scope (selected neurons outside it are dropped). Out-of-range layers or neuron
    indices raise; a ``set`` column with more than one value raises (filter to one set first).
    """
    missing = {"layer", "neuron"} - set(selection.columns)
    if missing:
        raise ValueError(f"selection table lacks column(s) {sorted(missing)}")
    if "set" in selection.columns and selection["set"].n_unique() > 1:
        raise ValueError(
            f"selection holds several sets {sorted(selection['set'].unique().to_list())}; filter to one"
        )
    if selection["layer"].null_count() or selection["neuron"].null_count():
        raise ValueError("selection has null layer or neuron entries")
    lay = selection["layer"].to_numpy().astype(np.int64, copy=False)
    neu = selection["neuron"].to_numpy().astype(np.int64, copy=False)
    if lay.size and (lay.min() < 0 or lay.max() >= n_layers):
        raise IndexError(f"selection has layer(s) outside [0, {n_layers}): "
                         f"{sorted(set(lay[(lay < 0) | (lay >= n_layers)].tolist()))}")
    if neu.size and (neu.min() < 0 or neu.max() >= n_neurons):
        raise IndexError(f"selection has neuron index(es) outside [0, {n_neurons})")
    scope = None
    if layers is not None:
        scope = {int(l) for l in layers}
        bad = sorted(l for l in scope if not 0 <= l < n_layers)
        if bad:
            raise IndexError(f"layers {bad} out of range: model has {n_layers} layers")
    out: dict[int, np.ndarray] = {}
    for layer in np.unique(lay).tolist():
        if scope is not None and layer not in scope:
            continue
        mask = np.zeros(n_neurons, dtype=bool)
        mask[neu[lay == layer]] = True
        out[int(layer)] = mask
    return out


def condition_masks(model, cond, selection: pl.DataFrame | None,
                    empty_sets: Iterable[str] = ()) -> dict[int, np.ndarray]:
    """``{layer: bool [n_neurons]}`` of a condition (:class:`negdiff.conditions.Condition`): its set's rows of
    the selection table on its layers ({} for the baseline and for sets known to hold no neuron)."""
    empty_sets = frozenset(empty_sets)
    if cond.intervention == "none":
        return {}
    if cond.intervention not in OPERATIONS:
        raise ValueError(
            f"condition {cond.name!r}: unknown intervention {cond.intervention!r}; "
            f"expected 'none' or one of {', '.join(OPERATIONS)}"
        )
    if cond.set == "none":
        raise ValueError(f"condition {cond.name!r}: intervention {cond.intervention!r} needs a neuron set")
    if selection is None:
        raise ValueError(f"condition {cond.name!r} needs set {cond.set!r} but no selection table was given")
    if "set" not in selection.columns:
        raise ValueError("selection table lacks a 'set' column")
    sub = selection.filter(pl.col("set") == cond.set)
    if sub.height == 0 and cond.set in empty_sets:
        return {}
    if sub.height == 0 and cond.set not in set(selection["set"].unique().to_list()):
        raise ValueError(
            f"condition {cond.name!r}: set {cond.set!r} is not in the selection table "
            f"(sets: {sorted(selection['set'].unique().to_list())})"
        )
    return masks_from_selection(
        sub, models.n_layers(model), models.n_neurons(model), layers=[int(l) for l in cond.layers]
    )

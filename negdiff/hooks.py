"""Named hook points on a transformer, and the one mechanism that attaches hooks to them.

Every place that looks inside a model (the activation capture, the interventions, the early stop of a
forward, the replay of recorded block outputs) goes through :func:`hooks`: it attaches functions at
named points, yields, and removes every one of them when the body ends, also when it raises. The
names are architecture-neutral, in the style of TransformerLens (``blocks.{l}.mlp.hook_pre``), and
resolve through :mod:`negdiff.architectures` to the real submodule of each family:

======================  ==========================================  ========================================
point (layer ``l``)     module                                      what a hook there sees
======================  ==========================================  ========================================
``blocks.{l}``          the transformer block                       input (``"input"`` hooks: the hidden
                                                                    states), output, or its whole forward
                                                                    (``"replace"``)
``blocks.{l}.mlp.       the module whose output is the MLP          output: the pre-activation; input:
hook_pre``              pre-activation (``gate_proj``, ``fc1``...)  the MLP input
``blocks.{l}.mlp.       the MLP nonlinearity module                 input: the pre-activation; output: the
hook_post``                                                         post-activation (interventions edit it)
======================  ==========================================  ========================================

:func:`run_until` runs a model's backbone only as far as a hook point has produced its output (no
deeper block, no language-model head), by raising :class:`StopForward` from a hook there.
:func:`active_hooks` lists what this mechanism has attached to a model and not yet removed.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from typing import Any, Callable, Iterable, Iterator

from torch import nn

from negdiff import models

__all__ = ["HOOK_POINTS", "KINDS", "StopForward", "active_hooks", "hook_name", "hook_module", "hooks",
           "run_until"]

# point suffix -> the function giving, per layer, the module it names
HOOK_POINTS: dict[str, Callable[[nn.Module], list[nn.Module]]] = {
    "": models.block_modules,
    "mlp.hook_pre": models.pre_activation_modules,
    "mlp.hook_post": models.activation_modules,
}

# "output": fn(module, args, output) -> None or a replacement output (a forward hook);
# "input": fn(module, args, kwargs) -> None (a forward pre-hook with keyword arguments);
# "replace": fn(*args, **kwargs) stands in for the module's forward for the duration
KINDS = ("output", "input", "replace")

_NAME = re.compile(r"^blocks\.(\d+)(?:\.(.+))?$")
_ACTIVE: "weakref.WeakKeyDictionary[nn.Module, list[tuple[str, str]]]" = weakref.WeakKeyDictionary()
_MISSING = object()


class StopForward(Exception):
    """Raised by :func:`run_until`'s hook once the point it waits for has run, to skip the rest."""


def hook_name(layer: int, point: str = "") -> str:
    """The canonical name of a hook point: ``hook_name(3, "mlp.hook_pre") == "blocks.3.mlp.hook_pre"``."""
    if point not in HOOK_POINTS:
        raise ValueError(f"unknown hook point {point!r}; known: {sorted(HOOK_POINTS)}")
    return f"blocks.{int(layer)}" + (f".{point}" if point else "")


def hook_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule a hook point name refers to on this model; errors name the point."""
    m = _NAME.match(name)
    point = (m.group(2) or "") if m else None
    if m is None or point not in HOOK_POINTS:
        raise ValueError(f"unknown hook point {name!r}; expected blocks.<layer>[.{'|'.join(p for p in HOOK_POINTS if p)}]")
    modules = HOOK_POINTS[point](model)
    layer = int(m.group(1))
    if not 0 <= layer < len(modules):
        raise IndexError(f"hook point {name!r}: layer {layer} out of range, model has {len(modules)} layers")
    return modules[layer]


def active_hooks(model: nn.Module) -> list[tuple[str, str]]:
    """``(name, kind)`` of every hook :func:`hooks` has attached to ``model`` and not yet removed."""
    return list(_ACTIVE.get(model, ()))


@contextlib.contextmanager
def hooks(model: nn.Module, attach: Iterable[tuple[str, str, Callable[..., Any]]]) -> Iterator[None]:
    """Attach ``(name, kind, fn)`` hooks (kinds: :data:`KINDS`) for the duration of the ``with`` body.

    Hooks are attached in the given order (hooks on one module fire in that order, after any attached
    earlier) and all removed on exit, also when the body or an attachment raises; a replaced forward
    (also one accelerate's device map had set on the instance) is restored.
    """
    handles: list[Any] = []
    replaced: list[tuple[nn.Module, Any]] = []
    tags = _ACTIVE.setdefault(model, [])
    n_tags = len(tags)
    try:
        for name, kind, fn in attach:
            module = hook_module(model, name)
            if kind == "output":
                handles.append(module.register_forward_hook(fn))
            elif kind == "input":
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
            elif kind == "replace":
                replaced.append((module, module.__dict__.get("forward", _MISSING)))
                module.forward = fn
            else:
                raise ValueError(f"hook {name!r}: unknown kind {kind!r}; expected one of {KINDS}")
            tags.append((name, kind))
        yield
    finally:
        for h in handles:
            h.remove()
        for module, old in reversed(replaced):
            if old is _MISSING:
                del module.forward
            else:
                module.forward = old
        del tags[n_tags:]


def _raise_stop(module, args, output):
    raise StopForward


def run_until(model: nn.Module, name: str, **inputs: Any) -> None:
    """Run the backbone (``model.base_model``: no language-model head) on ``inputs`` until the hook
    point ``name`` has produced its output, then stop. Hooks attached before this call, also on
    ``name``'s own module, have fired by then."""
    backbone = getattr(model, "base_model", model)
    with hooks(model, [(name, "output", _raise_stop)]):
        try:
            backbone(**inputs)
        except StopForward:
            pass

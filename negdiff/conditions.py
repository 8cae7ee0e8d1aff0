"""Which interventions a run evaluates: neuron sets, layer scopes and conditions, named from the config.

Light on purpose (no torch): the Snakefile imports it to plan jobs, and figures use it to parse names.

Names:
- sets: ``"{method}@{percent:g}"`` for method in wn, random, ppl_matched (e.g. ``wn@1``, ``random@0.5``);
  further random controls drawn with other seeds are ``"random@{percent:g}#{k}"`` (seed + k, k >= 1);
- scopes: ``"all"``, ``"single:{g}"`` (layer group g alone), ``"cumulative:{g}"`` (groups 0..g);
- conditions: ``"baseline"`` or ``"{intervention}|{set}|{scope}"``.

Conditions whose operation is the identity on the model's nonlinearity (on OPT's ReLU: neg_zero,
sign_flip, pos_relu; from :func:`negdiff.architectures.identity_operations`) are left out: the caller passes
those operations as ``identity_operations``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping

log = logging.getLogger(__name__)

SET_METHODS = ("wn", "random", "ppl_matched")


@dataclass(frozen=True)
class Condition:
    name: str
    intervention: str  # "none" or one of negdiff.interventions.OPERATIONS
    set: str  # "none" or a set name
    scope: str  # "all", "single:{g}", "cumulative:{g}"
    layers: tuple[int, ...]  # layers the intervention applies to (empty for the baseline)


BASELINE = Condition("baseline", "none", "none", "all", ())

PAIRED_BASELINE = "paired_baseline"
"""The metrics column of a condition scored on a nested tier of the pairs (:mod:`negdiff.tiers`): the
baseline's value on the same pairs and group. Absent with one tier, null on the main tier's rows, whose
baseline is the table's own baseline row."""


def condition_name(intervention: str, set_: str, scope: str = "all") -> str:
    """The one name format of a condition: ``"neg_zero|wn@1|all"`` (the baseline is ``"baseline"``)."""
    return f"{intervention}|{set_}|{scope}"


def parse_condition(name: str) -> tuple[str, str, str]:
    """``"neg_zero|wn@1|single:0"`` -> ``("neg_zero", "wn@1", "single:0")``; ``"baseline"`` ->
    ``("none", "none", "all")``."""
    if name == BASELINE.name:
        return BASELINE.intervention, BASELINE.set, BASELINE.scope
    parts = name.split("|")
    if len(parts) != 3:
        raise ValueError(f"bad condition name {name!r}; expected INTERVENTION|SET|SCOPE or 'baseline'")
    return parts[0], parts[1], parts[2]


def set_name(method: str, percent: float, replicate: int = 0) -> str:
    """``set_name("random", 1, 2)`` -> ``"random@1#2"``; replicate 0 has no suffix."""
    if method not in SET_METHODS:
        raise ValueError(f"unknown set method {method!r}; expected one of {SET_METHODS}")
    if replicate and method != "random":
        raise ValueError(f"only random sets have replicates, got {method!r} replicate {replicate}")
    return f"{method}@{percent:g}" + (f"#{replicate}" if replicate else "")


def parse_set(name: str) -> tuple[str, float | None]:
    """``"wn@1"`` -> ``("wn", 1.0)``; ``"random@1#2"`` -> ``("random", 1.0)``; ``"none"`` -> ``("none", None)``."""
    if name == "none":
        return "none", None
    base, _, rep = name.partition("#")
    method, _, pct = base.partition("@")
    if method not in SET_METHODS or not pct or (rep and not (rep.isdigit() and method == "random")):
        raise ValueError(f"bad set name {name!r}; expected METHOD@PERCENT[#K] with METHOD in {SET_METHODS}")
    return method, float(pct)


def set_family(name: str) -> str:
    """The set a replicate belongs to: ``"random@1#2"`` -> ``"random@1"`` (other names unchanged)."""
    return name.partition("#")[0]


def random_seed_count(selection: dict, percent: float) -> int:
    """How many random control sets one percent gets: ``selection.random_seeds_main`` at the main percent
    (the comparisons that decide the main claims), when set; ``selection.random_seeds`` elsewhere."""
    main = selection.get("random_seeds_main")
    if main is not None and float(percent) == float(selection["main_percent"]):
        return int(main)
    return int(selection.get("random_seeds", 1))


def random_replicates(selection: dict, percent: float) -> list[str]:
    """Every random control set of one percent: ``random@p`` and ``random@p#k`` for k < its seed count
    (:func:`random_seed_count`)."""
    return [set_name("random", percent, k) for k in range(random_seed_count(selection, percent))]


def layer_groups(n_layers: int, group_size: int) -> list[tuple[int, ...]]:
    """Consecutive groups of ``group_size`` layers (the last one may be shorter)."""
    if group_size < 1:
        raise ValueError(f"evaluation.layer_group_size must be >= 1, got {group_size}")
    return [tuple(range(s, min(s + group_size, n_layers))) for s in range(0, n_layers, group_size)]


def scope_layers(scope: str, n_layers: int, group_size: int) -> tuple[int, ...]:
    groups = layer_groups(n_layers, group_size)
    if scope == "all":
        return tuple(range(n_layers))
    kind, _, g = scope.partition(":")
    if kind not in ("single", "cumulative") or not g.isdigit() or int(g) >= len(groups):
        raise ValueError(f"bad layer scope {scope!r} for {n_layers} layers in {len(groups)} groups")
    g = int(g)
    if kind == "single":
        return groups[g]
    return tuple(layer for grp in groups[: g + 1] for layer in grp)


def parse_scope(scope: str) -> tuple[str, int | None]:
    """``"single:2"`` -> ``("single", 2)``; ``"all"`` -> ``("all", None)``."""
    if scope == "all":
        return "all", None
    kind, _, g = scope.partition(":")
    return kind, int(g)


def condition(intervention: str, set_: str, scope: str, n_layers: int, group_size: int) -> Condition:
    return Condition(condition_name(intervention, set_, scope), intervention, set_, scope, scope_layers(scope, n_layers, group_size))


def selection_sets(selection: dict) -> list[str]:
    """Every neuron set the selection job writes: wn and random at each percent, ppl_matched at the main one."""
    sets = [set_name("wn", p) for p in selection["percents"]]
    sets += [s for p in selection["percents"] for s in random_replicates(selection, p)]
    if selection["ppl_matched"]["enabled"]:
        sets.append(set_name("ppl_matched", selection["main_percent"]))
    return list(dict.fromkeys(sets))


def without_identity(conditions: list[Condition], identity_operations: Iterable[str] = ()) -> list[Condition]:
    """``conditions`` less those whose intervention is one of ``identity_operations`` (the baseline stays)."""
    skip = set(identity_operations)
    return [c for c in conditions if c.intervention not in skip]


def final_conditions(selection: dict, evaluation: dict, n_layers: int, *,
                     identity_operations: Iterable[str] = ()) -> list[Condition]:
    """Conditions at the cohort (final) checkpoint: the sweep, controls, operations and layer-wise runs,
    less those of ``identity_operations`` (operations that change nothing on this model)."""
    k = evaluation["layer_group_size"]
    main = selection["main_percent"]
    wn_main = set_name("wn", main)
    out = [BASELINE]
    for s in selection_sets(selection):
        out.append(condition("neg_zero", s, "all", n_layers, k))
    for op in evaluation["operations"]:
        if op != "neg_zero":
            out.append(condition(op, wn_main, "all", n_layers, k))
    n_groups = len(layer_groups(n_layers, k))
    for g in range(n_groups):
        out.append(condition("neg_zero", wn_main, f"single:{g}", n_layers, k))
    for g in range(n_groups - 1):  # the last cumulative group is the "all" scope, already above
        out.append(condition("neg_zero", wn_main, f"cumulative:{g}", n_layers, k))
    if evaluation["layerwise_controls"]:
        rnd = set_name("random", main)
        for g in range(n_groups):
            out.append(condition("neg_zero", rnd, f"single:{g}", n_layers, k))
    return without_identity(_unique(out), identity_operations)


def checkpoint_conditions(selection: dict, evaluation: dict, n_layers: int, *,
                          identity_operations: Iterable[str] = ()) -> list[Condition]:
    """Conditions at every other checkpoint (training dynamics): baseline, the WN cohort and its random
    control, less those of ``identity_operations``."""
    k = evaluation["layer_group_size"]
    main = selection["main_percent"]
    out = [BASELINE, condition("neg_zero", set_name("wn", main), "all", n_layers, k)] + [
        condition("neg_zero", s, "all", n_layers, k) for s in random_replicates(selection, main)
    ]
    return without_identity(out, identity_operations)


def conditions_for(selection: dict, evaluation: dict, n_layers: int, *, cohort: bool,
                   identity_operations: Iterable[str] = ()) -> list[Condition]:
    """All conditions of one (model, checkpoint) job; ``cohort`` marks the checkpoint the sets come from.

    ``identity_operations``: the operations that are the identity on the model's nonlinearity
    (:func:`negdiff.architectures.identity_operations`); their conditions are left out.
    """
    if cohort:
        return final_conditions(selection, evaluation, n_layers, identity_operations=identity_operations)
    return checkpoint_conditions(selection, evaluation, n_layers, identity_operations=identity_operations)


def _unique(conditions: list[Condition]) -> list[Condition]:
    seen: dict[str, Condition] = {}
    for c in conditions:
        seen.setdefault(c.name, c)
    return list(seen.values())


def checkpoint_step(name: str) -> int | None:
    """``"step800"`` -> 800; other revision names -> None."""
    return int(name[4:]) if name.startswith("step") and name[4:].isdigit() else None


def model_conditions(model, selection: Mapping, evaluation: Mapping, *, cohort: bool
                     ) -> tuple[list[Condition], list[str], dict[str, str]]:
    """The conditions a (model, checkpoint) job runs, from the config's ``selection`` and ``evaluation``
    sections (:func:`negdiff.conditions.conditions_for`), without those whose operation is the identity
    on the model's nonlinearity (on ReLU: neg_zero, sign_flip, pos_relu). Returns ``(conditions, names
    left out, {identity operation: why})``; both lists are logged."""
    from negdiff import architectures, models  # lazy: the claims read condition names without torch

    spec = architectures.arch_spec(model)
    identity = {op: architectures.identity_reason(op, spec.activation) for op in architectures.identity_operations(spec)}
    n = models.n_layers(model)
    conditions = conditions_for(selection, evaluation, n, cohort=cohort, identity_operations=identity)
    left_out = [c.name for c in conditions_for(selection, evaluation, n, cohort=cohort) if c not in conditions]
    if left_out:
        log.info("%d conditions left out, their operation is the identity (%s): %s", len(left_out),
                 "; ".join(identity.values()), left_out)
    log.info("%d conditions: %s", len(conditions), [c.name for c in conditions])
    return conditions, left_out, identity


def empty_sets(record: Mapping) -> list[str]:
    """The sets of a selection record (``results/selection/{model}.json``) that hold no neuron."""
    return [name for name, info in record["sets"].items() if info["n_neurons"] == 0]

"""The standard non-syntactic benchmarks (ARC, PIQA, HellaSwag, ...) through lm-evaluation-harness,
scored under the intervention conditions, one row per document in the shape of the pairs table.

The dissociation (claim C3) compares how much the WN set and its perplexity-matched control hurt
syntax (BLiMP) against how much they hurt benchmarks that are not about syntax. With
``evaluation.suites.nonsyntactic`` set to a list of lm-eval task names, those benchmarks are the
``nonsyntactic`` suite: :func:`evaluate_lmeval` runs the tasks on the model the job has already loaded
(``lm_eval.models.huggingface.HFLM(pretrained=model, tokenizer=tokenizer)``, through
``lm_eval.simple_evaluate``) once per condition of :func:`dissociation_conditions`, with the
condition's masks applied by :func:`negdiff.interventions.intervene` (the hooks of
:mod:`negdiff.hooks`) for the whole evaluation.

**The response cache is never on.** lm-eval's response cache (``use_cache``: a sqlite file of answers)
keys on the request alone (the context and continuation strings), not on the state of the model, so
with it every ablated condition would get the baseline's log-likelihoods (tests/test_lmeval.py shows
it happening). This module never passes ``use_cache``, nor ``cache_requests`` and its rewrite/delete
options (a cache of the built requests: harmless to the answers, but files outside the job), and
:func:`run_tasks` refuses to run if the installed lm-eval's defaults for them are not off.

Rows (:data:`negdiff.sweep.PAIRS_SCHEMA`): ``suite`` = ``"nonsyntactic"``, ``group`` = the task name
(the paradigm: the paired bootstrap stratifies by it), ``pair`` = the document's running index over the
tasks in the configured order (task order, then lm-eval's ``doc_id``; the same at every condition),
``correct`` = lm-eval's per-document ``acc`` decision, and ``margin``:

* multiple choice: ``log P(gold choice | context) - max over the other choices``, summed (not length
  normalised) continuation log-likelihoods, as lm-eval's ``acc`` compares them (its ``acc`` is
  ``argmax == gold``, the first maximum as ``numpy.argmax``, so a tie counts as correct exactly when
  the gold choice comes first); for tasks whose choices are contexts before one shared continuation
  (winogrande) it is ``log P(continuation | gold context)`` minus the other's;
* loglikelihood tasks (``lambada_openai``): there are no alternatives, so ``margin`` is
  ``log P(target | context)`` itself and ``correct`` is ``is_greedy`` (every target token is the
  argmax), lm-eval's ``acc``. A suite mixing both kinds therefore averages two kinds of margin (its
  margin drops are still per-document log-likelihood changes); accuracy, the claims' measure, is uniform.

Metric rows (:data:`negdiff.sweep.METRICS_SCHEMA`) summarise them as the sweep does: accuracy and mean
margin over every document (level ``overall``) and per task (level ``paradigm``), so the summary tables
read the suite like any other.

Prefix token: lm-eval conditions an empty context (BLiMP's ``doc_to_text: ""``) on
``prefix_token_id``; it is set to :func:`negdiff.tokenizer.bos_token_id` (BOS, else EOS), the token the
project's ``prepend_bos`` puts before a sentence. A multiple-choice continuation is the task's
``target_delimiter`` (default ``" "``) plus the choice, so lm-eval's own ``blimp_*`` tasks score
``" " + sentence`` after the BOS: with a byte-level tokenizer the first word is another token than in
the project's BLiMP suite, and a few pair decisions differ; with ``target_delimiter: ""`` a local copy
of the template scores exactly what :func:`negdiff.sweep.evaluate_conditions` does with
``prepend_bos`` (both checked in tests/test_lmeval.py). A non-empty context is tokenised with the
tokenizer's own special-token behaviour (``add_bos_token=None``, lm-eval's default: no BOS with a GPT-2
/ Pythia style byte-level tokenizer, BOS where the tokenizer's template adds one) unless
``add_bos_token`` (``evaluation.lmeval.add_bos_token``) is given.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from negdiff.conditions import BASELINE, Condition

log = logging.getLogger(__name__)

__all__ = ["CACHE_OPTIONS", "LMEVAL_SUITE", "check_tasks", "config_tables", "dissociation_conditions", "doc_frame",
           "doc_outcomes", "evaluate_lmeval", "is_task_list", "make_lm", "metric_frame", "prefetch", "run_tasks",
           "task_manager", "task_suites"]

LMEVAL_SUITE = "nonsyntactic"

# simple_evaluate's options that would reuse answers across model states: never passed, must default off
CACHE_OPTIONS = {"use_cache": None, "cache_requests": False, "rewrite_requests_cache": False,
                 "delete_requests_cache": False}


def is_task_list(value: Any) -> bool:
    """Whether a ``evaluation.suites.<suite>`` value names lm-eval tasks (a list of names), not a pair
    source (``builtin``, ``english``, ``hf:DATASET``, a path)."""
    return isinstance(value, (list, tuple))


def dissociation_conditions(conditions: Iterable[Condition], main_percent: float) -> list[Condition]:
    """The conditions of ``conditions`` the dissociation needs, in their given order: the decisive ones of
    :func:`negdiff.tiers.decisive` (the baseline and neg_zero over all layers on the WN set, the
    perplexity-matched set and every random-control seed at ``main_percent``). Conditions missing from
    the list (an identity operation, no matched set) are simply absent."""
    from negdiff.tiers import decisive

    return [c for c in conditions if decisive(c, main_percent)]


def task_manager(include_path: str | Path | Sequence[str | Path] | None = None):
    """An ``lm_eval.tasks.TaskManager`` knowing lm-eval's own tasks and the task YAMLs under
    ``include_path`` (``evaluation.lmeval.include_path``: a folder or list of folders). Indexing lm-eval's
    ~15k task YAMLs takes seconds, so one manager per ``include_path`` is kept for the process (a task
    YAML is read again whenever its task is built)."""
    if include_path is None:
        return _manager(())
    paths = [include_path] if isinstance(include_path, (str, Path)) else list(include_path)
    for p in paths:
        if not Path(p).is_dir():
            raise FileNotFoundError(f"evaluation.lmeval.include_path: {p} is not a folder of task YAMLs")
    return _manager(tuple(str(Path(p).resolve()) for p in paths))


@functools.lru_cache(maxsize=8)
def _manager(paths: tuple[str, ...]):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths)) if paths else TaskManager()


def check_tasks(tasks: Sequence[str], include_path=None, *, key: str = "evaluation.suites.nonsyntactic") -> None:
    """Fail before any model is loaded when lm_eval is missing or a task name is unknown to it (lm-eval's
    own tasks and those under ``include_path``); errors name the config ``key``."""
    import difflib

    try:
        manager = task_manager(include_path)
    except ImportError:
        raise ImportError(f"{key} lists lm-eval tasks {list(tasks)}: install lm-evaluation-harness "
                          '(pip install -e ".[lmeval]")') from None
    known = set(manager.all_tasks)
    unknown = [t for t in tasks if t not in known]
    if unknown:
        hints = {t: difflib.get_close_matches(t, sorted(known), n=3) for t in unknown}
        raise ValueError(f"{key}: unknown lm-eval task(s) {unknown} (close names: {hints}); local task YAMLs "
                         "go in a folder named by evaluation.lmeval.include_path")


def prefetch(tasks: Sequence[str], include_path=None) -> dict[str, int]:
    """Download the datasets of ``tasks`` into the Hugging Face datasets cache (``HF_DATASETS_CACHE``), on
    a node with network access, so that jobs on offline nodes (``HF_DATASETS_OFFLINE=1``) find them;
    returns the number of evaluation documents per task."""
    check_tasks(tasks, include_path)
    manager = task_manager(include_path)
    if hasattr(manager, "load"):  # lm-eval >= 0.4.11 (get_task_dict deprecated)
        task_dict = manager.load(list(tasks))["tasks"]
    else:
        from lm_eval.tasks import get_task_dict

        task_dict = get_task_dict(list(tasks), manager)
    return {name: len(list(task.eval_docs)) for name, task in task_dict.items() if hasattr(task, "eval_docs")}


def make_lm(model, tokenizer, *, batch_size: int = 16, add_bos_token: bool | None = None):
    """lm-eval's ``HFLM`` around the already loaded ``model`` (a ``PreTrainedModel``, on its own device)
    and its tokenizer; empty contexts are conditioned on the project's BOS (module docstring), and the
    log-softmax runs in float32 also for a bfloat16 model (the project's own scoring is float64), so
    that near ties are not decided by bfloat16 rounding."""
    from lm_eval.models.huggingface import HFLM

    from negdiff.tokenizer import bos_token_id

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=int(batch_size), add_bos_token=add_bos_token,
                prefix_token_id=bos_token_id(tokenizer), softmax_dtype="float32")


def _check_cache_defaults(fn) -> None:
    params = inspect.signature(fn).parameters
    wrong = {k: params[k].default for k, off in CACHE_OPTIONS.items() if k in params and params[k].default != off}
    if wrong:
        raise RuntimeError(f"this lm_eval.simple_evaluate turns a cache on by default ({wrong}): ablated conditions "
                           "would get the baseline's answers; pin lm_eval to a version with the caches off")


def run_tasks(lm, tasks: Sequence[str], *, manager=None, limit: int | float | None = None,
              num_fewshot: int | None = None) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` of ``tasks`` on ``lm`` with ``log_samples=True`` and no cache (module
    docstring); returns its result dict (``samples``: per task, lm-eval's per-document records;
    ``configs``: per task, its config with ``output_type``)."""
    import lm_eval

    _check_cache_defaults(lm_eval.simple_evaluate)
    out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, log_samples=True,
                                  limit=limit, num_fewshot=num_fewshot, bootstrap_iters=0)
    if out is None:  # only on a non-zero rank of a distributed run
        raise RuntimeError("lm_eval.simple_evaluate returned nothing (a distributed run's other rank?)")
    missing = [t for t in tasks if t not in out.get("samples", {})]
    if missing:
        raise ValueError(f"evaluation.suites.nonsyntactic: lm-eval returned no documents for {missing} "
                         f"(a group name rather than a task? got {sorted(out.get('samples', {}))})")
    return out


def _gold_set(sample: Mapping[str, Any], lls: np.ndarray) -> list[int]:
    """The gold choice indices of a multiple-choice record. ``target`` is an index (or list of them) for
    most tasks, the text of a choice for some, and the shared continuation for tasks whose choices are
    contexts (winogrande): there the gold follows from lm-eval's own ``acc`` (2 choices, or correct)."""
    target, n = sample["target"], len(lls)
    if isinstance(target, str) and target.strip().isdigit():
        target = int(target.strip())
    if isinstance(target, str):
        conts = [a[1] for a in sample.get("arguments", [])]
        hits = [k for k, c in enumerate(conts) if c == target or c.strip() == target.strip()]
        if len(hits) == 1 and len(set(conts)) == n:
            return hits
        acc = sample.get("acc")
        if len(set(conts)) == 1 and acc is not None and (n == 2 or acc):
            pred = int(np.argmax(lls))
            return [pred] if acc else [1 - pred]
        raise ValueError(f"multiple-choice target {target!r} names no single choice of {conts}")
    golds = list(target) if isinstance(target, (list, tuple)) else [target]
    if not all(isinstance(g, (int, np.integer)) and 0 <= g < n for g in golds):
        raise ValueError(f"multiple-choice target {target!r} is not a choice index below {n}")
    return [int(g) for g in golds]


def doc_outcomes(sample: Mapping[str, Any], output_type: str) -> tuple[bool, float]:
    """``(correct, margin)`` of one of lm-eval's per-document records (module docstring); ``correct`` is
    the record's ``acc`` where the task reports one."""
    resps = sample["filtered_resps"]
    if output_type == "multiple_choice":
        lls = np.array([float(r[0]) for r in resps], dtype=np.float64)
        golds = _gold_set(sample, lls)
        others = [k for k in range(len(lls)) if k not in golds]
        margin = float(lls[golds].max() - (lls[others].max() if others else -np.inf))
        correct = bool(sample["acc"]) if "acc" in sample else int(np.argmax(lls)) in golds
        return correct, margin
    if output_type == "loglikelihood":
        ll, greedy = resps[0] if isinstance(resps[0], (list, tuple)) else resps
        return bool(sample["acc"]) if "acc" in sample else bool(greedy), float(ll)
    raise ValueError(f"lm-eval output_type {output_type!r} has no per-document log-likelihood decision; "
                     "evaluation.suites.nonsyntactic takes multiple_choice and loglikelihood tasks")


def doc_frame(cond_name: str, result: Mapping[str, Any], tasks: Sequence[str], suite: str = LMEVAL_SUITE) -> pl.DataFrame:
    """One :data:`negdiff.sweep.PAIRS_SCHEMA` row per document of ``tasks`` (in that order, documents by
    ``doc_id``) of one ``run_tasks`` result."""
    from negdiff.sweep import PAIRS_SCHEMA

    groups, correct, margin = [], [], []
    for task in tasks:
        output_type = result["configs"][task]["output_type"]
        for sample in sorted(result["samples"][task], key=lambda s: s["doc_id"]):
            try:
                c, m = doc_outcomes(sample, output_type)
            except ValueError as err:
                raise ValueError(f"lm-eval task {task!r}, document {sample['doc_id']}: {err}") from None
            groups.append(task)
            correct.append(c)
            margin.append(m)
    n = len(groups)
    return pl.DataFrame({
        "condition": [cond_name] * n, "suite": [suite] * n, "pair": np.arange(n, dtype=np.int64),
        "group": groups, "correct": correct, "margin": margin,
    }, schema=PAIRS_SCHEMA)


def metric_frame(cond: Condition, n_neurons: int, docs: pl.DataFrame, suite: str = LMEVAL_SUITE) -> pl.DataFrame:
    """:data:`negdiff.sweep.METRICS_SCHEMA` rows of one condition's documents: accuracy and mean margin
    over all of them (``overall``) and per task (``paradigm``)."""
    from negdiff.sweep import METRICS_SCHEMA

    per_task = docs.group_by("group", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("correct").cast(pl.Float64).mean().alias("value"), pl.col("margin").mean())
    rows = [(suite, "overall", "all", docs.height, float(docs["correct"].cast(pl.Float64).mean()),
             float(docs["margin"].mean()))]
    rows += [(suite, "paradigm", g, int(n), float(v), float(m)) for g, n, v, m in per_task.iter_rows()]
    head = (cond.name, cond.intervention, cond.set, cond.scope, int(n_neurons))
    return pl.DataFrame([head + r for r in rows], schema=METRICS_SCHEMA, orient="row")


def evaluate_lmeval(model, tokenizer, conditions: Sequence[Condition], selection: pl.DataFrame | None,
                    tasks: Sequence[str], *, batch_size: int = 16, include_path=None,
                    limit: int | float | None = None, num_fewshot: int | None = None,
                    add_bos_token: bool | None = None, empty_sets: Iterable[str] = (),
                    suite: str = LMEVAL_SUITE) -> dict[str, pl.DataFrame]:
    """``{"metrics", "pairs"}``: lm-eval's ``tasks`` under every condition of ``conditions`` (pass
    :func:`dissociation_conditions`' pick), each run with the condition's masks
    (:func:`negdiff.interventions.condition_masks`) applied through :func:`negdiff.interventions.intervene`.
    ``limit`` caps the documents per task (lm-eval's first ``limit``), ``num_fewshot`` overrides the
    tasks' own; the model is left as it was (hooks removed) also when a task fails. Each run reseeds
    Python's, NumPy's and torch's global generators (lm-eval's defaults), so run it after anything
    seeded."""
    from negdiff.interventions import intervene
    from negdiff.interventions import condition_masks

    if not tasks:
        raise ValueError(f"evaluation.suites.{suite}: an empty list of lm-eval tasks")
    masks = [condition_masks(model, c, selection, empty_sets) for c in conditions]  # fail before any run
    lm = make_lm(model, tokenizer, batch_size=batch_size, add_bos_token=add_bos_token)
    manager = task_manager(include_path)
    pairs, metrics = [], []
    was_training = model.training
    model.eval()  # HFLM leaves a model it was handed as it is
    try:
        for cond, cmask in zip(conditions, masks):
            cmask = {layer: m for layer, m in cmask.items() if m.any()}
            n_neurons = int(sum(int(m.sum()) for m in cmask.values()))
            log.info("lm-eval %s under %s (%d neurons)", list(tasks), cond.name, n_neurons)
            with intervene(model, cmask, cond.intervention) if cmask else contextlib.nullcontext():
                result = run_tasks(lm, tasks, manager=manager, limit=limit, num_fewshot=num_fewshot)
            docs = doc_frame(cond.name, result, tasks, suite)
            pairs.append(docs)
            metrics.append(metric_frame(cond, n_neurons, docs, suite))
    finally:
        model.train(was_training)
    return {"metrics": pl.concat(metrics, how="vertical"), "pairs": pl.concat(pairs, how="vertical")}


def task_suites(evaluation: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{suite: task names}`` of the suites of ``evaluation.suites`` given as lm-eval task lists."""
    return {name: list(v) for name, v in evaluation["suites"].items() if is_task_list(v)}


def config_tables(model, tokenizer, conditions: Sequence[Condition], selection: pl.DataFrame | None,
                  evaluation: Mapping[str, Any], main_percent: float, *,
                  empty_sets: Iterable[str] = ()) -> dict[str, pl.DataFrame] | None:
    """What an evaluation job adds for its config: every task-list suite of ``evaluation.suites``
    (:func:`task_suites`) under the :func:`dissociation_conditions` of ``conditions``, run with the
    ``evaluation.lmeval`` settings; ``{"metrics", "pairs"}``, or None without a task-list suite or
    without a condition to compare with the baseline (where neg_zero is the identity)."""
    suites = task_suites(evaluation)
    if not suites:
        return None
    settings = evaluation.get("lmeval") or {}
    picked = dissociation_conditions(conditions, main_percent)
    if all(c.name == BASELINE.name for c in picked):  # e.g. neg_zero is the identity (ReLU): no dissociation
        log.info("lm-eval suites %s skipped: no dissociation condition among %d", sorted(suites), len(conditions))
        return None
    log.info("lm-eval conditions: %s", [c.name for c in picked])
    out = [evaluate_lmeval(model, tokenizer, picked, selection, tasks, batch_size=settings.get("batch_size", 16),
                           include_path=settings.get("include_path"), limit=settings.get("limit"),
                           num_fewshot=settings.get("num_fewshot"), add_bos_token=settings.get("add_bos_token"),
                           empty_sets=empty_sets, suite=name)
           for name, tasks in suites.items()]
    return {k: pl.concat([t[k] for t in out], how="vertical") for k in ("metrics", "pairs")}

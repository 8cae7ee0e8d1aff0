# Shared helpers: paths, code fingerprints, resources, model and checkpoint resolution.
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
# Jobs import the in-repo library whether or not it is pip-installed (local, conda and cluster jobs).
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from negdiff.conditions import selection_sets, set_name  # noqa: E402
from negdiff.config import (  # noqa: E402
    GGUF_CHECKPOINT,
    check_config_paths,
    checkpoint_name,
    checkpoint_steps,
    export_pythonpath,
    gguf_source,
    model_spec,
    code_fingerprint as script_fingerprint,
)
from negdiff.data import local_source_path  # noqa: E402
from negdiff.suites import SUITES  # noqa: E402
from negdiff.figure_registry import CLAIM_RULE, FIGURES, planned_figures, rule_report  # noqa: E402

export_pythonpath(str(REPO))

ENV = "../envs/negdiff.yaml"
# this run's own outputs (text, tables, figures, report, logs); per-model intermediates stay in results/
RUN = config["run_dir"]
SPLITS = ["train", "valid", "test"]
# Model jobs ask for a GPU only when the config runs models on CUDA; profiles cap the "gpu" resource.
GPU = 1 if str(config["device"]).startswith("cuda") else 0


def code_fingerprint(script):
    """Hash of every negdiff module a workflow script imports, directly or not (a params entry).

    Snakemake tracks the script file itself; this makes a library change rerun exactly the jobs
    whose code changed (negdiff.config.code_fingerprint)."""
    return script_fingerprint(REPO / "workflow_scripts" / script, REPO / "negdiff")


def canonical(value):
    """Config values with dict keys sorted, so reordering keys in a YAML file reruns nothing."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def section(name, exclude=()):
    """A config section as a params value (canonical, minus keys the rule does not depend on)."""
    return canonical({k: v for k, v in config[name].items() if k not in exclude})


def subsection(name, keys):
    """Only the given keys of a config section (canonical), for rules that depend on part of it."""
    return canonical({k: config[name][k] for k in dict.fromkeys(keys)})


# evaluation keys that decide the conditions, and those the pair / text evaluation jobs depend on
CONDITION_KEYS = ["operations", "layer_group_size", "layerwise_controls"]
PAIR_KEYS = ["suites", "pairs_per_paradigm", "secondary_pairs_per_paradigm", "pairs_seed", "prepend_bos", "batch_size", "lmeval"]
TEXT_KEYS = ["ppl_split", "ppl_tokens", "surprisal_split", "surprisal_tokens", "cohort_wd_tokens", "window",
             "stride", "prepend_bos", "batch_size", "spacy_model"]


def provenance_path(rule_name, *keys):
    """The provenance record of a model job (negdiff.provenance.job_provenance), keyed like its log."""
    return os.path.join("results", "provenance", *keys, rule_name) + ".json"


def log_path(rule_name, *keys):
    return os.path.join(RUN, "logs", rule_name, *keys) + ".log"


def benchmark_path(rule_name, *keys):
    """Snakemake ``benchmark:`` file of a job, mirroring its log path (see benchmarks/rule_breakdown.py)."""
    return os.path.join(RUN, "benchmarks", rule_name, *keys) + ".tsv"


# every local path of the config (suites, text, model folders, GGUF files) exists, relative to the
# working directory the jobs run in: a typo fails now, naming its config key, not after hours of jobs
check_config_paths(config)
SPECS = {m: model_spec(spec) for m, spec in config["models"].items()}
TRAIN_MODELS = [m for m, spec in SPECS.items() if spec["source"] == "train"]
# GGUF files resolved now: a missing package or file stops the run before any job, with its install command
GGUF_FILES = {m: gguf_source(spec, m) for m, spec in SPECS.items() if spec.get("gguf_file")}
MODELS = list(SPECS)
# staging (negdiff.staging): hub models fetched once by the localrule fetch_model into STAGING["cache_dir"];
# model jobs then depend on its record and load from that cache with local_files_only
STAGING = config["staging"]
HUB_MODELS = [
    m for m, spec in SPECS.items()
    if STAGING["enabled"] and spec["source"] == "hf" and m not in GGUF_FILES and not Path(spec["path"]).expanduser().exists()
]
BUILTIN_DATA = config["data"]["source"] == "builtin"
if TRAIN_MODELS and not BUILTIN_DATA:
    raise ValueError(
        f"config: models {TRAIN_MODELS} are trained on the built-in corpus, which needs data.source: builtin"
    )


def training_checkpoints(model):
    """Every checkpoint of a model, oldest first: training steps, or the configured HF revisions."""
    spec = SPECS[model]
    if spec["source"] == "hf":
        return list(spec["revisions"])
    return [checkpoint_name(s) for s in checkpoint_steps(config["training"]["steps"], config["training"]["first_checkpoint"])]


def model_input(wc):
    """Files a model job depends on: the trained checkpoints, or an existing local HF folder."""
    spec = SPECS[wc.model]
    if spec["source"] == "train" or wc.model in GGUF_FILES:
        return f"results/models/{wc.model}"
    if wc.model in HUB_MODELS:
        return staged_model_record(wc.model)
    return spec["path"] if Path(spec["path"]).expanduser().exists() else []


def staged_model_record(model):
    """The record fetch_model writes (each revision's resolved commit and files)."""
    return f"results/staging/{model}.json"


def model_load(model, checkpoint):
    """Keyword arguments of negdiff.models.load_model for one (model, checkpoint)."""
    spec = SPECS[model]
    if spec["source"] == "train":
        return {"path": f"results/models/{model}/{checkpoint}", "revision": None, "dtype": "float32",
                "device_map": None, "trust_remote_code": False}
    if model in GGUF_FILES:  # the de-quantised folder (rule convert_gguf)
        return canonical({"path": f"results/models/{model}", "revision": checkpoint, "dtype": spec["dtype"],
                          "device_map": spec["device_map"], "trust_remote_code": False})
    keys = ("path", "dtype", "device_map", "trust_remote_code")
    staged = {"cache_dir": STAGING["cache_dir"], "local_files_only": True} if model in HUB_MODELS else {}
    return canonical({**{k: spec[k] for k in keys}, "revision": checkpoint, **staged})


def prefix_kwargs(model, prepend_bos):
    """Keyword arguments of negdiff.tokenizer.use_prefix_token for a job of ``model`` that prepends a prefix
    (``prepend_bos``), else None: the model's bos_token (None: the tokenizer's own BOS) and its config key.
    A params entry, so changing a model's bos_token reruns exactly its jobs that prepend it."""
    if not prepend_bos:
        return None
    return {"token": SPECS[model]["bos_token"], "key": f"models.{model}.bos_token"}


def text_file(split):
    """The text of a split: the generated corpus, or the prepared real text."""
    return f"results/corpus/{split}.txt" if BUILTIN_DATA else f"{RUN}/text/{split}.txt"


def split_data(split):
    """The part of the data section one split's text depends on (params of prepare_text)."""
    data = config["data"]
    out = {"source": data["source"]}
    if data["source"] == "hf":
        out["hf"] = {"path": data["hf"]["path"], "name": data["hf"]["name"], "splits": {split: data["hf"]["splits"][split]}}
    elif data["source"] == "local":
        out["local"] = {split: data["local"].get(split)}
    return canonical(out)


def split_source(wc):
    """The local file or directory a split reads (an input, so editing it reruns the split)."""
    if config["data"]["source"] != "local" or not config["data"]["local"].get(wc.split):
        return []
    return [local_source_path(config["data"], wc.split)]


def gold_pos_file(split):
    """Gold POS tags (built-in corpus only); real text is tagged with spaCy inside the jobs."""
    return [f"results/corpus/{split}.pos"] if BUILTIN_DATA else []


def data_label():
    data = config["data"]
    if data["source"] == "builtin":
        return "built-in corpus"
    if data["source"] == "hf":
        return f"{data['hf']['path']}/{data['hf']['name']}"
    return "local text"


def resolve_checkpoints(model, names, key, allow_all=True):
    """Checkpoint names from the config key ``key``, with "final" (and "all" where allowed) resolved."""
    available = training_checkpoints(model)
    out = []
    for name in [names] if isinstance(names, str) else names:
        if name == "all" and allow_all:
            out.extend(available)
        elif name == "final":
            out.append(available[-1])
        elif name in available:
            out.append(name)
        else:
            expected = "'final', 'all'" if allow_all else "'final'"
            raise ValueError(
                f"config key {key}: {name!r} is not a checkpoint of {model}; expected {expected} or one of {available}"
            )
    return list(dict.fromkeys(out))


def analysis_checkpoints(model):
    """Checkpoints whose activations are dumped and scored."""
    return resolve_checkpoints(model, config["activations"]["checkpoints"], "activations.checkpoints")


def model_checkpoint_pairs():
    return [(m, c) for m in MODELS for c in analysis_checkpoints(m)]


def final_checkpoint(model):
    return training_checkpoints(model)[-1]


EXAMPLE_MODEL = config["figures"]["example_model"]
if EXAMPLE_MODEL not in config["models"]:
    raise ValueError(f"config key figures.example_model: {EXAMPLE_MODEL!r} is not one of models {MODELS}")


def example_checkpoint():
    return analysis_checkpoints(EXAMPLE_MODEL)[-1]


DUMP_HISTOGRAMS = config["activations"]["keep"] == "histograms"
if DUMP_HISTOGRAMS and config["scoring"]["mode"] != "streaming":
    raise ValueError(
        "config key activations.keep: histograms stores no full columns, so WD can only come from the histograms: "
        f"set scoring.mode: streaming (got {config['scoring']['mode']!r}); scoring.bins / z_range set the grid"
    )


SELECTION = config["selection"]
EVALUATION = config["evaluation"]
# hub suites ("hf:DATASET") staged once by prepare_suite; the evaluation jobs then read local files only
HUB_SUITES = [n for n in SUITES if STAGING["enabled"] and str(EVALUATION["suites"][n]).startswith("hf:")]
# lm-eval task lists (negdiff/lmeval.py): their datasets are fetched into the datasets cache by prepare_lmeval
LMEVAL_SUITES = [n for n in SUITES if isinstance(EVALUATION["suites"][n], list)]
if SELECTION["main_percent"] not in SELECTION["percents"]:
    raise ValueError(
        f"config key selection.main_percent: {SELECTION['main_percent']} must be one of selection.percents {SELECTION['percents']}"
    )


def cohort_checkpoint(model):
    """The checkpoint whose scores define the neuron sets for every checkpoint."""
    return resolve_checkpoints(model, SELECTION["cohort_checkpoint"], "selection.cohort_checkpoint", allow_all=False)[0]


def eval_checkpoints(model):
    """The cohort checkpoint plus the training-dynamics checkpoints."""
    names = resolve_checkpoints(model, EVALUATION["checkpoints"], "evaluation.checkpoints")
    return list(dict.fromkeys([cohort_checkpoint(model)] + names))


def suite_path(name):
    """Input of a benchmark suite: the generated suite, the staged copy of a hub suite, or a local folder
    when it exists. Unstaged hub suites ("hf:...") are loaded by the job itself."""
    where = EVALUATION["suites"][name]
    if isinstance(where, list):  # lm-eval task names (negdiff/lmeval.py): the local task YAMLs, if any
        folders = EVALUATION["lmeval"]["include_path"] or []
        return [p for p in ([folders] if isinstance(folders, str) else folders) if Path(p).exists()]
    if where == "builtin":
        return [f"results/corpus/{name}"]
    if name in HUB_SUITES:  # staged by the localrule prepare_suite
        return [staged_suite_dir(name)]
    if where == "english":  # generated inside the job from negdiff/facts.py (fingerprinted code)
        return []
    return [where] if not where.startswith("hf:") and Path(where).exists() else []


def staged_suite_dir(name):
    """Rule prepare_suite's copy of a hub suite: one JSON-lines file per config and staging.json."""
    return f"results/suites/{name}"


EVAL_DIRS = [f"results/evals/{m}/{c}" for m in MODELS for c in eval_checkpoints(m)]
# Figures come from negdiff/figure_registry.py; those that follow checkpoints only where a model has some.
MULTI_CHECKPOINT = any(len(eval_checkpoints(m)) > 1 for m in MODELS)
FIGURE_NAMES = planned_figures(checkpoints=MULTI_CHECKPOINT)
CLAIM_FIGURES = planned_figures(checkpoints=MULTI_CHECKPOINT, rule=CLAIM_RULE)


def figure_output(rule_name):
    """The PDF a figure rule writes, marked for the report with the caption and category of its figures in
    the registry; figure_claims draws several, ``{figure}.pdf`` (one job each), the others one."""
    caption, category = rule_report(rule_name)
    if rule_name == CLAIM_RULE:
        stem = "{figure}"
    else:
        (stem,) = [name for name, fig in FIGURES.items() if fig.rule == rule_name]
    return report(f"{RUN}/figures/{stem}.pdf", caption=f"../{caption}", category=category)


# Outputs marked for the HTML report, the summary table (report category "Summary") ahead of the figures
# of its category; the report rule runs after all of them.
REPORTED = (
    [f"{RUN}/figures/{name}.pdf" for name in FIGURE_NAMES if FIGURES[name].category != "Summary"]
    + [f"{RUN}/tables/summary.csv", f"{RUN}/tables/provenance.csv"]
    + [f"{RUN}/figures/{name}.pdf" for name in FIGURE_NAMES if FIGURES[name].category == "Summary"]
)
FINAL_TARGETS = (
    REPORTED
    + [f"{RUN}/report.html"]
    + [f"results/scores/{m}/{c}.parquet" for m, c in model_checkpoint_pairs()]
)

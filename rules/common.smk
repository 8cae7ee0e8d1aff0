# Shared helpers: paths, code fingerprints, resources, model and checkpoint resolution.
import hashlib
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
# Jobs import the in-repo library whether or not it is pip-installed (local, conda and cluster jobs).
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from negdiff.conditions import conditions_for, selection_sets  # noqa: E402
from negdiff.config import checkpoint_name, checkpoint_steps, export_pythonpath  # noqa: E402

export_pythonpath(str(REPO))

ENV = "../envs/negdiff.yaml"
SPLITS = ["train", "valid", "test"]
# Model jobs ask for a GPU only when the config runs models on CUDA; profiles cap the "gpu" resource.
GPU = 1 if str(config["device"]).startswith("cuda") else 0


def code_fingerprint(*modules):
    """Hash of the negdiff modules a job uses (a params entry), so library changes rerun it."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        h.update(name.encode())
        h.update((REPO / "negdiff" / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


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


def log_path(rule_name, *keys):
    return os.path.join("results", "logs", rule_name, *keys) + ".log"


TRAIN_MODELS = [m for m, spec in config["models"].items() if spec["source"] == "train"]
MODELS = list(config["models"])


def training_checkpoints(model):
    return [checkpoint_name(s) for s in checkpoint_steps(config["training"]["steps"], config["training"]["first_checkpoint"])]


def analysis_checkpoints(model):
    """Checkpoints analysed for a model: names from config, with "final" and "all" resolved."""
    available = training_checkpoints(model)
    wanted = config["activations"]["checkpoints"]
    out = []
    for name in wanted:
        if name == "all":
            out.extend(available)
        elif name == "final":
            out.append(available[-1])
        elif name in available:
            out.append(name)
        else:
            raise ValueError(
                f"config key activations.checkpoints: {name!r} is not a checkpoint of {model}; "
                f"expected 'final', 'all' or one of {available}"
            )
    return list(dict.fromkeys(out))


def model_checkpoint_pairs():
    return [(m, c) for m in MODELS for c in analysis_checkpoints(m)]


def final_checkpoint(model):
    return training_checkpoints(model)[-1]


EXAMPLE_MODEL = config["figures"]["example_model"]
if EXAMPLE_MODEL not in config["models"]:
    raise ValueError(f"config key figures.example_model: {EXAMPLE_MODEL!r} is not one of models {MODELS}")


def example_checkpoint():
    return analysis_checkpoints(EXAMPLE_MODEL)[-1]


def split_file(ext):
    return f"results/corpus/{config['activations']['split']}.{ext}"


SELECTION = config["selection"]
EVALUATION = config["evaluation"]
if SELECTION["main_percent"] not in SELECTION["percents"]:
    raise ValueError(
        f"config key selection.main_percent: {SELECTION['main_percent']} must be one of selection.percents {SELECTION['percents']}"
    )


def resolve_checkpoint(model, name, key):
    available = training_checkpoints(model)
    if name == "final":
        return available[-1]
    if name not in available:
        raise ValueError(f"config key {key}: {name!r} is not a checkpoint of {model}; expected 'final' or one of {available}")
    return name


def cohort_checkpoint(model):
    return resolve_checkpoint(model, SELECTION["cohort_checkpoint"], "selection.cohort_checkpoint")


def eval_checkpoints(model):
    """The cohort checkpoint plus the training-dynamics checkpoints."""
    wanted = EVALUATION["checkpoints"]
    names = training_checkpoints(model) if wanted == "all" else [
        resolve_checkpoint(model, c, "evaluation.checkpoints") for c in wanted
    ]
    return list(dict.fromkeys([cohort_checkpoint(model)] + names))


def n_layers(model):
    return config["models"][model]["num_layers"]


def eval_conditions(model, checkpoint):
    conds = conditions_for(SELECTION, EVALUATION, n_layers(model), cohort=checkpoint == cohort_checkpoint(model))
    return [c.name for c in conds]


def suite_path(name):
    where = EVALUATION["suites"][name]
    return f"results/corpus/{name}" if where == "builtin" else where


def corpus_file(split, ext):
    return f"results/corpus/{split}.{ext}"


EVAL_DIRS = [f"results/evals/{m}/{c}" for m in MODELS for c in eval_checkpoints(m)]
CLAIM_FIGURES = ["ablation", "phenomena", "pos_surprisal", "layerwise", "training_dynamics", "dissociation"]

FINAL_TARGETS = (
    [
        "results/figures/neuron_example.pdf",
        "results/figures/negative_region.pdf",
    ]
    + [f"results/figures/{name}.pdf" for name in CLAIM_FIGURES]
    + ["results/tables/summary.csv"]
    + [f"results/scores/{m}/{c}.parquet" for m, c in model_checkpoint_pairs()]
)

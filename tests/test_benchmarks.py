"""Smoke test: every benchmark script runs at a tiny size and prints its ratio last.

Benchmarks are never timed here (the numbers live in BENCHMARKS.md); this only keeps the scripts
from rotting. In-process, so torch and polars are imported once.
"""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module", autouse=True)
def bench_path():
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


@pytest.mark.parametrize("name", ["bench_scoring", "bench_streaming", "bench_dump", "bench_eval",
                                  "bench_pipeline"])
def test_benchmark_quick_prints_ratio_last(name, capsys):
    mod = importlib.import_module(name)
    mod.main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(r"RATIO (\w+) (\S+)", lines[-1])
    assert m, lines[-5:]
    assert math.isfinite(float(m.group(2))) and float(m.group(2)) > 0


def test_bench_eval_pair_scoring_quick(capsys):
    """The old-vs-new pair scoring comparison (issue #18) on a tiny model: same decisions, ratio last."""
    mod = importlib.import_module("bench_eval")
    mod.main(["--pair-scoring", "--quick", "--neg-zero"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"RATIO new_vs_old \S+", lines[-1]) and "decisions identical: 24 of 24" in lines[-4]


def test_rule_breakdown(tmp_path):
    sys.path.insert(0, str(BENCH))
    from rule_breakdown import breakdown, markdown

    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "evaluate" / "m").mkdir(parents=True)
    (tmp_path / "evaluate" / "m" / "a.tsv").write_text(head + "2.5\t0:00:02\t100\t1\t1\t1\t0\t0\t50\t2.0\n")
    (tmp_path / "evaluate" / "m" / "b.tsv").write_text(head + "1.5\t0:00:01\t300\t1\t1\t1\t0\t0\t50\t1.0\n")
    (tmp_path / "report.tsv").write_text(head + "0.5\t0:00:00\t50\t1\t1\t1\t0\t0\t50\t0.4\n")
    df = breakdown(tmp_path)
    row = df.filter(df["rule"] == "evaluate").row(0, named=True)
    assert row["jobs"] == 2 and row["sum_s"] == 4.0 and row["max_s"] == 2.5 and row["max_rss_mb"] == 300
    assert "| report | 1 |" in markdown(df)


def test_profile_streaming_quick(capsys):
    mod = importlib.import_module("profile_streaming")
    mod.main(["--quick"])
    out = capsys.readouterr().out
    assert "hist_update (whole)" in out and "G values/s" in out


def test_gpu_checks_script_smoke_runs_on_cpu(tmp_path):
    """The GPU script's commands, as a CPU smoke run of two quick steps (the GPU itself is not needed)."""
    import os
    import subprocess

    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "OUT": str(tmp_path), "PY": sys.executable,
           "STEPS": "bench_streaming profile_streaming"}
    proc = subprocess.run(["bash", str(BENCH / "gpu_checks.sh")], cwd=BENCH.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "=== bench_streaming: exit 0" in proc.stdout and "=== profile_streaming: exit 0" in proc.stdout
    assert (tmp_path / "bench_streaming.txt").read_text().strip().splitlines()[-1].startswith("RATIO ")

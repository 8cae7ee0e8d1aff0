"""Benchmark 5: pipeline overhead: a no-op rerun, the paper config's dry run, and the per-rule
breakdown of the last full run.

    python benchmarks/bench_pipeline.py            # needs a complete default results tree for the no-op
    python benchmarks/bench_pipeline.py --quick    # the paper dry run only; for the smoke test

* **no-op rerun**: ``snakemake -n --cores 2`` in the repository whose ``results/`` is complete
  (after ``snakemake --cores 2``); goal < 10 s. Reported with the number of jobs it would run
  (0 when complete).
* **paper dry run**: ``snakemake -n --configfile config/paper.yaml`` (offline; plans every job);
  goal < 30 s. Reported with its job count.
* **per-rule breakdown**: from ``results/benchmarks`` (``benchmarks/rule_breakdown.py``).

The last line is ``RATIO noop_rerun_vs_10s <t / 10 s>`` (goal <= 1); the line before,
``RATIO paper_dryrun_vs_30s <t / 30 s>`` (goal <= 1).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, base_parser, machine, ratio_line  # noqa: E402


def snakemake_exe() -> str:
    local = Path(sys.executable).with_name("snakemake")
    return str(local) if local.exists() else (shutil.which("snakemake") or "snakemake")


def dry_run(*extra: str) -> tuple[float, int, str]:
    """(seconds, jobs planned, output tail) of ``snakemake -n``."""
    t0 = time.perf_counter()
    p = subprocess.run([snakemake_exe(), "-n", "--cores", "2", *extra], cwd=REPO,
                       capture_output=True, text=True)
    t = time.perf_counter() - t0
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"snakemake -n {' '.join(extra)} failed:\n{out[-3000:]}")
    m = re.search(r"^total\s+(\d+)", out, re.M)
    jobs = int(m.group(1)) if m else 0  # no job table: nothing to do
    return t, jobs, out


def main(argv=None) -> None:
    p = base_parser(__doc__)
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    t_paper, n_paper, _ = dry_run("--configfile", "config/paper.yaml")
    print(f"paper dry run: {t_paper:.2f} s, {n_paper} jobs planned")
    ratios = [("paper_dryrun_vs_30s", t_paper / 30)]
    if not args.quick:
        complete = (REPO / "results" / "report.html").exists()
        t_noop, n_noop, _ = dry_run()
        print(f"no-op rerun (snakemake -n, {'complete' if complete else 'INCOMPLETE'} results tree): "
              f"{t_noop:.2f} s, {n_noop} jobs to run")
        ratios.append(("noop_rerun_vs_10s", t_noop / 10))
        bench = REPO / "results" / "benchmarks"
        if bench.is_dir():
            from rule_breakdown import breakdown, markdown

            print(markdown(breakdown(bench)))
    for name, r in ratios:
        print(ratio_line(name, r))


if __name__ == "__main__":
    main()

"""Per-rule breakdown of a run from Snakemake's ``benchmark:`` files.

    python benchmarks/rule_breakdown.py [results/benchmarks]

Every rule writes ``results/benchmarks/{rule}/{keys}.tsv`` (see ``benchmark_path`` in
rules/common.smk). Prints a markdown table: jobs, summed and largest job wall time, CPU time and
peak RSS per rule, sorted by summed wall time. Summed job time exceeds the run's wall time when
jobs ran in parallel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def breakdown(root: str | Path) -> pl.DataFrame:
    root = Path(root)
    rows = []
    for f in sorted(root.rglob("*.tsv")):
        rel = f.relative_to(root)
        t = pl.read_csv(f, separator="\t", null_values=["NA", "-"], infer_schema_length=0)
        r = t.row(0, named=True)
        rows.append({"rule": rel.parts[0].removesuffix(".tsv"), "job": str(rel.with_suffix("")),
                     "s": float(r["s"]), "cpu_s": float(r.get("cpu_time") or "nan"),
                     "max_rss_mb": float(r.get("max_rss") or "nan")})
    if not rows:
        raise SystemExit(f"no benchmark files under {root}")
    df = pl.DataFrame(rows)
    return (df.group_by("rule")
            .agg(pl.len().alias("jobs"), pl.col("s").sum().alias("sum_s"), pl.col("s").max().alias("max_s"),
                 pl.col("cpu_s").sum().alias("cpu_s"), pl.col("max_rss_mb").max().alias("max_rss_mb"))
            .sort("sum_s", descending=True))


def markdown(df: pl.DataFrame) -> str:
    lines = ["| rule | jobs | sum of job wall s | largest job s | CPU s | peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in df.iter_rows(named=True):
        lines.append(f"| {r['rule']} | {r['jobs']} | {r['sum_s']:.1f} | {r['max_s']:.1f} | "
                     f"{r['cpu_s']:.1f} | {r['max_rss_mb']:.0f} |")
    lines.append(f"| **all** | {int(df['jobs'].sum())} | {df['sum_s'].sum():.1f} | | "
                 f"{df['cpu_s'].sum():.1f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(breakdown(sys.argv[1] if len(sys.argv) > 1 else "results/benchmarks")))

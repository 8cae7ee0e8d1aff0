"""Build Snakemake's self-contained HTML report of this very run (same Snakefile, same config)."""

import subprocess
import sys
import tempfile

import yaml

from negdiff.runtime import job

with job(snakemake) as log:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as cfg:
        yaml.safe_dump(dict(snakemake.config), cfg)
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", snakemake.params.snakefile,
        "--configfile", cfg.name,
        "--report", snakemake.output[0],
        "--nolock",
    ]
    log.info("%s", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    log.info("%s%s", done.stdout, done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"snakemake --report failed with exit code {done.returncode}; see this log")

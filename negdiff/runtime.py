"""Glue for Snakemake script jobs: logging into the rule's log file, thread limits."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def job(snakemake, name: str | None = None) -> Iterator[logging.Logger]:
    """Run a script job: stdout/stderr (tqdm included) and logging go to ``snakemake.log[0]``.

    Threads for torch and the BLAS pools are capped at the job's ``threads``. Exceptions are logged
    with a traceback and re-raised, so Snakemake marks the job failed and removes its outputs.
    """
    threads = int(getattr(snakemake, "threads", 1) or 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS"):
        os.environ.setdefault(var, str(threads))
    log_file = Path(snakemake.log[0]) if len(snakemake.log) else None
    stream = open(log_file, "w", buffering=1, encoding="utf-8") if log_file else sys.stderr
    logger = logging.getLogger(f"negdiff.{name or snakemake.rule}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            if "torch" in sys.modules:  # only jobs that use torch pay for importing it
                sys.modules["torch"].set_num_threads(threads)
            logger.info("rule %s wildcards=%s threads=%d", snakemake.rule, dict(snakemake.wildcards), threads)
            try:
                yield logger
            except BaseException:
                logger.exception("job failed")
                raise
            logger.info("done in %.1f s", time.perf_counter() - t0)
    finally:
        root.removeHandler(handler)
        if log_file:
            stream.close()

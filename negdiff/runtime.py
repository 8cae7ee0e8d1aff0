"""Glue for Snakemake script jobs: logging into the rule's log file, thread limits."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Iterator

# Test-only fault injection: a comma-separated list of rule names whose jobs fail on their first attempt,
# after their outputs are written (so Snakemake must remove them and a retry must rebuild them). The
# attempt number comes from the job's ``attempt`` resource (``default-resources: attempt: attempt`` in
# profiles/default and profiles/slurm). Unset, it costs nothing.
FAIL_FIRST_ATTEMPT = "NEGDIFF_FAIL_FIRST_ATTEMPT"


class InjectedFailure(RuntimeError):
    """Raised by :func:`job` when ``NEGDIFF_FAIL_FIRST_ATTEMPT`` names the rule and this is attempt 1."""


def injected_failure(rule: str, resources) -> str | None:
    """The failure message when ``NEGDIFF_FAIL_FIRST_ATTEMPT`` asks this job to fail, else None."""
    rules = {r.strip() for r in os.environ.get(FAIL_FIRST_ATTEMPT, "").split(",") if r.strip()}
    if rule not in rules:
        return None
    attempt = getattr(resources, "attempt", None)
    if attempt is None:
        raise InjectedFailure(
            f"{FAIL_FIRST_ATTEMPT} names rule {rule!r}, but the job has no 'attempt' resource "
            "(profiles/default and profiles/slurm set default-resources: attempt: attempt)"
        )
    if int(attempt) == 1:
        return f"injected failure: {FAIL_FIRST_ATTEMPT}={os.environ[FAIL_FIRST_ATTEMPT]} fails {rule} on attempt 1"
    return None


@contextlib.contextmanager
def job(snakemake, name: str | None = None) -> Iterator[logging.Logger]:
    """Run a script job: stdout/stderr (tqdm included) and logging go to ``snakemake.log[0]``.

    Threads for torch and the BLAS pools are capped at the job's ``threads``. Exceptions are logged
    with a traceback and re-raised, so Snakemake marks the job failed and removes its outputs.
    ``NEGDIFF_FAIL_FIRST_ATTEMPT`` (tests only) fails the job after its body on attempt 1.
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
                message = injected_failure(snakemake.rule, getattr(snakemake, "resources", None))
                if message:
                    raise InjectedFailure(message)
            except BaseException:
                logger.exception("job failed")
                raise
            logger.info("done in %.1f s", time.perf_counter() - t0)
    finally:
        root.removeHandler(handler)
        if log_file:
            stream.close()

"""Light helpers shared by the Snakefile and the library (no heavy imports here)."""

from __future__ import annotations


def checkpoint_steps(total_steps: int, first: int = 16) -> list[int]:
    """Pythia-style log-spaced checkpoint steps: 0, first, 2*first, 4*first, ..., and the final step."""
    if total_steps < 1:
        raise ValueError(f"training.steps must be >= 1, got {total_steps}")
    steps = [0]
    s = first
    while s < total_steps:
        steps.append(s)
        s *= 2
    steps.append(total_steps)
    return steps


def checkpoint_name(step: int) -> str:
    return f"step{step}"


def export_pythonpath(repo: str) -> None:
    """Put the workflow's own ``negdiff`` first on PYTHONPATH for every job the Snakefile starts.

    Script jobs run in fresh interpreters (locally, in conda envs, under SLURM); this makes them import
    the library next to the Snakefile, whose code the rules fingerprint, not some other installed copy.
    """
    import os

    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != repo]
    os.environ.update(PYTHONPATH=os.pathsep.join([repo, *parts]))

"""Light helpers shared by the Snakefile and the library (no heavy imports here)."""

from __future__ import annotations

import re


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


HF_MODEL_DEFAULTS = {"revisions": ["main"], "dtype": "float32", "device_map": None, "trust_remote_code": False}


def model_spec(spec: dict) -> dict:
    """A model entry of the config with the defaults of its source filled in."""
    if spec["source"] == "hf":
        return {**HF_MODEL_DEFAULTS, **spec}
    return dict(spec)


_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+negdiff\.(\w+)[ \t]+import"
    r"|from[ \t]+negdiff[ \t]+import[ \t]+(?:\(([\w\s,]+)\)|([\w ,]+))"
    r"|import[ \t]+negdiff\.(\w+))",
    re.M,
)


def negdiff_closure(modules, root: str | None = None) -> list[str]:
    """The given negdiff modules and every negdiff module they import, directly or not (sorted).

    Reads the sources (imports inside functions count too), so the Snakefile can fingerprint exactly
    the code a job runs without importing torch.
    """
    from pathlib import Path

    base = Path(root) if root else Path(__file__).resolve().parent
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = base / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(f"negdiff module {name!r} not found at {path}")
        seen.add(name)
        todo.extend(imported_modules(path.read_text(encoding="utf-8")))
    return sorted(seen)


def imported_modules(source: str) -> list[str]:
    """Names of the negdiff modules a Python source imports (``from negdiff.x import``, ``from negdiff import x``)."""
    out = []
    for m in _IMPORT.finditer(source):
        if m.group(1) or m.group(4):
            out.append(m.group(1) or m.group(4))
        else:
            names = m.group(2) or m.group(3)
            out.extend(n.strip().split(" as ")[0] for n in names.split(",") if n.strip())
    return out

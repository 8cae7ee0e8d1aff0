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
GGUF_CHECKPOINT = "main"  # the one checkpoint of a GGUF model: its de-quantised folder's name


MODEL_DEFAULTS = {"bos_token": None}  # None: the tokenizer's own BOS (negdiff.tokenizer.use_prefix_token)


def model_spec(spec: dict) -> dict:
    """A model entry of the config with the defaults of its source filled in."""
    if spec["source"] == "hf":
        out = {**MODEL_DEFAULTS, **HF_MODEL_DEFAULTS, **spec}
        if spec.get("gguf_file"):
            out["revisions"] = [GGUF_CHECKPOINT]
        return out
    return {**MODEL_DEFAULTS, **spec}


def package_folder(package: str) -> str | None:
    """The folder of an installed package, found without importing it (None when not installed)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    import os

    return os.path.dirname(spec.origin) if spec.origin else None


def gguf_source(spec: dict, name: str = "?") -> str:
    """Path of a model entry's GGUF file: ``gguf_file`` inside ``path`` or the installed ``package``.

    Raises FileNotFoundError naming the model, the folder or package, and the entry's ``install``
    command, so a missing package or file fails before any job starts."""
    import os

    hint = f"; install it with: {spec['install']}" if spec.get("install") else ""
    if spec.get("package"):
        folder = package_folder(spec["package"])
        if folder is None:
            raise FileNotFoundError(
                f"config key models.{name}.package: package {spec['package']!r} (holding {spec['gguf_file']}) "
                f"is not installed{hint}"
            )
    elif spec.get("path"):
        folder = os.path.expanduser(spec["path"])
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"config key models.{name}.path: GGUF folder {folder} does not exist{hint}")
    else:
        raise ValueError(f"config key models.{name}: a gguf_file needs a folder, given as path or package")
    path = os.path.join(folder, spec["gguf_file"])
    if not os.path.isfile(path):
        present = sorted(f for f in os.listdir(folder) if f.endswith(".gguf"))
        raise FileNotFoundError(
            f"config key models.{name}.gguf_file: GGUF file {path} does not exist "
            f"(GGUF files there: {present or 'none'}){hint}"
        )
    return path


NAMED_SUITE_SOURCES = ("builtin", "english")  # evaluation.suites values that are not paths (nor "hf:...")


def looks_local_path(path: str) -> bool:
    """True for a model ``path`` that can only be a filesystem path, not a hub id ("name" or "org/name")."""
    import os

    if os.path.isabs(path) or path.startswith((".", "~")) or "\\" in path:
        return True
    return path.count("/") > 1


def local_paths(config: dict) -> list[tuple[str, str, str]]:
    """Every local path a (validated) config names, as ``(config key, path, kind)``; kind is "any" (a file
    or folder), "dir" or "file". Hub sources (``hf:...`` suites, hub model ids, ``data.source: hf``),
    generated ones (``builtin``, ``english``) and GGUF packages (checked by :func:`check_config_paths` through
    :func:`gguf_source`) are not paths."""
    out = []
    evaluation = config.get("evaluation", {})
    for name, where in evaluation.get("suites", {}).items():
        if isinstance(where, list):  # lm-eval task names; their local task YAMLs are evaluation.lmeval.include_path
            continue
        if where not in NAMED_SUITE_SOURCES and not where.startswith("hf:"):
            out.append((f"evaluation.suites.{name}", where, "any"))
    include = (evaluation.get("lmeval") or {}).get("include_path")
    for k, where in enumerate([include] if isinstance(include, str) else include or []):
        out.append(("evaluation.lmeval.include_path" + ("" if isinstance(include, str) else f"[{k}]"), where, "dir"))
    data = config.get("data", {})
    if data.get("source") == "local":
        for split, where in data.get("local", {}).items():
            if isinstance(where, dict):
                out.append((f"data.local.{split}.path", where["path"], "any"))
            elif where:
                out.append((f"data.local.{split}", where, "any"))
    for name, spec in config.get("models", {}).items():
        path = spec.get("path")
        if spec.get("source") != "hf" or not path:
            continue
        if spec.get("gguf_file"):
            out.append((f"models.{name}.path", path, "dir"))
            out.append((f"models.{name}.gguf_file", f"{path.rstrip('/')}/{spec['gguf_file']}", "file"))
        elif looks_local_path(path):
            out.append((f"models.{name}.path", path, "dir"))
    return out


def check_config_paths(config: dict, root: str | None = None) -> None:
    """Fail when a local path of the config (:func:`local_paths`) is missing, or a GGUF package is not
    installed, naming each key and path (all of them in one error).

    Paths are relative to ``root``, the working directory the jobs run in (default: the current one, as
    the Snakefile sees it), so a typo fails when the workflow loads, not after hours of model jobs. A hub
    model id that happens to exist as a folder is a local folder (as ``from_pretrained`` takes it)."""
    import os

    base = root or os.getcwd()
    problems = []
    for key, path, kind in local_paths(config):
        full = os.path.join(base, os.path.expanduser(path))
        if not os.path.exists(full):
            problems.append(f"config key {key}: path {path} does not exist")
        elif kind == "dir" and not os.path.isdir(full):
            problems.append(f"config key {key}: path {path} is not a folder")
        elif kind == "file" and not os.path.isfile(full):
            problems.append(f"config key {key}: path {path} is not a file")
    for name, spec in config.get("models", {}).items():
        if spec.get("gguf_file") and spec.get("package"):  # an installed package's folder, not a path
            try:
                gguf_source(spec, name)
            except FileNotFoundError as err:
                problems.append(str(err))
    if problems:
        raise FileNotFoundError("\n".join(problems) + f"\n(paths are relative to the working directory {base})")


_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(negdiff(?:\.\w+)*|\.+(?:\w+(?:\.\w+)*)?)[ \t]+import[ \t]+(?:\(([\w\s,]+)\)|([\w ,]+))"
    r"|import[ \t]+negdiff\.([\w.]+))",
    re.M,
)


def module_path(name: str, root: str | None = None):
    """The source file of negdiff module ``name`` (dotted below ``negdiff``: ``"grammar.lexicon"``; a
    package's is its ``__init__.py``), or None if there is none."""
    from pathlib import Path

    base = Path(root) if root else Path(__file__).resolve().parent
    parts = name.split(".")
    for path in (base.joinpath(*parts[:-1], f"{parts[-1]}.py"), base.joinpath(*parts, "__init__.py")):
        if path.is_file():
            return path
    return None


def negdiff_closure(modules, root: str | None = None) -> list[str]:
    """The given negdiff modules and every negdiff module they import, directly or not (sorted).

    Names are dotted below ``negdiff`` (``"sweep"``, ``"grammar.pairs"``). Reads the sources (imports
    inside functions count too), so the Snakefile can fingerprint exactly the code a job runs without
    importing torch. Importing a module of a package runs the package's ``__init__.py`` too, so the
    package counts as imported.
    """
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_path(name, root)
        if path is None:
            raise FileNotFoundError(f"negdiff module {name!r} not found under {root or 'negdiff/'}")
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:k]) for k in range(1, len(parts)))  # the enclosing packages
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        todo.extend(imported_modules(path.read_text(encoding="utf-8"), root, package))
    return sorted(seen)


def imported_modules(source: str, root: str | None = None, package: str = "") -> list[str]:
    """Names of the negdiff modules a Python source imports, dotted below ``negdiff``:
    ``import negdiff.x.y`` and ``from negdiff.x import y`` give ``x.y`` if that is a module (else
    ``x``), ``from negdiff import x`` gives ``x``. Relative imports (``from .lexicon import y``,
    ``from . import pairs``) resolve against ``package``, the dotted package of the source (``""``:
    ``negdiff`` itself)."""
    out = []
    for m in _IMPORT.finditer(source):
        if m.group(4):
            out.append(m.group(4))
            continue
        target = m.group(1)
        if target.startswith("."):
            dots = len(target) - len(target.lstrip("."))
            anchor = package.split(".") if package else []
            if dots - 1 > len(anchor):
                continue  # above negdiff: not a negdiff module
            anchor = anchor[: len(anchor) - (dots - 1)] + ([target.lstrip(".")] if target.lstrip(".") else [])
            base = ".".join(anchor)
        else:
            base = target[len("negdiff"):].lstrip(".")
        names = [n.strip().split(" as ")[0].strip() for n in (m.group(2) or m.group(3)).split(",") if n.strip()]
        if base:
            out.append(base)
        for n in names:
            sub = f"{base}.{n}" if base else n
            if not base or module_path(sub, root) is not None:
                out.append(sub)
    return out


def code_fingerprint(script, root: str | None = None) -> str:
    """Hash of every negdiff module a script (a path) imports, directly or not: the ``code`` params entry
    of a rule, so a library change reruns exactly the jobs whose code changed. ``root`` is the
    ``negdiff/`` folder to read (default: this package's)."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for name in negdiff_closure(imported_modules(Path(script).read_text(encoding="utf-8"), root), root):
        h.update(name.encode())
        h.update(module_path(name, root).read_bytes())
    return h.hexdigest()[:16]

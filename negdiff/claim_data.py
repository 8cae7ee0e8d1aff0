"""What the claims are computed from, arranged for resampling: per-pair outcomes, text windows, neurons.

Each accessor turns one tidy table of the evaluation or scoring stage into arrays aligned with the
resampling units of :class:`negdiff.stats.Resampler`:

- :class:`PairData`: per-pair correctness and log-prob margins of one model, every suite's pairs in
  pair order, with the pair's paradigm / template as its stratum. A random control is a ``[k, n]``
  array (one row per seed, in replicate order ``random@p``, ``random@p#1``, ...), its seeds drawn as one
  family per condition family (the same draw at every checkpoint and suite); any other condition is
  ``[1, n]``. The same pair index means the same pair at every checkpoint, so checkpoints compare
  paired, as conditions do.
- :func:`surprisal_blocks`: per-window sums and counts of excess surprisal (ablated − baseline, nats)
  by POS class, windows being blocks of consecutive stream tokens.
- :func:`cohort_change`: the WD change of each cohort neuron between two checkpoints.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from negdiff.conditions import parse_set, set_family
from negdiff.pos import CONTENT_POS, FUNCTION_POS
from negdiff.stats import Draw, family_condition


def replicate_index(set_: str) -> int:
    """``"random@1#2"`` -> 2, ``"random@1"`` -> 0."""
    return int(set_.split("#")[1]) if "#" in set_ else 0


@dataclass
class PairData:
    """Per-pair outcomes of one model (see the module docstring).

    A condition scored on a nested tier of the pairs (``evaluation.secondary_pairs_per_paradigm``: the first
    pairs of each paradigm's sample) holds NaN at the pairs it did not see and its ``masks`` entry says
    which it saw. Inside :meth:`common` every mean is taken over the pairs all the named conditions saw,
    so a comparison across tiers stays paired."""

    model: str
    strata: dict[str, np.ndarray] = field(default_factory=dict)  # suite -> [n] group labels
    values: dict[tuple, np.ndarray] = field(default_factory=dict)  # (what, suite, ck, cond) -> [k, n]
    seeds: dict[str, int] = field(default_factory=dict)  # random condition family -> number of seeds
    masks: dict[tuple, np.ndarray] = field(default_factory=dict)  # (suite, ck, cond) -> bool [n], tiers only
    restrict: dict[str, np.ndarray] = field(default_factory=dict)  # suite -> bool [n], inside common()

    @classmethod
    def from_table(cls, pairs: pl.DataFrame, model: str) -> "PairData":
        """Arrays of ``model``'s rows of the per-pair table (``correct``, ``margin``; pair order)."""
        out = cls(model)
        sub = pairs.filter(pl.col("model") == model)
        if sub.height == 0:
            return out
        sub = sub.with_columns(
            pl.col("condition").map_elements(family_condition, return_dtype=pl.String).alias("family"),
            pl.col("condition").map_elements(lambda c: replicate_index(c.split("|")[1]) if "|" in c else 0,
                                             return_dtype=pl.Int64).alias("replicate"),
        ).sort("suite", "checkpoint", "family", "replicate", "pair")
        for (suite,), s in sub.group_by(["suite"], maintain_order=True):
            out._add_suite(suite, s)
        return out

    def _add_suite(self, suite: str, s: pl.DataFrame) -> None:
        # the reference order: the condition that saw the most pairs (the main tier; the baseline is in it)
        counts = s.group_by("checkpoint", "condition", maintain_order=True).len().sort("len", descending=True, maintain_order=True)
        ck0, c0 = counts["checkpoint"][0], counts["condition"][0]
        first = s.filter((pl.col("condition") == c0) & (pl.col("checkpoint") == ck0))
        self.strata[suite] = first["group"].fill_null("").to_numpy()
        ref = first["pair"].to_numpy()
        n = ref.size
        for (ck, fam), g in s.group_by(["checkpoint", "family"], maintain_order=True):
            k = g["replicate"].n_unique()
            m = g.height // k
            seen = g["pair"].to_numpy().reshape(k, m) if g.height == k * m else None
            pos = np.searchsorted(ref, seen[0]) if seen is not None else None
            if (seen is None or not (seen == seen[0]).all() or (pos >= n).any()
                    or not (ref[np.minimum(pos, n - 1)] == seen[0]).all()):
                raise ValueError(f"pairs table, {self.model} {ck} {suite} {fam}: {g.height} rows, expected the same "
                                 f"pairs (all {n}, or a nested tier of them) for each of {k} seeds")
            for what in ("correct", "margin"):
                full = np.full((k, n), np.nan)
                full[:, pos] = g[what].cast(pl.Float64).to_numpy().reshape(k, m)
                self.values[(what, suite, ck, fam)] = full
            if m < n:
                mask = np.zeros(n, bool)
                mask[pos] = True
                self.masks[(suite, ck, fam)] = mask
            if "|" in fam and parse_set(fam.split("|")[1])[0] == "random":
                # seeds are drawn per condition family (a layer-group control may have fewer seeds)
                if self.seeds.setdefault(fam, k) != k:
                    raise ValueError(f"pairs table, {self.model}: {fam} has {k} seeds in {ck} {suite}, "
                                     f"{self.seeds[fam]} elsewhere")

    def has(self, suite: str, checkpoint: str, condition: str) -> bool:
        return ("correct", suite, checkpoint, condition) in self.values

    def n_pairs(self, suite: str) -> int:
        """Pairs of ``suite``: all of them, or inside :meth:`common` those every named condition saw."""
        mask = self.restrict.get(suite)
        return len(self.strata[suite]) if mask is None else int(mask.sum())

    def seen(self, suite: str, checkpoint: str, condition: str) -> np.ndarray | None:
        """bool [n] of the pairs ``condition`` was scored on; None when it saw all of them."""
        return self.masks.get((suite, checkpoint, condition))

    @contextlib.contextmanager
    def common(self, items):
        """Within the block, every mean over ``suite`` is taken over the pairs that all of ``items``
        ((suite, checkpoint, condition), e.g. a claim's conditions and their baselines) were scored on."""
        restrict = {}
        for suite, ck, cond in items:
            mask = self.seen(suite, ck, cond)
            if mask is not None:
                restrict[suite] = mask if suite not in restrict else restrict[suite] & mask
        self.restrict = restrict
        try:
            yield self
        finally:
            self.restrict = {}

    def mean(self, d: Draw, what: str, suite: str, checkpoint: str, condition: str) -> np.ndarray:
        """[B] mean ``what`` (correct / margin) of ``condition`` over the drawn pairs (and seeds); inside
        :meth:`common`, over the common pairs. A condition of a nested tier needs :meth:`common`."""
        v = self.values[(what, suite, checkpoint, condition)]
        mask = self.restrict.get(suite)
        own = self.seen(suite, checkpoint, condition)
        if own is not None and (mask is None or (mask & ~own).any()):
            raise ValueError(f"{self.model} {checkpoint} {suite} {condition}: scored on a nested tier of the pairs; "
                             "compare it inside PairData.common(...) with the conditions it is compared to")
        if condition in self.seeds:
            return d.seed_mean(suite, condition, v, mask)
        return d.mean(suite, v[0], mask)


POS_CLASSES = {"function": FUNCTION_POS, "content": CONTENT_POS}


def surprisal_blocks(surprisal: pl.DataFrame, model: str, checkpoint: str, conditions: list[str],
                     block_tokens: int) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None:
    """``{(condition, class): (sums [W], counts [W])}`` of excess surprisal per text window.

    Windows are blocks of ``block_tokens`` consecutive stream tokens (``token // block_tokens``);
    ``class`` is ``function`` / ``content`` (:data:`POS_CLASSES`), by the baseline row's POS. None
    when the baseline or a condition has no rows."""
    if block_tokens < 1:
        raise ValueError(f"claims.surprisal_block_tokens must be >= 1, got {block_tokens}")
    sub = surprisal.filter((pl.col("model") == model) & (pl.col("checkpoint") == checkpoint))
    base = sub.filter(pl.col("condition") == "baseline").select(
        "token", "pos", pl.col("surprisal").cast(pl.Float64).alias("base"))
    if base.height == 0:
        return None
    n_blocks = int(base["token"].max()) // block_tokens + 1
    out = {}
    for cond in conditions:
        abl = sub.filter(pl.col("condition") == cond).select("token", pl.col("surprisal").cast(pl.Float64).alias("abl"))
        if abl.height == 0:
            return None
        j = abl.join(base, on="token", how="inner")
        block = (j["token"].to_numpy() // block_tokens).astype(np.int64)
        excess = (j["abl"] - j["base"]).to_numpy()
        for cls, tags in POS_CLASSES.items():
            m = j["pos"].is_in(list(tags)).fill_null(False).to_numpy()
            out[(cond, cls)] = (np.bincount(block[m], weights=excess[m], minlength=n_blocks),
                                np.bincount(block[m], minlength=n_blocks).astype(np.float64))
    return out


def cohort_change(cohort_wd: pl.DataFrame, model: str, first: str, last: str) -> dict[str, pl.DataFrame]:
    """Per cohort family (``wn@p``, ``random@p`` with its seeds pooled, ``layer``): one row per neuron
    measured at both checkpoints, with ``layer`` and ``change`` = WD at ``last`` − WD at ``first``."""
    sub = cohort_wd.filter(pl.col("model") == model)
    keys = ["cohort", "layer", "neuron"]
    a = sub.filter(pl.col("checkpoint") == first).select(*keys, pl.col("wd").alias("wd0"))
    b = sub.filter(pl.col("checkpoint") == last).select(*keys, pl.col("wd").alias("wd1"))
    j = b.join(a, on=keys, how="inner").with_columns(
        (pl.col("wd1") - pl.col("wd0")).alias("change"),
        pl.col("cohort").map_elements(lambda c: set_family(c) if "@" in c else c, return_dtype=pl.String).alias("family"),
    ).sort(keys)
    return {fam: g for (fam,), g in j.group_by(["family"], maintain_order=True)}

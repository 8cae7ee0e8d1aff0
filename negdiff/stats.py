"""Statistics over evaluation tables: random-control replicates, the two-level bootstrap, verdicts.

- :func:`merge_replicates` folds the random controls drawn with several seeds (sets ``random@p``,
  ``random@p#1``, ...) into one condition per family, with the mean value, its standard deviation
  across seeds and the number of seeds (the tables and figures show the control this way).
- :class:`Resampler` draws bootstrap resamples that carry every source of chance of a comparison:

  * **units within strata**: minimal pairs are resampled with replacement *within* their paradigm /
    template file (so every resample has each paradigm's pair count), text is resampled in windows of
    consecutive tokens, neurons within their cohort. Different samples (suites, texts) are resampled
    independently; every condition of one sample sees the *same* resampled units, so comparisons
    are paired.
  * **seeds of a random control**: a control drawn with ``k`` seeds is a distribution over neuron
    draws; each resample also draws ``k`` of its seeds with replacement (the same draw for every
    suite and checkpoint the control appears in), and the control's value is the mean over the
    drawn seeds of its per-seed value on the drawn units. The seed-to-seed spread (``control_sd``)
    is thereby inside the interval.

  A statistic is written once, as a function of :class:`Draw` (unit weights and seed picks); the
  point estimate is the same function on the identity draw (every unit once, every seed once), so
  estimate and interval can never disagree about what is measured.
- :func:`verdict` is the three-way rule of ``summary.csv``: ``holds`` when the 95% interval lies
  beyond zero in the paper's direction; ``absent`` when it excludes an effect as large as the
  smallest effect of interest; ``inconclusive`` otherwise (with the interval's half-width).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import polars as pl

from negdiff.conditions import condition_name, parse_condition, set_family


def family_condition(name: str) -> str:
    """``"neg_zero|random@1#2|all"`` -> ``"neg_zero|random@1|all"``; other names unchanged."""
    if "|" not in name:
        return name
    intervention, set_, scope = parse_condition(name)
    return condition_name(intervention, set_family(set_), scope)


def merge_replicates(table: pl.DataFrame, values: list[str]) -> pl.DataFrame:
    """Average the ``values`` columns over the seed replicates of each random-control condition.

    Rows are grouped by every other column, after mapping ``condition`` (and ``set``, when present)
    to its family. Adds ``{v}_sd`` (population sd over replicates; 0 for a single one, or for
    non-random conditions) for the first value column and ``replicates`` (rows merged). Row order
    follows first appearance."""
    if table.height == 0:
        return table.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"{values[0]}_sd"),
                                  pl.lit(None, dtype=pl.Int64).alias("replicates"))
    mapped = table.with_columns(
        pl.col("condition").map_elements(family_condition, return_dtype=pl.String),
        *([pl.col("set").map_elements(set_family, return_dtype=pl.String)] if "set" in table.columns else []),
    )
    keys = [c for c in table.columns if c not in values]
    first = values[0]
    out = mapped.group_by(keys, maintain_order=True).agg(
        *[pl.col(v).cast(pl.Float64).mean() for v in values],
        pl.col(first).cast(pl.Float64).std(ddof=0).fill_null(0.0).alias(f"{first}_sd"),
        pl.len().cast(pl.Int64).alias("replicates"),
    )
    return out.select(table.columns + [f"{first}_sd", "replicates"])


# --------------------------------------------------------------------------- resampling


@dataclass(frozen=True)
class Draw:
    """One batch of resamples: ``weights[sample]`` is [B, n] (how often each unit is drawn; rows sum
    to n) and ``seeds[family]`` is [B, k] (indices of the seeds drawn, with replacement)."""

    weights: Mapping[str, np.ndarray]
    seeds: Mapping[str, np.ndarray]

    def mean(self, sample: str, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """[B] weighted means of per-unit ``values`` [n] over the drawn units of ``sample`` ([B, m] for
        ``values`` [n, m]); with ``mask`` (bool [n]) over the drawn units it selects only: the same draw,
        restricted to a subsample (a nested tier of pairs)."""
        w = self.weights[sample]
        v = np.asarray(values, dtype=np.float64)
        if mask is not None:
            w, v = w[:, mask], v[mask]
        total = w.sum(axis=1)
        return w @ v / (total[:, None] if v.ndim == 2 else total)

    def ratio(self, sample: str, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """[B] pooled ratio sum(w * sums) / sum(w * counts): e.g. mean surprisal over the tokens of
        resampled text windows (``sums``/``counts`` per window). NaN where no count was drawn."""
        w = self.weights[sample]
        num, den = w @ np.asarray(sums, dtype=np.float64), w @ np.asarray(counts, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def seed_mean(self, sample: str, family: str, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """[B] the mean over drawn seeds of each seed's mean over drawn units (``values`` [k, n]; ``mask``
        as in :meth:`mean`)."""
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        picks = self.seeds[family]
        if picks.shape[1] != v.shape[0]:
            raise ValueError(f"seed family {family!r}: {v.shape[0]} seed rows, {picks.shape[1]} seeds registered")
        return np.take_along_axis(self.mean(sample, v.T, mask), picks, axis=1).mean(axis=1)  # [B, k] -> [B]


def _strata_codes(strata) -> np.ndarray:
    s = np.asarray(strata)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"strata must be a non-empty 1-d array, got shape {s.shape}")
    return np.unique(s, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n_boot: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


class Resampler:
    """Stratified, seed-level bootstrap of statistics over several independent samples.

    ``samples[name]`` gives each unit's stratum (paradigm, text window block, layer; one label per
    unit); ``seeds[family]`` the number of seeds of each random control. Resamples are drawn with
    ``numpy.random.default_rng(seed)``, ``chunk`` at a time, in a fixed order (samples, then seed
    families, each sorted by name), so a call is reproducible from its seed."""

    def __init__(self, samples: Mapping[str, np.ndarray], seeds: Mapping[str, int] | None = None, *,
                 n_boot: int = 2000, seed: int = 0, confidence: float = 0.95, chunk: int = 250):
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        if n_boot < 1:
            raise ValueError(f"n_boot must be >= 1, got {n_boot}")
        self.codes = {k: _strata_codes(v) for k, v in sorted(samples.items())}
        self.members = {k: [np.flatnonzero(c == s) for s in range(int(c.max()) + 1)] for k, c in self.codes.items()}
        self.n_seeds = {k: int(v) for k, v in sorted((seeds or {}).items())}
        if any(v < 1 for v in self.n_seeds.values()):
            raise ValueError(f"every seed family needs >= 1 seed, got {self.n_seeds}")
        self.n_boot, self.seed, self.confidence, self.chunk = int(n_boot), int(seed), float(confidence), int(chunk)

    def identity(self) -> Draw:
        """The draw of the point estimate: every unit once, every seed once."""
        return Draw({k: np.ones((1, len(c))) for k, c in self.codes.items()},
                    {f: np.arange(k)[None, :] for f, k in self.n_seeds.items()})

    def _draw(self, rng: np.random.Generator, b: int) -> Draw:
        weights = {}
        for name, groups in self.members.items():
            n = len(self.codes[name])
            pick = np.concatenate([idx[rng.integers(0, len(idx), size=(b, len(idx)))] for idx in groups], axis=1)
            flat = (pick + n * np.arange(b)[:, None]).reshape(-1)
            weights[name] = np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        seeds = {f: rng.integers(0, k, size=(b, k)) for f, k in self.n_seeds.items()}
        return Draw(weights, seeds)

    def distribution(self, statistic: Callable[[Draw], np.ndarray]) -> np.ndarray:
        """[n_boot] values of ``statistic`` over the resamples."""
        rng = np.random.default_rng(self.seed)
        out, done = [], 0
        while done < self.n_boot:
            b = min(self.chunk, self.n_boot - done)
            out.append(np.broadcast_to(np.asarray(statistic(self._draw(rng, b)), dtype=np.float64), (b,)))
            done += b
        return np.concatenate(out)

    def interval(self, statistic: Callable[[Draw], np.ndarray]) -> Interval:
        """Point estimate (on the identity draw) and percentile interval of ``statistic``.

        Resamples where the statistic is undefined (NaN: e.g. a POS class absent from the drawn
        windows) are left out of the quantiles."""
        est = float(np.asarray(statistic(self.identity()), dtype=np.float64).reshape(-1)[0])
        dist = self.distribution(statistic)
        dist = dist[np.isfinite(dist)]
        if dist.size == 0:
            return Interval(est, float("nan"), float("nan"), self.n_boot)
        alpha = (1 - self.confidence) / 2
        low, high = np.quantile(dist, [alpha, 1 - alpha])
        return Interval(est, float(low), float(high), self.n_boot)


def paired_bootstrap(
    suites: Mapping[str, Mapping[str, np.ndarray]],
    statistic: Callable[[dict[str, dict[str, np.ndarray]]], np.ndarray],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk: int = 250,
) -> tuple[float, float, float]:
    """``(estimate, low, high)`` of a statistic of per-pair means, pairs resampled (one stratum).

    ``suites[suite][condition]`` is a float array over the same pairs for every condition of a suite;
    ``statistic`` receives ``{suite: {condition: mean}}`` (arrays over resamples). A thin front end of
    :class:`Resampler` for the single-stratum, single-seed case."""
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for suite, conds in suites.items():
        arrs = {c: np.asarray(v, dtype=np.float64) for c, v in conds.items()}
        sizes = {a.shape for a in arrs.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1 or next(iter(sizes))[0] == 0:
            raise ValueError(f"suite {suite}: conditions need equal-length, non-empty 1-d pair arrays, got {sizes}")
        arrays[suite] = arrs
    rs = Resampler({s: np.zeros(len(next(iter(c.values())))) for s, c in arrays.items()},
                   n_boot=n_boot, seed=seed, confidence=confidence, chunk=chunk)
    iv = rs.interval(lambda d: statistic({s: {c: d.mean(s, a) for c, a in conds.items()} for s, conds in arrays.items()}))
    return iv.estimate, iv.low, iv.high


# --------------------------------------------------------------------------- verdicts

VERDICTS = ("holds", "absent", "inconclusive", "n/a")


def verdict(interval: Interval | None, smallest_effect: float, *, unit: str = "") -> tuple[str, str]:
    """``(verdict, reason)`` for an effect whose paper-predicted sign is positive.

    ``holds``: the interval's low end is above zero. ``absent``: its high end is below the smallest
    effect of interest (the data exclude an effect that large). ``inconclusive``: neither; the reason
    gives the half-width, i.e. how far the interval must shrink to decide. ``holds`` takes precedence."""
    if smallest_effect <= 0:
        raise ValueError(f"the smallest effect of interest must be > 0, got {smallest_effect}")
    if interval is None or not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        return "n/a", "no interval: an input is missing"
    u = f" {unit}" if unit else ""
    ci = f"95% CI [{interval.low:.3g}, {interval.high:.3g}]{u}"
    if interval.low > 0:
        return "holds", f"{ci} lies above 0"
    if interval.high < smallest_effect:
        return "absent", f"{ci} excludes effects >= {smallest_effect:g}{u} (the smallest effect of interest)"
    return "inconclusive", (f"{ci} includes 0 and {smallest_effect:g}{u}; half-width {interval.half_width:.3g}{u}: "
                            f"a sample with half-width < {smallest_effect / 2:g}{u} would decide")

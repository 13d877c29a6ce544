"""Statistics of a sweep: bootstrap intervals of cell means and log-log slopes against N.

A cell holds R independent replicas of one (regime, N); a metric's estimate is the mean over
replicas. Its 95% interval is the percentile interval of ``n_boot`` bootstrap means (replicas
resampled with replacement). A regime's rate is the least-squares slope of log(estimate)
against log N over its cells; the slope interval resamples replicas within every cell (the b-th
bootstrap mean of every cell enters the b-th bootstrap slope), so it reflects the Monte Carlo
error of each point, not the spread of the points around the line.

Shapes: values (R, M) per replica and metric; boot (n_boot, M) bootstrap means of one cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tmfcli.model.games.base import Array

LEVEL = 0.95
N_BOOT = 2000


def bootstrap_means(values: Array, rng: np.random.Generator, n_boot: int = N_BOOT) -> Array:
    """Means of ``n_boot`` resamples of the rows of ``values`` (R, ...) -> (n_boot, ...)."""
    values = np.asarray(values, dtype=float)
    R = values.shape[0]
    idx = rng.integers(0, R, size=(n_boot, R))
    return values[idx].mean(axis=1)


def interval(samples: Array, level: float = LEVEL) -> tuple[Array, Array]:
    """Percentile interval over the first axis (nan samples are ignored)."""
    tail = 50.0 * (1.0 - level)
    with np.errstate(all="ignore"):
        low = np.nanpercentile(samples, tail, axis=0)
        high = np.nanpercentile(samples, 100.0 - tail, axis=0)
    return low, high


def loglog_slope(N: Array, y: Array) -> Array:
    """Least-squares slope of log y against log N, over the last axis (k points).

    ``y`` (..., k) may carry leading axes (e.g. bootstrap samples); a row with a non-positive
    value has no logarithm and gives nan.
    """
    x = np.log(np.asarray(N, dtype=float))
    x = x - x.mean()
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logy = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
    logy = logy - logy.mean(axis=-1, keepdims=True)
    return np.asarray((logy * x).sum(axis=-1) / (x * x).sum())


@dataclass(frozen=True)
class Slope:
    """Fitted exponent of metric ~ c N^slope with its bootstrap interval."""

    slope: float
    ci_low: float
    ci_high: float


def fit_slope(N: Array, estimates: Array, boot: Array, level: float = LEVEL) -> Slope:
    """Slope of ``estimates`` (k,) at ``N`` (k,) with the interval of ``boot`` (n_boot, k).

    Fewer than two distinct N, or an estimate <= 0 (no logarithm; e.g. a deviation gain), leave
    the slope and its interval undefined (nan): an interval over the bootstrap samples that
    happen to be positive would be biased.
    """
    if len(np.unique(np.asarray(N))) < 2:
        return Slope(np.nan, np.nan, np.nan)
    slope = float(loglog_slope(N, estimates))
    if np.isnan(slope):
        return Slope(np.nan, np.nan, np.nan)
    slopes = loglog_slope(N, boot)
    low, high = interval(slopes, level)
    return Slope(slope, float(low), float(high))


def normal_interval(values: Array, z: float = 1.959963984540054) -> tuple[float, float, float]:
    """Mean and 95% normal interval mean +- z sd / sqrt(R) (nan bounds when R = 1)."""
    R = values.shape[0]
    mean = float(values.mean())
    if R < 2:
        return mean, float("nan"), float("nan")
    half = z * float(values.std(ddof=1)) / math.sqrt(R)
    return mean, mean - half, mean + half

"""Interval estimates and tests for success rates (fractions in, fractions out).

- `wilson_ci`: Wilson score interval for one proportion.
- `newcombe_paired_ci`: Newcombe (1998, Stat Med 17:2635, method 10) for the difference of two
  proportions measured on the same placements (paired 2×2 table).
- `newcombe_independent_ci`: Newcombe (1998, Stat Med 17:873, method 10) for two independent samples.
- `mcnemar_exact_p`: exact (conditional) McNemar test: the discordant pairs are Bin(b + c, 1/2).
- `fisher_exact_p`: Fisher's exact test for two independent proportions (scipy).
- `holm`: Holm's (1979) step-down adjustment of p-values for several comparisons.
Each is checked against published worked examples and a second implementation in tests/results.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (fractions); (nan, nan) when n == 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact bounds at 0 and n (no round-off)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class PairedCounts:
    """A paired 2×2 table of two methods on the same placements (verdicts of both known)."""

    both: int  # both succeeded
    first_only: int  # only the first method succeeded (discordant)
    second_only: int  # only the second method succeeded (discordant)
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.first_only + self.second_only + self.neither

    @property
    def first_successes(self) -> int:
        return self.both + self.first_only

    @property
    def second_successes(self) -> int:
        return self.both + self.second_only

    def __add__(self, other: PairedCounts) -> PairedCounts:
        return PairedCounts(self.both + other.both, self.first_only + other.first_only,
                            self.second_only + other.second_only, self.neither + other.neither)

    def swapped(self) -> PairedCounts:
        return PairedCounts(self.both, self.second_only, self.first_only, self.neither)


def _square_and_add(p1: float, ci1: tuple[float, float], p2: float, ci2: tuple[float, float],
                    phi: float = 0.0) -> tuple[float, float]:
    """Newcombe's limits for p1 − p2 from the two Wilson intervals and their correlation phi."""
    (l1, u1), (l2, u2) = ci1, ci2
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, lo), min(1.0, hi)


def newcombe_paired_ci(t: PairedCounts, z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) of first − second success rate on shared placements; nan when n == 0.

    phi, the correlation of the two margins, is Newcombe's corrected estimate: 0 when a margin is
    empty; (AD − BC − n/2)/√(margins) when AD − BC > n/2; 0 when 0 ≤ AD − BC ≤ n/2; else (AD − BC)/√(margins).
    """
    n = t.n
    if n == 0:
        return math.nan, math.nan, math.nan
    x1, x2 = t.first_successes, t.second_successes
    margins = x1 * (n - x1) * x2 * (n - x2)
    ad_bc = t.both * t.neither - t.first_only * t.second_only
    if margins == 0:
        phi = 0.0
    elif ad_bc > n / 2:
        phi = (ad_bc - n / 2) / math.sqrt(margins)
    elif ad_bc >= 0:
        phi = 0.0
    else:
        phi = ad_bc / math.sqrt(margins)
    lo, hi = _square_and_add(x1 / n, wilson_ci(x1, n, z), x2 / n, wilson_ci(x2, n, z), phi)
    return x1 / n - x2 / n, lo, hi


def newcombe_independent_ci(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) of x1/n1 − x2/n2 for independent samples; nan when a sample is empty."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan, math.nan
    lo, hi = _square_and_add(x1 / n1, wilson_ci(x1, n1, z), x2 / n2, wilson_ci(x2, n2, z))
    return x1 / n1 - x2 / n2, lo, hi


def mcnemar_exact_p(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c: 2·P(X ≤ min(b, c)),
    X ~ Bin(b + c, 1/2), capped at 1; 1 when there is no discordant pair."""
    n = first_only + second_only
    if n == 0:
        return 1.0
    from scipy.special import bdtr  # the binomial CDF; scipy.stats costs a second to import

    return min(1.0, 2.0 * float(bdtr(min(first_only, second_only), n, 0.5)))


def fisher_exact_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value for x1/n1 vs x2/n2 (independent samples); nan if one is empty."""
    if n1 <= 0 or n2 <= 0:
        return math.nan
    from scipy.stats import fisher_exact

    return float(fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided").pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given); nan entries stay nan and are not counted."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m = len(known)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out

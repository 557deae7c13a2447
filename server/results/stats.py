"""The statistics of an experiment: one variant against its control, from counts alone.

The figures and their methods are the ones GrowthBook's stats engine (gbstats) reports, so a
marketer who knows those reads ours the same way, and the tests hold both to 1e-3:

- a conversion rate's 95% interval: Wilson's score interval (it stays inside 0..1 and is right
  for small counts, where the normal approximation is not);
- the relative uplift (variant rate / control rate - 1), its variance by the delta method, its
  interval and two-sided p-value from Welch's t-test (gbstats' ``TwoSidedTTest``);
- the chance to beat the control: the posterior probability that the uplift is above zero, with
  a flat prior on the uplift (gbstats' ``EffectBayesianABTest``, its default);
- the sample-ratio check: a chi-square test of the visitors per variant against the configured
  weights (gbstats' ``check_srm``).

Pure Python (the standard library's NormalDist, and the regularised incomplete beta and gamma
functions for Student's t and chi-square), so the server needs no numerical library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

NORMAL = NormalDist()
_EPSILON = 1e-15
_TINY = 1e-300


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``n`` units, e.g. converted visitors of the exposed ones."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.successes <= self.n:
            raise ValueError(f"need 0 <= successes <= n, got {self.successes} of {self.n}")

    @property
    def mean(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        return self.mean * (1 - self.mean)


@dataclass(frozen=True)
class Mean:
    """The mean of a value per unit from its sum and sum of squares, e.g. revenue per exposed
    visitor (units without revenue count as 0)."""

    n: int
    total: float
    total_squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return max(0.0, (self.total_squares - self.total**2 / self.n) / (self.n - 1))


Sample = Proportion | Mean


@dataclass(frozen=True)
class Comparison:
    """A variant against the control. ``None`` where the counts cannot say (no units, a
    control at zero, no variance): the figure is then unknown, not zero."""

    uplift: float | None
    interval: tuple[float, float] | None
    p_value: float | None
    chance_to_beat: float | None


UNKNOWN = Comparison(None, None, None, None)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson's score interval for a proportion; ``None`` without units."""
    if n <= 0:
        return None
    z = NORMAL.inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def compare(control: Sample, variant: Sample, alpha: float = 0.05) -> Comparison:
    """The relative uplift of ``variant`` over ``control`` with its ``1 - alpha`` interval,
    p-value and chance to beat the control."""
    if control.n < 2 or variant.n < 2 or control.mean == 0:
        return UNKNOWN
    if control.variance <= 0 or variant.variance <= 0:
        return UNKNOWN
    a, b = control, variant
    uplift = (b.mean - a.mean) / a.mean
    # The delta method's variance of the ratio of two independent means (gbstats'
    # frequentist_variance, relative).
    variance = (b.variance / b.n + a.variance / a.n * (b.mean / a.mean) ** 2) / a.mean**2
    if not 0 < variance < math.inf:  # counts beyond what floats can say
        return UNKNOWN
    sd = math.sqrt(variance)
    dof = (b.variance / b.n + a.variance / a.n) ** 2 / (
        b.variance**2 / (b.n**2 * (b.n - 1)) + a.variance**2 / (a.n**2 * (a.n - 1))
    )
    width = t_ppf(1 - alpha / 2, dof) * sd
    p_value = 2 * t_sf(abs(uplift) / sd, dof)
    chance = 1 - NormalDist(uplift, sd).cdf(0)
    return Comparison(uplift, (uplift - width, uplift + width), min(1.0, p_value), chance)


def srm_p_value(units: list[int], weights: list[float]) -> float:
    """The chi-square test's p-value that ``units`` per variant were drawn with ``weights``;
    1 without units. Variants with weight 0 take no part."""
    total = sum(units)
    if not total:
        return 1.0
    total_weight = sum(w for w in weights if w > 0)
    statistic = 0.0
    for observed, weight in zip(units, weights, strict=True):
        if weight > 0:
            expected = weight / total_weight * total
            statistic += (observed - expected) ** 2 / expected
    return chi2_sf(statistic, len(units) - 1)


# Distributions. The continued fractions are the classic ones (modified Lentz), accurate to
# about 1e-14 over the range a report meets.


def t_sf(t: float, dof: float) -> float:
    """P(T > t) for Student's t with ``dof`` degrees of freedom (t >= 0)."""
    if math.isinf(dof):
        return 1 - NORMAL.cdf(t)
    # x and 1 - x each from its own quotient: 1 - x computed as a difference would lose every
    # digit for a small t and a large dof.
    return 0.5 * _incomplete_beta(dof / 2, 0.5, dof / (dof + t * t), t * t / (dof + t * t))


def t_ppf(p: float, dof: float) -> float:
    """The ``p`` quantile of Student's t (0.5 < p < 1): Newton's method from the normal
    quantile (the upper tail is convex, so it approaches the root from below and never
    overshoots), bisection where that does not settle."""
    if not 0.5 < p < 1:
        raise ValueError(f"need 0.5 < p < 1, got {p}")
    tail = 1 - p
    x = NORMAL.inv_cdf(p)
    if math.isinf(dof):
        return x
    if dof >= _MANY_DOF:
        return _cornish_fisher(x, dof)
    for _ in range(100):
        step = (t_sf(x, dof) - tail) / _t_pdf(x, dof)
        if not math.isfinite(step):
            break
        if abs(step) <= 1e-10 * x:
            return x + step
        if step < 0:  # below the root: only the noise of t_sf itself takes it there
            if -step <= 1e-8 * x:
                return x + step
            break
        x += step
    low, high = 0.0, max(1.0, x)
    while t_sf(high, dof) > tail:
        high *= 2
    while True:
        mid = (low + high) / 2
        if mid in (low, high):  # as close as floats get
            return mid
        if t_sf(mid, dof) > tail:
            low = mid
        else:
            high = mid


# Beyond this many degrees of freedom (experiments with a few hundred visitors and more) the
# quantile comes from its asymptotic series in 1/dof, within 1e-12 of Newton's method there
# (tests/results/test_stats.py) at a fraction of the cost: a report of 200 experiments computes
# hundreds of intervals.
_MANY_DOF = 1000


def _cornish_fisher(z: float, dof: float) -> float:
    """The t quantile from the normal quantile ``z``: the Cornish-Fisher expansion (Abramowitz
    and Stegun 26.7.5), four terms."""
    z2 = z * z
    return z + z * (
        (z2 + 1) / (4 * dof)
        + (5 * z2 * z2 + 16 * z2 + 3) / (96 * dof**2)
        + (3 * z2**3 + 19 * z2 * z2 + 17 * z2 - 15) / (384 * dof**3)
        + (79 * z2**4 + 776 * z2**3 + 1482 * z2 * z2 - 1920 * z2 - 945) / (92160 * dof**4)
    )


def _t_pdf(x: float, dof: float) -> float:
    log_norm = _log_gamma_ratio(dof / 2, 0.5) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1) / 2 * math.log1p(x * x / dof))


def chi2_sf(x: float, k: int) -> float:
    """P(X > x) for chi-square with ``k`` degrees of freedom."""
    if k < 1:
        return 1.0
    if x / 2 <= 0:
        return 1.0
    return _upper_gamma(k / 2, x / 2)


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
    """The regularised incomplete beta function I_x(a, b), given x and y = 1 - x."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    big, small = max(a, b), min(a, b)
    log_front = _log_gamma_ratio(big, small) - math.lgamma(small) + a * log_x + b * log_y
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def _log_gamma_ratio(a: float, b: float) -> float:
    """log(Gamma(a + b) / Gamma(a)). For a large ``a`` the difference of two lgamma values
    near a * log(a) loses digits; Stirling's series of the difference keeps them."""
    if a < 100:
        return math.lgamma(a + b) - math.lgamma(a)

    def correction(x: float) -> float:
        return 1 / (12 * x) - 1 / (360 * x**3) + 1 / (1260 * x**5)

    return (
        (a - 0.5) * math.log1p(b / a) + b * math.log(a + b) - b + correction(a + b) - correction(a)
    )


def _beta_fraction(a: float, b: float, x: float) -> float:
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > _TINY else _TINY)
            c = 1 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1) < _EPSILON:
            break
    return h


def _upper_gamma(s: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(s, x)."""
    log_front = s * math.log(x) - x - math.lgamma(s)
    if x < s + 1:  # the series for P(s, x) converges fast here
        term = total = 1 / s
        n = s
        while abs(term) > abs(total) * _EPSILON:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1 - total * math.exp(log_front))
    b = x + 1 - s
    c, d = 1 / _TINY, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > _TINY else _TINY)
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        if abs(d * c - 1) < _EPSILON:
            break
    return math.exp(log_front) * h

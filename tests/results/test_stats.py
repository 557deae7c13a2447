"""The experiment statistics against GrowthBook's stats engine (gbstats) on the same counts,
against scipy's distributions, and against textbook values."""

from __future__ import annotations

import math
import warnings

import pytest
from gbstats.bayesian.tests import EffectBayesianABTest
from gbstats.frequentist.tests import TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from touchpoint.results.stats import (
    UNKNOWN,
    Mean,
    Proportion,
    chi2_sf,
    compare,
    srm_p_value,
    t_ppf,
    t_sf,
    wilson,
)

TOLERANCE = 1e-3
MONEY = st.just(0.0) | st.floats(0.01, 500)  # an order's value: nothing, or cents and more


@st.composite
def proportions(draw: st.DrawFn) -> Proportion:
    n = draw(st.integers(2, 2_000_000))
    return Proportion(n, draw(st.integers(1, n - 1)))


def gbstats_results(a: object, b: object) -> tuple[object, object]:
    with warnings.catch_warnings():  # scipy's warnings inside gbstats' risk figures
        warnings.simplefilter("ignore", RuntimeWarning)
        return TwoSidedTTest(a, b).compute_result(), EffectBayesianABTest(a, b).compute_result()


@settings(max_examples=300, deadline=None)
@given(control=proportions(), variant=proportions())
def test_conversion_rates_agree_with_gbstats(control: Proportion, variant: Proportion) -> None:
    ours = compare(control, variant)
    frequentist, bayesian = gbstats_results(
        ProportionStatistic(n=control.n, sum=control.successes),
        ProportionStatistic(n=variant.n, sum=variant.successes),
    )
    assert ours.uplift == pytest.approx(frequentist.expected, rel=TOLERANCE, abs=TOLERANCE)
    assert ours.interval is not None
    assert ours.interval == pytest.approx(frequentist.ci, rel=TOLERANCE, abs=TOLERANCE)
    assert ours.p_value == pytest.approx(frequentist.p_value, abs=TOLERANCE)
    assert ours.chance_to_beat == pytest.approx(bayesian.chance_to_win, abs=TOLERANCE)


@settings(max_examples=200, deadline=None)
@given(
    n=st.tuples(st.integers(3, 100_000), st.integers(3, 100_000)),
    values=st.tuples(
        st.lists(MONEY, min_size=2, max_size=30),
        st.lists(MONEY, min_size=2, max_size=30),
    ),
)
def test_revenue_per_visitor_agrees_with_gbstats(
    n: tuple[int, int], values: tuple[list[float], list[float]]
) -> None:
    """Revenue per exposed visitor: a few visitors paid, the rest count as 0."""
    samples = [
        Mean(max(count, len(paid)), sum(paid), sum(v * v for v in paid))
        for count, paid in zip(n, values, strict=True)
    ]
    ours = compare(*samples)
    theirs = [SampleMeanStatistic(n=s.n, sum=s.total, sum_squares=s.total_squares) for s in samples]
    frequentist, bayesian = gbstats_results(*theirs)
    if ours is UNKNOWN:
        assert frequentist.p_value == 1 and bayesian.chance_to_win == 0.5
        return
    assert ours.uplift == pytest.approx(frequentist.expected, rel=TOLERANCE, abs=TOLERANCE)
    assert ours.interval == pytest.approx(frequentist.ci, rel=TOLERANCE, abs=TOLERANCE)
    assert ours.p_value == pytest.approx(frequentist.p_value, abs=TOLERANCE)
    assert ours.chance_to_beat == pytest.approx(bayesian.chance_to_win, abs=TOLERANCE)


@pytest.mark.parametrize(
    ("control", "variant"),
    [
        (Proportion(0, 0), Proportion(100, 5)),  # nobody exposed yet
        (Proportion(100, 0), Proportion(100, 5)),  # a control at zero: no relative uplift
        (Proportion(100, 100), Proportion(100, 100)),  # no variance
        (Proportion(1, 1), Proportion(100, 5)),
    ],
)
def test_what_the_counts_cannot_say_is_unknown(control: Proportion, variant: Proportion) -> None:
    assert compare(control, variant) is UNKNOWN


@settings(max_examples=300, deadline=None)
@given(
    units=st.lists(st.integers(0, 1_000_000), min_size=2, max_size=6),
    weights=st.lists(st.floats(0.01, 1), min_size=6, max_size=6),
)
def test_sample_ratio_check_agrees_with_gbstats(units: list[int], weights: list[float]) -> None:
    weights = weights[: len(units)]
    assert srm_p_value(units, weights) == pytest.approx(check_srm(units, weights), abs=1e-9)


@settings(max_examples=300, deadline=None)
# Below 1e-6 scipy rounds the tail to 0.5 (for t = 3e-9 at 1 degree of freedom it answers
# 0.5; the Cauchy distribution's 0.5 - atan(t) / pi is 0.499999999).
@given(t=st.just(0.0) | st.floats(1e-6, 60), dof=st.floats(1, 1e7))
def test_student_t_agrees_with_scipy(t: float, dof: float) -> None:
    assert t_sf(t, dof) == pytest.approx(scipy_stats.t.sf(t, dof), rel=1e-9, abs=1e-13)


@settings(max_examples=200, deadline=None)
@given(p=st.floats(0.5001, 0.99999), dof=st.floats(1, 1e7))
def test_student_t_quantile_agrees_with_scipy(p: float, dof: float) -> None:
    assert t_ppf(p, dof) == pytest.approx(scipy_stats.t.ppf(p, dof), rel=1e-9)


@pytest.mark.parametrize("dof", [999.9, 1000, 1001, 5_000, 1e5, 1e7])
@pytest.mark.parametrize("p", [0.5001, 0.8, 0.975, 0.9995, 0.99999])
def test_the_quantiles_series_for_many_degrees_of_freedom_agrees_with_scipy(
    p: float, dof: float
) -> None:
    """From 1,000 degrees of freedom on the quantile is a series, not Newton's method."""
    assert t_ppf(p, dof) == pytest.approx(scipy_stats.t.ppf(p, dof), rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(x=st.floats(0, 5_000), k=st.integers(1, 200))
def test_chi_square_agrees_with_scipy(x: float, k: int) -> None:
    assert chi2_sf(x, k) == pytest.approx(scipy_stats.chi2.sf(x, k), rel=1e-9, abs=1e-13)


def test_textbook_values() -> None:
    # Critical values as printed in the tables of any statistics textbook.
    assert t_ppf(0.975, 10) == pytest.approx(2.228, abs=5e-4)
    assert t_ppf(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    assert t_ppf(0.95, 30) == pytest.approx(1.697, abs=5e-4)
    assert chi2_sf(3.841, 1) == pytest.approx(0.05, abs=1e-4)
    assert chi2_sf(5.991, 2) == pytest.approx(0.05, abs=1e-4)
    assert chi2_sf(10.828, 1) == pytest.approx(0.001, abs=1e-5)
    # Wilson's interval: Newcombe (1998), Statistics in Medicine 17, table II.
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-4)
    assert wilson(1, 29) == pytest.approx((0.0061, 0.1718), abs=1e-4)
    assert wilson(0, 0) is None


def test_a_plus_thirty_percent_that_is_not_yet_significant() -> None:
    """1,000 visitors each, 100 against 130 conversions: +30%, a 97% chance to beat the
    control, and still an interval that holds 0 (p = 0.066): not a result to call yet."""
    result = compare(Proportion(1000, 100), Proportion(1000, 130))
    assert result.uplift == pytest.approx(0.30)
    assert result.interval == pytest.approx((-0.0194, 0.6194), abs=1e-4)
    assert result.p_value == pytest.approx(0.0656, abs=1e-4)
    assert result.chance_to_beat == pytest.approx(0.9673, abs=1e-4)


def test_sample_ratio_mismatch() -> None:
    assert math.isclose(srm_p_value([1000, 1000], [0.5, 0.5]), 1.0)
    assert srm_p_value([1000, 1200], [0.5, 0.5]) < 0.001  # a broken 50/50 split is flagged
    assert srm_p_value([900, 1100], [0.45, 0.55]) == pytest.approx(1.0)
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0

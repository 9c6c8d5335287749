"""Every statistic against a published worked example and/or a second, independent implementation."""
import math
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from benchbot.results.stats import (
    PairedCounts,
    fisher_exact_p,
    holm,
    mcnemar_exact_p,
    newcombe_independent_ci,
    newcombe_paired_ci,
    wilson_ci,
)

# Cavo et al. (2012), complete response before/after consolidation therapy: the paired 2×2 table
# [[59, 6], [16, 80]] worked in Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency
# Tables" (CRC 2017), chapter 8 (also the R package contingencytables, tests/testthat/test-ch8.R).
CAVO = PairedCounts(59, 6, 16, 80)
# Bentur et al. (2009), airway hyper-responsiveness before/after stem cell transplantation,
# [[1, 1], [7, 12]]: Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91.
BENTUR = PairedCounts(1, 1, 7, 12)


def exact_mcnemar(b, c):
    """Exact enumeration with rational arithmetic: 2·Σ_{i ≤ min(b,c)} C(b+c, i) / 2^(b+c), capped at 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = Fraction(sum(comb(n, i) for i in range(min(b, c) + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def test_mcnemar_published_examples():
    # Fagerland et al. 2017, ch. 8 (Cavo): "McNemar exact conditional test: P = 0.052479"
    assert mcnemar_exact_p(6, 16) == pytest.approx(0.052479, abs=5e-7)
    # Fagerland et al. 2013 (Bentur): exact conditional p = 0.070 (= 18/256)
    assert mcnemar_exact_p(1, 7) == pytest.approx(0.070, abs=5e-4)
    assert mcnemar_exact_p(1, 7) == 18 / 256
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(5, 5) == 1.0


@settings(max_examples=150, deadline=None)
@given(b=hst.integers(0, 80), c=hst.integers(0, 80))
def test_mcnemar_against_enumeration_and_statsmodels(b, c):
    p = mcnemar_exact_p(b, c)
    assert p == pytest.approx(exact_mcnemar(b, c), rel=1e-9, abs=1e-15)
    if b + c:
        assert p == pytest.approx(sm_mcnemar([[10, b], [c, 10]], exact=True).pvalue, rel=1e-9, abs=1e-15)
    assert mcnemar_exact_p(b, c) == mcnemar_exact_p(c, b)


def test_newcombe_paired_published_example():
    # Fagerland et al. 2017, ch. 8 (Cavo): "Newcombe square-and-add CI: estimate = -0.0621 (95% CI -0.1186 to -0.0046)"
    d, lo, hi = newcombe_paired_ci(CAVO)
    assert (d, lo, hi) == pytest.approx((-0.0621, -0.1186, -0.0046), abs=5e-5)
    # swapping the methods mirrors the interval
    d2, lo2, hi2 = newcombe_paired_ci(CAVO.swapped())
    assert (d2, lo2, hi2) == pytest.approx((-d, -hi, -lo))


def test_newcombe_paired_equals_independent_when_phi_is_zero():
    # Bentur: AD − BC = 5 ≤ n/2, so Newcombe's corrected phi is 0 and the paired interval is the
    # square-and-add of the two Wilson intervals: statsmodels' independent Newcombe (n1 = n2 = 21).
    d, lo, hi = newcombe_paired_ci(BENTUR)
    sm_lo, sm_hi = confint_proportions_2indep(2, 21, 8, 21, method="newcomb", compare="diff")
    assert d == pytest.approx(-6 / 21)
    assert (lo, hi) == pytest.approx((sm_lo, sm_hi), rel=1e-12)
    # positive correlation narrows the paired interval compared with independent samples
    strong = PairedCounts(40, 2, 8, 50)
    _, plo, phi_ = newcombe_paired_ci(strong)
    ilo, ihi = confint_proportions_2indep(42, 100, 48, 100, method="newcomb", compare="diff")
    assert ilo < plo and phi_ < ihi
    assert all(math.isnan(v) for v in newcombe_paired_ci(PairedCounts(0, 0, 0, 0)))


def test_newcombe_independent_published_examples():
    # Newcombe (1998), Stat Med 17:873, Table II, method 10: (a) 56/70 − 48/80 → 0.0524 to 0.3339;
    # (b) 9/10 − 3/10 → 0.1705 to 0.8090; (d) 5/56 − 0/29 → −0.0381 to 0.1926
    assert newcombe_independent_ci(56, 70, 48, 80)[1:] == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert newcombe_independent_ci(9, 10, 3, 10)[1:] == pytest.approx((0.1705, 0.8090), abs=5e-5)
    assert newcombe_independent_ci(5, 56, 0, 29)[1:] == pytest.approx((-0.0381, 0.1926), abs=5e-5)


@settings(max_examples=150, deadline=None)
@given(n1=hst.integers(1, 200), n2=hst.integers(1, 200), data=hst.data())
def test_newcombe_independent_against_statsmodels(n1, n2, data):
    x1, x2 = data.draw(hst.integers(0, n1)), data.draw(hst.integers(0, n2))
    d, lo, hi = newcombe_independent_ci(x1, n1, x2, n2)
    sm_lo, sm_hi = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert (lo, hi) == pytest.approx((sm_lo, sm_hi), abs=1e-12)
    assert -1.0 <= lo <= d <= hi <= 1.0


@settings(max_examples=150, deadline=None)
@given(cells=hst.lists(hst.integers(0, 40), min_size=4, max_size=4))
def test_newcombe_paired_properties(cells):
    t = PairedCounts(*cells)
    d, lo, hi = newcombe_paired_ci(t)
    if t.n == 0:
        return
    assert -1.0 <= lo <= d <= hi <= 1.0
    # the limits lie inside the two Wilson intervals' extreme differences
    l1, u1 = wilson_ci(t.first_successes, t.n)
    l2, u2 = wilson_ci(t.second_successes, t.n)
    assert l1 - u2 - 1e-12 <= lo and hi <= u1 - l2 + 1e-12


def exact_fisher_two_sided(x1, n1, x2, n2):
    """Enumeration of the hypergeometric distribution given the margins: sum of the probabilities
    of all tables no more likely than the observed one (the usual two-sided definition)."""
    k = x1 + x2
    probs = {a: Fraction(comb(n1, a) * comb(n2, k - a), comb(n1 + n2, k))
             for a in range(max(0, k - n2), min(n1, k) + 1)}
    observed = probs[x1]
    return float(sum(p for p in probs.values() if p <= observed * (1 + Fraction(1, 10 ** 7))))


def test_fisher_tea_tasting():
    # Fisher (1935), The Design of Experiments, §2; Agresti (2007), An Introduction to Categorical
    # Data Analysis, §2.6.2: 3 of 4 milk-first cups right → one-sided P = 17/70 = 0.243,
    # two-sided 34/70 = 0.486.
    assert fisher_exact_p(3, 4, 1, 4) == pytest.approx(34 / 70)
    assert fisher_exact_p(4, 4, 0, 4) == pytest.approx(2 / 70)
    assert math.isnan(fisher_exact_p(1, 0, 1, 4))


@settings(max_examples=100, deadline=None)
@given(n1=hst.integers(1, 40), n2=hst.integers(1, 40), data=hst.data())
def test_fisher_against_enumeration(n1, n2, data):
    x1, x2 = data.draw(hst.integers(0, n1)), data.draw(hst.integers(0, n2))
    assert fisher_exact_p(x1, n1, x2, n2) == pytest.approx(exact_fisher_two_sided(x1, n1, x2, n2), rel=1e-9)


def test_holm_worked_example():
    # Holm–Bonferroni method, worked example (Wikipedia, after Holm 1979): p = 0.01, 0.04, 0.03,
    # 0.005 at α = 0.05 → H1 and H4 rejected; adjusted 0.03, 0.06, 0.06, 0.02.
    adj = holm([0.01, 0.04, 0.03, 0.005])
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [a <= 0.05 for a in adj] == [True, False, False, True]
    assert holm([]) == []
    out = holm([0.2, math.nan, 0.01])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


@settings(max_examples=150, deadline=None)
@given(ps=hst.lists(hst.floats(0, 1), min_size=1, max_size=12))
def test_holm_against_statsmodels(ps):
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]), abs=1e-12)

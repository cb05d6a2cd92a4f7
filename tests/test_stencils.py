"""The one general stencil routine against textbook tables and exact polynomial differentiation."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxgrad import finite_difference_weights, make_stencil

# Textbook first-derivative weights (Fornberg 1988, Table 1), written out by hand.
TEXTBOOK = {
    ("central", 2): {-1: -1 / 2, 1: 1 / 2},
    ("central", 4): {-2: 1 / 12, -1: -2 / 3, 1: 2 / 3, 2: -1 / 12},
    ("central", 6): {-3: -1 / 60, -2: 3 / 20, -1: -3 / 4, 1: 3 / 4, 2: -3 / 20, 3: 1 / 60},
    ("forward", 1): {0: -1.0, 1: 1.0},
    ("forward", 2): {0: -3 / 2, 1: 2.0, 2: -1 / 2},
    ("backward", 1): {-1: -1.0, 0: 1.0},
    ("backward", 2): {-2: 1 / 2, -1: -2.0, 0: 3 / 2},
}


@pytest.mark.parametrize(("method", "order"), sorted(TEXTBOOK))
def test_weights_match_textbook(method, order):
    s = make_stencil(method, order)
    got = dict(zip(s.offsets, s.weights, strict=True))
    if s.center_weight:
        got[0] = s.center_weight
    assert got == pytest.approx(TEXTBOOK[(method, order)], rel=1e-15)


def test_natural_orders_and_costs():
    assert make_stencil("central").order == 2
    assert make_stencil("forward").order == 1
    assert make_stencil("central", 2).evaluations(8) == 16  # 2d
    assert make_stencil("forward", 1).evaluations(8) == 9  # d + 1: f(x) shared
    assert make_stencil("central", 4).evaluations(8) == 32


@given(
    coefficients=st.lists(st.integers(-20, 20), min_size=1, max_size=7),
    x=st.integers(-5, 5),
    method=st.sampled_from(["central", "forward", "backward"]),
    order=st.integers(1, 6),
)
def test_stencil_differentiates_polynomials_exactly(coefficients, x, method, order):
    """A stencil of order p with K points is exact for polynomials of degree ≤ p (exact rational arithmetic)."""
    if method == "central" and order % 2:
        order += 1
    s = make_stencil(method, order)
    coefficients = coefficients[: order + 1]  # degree ≤ order

    def poly(t):
        return sum(Fraction(c) * t**k for k, c in enumerate(coefficients))

    def dpoly(t):
        return sum(Fraction(k * c) * t ** (k - 1) for k, c in enumerate(coefficients) if k)

    h = Fraction(1, 8)
    weights = [Fraction(w).limit_denominator(10**6) for w in s.weights]
    estimate = sum(w * poly(x + k * h) for k, w in zip(s.offsets, weights, strict=True))
    estimate += Fraction(s.center_weight).limit_denominator(10**6) * poly(Fraction(x))
    assert estimate / h == dpoly(Fraction(x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "centre"}, "`method` must be one of"),
        ({"method": "central", "order": 3}, "must be even"),
        ({"order": 0}, "`order` must be an integer"),
        ({"order": 2.0}, "`order` must be an integer"),
        ({"order": 99}, "`order` must be an integer"),
    ],
)
def test_bad_stencil_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_stencil(**kwargs)


def test_weights_need_distinct_offsets():
    with pytest.raises(ValueError, match="distinct"):
        finite_difference_weights((1, 1))

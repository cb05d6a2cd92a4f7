"""First-derivative test cases ported from the test suites of four other numerical-differentiation packages.

Data only (no pytest tests here): `CASES` holds the peers' own functions, points and tolerances; `BADLY_SCALED` holds
the same functions moved to badly scaled points (x = 1e-8, x = 1e8, or 1e-8 away from a pole, kink or domain edge).
Every `exact` is the hand-derived derivative formula (the `grad` argument of `_case`) evaluated in NumPy float64;
nothing here is computed by autodiff or by finite differences.

Sources read (public test suites; only the mathematics is carried over):
  * scipy.differentiate: scipy/differentiate/tests/test_differentiate.py (TestDerivative, TestJacobian).
  * numdifftools: numdifftools/tests/test_numdifftools.py and numdifftools/tests/test_example_functions.py.
  * FiniteDifferences.jl: test/methods.jl and test/grad.jl.
  * FiniteDiff.jl: test/finitedifftests.jl, test/out_of_place_tests.jl and test/jvp_accuracy_tests.jl.

How the peers' assertions were turned into (rtol, atol) per entry, |g - exact| <= atol + rtol * |exact|:
  * scipy's `xp_assert_close` defaults to rtol = 4 * sqrt(eps) (about 5.96e-8) for float64, atol = 0.
  * numpy.testing.assert_allclose defaults to rtol = 1e-7, atol = 0; assert_array_almost_equal(decimal=7) is an
    absolute test, |g - exact| < 1.5e-7.
  * Julia's `a ≈ b` is isapprox with rtol = sqrt(eps) (about 1.49e-8), atol = 0, but rtol defaults to 0 when an atol
    is given. On arrays it compares norms, norm(a - b) <= rtol * norm(b); that implies the per-entry bound
    |a_i - b_i| <= rtol * norm(b), which is what those cases use (atol = rtol * norm(exact), rtol = 0).
  * FiniteDiff.jl asserts maximum(abs.(a - b)) < tol (1e-8 for its central differences): atol = tol, rtol = 0.
  * A peer's Jacobian of a vector function becomes one scalar case per output component (or a sum of squares, or a
    weighted sum, where stated), each with that output's row of the Jacobian as its gradient.
  * Where a peer draws random points (Julia's MersenneTwister(123456), `rand`), fixed NumPy draws stand in: the
    functions and tolerances are the peer's, the points are not.
  * jax.scipy.special.ndtr stands in for scipy.special.ndtr (the only non-jax.numpy function used).

Skipped, and why:
  * Higher derivatives and Hessians (scipy TestHessian, numdifftools TestHessian/TestHessdiag, the n >= 2 parts of
    numdifftools' cos tests and of FiniteDifferences' methods.jl, FiniteDiff.jl's Hessian tests,
    FiniteDifferences' `extrapolate_fdm(forward_fdm(4, 3), ...)` and high-order "Accuracy" tests): first
    derivatives only.
  * Complex-valued functions or arguments (FiniteDiff.jl's C -> C, R -> C and C^N -> C tests, FiniteDifferences'
    ComplexF64 tests, numdifftools test_complex_hessian_issue_35): jaxgrad differentiates real functions.
  * One-sided steps at a domain edge (scipy test_step_direction at its end points 0 and 2,
    test_step_direction_size, test_vectorized_step_direction_args with step_direction = +-1; FiniteDiff.jl's
    `dir=-1` tests; numdifftools' forward/backward method loops): these test a step-direction option, not an
    accuracy at a point; the interior points of test_step_direction are kept, with central steps.
  * Tests of the estimator's own options or bookkeeping rather than of a derivative value (scipy test_flags,
    test_maxiter_callback, test_initial_step, test_step_parameters, test_attrs, test_nfev, input validation;
    numdifftools TestRichardson, test_default_scale, step generators, full_output; FiniteDifferences add_tiny,
    printing, _is_symmetric; FiniteDiff.jl caches, colour vectors, allocation and thread-safety mechanics).
  * scipy test_accuracy's distributions whose CDF needs special functions beyond ndtr (gamma, beta, Bessel, ...):
    ten with elementary closed forms are kept (CDF and PDF written out here).
  * Functions that return a non-scalar with no analytic sum (numdifftools test_issue_25's g_fun identity, the
    identity Jacobians of FiniteDifferences #67 and FiniteDiff.jl's non-vector-input tests): linear identities,
    covered by the kept sum and linear cases.
  * Hypothesis-driven tests keep their explicit @example points (numdifftools test_derivative_of_cos_x) or an end
    point of the drawn range (test_scalar_to_vector: val = 1000).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

EPS = float(np.finfo(np.float64).eps)
XP_RTOL = 4 * math.sqrt(EPS)  # scipy's xp_assert_close default rtol for float64
NP_RTOL = 1e-7  # numpy.testing.assert_allclose default rtol
JL_RTOL = math.sqrt(EPS)  # Julia's isapprox default rtol for Float64
DECIMAL7 = 1.5e-7  # numpy.testing.assert_array_almost_equal(decimal=7): |g - exact| < 1.5 * 10**-7


@dataclasses.dataclass(frozen=True, eq=False)
class Case:
    origin: str  # peer, file and test
    name: str  # short unique id
    fun: Callable  # jax.numpy function of x (0-d or 1-d array) returning a scalar
    x: np.ndarray  # float64 point
    exact: np.ndarray  # float64 exact gradient, x's shape
    rtol: float
    atol: float
    domain: str | None = None  # where the function is defined, when not the whole line


CASES: list[Case] = []
_MOVES: list[tuple[Case, Callable, tuple]] = []  # (case, hand-written gradient, ((label, x), ...))

SMALL = ("1e-8", 1e-8)
BIG = ("1e8", 1e8)


def _vec(n: int, *which: str) -> tuple:
    points = {"small": ("1e-8", np.full(n, 1e-8)), "big": ("1e8", np.full(n, 1e8))}
    return tuple(points[w] for w in which)


def _case(origin, name, fun, grad, x, rtol, atol, domain=None, moves=()):
    x = np.asarray(x, dtype=np.float64)
    exact = np.broadcast_to(np.asarray(grad(x), dtype=np.float64), x.shape).copy()
    assert np.all(np.isfinite(exact)), name
    case = Case(origin, name, fun, x, exact, float(rtol), float(atol), domain)
    CASES.append(case)
    if moves:
        _MOVES.append((case, grad, moves))
    return case


def _norm_atol(rtol, grad, x):
    """Per-entry bound implied by Julia's array isapprox: atol = rtol * norm(exact)."""
    return rtol * float(np.linalg.norm(np.asarray(grad(np.asarray(x, dtype=np.float64)), dtype=np.float64)))


def _npdf(x):
    return np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)


# ================================================================================================ scipy.differentiate
S = "scipy.differentiate test_differentiate.py::"

_case(S + "TestDerivative::test_basic[x=0.6]", "scipy_ndtr_0.6", jsp.ndtr, _npdf, 0.6, XP_RTOL, 0.0, moves=(SMALL, BIG))
_case(
    S + "TestDerivative::test_basic[x=linspace(-0.05, 1.05, 10)]",
    "scipy_ndtr_linspace",
    lambda x: jnp.sum(jsp.ndtr(x)),
    _npdf,
    np.linspace(-0.05, 1.05, 10),
    XP_RTOL,
    0.0,
)
# test_convergence asserts |df - ref| < 1e-6 * ref with tolerances rtol=1e-6 (and < 1e-6 with atol=1e-6).
_case(S + "TestDerivative::test_convergence", "scipy_ndtr_1_rtol1e-6", jsp.ndtr, _npdf, 1.0, 1e-6, 0.0)

# test_accuracy: d/dx dist.cdf at dist.median() + 0.1 against dist.pdf, atol=1e-10 (rtol default). Distributions of
# stats._distr_params.distcont with an elementary CDF, standard loc/scale, the shape parameters of distcont. As
# scipy's dist.cdf is defined on the whole line (0 below the support, 1 above), so are these (clipped).
_ACC = S + "TestDerivative::test_accuracy[{}]"
_c_brad, (_c_burr, _d_burr), _c_fisk = 0.29891359763170633, (10.5, 4.3), 3.085754862225318
_b_par, _c_wei = 2.621716532144454, 1.7866166930421596
_DISTS = [
    # name, cdf (jax), pdf (numpy), median, domain, moves
    (
        "anglit",
        lambda x: jnp.sin(jnp.clip(x, -jnp.pi / 4, jnp.pi / 4) + jnp.pi / 4) ** 2,
        lambda x: np.cos(2 * x),
        0.0,
        "support [-pi/4, pi/4]; CDF clipped to 0/1 outside",
        (SMALL, ("pi/4-1e-8", np.pi / 4 - 1e-8)),
    ),
    (
        "arcsine",
        lambda x: 2 / jnp.pi * jnp.arcsin(jnp.sqrt(jnp.clip(x, 0, 1))),
        lambda x: 1 / (np.pi * np.sqrt(x * (1 - x))),
        0.5,
        "support [0, 1]; CDF clipped to 0/1 outside",
        (SMALL, ("1-1e-8", 1 - 1e-8)),
    ),
    (
        "bradford",
        lambda x: jnp.log1p(_c_brad * jnp.clip(x, 0, 1)) / math.log1p(_c_brad),
        lambda x: _c_brad / (math.log1p(_c_brad) * (1 + _c_brad * x)),
        (math.sqrt(1 + _c_brad) - 1) / _c_brad,
        "support [0, 1]; CDF clipped to 0/1 outside",
        (SMALL,),
    ),
    (
        "burr",
        lambda x: (1 + jnp.maximum(x, 0) ** -_c_burr) ** -_d_burr,
        lambda x: _c_burr * _d_burr * x ** (-_c_burr - 1) * (1 + x**-_c_burr) ** (-_d_burr - 1),
        (2 ** (1 / _d_burr) - 1) ** (-1 / _c_burr),
        "support x >= 0; CDF 0 below",
        (BIG,),
    ),
    (
        "expon",
        lambda x: -jnp.expm1(-jnp.maximum(x, 0)),
        lambda x: np.exp(-x),
        math.log(2),
        "support x >= 0; CDF 0 below",
        (SMALL, BIG),
    ),
    (
        "fisk",
        lambda x: 1 / (1 + jnp.maximum(x, 0) ** -_c_fisk),
        lambda x: _c_fisk * x ** (-_c_fisk - 1) / (1 + x**-_c_fisk) ** 2,
        1.0,
        "support x >= 0; CDF 0 below",
        (SMALL, BIG),
    ),
    (
        "laplace",
        lambda x: jnp.where(x < 0, 0.5 * jnp.exp(x), 1 - 0.5 * jnp.exp(-x)),
        lambda x: 0.5 * np.exp(-np.abs(x)),
        0.0,
        "kink at 0",
        (SMALL, BIG),
    ),
    (
        "logistic",
        lambda x: 1 / (1 + jnp.exp(-x)),
        lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2,
        0.0,
        None,
        (SMALL, BIG),
    ),
    (
        "pareto",
        lambda x: 1 - jnp.maximum(x, 1) ** -_b_par,
        lambda x: _b_par * x ** (-_b_par - 1),
        2 ** (1 / _b_par),
        "support x >= 1; CDF 0 below",
        (("1+1e-8", 1 + 1e-8), BIG),
    ),
    (
        "weibull_min",
        lambda x: -jnp.expm1(-(jnp.maximum(x, 0) ** _c_wei)),
        lambda x: _c_wei * x ** (_c_wei - 1) * np.exp(-(x**_c_wei)),
        math.log(2) ** (1 / _c_wei),
        "support x >= 0; CDF 0 below",
        (SMALL, BIG),
    ),
]
for _name, _cdf, _pdf, _median, _domain, _moves in _DISTS:
    _case(_ACC.format(_name), f"scipy_cdf_{_name}", _cdf, _pdf, _median + 0.1, XP_RTOL, 1e-10, _domain, _moves)

# test_preserve_shape: four outputs at x = 0, one case each.
_PS = S + "TestDerivative::test_preserve_shape[{}]"
_case(_PS.format("x"), "scipy_ps_x", lambda x: x, lambda x: np.ones_like(x), 0.0, XP_RTOL, 0.0, moves=(SMALL, BIG))
_case(
    _PS.format("sin(3x)"),
    "scipy_ps_sin3x",
    lambda x: jnp.sin(3 * x),
    lambda x: 3 * np.cos(3 * x),
    0.0,
    XP_RTOL,
    0.0,
    moves=(SMALL, BIG),
)
_case(
    _PS.format("x+sin(10x)"),
    "scipy_ps_x_sin10x",
    lambda x: x + jnp.sin(10 * x),
    lambda x: 1 + 10 * np.cos(10 * x),
    0.0,
    XP_RTOL,
    0.0,
    moves=(SMALL, BIG),
)
_case(
    _PS.format("sin(20x)(x-1)^2"),
    "scipy_ps_sin20x_sq",
    lambda x: jnp.sin(20 * x) * (x - 1) ** 2,
    lambda x: 20 * np.cos(20 * x) * (x - 1) ** 2 + 2 * np.sin(20 * x) * (x - 1),
    0.0,
    XP_RTOL,
    0.0,
    moves=(SMALL, BIG),
)

# test_vectorized_step_direction_args: x**p at x = 1..4, p = 2, 3 (the central-step column).
for _p in (2, 3):
    for _x in (1.0, 2.0, 3.0, 4.0):
        _case(
            S + f"TestDerivative::test_vectorized_step_direction_args[x={_x:g},p={_p}]",
            f"scipy_pow{_p}_{_x:g}",
            lambda x, p=_p: x**p,
            lambda x, p=_p: p * x ** (p - 1),
            _x,
            XP_RTOL,
            0.0,
            moves=(SMALL, BIG) if _x == 1.0 else (),
        )

# test_dtype (float64, order=4): exp, rtol = sqrt(eps).
for _x in (0.65, 0.7):
    _case(
        S + f"TestDerivative::test_dtype[float64,x={_x}]",
        f"scipy_exp_{_x}",
        jnp.exp,
        np.exp,
        _x,
        math.sqrt(EPS),
        0.0,
        moves=(SMALL,) if _x == 0.65 else (),
    )

# test_special_cases
_case(
    S + "TestDerivative::test_special_cases[x**99-1]",
    "scipy_x99",
    lambda x: x**99 - 1,
    lambda x: 99 * x**98,
    7.0,
    XP_RTOL,
    0.0,
)
for _n in range(6):  # 2 x**n at 1.5, asserted with rtol=1e-15
    _case(
        S + f"TestDerivative::test_special_cases[2*x**{_n}]",
        f"scipy_2x{_n}",
        lambda x, n=_n: 2 * x**n,
        lambda x, n=_n: 2 * n * x ** max(n - 1, 0),
        1.5,
        1e-15,
        0.0,
        moves=(SMALL, BIG) if _n in (0, 5) else (),
    )
_case(
    S + "TestDerivative::test_special_cases[c*x-1]",
    "scipy_3x_minus_1",
    lambda x: 3 * x - 1,
    lambda x: np.full_like(x, 3.0),
    2.0,
    XP_RTOL,
    0.0,
)

# test_saddle_gh18811 (marked xfail upstream): derivative exactly 0 at the saddle, atol=1e-16.
_case(
    S + "TestDerivative::test_saddle_gh18811[(x-1)**3] (xfail upstream)",
    "scipy_saddle_cubic",
    lambda x: (x - 1) ** 3,
    lambda x: 3 * (x - 1) ** 2,
    1.0,
    XP_RTOL,
    1e-16,
)
_case(
    S + "TestDerivative::test_saddle_gh18811[piecewise] (xfail upstream)",
    "scipy_saddle_piecewise",
    lambda x: jnp.where(x > 1, (x - 1) ** 5, (x - 1) ** 3),
    lambda x: np.zeros_like(x),
    1.0,
    XP_RTOL,
    1e-16,
    "pieces meet at 1",
)

# test_step_direction: exp, NaN outside [0, 2]; the 8 interior points of linspace(0, 2, 10), central steps.
_case(
    S + "TestDerivative::test_step_direction (interior points)",
    "scipy_exp_nan_outside",
    lambda x: jnp.sum(jnp.where((x < 0) | (x > 2), jnp.nan, jnp.exp(x))),
    np.exp,
    np.linspace(0, 2, 10)[1:-1],
    XP_RTOL,
    0.0,
    "[0, 2], NaN outside",
)

# TestJacobian::test_examples (float64, size=()): x = default_rng(458912319542).random(m), atol=1e-10.
_JX = S + "TestJacobian::test_examples[{}]"


def _jpoint(m):
    return np.random.default_rng(458912319542).random(m)


def _rows(tag, m, rows, moves_for=()):
    for i, (fun, grad) in enumerate(rows):
        moves = _vec(m, "small", "big") if i in moves_for else ()
        _case(
            _JX.format(f"{tag}, output {i}"), f"scipy_jac_{tag}_{i}", fun, grad, _jpoint(m), XP_RTOL, 1e-10, moves=moves
        )


_rows(
    "f1",
    2,
    [
        (lambda z: z[0] ** 2 * z[1], lambda z: np.array([2 * z[0] * z[1], z[0] ** 2])),
        (lambda z: 5 * z[0] + jnp.sin(z[1]), lambda z: np.array([5.0, np.cos(z[1])])),
    ],
    moves_for=(0, 1),
)
_rows(
    "f2",
    2,
    [
        (lambda z: z[0] * jnp.cos(z[1]), lambda z: np.array([np.cos(z[1]), -z[0] * np.sin(z[1])])),
        (lambda z: z[0] * jnp.sin(z[1]), lambda z: np.array([np.sin(z[1]), z[0] * np.cos(z[1])])),
    ],
    moves_for=(0,),
)
_rows(
    "f3",
    3,
    [
        (
            lambda z: z[0] * jnp.sin(z[1]) * jnp.cos(z[2]),
            lambda z: np.array(
                [np.sin(z[1]) * np.cos(z[2]), z[0] * np.cos(z[1]) * np.cos(z[2]), -z[0] * np.sin(z[1]) * np.sin(z[2])]
            ),
        ),
        (
            lambda z: z[0] * jnp.sin(z[1]) * jnp.sin(z[2]),
            lambda z: np.array(
                [np.sin(z[1]) * np.sin(z[2]), z[0] * np.cos(z[1]) * np.sin(z[2]), z[0] * np.sin(z[1]) * np.cos(z[2])]
            ),
        ),
        (lambda z: z[0] * jnp.cos(z[1]), lambda z: np.array([np.cos(z[1]), -z[0] * np.sin(z[1]), 0.0])),
    ],
    moves_for=(0,),
)
_rows(
    "f4",
    3,
    [
        (lambda z: z[0], lambda z: np.array([1.0, 0.0, 0.0])),
        (lambda z: 5 * z[2], lambda z: np.array([0.0, 0.0, 5.0])),
        (lambda z: 4 * z[1] ** 2 - 2 * z[2], lambda z: np.array([0.0, 8 * z[1], -2.0])),
        (lambda z: z[2] * jnp.sin(z[0]), lambda z: np.array([z[2] * np.cos(z[0]), 0.0, np.sin(z[0])])),
    ],
)
_rows(
    "f5",
    3,
    [
        (lambda z: 5 * z[1], lambda z: np.array([0.0, 5.0, 0.0])),
        (
            lambda z: 4 * z[0] ** 2 - 2 * jnp.sin(z[1] * z[2]),
            lambda z: np.array([8 * z[0], -2 * z[2] * np.cos(z[1] * z[2]), -2 * z[1] * np.cos(z[1] * z[2])]),
        ),
        (lambda z: z[1] * z[2], lambda z: np.array([0.0, z[2], z[1]])),
    ],
    moves_for=(1,),
)


def _rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _rosen_grad(x):
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


_rows("rosen", 5, [(_rosen, _rosen_grad)], moves_for=(0,))

# ======================================================================================================= numdifftools
N = "numdifftools test_numdifftools.py::"

# test_derivative_of_cos_x (hypothesis): its @example points; rtol=1e-6, atol=100*error_estimate + 1e-14 (only the
# 1e-14 floor is kept: the error estimate is numdifftools' own).
for _i, _x in enumerate((7.6564547238847105, 8.9428143931508, 2.2204460492503134e-14)):
    _case(
        N + f"TestDerivative::test_derivative_of_cos_x[@example {_x!r}]",
        f"nd_cos_{_i}",
        jnp.cos,
        lambda x: -np.sin(x),
        _x,
        1e-6,
        1e-14,
        moves=(SMALL, BIG) if _i == 0 else (),
    )
_case(
    N + "TestDerivative::test_high_order_derivative_cos[n=1]",
    "nd_cos_pi_2",
    jnp.cos,
    lambda x: -np.sin(x),
    np.pi / 2,
    NP_RTOL,
    1e-4,
)
# test_fun_with_additional_parameters: b*a*x**3 with a=1, b=2.
_case(
    N + "TestDerivative::test_fun_with_additional_parameters[x=0]",
    "nd_2x3_0",
    lambda x: 2.0 * x * x * x,
    lambda x: 6 * x**2,
    0.0,
    NP_RTOL,
    1e-13,
)
_case(
    N + "TestDerivative::test_fun_with_additional_parameters[x=1]",
    "nd_2x3_1",
    lambda x: 2.0 * x * x * x,
    lambda x: 6 * x**2,
    1.0,
    NP_RTOL,
    0.0,
    moves=(SMALL, BIG),
)
_case(N + "TestDerivative::test_derivative_cube", "nd_cube_2", lambda x: x * x * x, lambda x: 3 * x**2, 2.0, 1e-8, 0.0)
_case(N + "TestDerivative::test_derivative_exp", "nd_exp_0", jnp.exp, np.exp, 0.0, 1e-8, 0.0)
_case(
    N + "TestDerivative::test_derivative_sin[linspace(0, 2pi, 13)]",
    "nd_sin_linspace",
    lambda x: jnp.sum(jnp.sin(x)),
    np.cos,
    np.linspace(0, 2 * np.pi, 13),
    NP_RTOL,
    1e-8,
)
_case(N + "TestDerivative::test_backward_derivative_on_sinh", "nd_sinh_0", jnp.sinh, np.cosh, 0.0, NP_RTOL, 0.0)
_case(
    N + "TestDerivative::test_central_and_forward_derivative_on_log",
    "nd_log_0.001",
    jnp.log,
    lambda x: 1 / x,
    0.001,
    NP_RTOL,
    0.0,
    "x > 0",
)
# TestJacobian::test_scalar_to_vector (hypothesis, val in [-1000, 1000]): outputs x**2, x**3 at val = 1000.
_case(
    N + "TestJacobian::test_scalar_to_vector[x**2, val=1000]",
    "nd_sq_1000",
    lambda x: x**2,
    lambda x: 2 * x,
    1000.0,
    1e-3,
    1e-6,
)
_case(
    N + "TestJacobian::test_scalar_to_vector[x**3, val=1000]",
    "nd_cube_1000",
    lambda x: x**3,
    lambda x: 3 * x**2,
    1000.0,
    1e-3,
    1e-6,
)
_case(
    N + "TestJacobian::test_on_scalar_function",
    "nd_xyz_exp",
    lambda x: x[0] * x[1] * x[2] + jnp.exp(x[0]) * x[1],
    lambda x: np.array([x[1] * x[2] + np.exp(x[0]) * x[1], x[0] * x[2] + np.exp(x[0]), x[0] * x[1]]),
    [3.0, 5.0, 7.0],
    NP_RTOL,
    0.0,
    moves=_vec(3, "small"),
)

# TestJacobian::test_on_vector_valued_function: squared residuals of an exact fit, gradient 0, atol=1e-12.
_XDATA = np.arange(0, 1, 0.1)
_YDATA = 1 + 2 * np.exp(0.75 * _XDATA)


def _residuals(c):
    return (c[0] + c[1] * jnp.exp(c[2] * _XDATA) - _YDATA) ** 2


_case(
    N + "TestJacobian::test_on_vector_valued_function[sum of the 10 outputs]",
    "nd_fit_sum",
    lambda c: jnp.sum(_residuals(c)),
    lambda c: np.zeros(3),
    [1.0, 2.0, 0.75],
    NP_RTOL,
    1e-12,
)
_case(
    N + "TestJacobian::test_on_vector_valued_function[output 9]",
    "nd_fit_9",
    lambda c: _residuals(c)[9],
    lambda c: np.zeros(3),
    [1.0, 2.0, 0.75],
    NP_RTOL,
    1e-12,
)
# TestJacobian::test_on_matrix_valued_function: f0 = x0^2 + x1^2, f1 = x0^3 + x1^3 at [1, 2] and [3, 4].
for _pt in ([1.0, 2.0], [3.0, 4.0]):
    _tag = f"{_pt[0]:g},{_pt[1]:g}"
    _case(
        N + f"TestJacobian::test_on_matrix_valued_function[f0, x=[{_tag}]]",
        f"nd_mat_f0_{_tag}",
        lambda x: x[0] ** 2 + x[1] ** 2,
        lambda x: 2 * x,
        _pt,
        NP_RTOL,
        0.0,
    )
    _case(
        N + f"TestJacobian::test_on_matrix_valued_function[f1, x=[{_tag}]]",
        f"nd_mat_f1_{_tag}",
        lambda x: x[0] ** 3 + x[1] ** 3,
        lambda x: 3 * x**2,
        _pt,
        NP_RTOL,
        0.0,
        moves=_vec(2, "small", "big") if _pt[0] == 1.0 else (),
    )
_case(
    N + "TestJacobian::test_issue_68",
    "nd_issue68",
    lambda x: jnp.sum(x**2) - 1,
    lambda x: 2 * x,
    [1.0, 2.0],
    NP_RTOL,
    0.0,
    moves=_vec(2, "small", "big"),
)
# TestJacobian::test_issue_25 fun3 = (x0 x1 x2^2, x0 x1 x2) at the column x = [1, 2, 3].
_case(
    N + "TestJacobian::test_issue_25[fun3 output 0, x=[1,2,3]]",
    "nd_issue25_0",
    lambda x: x[0] * x[1] * x[2] ** 2,
    lambda x: np.array([x[1] * x[2] ** 2, x[0] * x[2] ** 2, 2 * x[0] * x[1] * x[2]]),
    [1.0, 2.0, 3.0],
    NP_RTOL,
    0.0,
    moves=_vec(3, "small", "big"),
)
_case(
    N + "TestJacobian::test_issue_25[fun3 output 1, x=[1,2,3]]",
    "nd_issue25_1",
    lambda x: x[0] * x[1] * x[2],
    lambda x: np.array([x[1] * x[2], x[0] * x[2], x[0] * x[1]]),
    [1.0, 2.0, 3.0],
    NP_RTOL,
    0.0,
)
_case(
    N + "TestJacobian::test_issue_27a[sum of x**2, n=500]",
    "nd_issue27a",
    lambda x: jnp.sum(x**2),
    lambda x: 2 * x,
    np.ones(500),
    NP_RTOL,
    0.0,
)
_case(
    N + "TestJacobian::test_jacobian_fulloutput[x + y]",
    "nd_x_plus_y",
    lambda x: x[0] + x[1],
    lambda x: np.ones(2),
    [1.0, 3.0],
    NP_RTOL,
    0.0,
)
_case(
    N + "TestGradient::test_issue_39",
    "nd_issue39",
    lambda x: 1.0 / (jnp.exp(x[0]) + jnp.cos(x[1]) + 10),
    lambda x: np.array([-np.exp(x[0]), np.sin(x[1])]) / (np.exp(x[0]) + np.cos(x[1]) + 10) ** 2,
    [1.0, 2.0],
    NP_RTOL,
    0.0,
    moves=_vec(2, "small"),
)
# test_directional_diff uses numdifftools.testing.rosen: (1 - x0)^2 + 105 (x1 - x0^2)^2.
_case(
    N + "TestGradient::test_directional_diff[rosen at [2, 3]]",
    "nd_rosen105",
    lambda x: (1 - x[0]) ** 2 + 105.0 * (x[1] - x[0] ** 2) ** 2,
    lambda x: np.array([-2 * (1 - x[0]) - 420 * x[0] * (x[1] - x[0] ** 2), 210 * (x[1] - x[0] ** 2)]),
    [2.0, 3.0],
    NP_RTOL,
    0.0,
    moves=_vec(2, "small", "big"),
)
_case(
    N + "TestGradient::test_gradient",
    "nd_sum_sq_123",
    lambda x: jnp.sum(x**2),
    lambda x: 2 * x,
    [1.0, 2.0, 3.0],
    NP_RTOL,
    0.0,
)

# test_example_functions.py::TestExampleFunctions::test_first_order_derivative: every function of
# numdifftools.example_functions at x = 0.5, assert_array_almost_equal(decimal=7). (The module is skipped upstream
# when algopy is not installed.)
NE = "numdifftools test_example_functions.py::TestExampleFunctions::test_first_order_derivative[{}]"
_LN2, _LN10 = math.log(2), math.log(10)
_EXAMPLES = [
    ("cos", jnp.cos, lambda x: -np.sin(x), None, ()),
    ("sin", jnp.sin, np.cos, None, ()),
    (
        "tan",
        jnp.tan,
        lambda x: 1 / np.cos(x) ** 2,
        "poles at pi/2 + k pi",
        (SMALL, BIG, ("pi/2-1e-8", np.pi / 2 - 1e-8)),
    ),
    ("cosh", jnp.cosh, np.sinh, None, (SMALL,)),
    ("sinh", jnp.sinh, np.cosh, None, (SMALL,)),
    ("tanh", jnp.tanh, lambda x: 1 - np.tanh(x) ** 2, None, (SMALL, BIG)),
    ("arcsinh", jnp.arcsinh, lambda x: 1 / np.sqrt(1 + x**2), None, (SMALL, BIG)),
    ("exp", jnp.exp, np.exp, None, ()),
    ("expm1", jnp.expm1, np.exp, None, (SMALL,)),
    ("exp2", jnp.exp2, lambda x: np.exp2(x) * _LN2, None, (SMALL,)),
    ("square", jnp.square, lambda x: 2 * x, None, (SMALL, BIG)),
    ("sqrt", jnp.sqrt, lambda x: 0.5 / np.sqrt(x), "x >= 0", (SMALL, BIG)),
    ("log", jnp.log, lambda x: 1 / x, "x > 0", (SMALL, BIG)),
    ("log1p", jnp.log1p, lambda x: 1 / (1 + x), "x > -1", (SMALL, BIG, ("-1+1e-8", -1 + 1e-8))),
    ("log10", jnp.log10, lambda x: 1 / (x * _LN10), "x > 0", (SMALL, BIG)),
    ("log2", jnp.log2, lambda x: 1 / (x * _LN2), "x > 0", (SMALL, BIG)),
    ("arccos", jnp.arccos, lambda x: -1 / np.sqrt((1 - x) * (1 + x)), "[-1, 1]", (SMALL, ("1-1e-8", 1 - 1e-8))),
    ("arcsin", jnp.arcsin, lambda x: 1 / np.sqrt((1 - x) * (1 + x)), "[-1, 1]", (SMALL, ("1-1e-8", 1 - 1e-8))),
    ("arctan", jnp.arctan, lambda x: 1 / (1 + x**2), None, (SMALL, BIG)),
]
for _name, _fun, _grad, _domain, _moves in _EXAMPLES:
    _case(NE.format(_name), f"nd_ex_{_name}", _fun, _grad, 0.5, 0.0, DECIMAL7, _domain, _moves)

# ============================================================================================== FiniteDifferences.jl
FM = "FiniteDifferences.jl test/methods.jl::"

# "foo=$(foo.f), method=$m, type=Float64": m(10, 1)(foo.f, 1) ≈ foo.d1.
_case(FM + "Methods[foo=sin]", "fdm_sin_1", jnp.sin, np.cos, 1.0, JL_RTOL, 0.0)
_case(FM + "Methods[foo=exp]", "fdm_exp_1", jnp.exp, np.exp, 1.0, JL_RTOL, 0.0)
_case(FM + "Methods[foo=abs2]", "fdm_abs2_1", lambda x: x * x, lambda x: 2 * x, 1.0, JL_RTOL, 0.0)
_case(
    FM + "Methods[foo=x -> sqrt(x + 1)]",
    "fdm_sqrt_xp1_1",
    lambda x: jnp.sqrt(x + 1),
    lambda x: 0.5 / np.sqrt(x + 1),
    1.0,
    JL_RTOL,
    0.0,
    "x >= -1",
    (("-1+1e-8", -1 + 1e-8), BIG),
)
_case(FM + "Integer output", "fdm_const_5", lambda x: 5.0 + 0.0 * x, lambda x: np.zeros_like(x), 0.0, 1e-12, 1e-12)
_case(
    FM + "Adaptation improves estimate[adapt=1]",
    "fdm_log_0.001",
    jnp.log,
    lambda x: 1 / x,
    0.001,
    JL_RTOL,
    0.0,
    "x > 0",
)
_case(FM + "Limiting step size", "fdm_abs_0.001", jnp.abs, np.sign, 0.001, JL_RTOL, 0.0, "kink at 0", (SMALL, BIG))

# "Derivative of cosc at 0 (#124)": central_fdm(5, 1)(cosc, 0) ≈ -π^2/3 atol=1e-9 (so rtol = 0).
_COSC_TAYLOR = [(-1) ** k * 2 * k * math.pi ** (2 * k) / math.factorial(2 * k + 1) for k in range(1, 9)]


def _cosc(x):
    """cosc = d/dx sinc(x), sinc(x) = sin(pi x)/(pi x); its Taylor series near 0 (|x| < 0.2), as Julia does."""
    small = jnp.abs(x) < 0.2
    xs = jnp.where(small, 1.0, x)
    direct = (jnp.cos(jnp.pi * xs) - jnp.sin(jnp.pi * xs) / (jnp.pi * xs)) / xs
    series = sum(c * x ** (2 * k - 1) for k, c in enumerate(_COSC_TAYLOR, start=1))
    return jnp.where(small, series, direct)


# The gradient formula below is the value at 0 only, sinc''(0) = -pi^2/3 (no moves for this case).
_case(
    FM + "Derivative of cosc at 0 (#124)",
    "fdm_cosc_0",
    _cosc,
    lambda x: np.full_like(x, -(math.pi**2) / 3),
    0.0,
    0.0,
    1e-9,
)

FG = "FiniteDifferences.jl test/grad.jl::"
_jl = np.random.default_rng(123456)  # stands in for Julia's MersenneTwister(123456)
_x2 = _jl.standard_normal(2)
_case(
    FG + "grad(::Float64)",
    "fdm_grad_sin_cos",
    lambda x: jnp.sin(x[0]) + jnp.cos(x[1]),
    lambda x: np.array([np.cos(x[0]), -np.sin(x[1])]),
    _x2,
    0.0,
    _norm_atol(JL_RTOL, lambda x: np.array([np.cos(x[0]), -np.sin(x[1])]), _x2),
    moves=_vec(2, "small", "big"),
)
_xy5 = _jl.standard_normal(5)
_case(
    FG + "jvp(::Float64)[scalar output: sum(sin, xy)]",
    "fdm_sum_sin5",
    lambda x: jnp.sum(jnp.sin(x)),
    np.cos,
    _xy5,
    0.0,
    _norm_atol(JL_RTOL, np.cos, _xy5),
)
_A = _jl.standard_normal((3, 2))
_xa = _jl.standard_normal(2)
_case(
    FG + "jacobian / _jvp / _j′vp (::Float64)[x -> A * x, as ||A x||^2 / 2]",
    "fdm_Ax_sumsq",
    lambda x: 0.5 * jnp.sum((_A @ x) ** 2),
    lambda x: _A.T @ (_A @ x),
    _xa,
    0.0,
    _norm_atol(JL_RTOL, lambda x: _A.T @ (_A @ x), _xa),
)
for _i in range(3):
    _case(
        FG + f"jacobian / _jvp / _j′vp (::Float64)[x -> sin.(A * x), output {_i}]",
        f"fdm_sinAx_{_i}",
        lambda x, i=_i: jnp.sin(_A[i] @ x),
        lambda x, i=_i: np.cos(_A[i] @ x) * _A[i],
        _xa,
        0.0,
        _norm_atol(JL_RTOL, lambda x: (np.cos(_A @ x)[:, None] * _A).ravel(), _xa),
    )
_X33, _Y33 = _jl.random((3, 3)), _jl.random((3, 3))


def _f2_of_x(xf):
    x = jnp.reshape(xf, (3, 3))
    return jnp.sum(x @ _Y33 + x)


def _f2_of_y(yf):
    return jnp.sum(_X33 @ jnp.reshape(yf, (3, 3)) + _X33)


def _grad_f2_x(xf):  # d/dX_ij sum(X Y + X) = sum_l Y_jl + 1
    return np.tile(_Y33.sum(axis=1) + 1, 3) + 0 * xf


def _grad_f2_y(yf):  # d/dY_jl sum(X Y + X) = sum_i X_ij
    return np.repeat(_X33.sum(axis=0), 3) + 0 * yf


_case(
    FG + "multi vars jacobian/grad[grad, f2(x, y) = sum(x*y + x), wrt x]",
    "fdm_f2_x",
    _f2_of_x,
    _grad_f2_x,
    _X33.ravel(),
    0.0,
    _norm_atol(JL_RTOL, _grad_f2_x, _X33.ravel()),
)
_case(
    FG + "multi vars jacobian/grad[grad, f2(x, y) = sum(x*y + x), wrt y]",
    "fdm_f2_y",
    _f2_of_y,
    _grad_f2_y,
    _Y33.ravel(),
    0.0,
    _norm_atol(JL_RTOL, _grad_f2_y, _Y33.ravel()),
)
_xt = np.append(_jl.random(9), 2.0)
_case(
    FG + "multi vars jacobian/grad[grad, f3((x, y)) = sum(x) + y]",
    "fdm_f3_tuple",
    lambda z: jnp.sum(z[:9]) + z[9],
    lambda z: np.ones(10),
    _xt,
    0.0,
    _norm_atol(JL_RTOL, np.ones_like, _xt),
)
_xy, _zbar = _jl.standard_normal(5), _jl.standard_normal(5)
_case(
    FG + "j′vp(::Float64)[z̄ · sin.(xy)]",
    "fdm_jvp_sin",
    lambda x: jnp.sum(_zbar * jnp.sin(x)),
    lambda x: _zbar * np.cos(x),
    _xy,
    0.0,
    _norm_atol(JL_RTOL, lambda x: _zbar * np.cos(x), _xy),
)

# ====================================================================================================== FiniteDiff.jl
FD = "FiniteDiff.jl test/finitedifftests.jl::"
_fd = np.random.default_rng(20240517)  # stands in for Julia's unseeded rand()

_case(
    FD + "Derivative single point f : R -> R tests[central]",
    "fdiff_sin_pi_4",
    jnp.sin,
    np.cos,
    np.pi / 4,
    0.0,
    1e-8,
    moves=(SMALL, BIG),
)
_case(
    FD + "Derivative StridedArray f : R -> R tests[central]",
    "fdiff_sin_range100",
    lambda x: jnp.sum(jnp.sin(x)),
    np.cos,
    np.linspace(-2 * np.pi, 2 * np.pi, 100),
    0.0,
    1e-8,
)
_case(
    FD + "Gradient of f:vector->scalar real-valued tests[central]",
    "fdiff_2x1_x2sq",
    lambda x: 2 * x[0] + x[1] ** 2,
    lambda x: np.array([2.0, 2 * x[1]]),
    _fd.random(2),
    0.0,
    1e-8,
    moves=_vec(2, "small", "big"),
)
_xs = 2 * np.pi * _fd.random()
_case(
    FD + "Gradient of f:scalar->vector real-valued tests[central, output sin]",
    "fdiff_sv_sin",
    jnp.sin,
    np.cos,
    _xs,
    0.0,
    1e-8,
)
_case(
    FD + "Gradient of f:scalar->vector real-valued tests[central, output cos]",
    "fdiff_sv_cos",
    jnp.cos,
    lambda x: -np.sin(x),
    _xs,
    0.0,
    1e-8,
)
for _tag, _fun, _grad, _pt in (
    ("x1^2 + x2^2 at [1.7, 2.0]", lambda x: x[0] ** 2 + x[1] ** 2, lambda x: 2 * x, [1.7, 2.0]),
    ("x1^2 + x2 at [1.0, 3.0]", lambda x: x[0] ** 2 + x[1], lambda x: np.array([2 * x[0], 1.0]), [1.0, 3.0]),
    ("x1^2 + x2 at [2.7, 1.0]", lambda x: x[0] ** 2 + x[1], lambda x: np.array([2 * x[0], 1.0]), [2.7, 1.0]),
):
    _case(
        FD + f"Non-allocating cache construction[{_tag}]",
        f"fdiff_nonalloc_{_pt[0]:g}_{_pt[1]:g}",
        _fun,
        _grad,
        _pt,
        0.0,
        _norm_atol(JL_RTOL, _grad, _pt),
    )
_xj = _fd.random(2)
_case(
    FD + "Out-of-Place Jacobian StridedArray real-valued tests[central, output 1]",
    "fdiff_jac_0",
    lambda x: (x[0] + 3) * (x[1] ** 3 - 7) + 18,
    lambda x: np.array([x[1] ** 3 - 7, 3 * (x[0] + 3) * x[1] ** 2]),
    _xj,
    0.0,
    1e-8,
    moves=_vec(2, "small", "big"),
)
_case(
    FD + "Out-of-Place Jacobian StridedArray real-valued tests[central, output 2]",
    "fdiff_jac_1",
    lambda x: jnp.sin(x[1] * jnp.exp(x[0]) - 1),
    lambda x: np.cos(x[1] * np.exp(x[0]) - 1) * np.array([x[1] * np.exp(x[0]), np.exp(x[0])]),
    _xj,
    0.0,
    1e-8,
)
for _i, _x in enumerate(np.sort(_fd.random(2))):
    _case(
        FD + f"Out-of-Place Jacobian real-valued tests with range input[central, x^2 + sin(x), point {_i}]",
        f"fdiff_range_{_i}",
        lambda x: x**2 + jnp.sin(x),
        lambda x: 2 * x + np.cos(x),
        _x,
        0.0,
        1e-8,
        moves=(SMALL, BIG) if _i == 0 else (),
    )
_case(
    FD + "thread safety[Gradients, sum]",
    "fdiff_sum_ones2",
    jnp.sum,
    np.ones_like,
    np.ones(2),
    0.0,
    _norm_atol(JL_RTOL, np.ones_like, np.ones(2)),
)


def _stencil(x):  # FiniteDiff.jl out_of_place_tests.jl: f(x) = x[i-1] - 2 x[i] + x[i+1], zero padded
    return jnp.concatenate([jnp.zeros(1), x[:-1]]) - 2 * x + jnp.concatenate([x[1:], jnp.zeros(1)])


def _stencil_np(v):
    return np.concatenate([[0.0], v[:-1]]) - 2 * v + np.concatenate([v[1:], [0.0]])


_case(
    "FiniteDiff.jl test/out_of_place_tests.jl::second_derivative_stencil(30)[as ||f(x)||^2 / 2]",
    "fdiff_stencil30",
    lambda x: 0.5 * jnp.sum(_stencil(x) ** 2),
    lambda x: _stencil_np(_stencil_np(x)),
    np.ones(30),
    0.0,
    _norm_atol(JL_RTOL, lambda x: _stencil_np(_stencil_np(x)), np.ones(30)),
)

# jvp_accuracy_tests.jl "JVP step size scales with norm(x)": f_i(x) = x_i x_{i+1} (cyclic, 200 entries) at
# x_big = 100 (1 + i/200), v = sin(i)/norm; central JVP asserted with norm(jvp - ref)/norm(ref) < 1e-10. Output i of
# the JVP is d/ds f_i(x_big + s v) at s = 0: one 0-d case per chosen output, atol = 1e-10 * norm(ref).
_NJ = 200
_XBIG = np.array([100.0 * (1 + i / _NJ) for i in range(1, _NJ + 1)])
_VUNIT = np.sin(np.arange(1, _NJ + 1, dtype=np.float64))
_VUNIT /= np.linalg.norm(_VUNIT)
_NXT = np.roll(np.arange(_NJ), -1)
_JV_REF = _XBIG[_NXT] * _VUNIT + _XBIG * _VUNIT[_NXT]
for _i in (0, 99, 199):
    _j = int(_NXT[_i])
    _case(
        f"FiniteDiff.jl test/jvp_accuracy_tests.jl::JVP step size scales with norm(x)[central, output {_i + 1}]",
        f"fdiff_jvp_{_i + 1}",
        lambda s, i=_i, j=_j: (_XBIG[i] + s * _VUNIT[i]) * (_XBIG[j] + s * _VUNIT[j]),
        lambda s, i=_i, j=_j: _XBIG[j] * _VUNIT[i] + _XBIG[i] * _VUNIT[j] + 0 * s,
        0.0,
        0.0,
        1e-10 * float(np.linalg.norm(_JV_REF)),
    )
_case(
    "FiniteDiff.jl test/jvp_accuracy_tests.jl::JVP degenerate directions and states[norm(x) == 0, output 1]",
    "fdiff_jvp_zero_x",
    lambda s: (s * _VUNIT[0]) * (s * _VUNIT[1]),
    lambda s: 2 * s * _VUNIT[0] * _VUNIT[1],
    0.0,
    0.0,
    1e-6,
)


# ======================================================================================================= badly scaled
def _moved() -> list[Case]:
    out = []
    for case, grad, moves in _MOVES:
        for label, x in moves:
            x = np.asarray(x, dtype=np.float64)
            exact = np.broadcast_to(np.asarray(grad(x), dtype=np.float64), x.shape).copy()
            assert np.all(np.isfinite(exact)), (case.name, label)
            atol = 1e-10 if np.any(exact == 0) else 0.0
            out.append(
                Case(
                    f"{case.origin} moved to x={label}",
                    f"{case.name}@{label}",
                    case.fun,
                    x,
                    exact,
                    1e-6,
                    atol,
                    case.domain,
                )
            )
    return out


BADLY_SCALED: list[Case] = _moved()

assert len({c.name for c in CASES + BADLY_SCALED}) == len(CASES) + len(BADLY_SCALED), "names must be unique"

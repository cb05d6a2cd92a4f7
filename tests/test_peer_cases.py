"""The peers' own test cases (tests/peer_cases.py: scipy.differentiate, numdifftools, FiniteDifferences.jl,
FiniteDiff.jl, each judged by that peer test's own tolerance) run through step="auto".

numdifftools passes 129 of the 136 cases in float64 with its defaults (measured with tests/peer_report.py, which runs
numdifftools itself): step="auto" must pass at least as many, and at least 95%. In the float32-only world the same
cases are judged by tolerances widened to float32's rounding, and auto must pass at least as many as the fixed step.
A case auto gets wrong must not be silently wrong: its error is within 10× the estimate, or its status is not OK.
"""

import functools

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import X64
from peer_cases import BADLY_SCALED, CASES

import jaxgrad as jg

NUMDIFFTOOLS_PASSES = 129
"""numdifftools' count on CASES (Derivative / Gradient with defaults), measured by tests/peer_report.py."""
DTYPE = jnp.float64 if X64 else jnp.float32
WIDEN = 1.0 if X64 else (np.finfo(np.float32).eps / np.finfo(np.float64).eps) ** (2 / 3)
SETS = {"peer points": CASES, "badly scaled": BADLY_SCALED}


@functools.cache
def results(which: str, step):
    """(gradient, Estimate or None) per case of a set, computed once per test session."""
    out = []
    for case in SETS[which]:
        x = jnp.asarray(case.x, DTYPE)
        if step == "auto":
            estimate = jg.grad(case.fun, step="auto", with_error=True)(x)
            out.append((np.asarray(estimate.value, np.float64), estimate))
        else:
            out.append((np.asarray(jg.grad(case.fun)(x), np.float64), None))
    return out


def passed(which: str, step) -> int:
    count = 0
    for case, (g, _) in zip(SETS[which], results(which, step), strict=True):
        bound = WIDEN * (case.atol + case.rtol * np.abs(case.exact))
        count += bool(np.all(np.isfinite(g)) and np.all(np.abs(g - case.exact) <= bound))
    return count


def test_auto_passes_at_least_as_many_peer_cases_as_numdifftools():
    auto = passed("peer points", "auto")
    if X64:
        assert auto >= NUMDIFFTOOLS_PASSES and auto >= 0.95 * len(CASES)
    else:
        assert auto >= passed("peer points", None)


def test_badly_scaled_points_gain_from_auto():
    assert passed("badly scaled", "auto") > passed("badly scaled", None)


def test_no_peer_case_is_silently_wrong():
    """At the peers' points no error exceeds 10× its estimate with status OK (errors below 100 eps, the rounding of
    gradients that are exactly 0, aside). At the badly scaled points this does not hold: at x = 1e8 a wave of
    amplitude 2 under a value of 4e16 is below f's rounding, invisible to any difference (see the closing note)."""
    silent = []
    for case, (g, estimate) in zip(CASES, results("peer points", "auto"), strict=True):
        error = np.abs(g - case.exact)
        allowed = 10 * np.asarray(estimate.error, np.float64) + 100 * np.finfo(DTYPE).eps * (1 + np.abs(case.exact))
        if int(estimate.status) == jg.Status.OK and not np.all(error <= allowed):
            silent.append((case.name, float(np.max(error)), float(np.max(estimate.error))))
    assert not silent


@pytest.mark.parametrize("which", list(SETS))
def test_auto_flags_what_it_cannot_compute(which):
    """A non-finite gradient always comes with status NONFINITE."""
    for g, estimate in results(which, "auto"):
        if not np.all(np.isfinite(g)):
            assert int(estimate.status) == jg.Status.NONFINITE

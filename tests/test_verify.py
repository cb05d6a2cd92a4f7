"""The verification layer: no false alarms on correct gradients, every planted bug caught and located."""

import copy
import csv
import dataclasses
import io
import json
import math
import pickle
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import zoo
from conftest import DTYPES, X64

import jaxgrad as jg
from jaxgrad import functions
from jaxgrad.numerics import ROUNDING, SAFETY, noise_estimate
from jaxgrad.verify import taylor_hint

N_CORRECT = 10_000  # the size: every correct gradient passes at 10,000 random points


# --------------------------------------------------------------------------------------------------------- the rule
def test_tolerance_is_built_from_its_terms():
    eps = float(np.finfo(np.float64).eps)
    base = jg.numerics.tolerance("float64", 1e-5, 1.0, 1e-15, 2.0, 2.0, 2, 3.0)
    assert base == pytest.approx(SAFETY * (1e-15 / 1e-5 + ROUNDING * eps * 3.0))
    # a Richardson difference of 3e-6 between steps h and 2h means a truncation error of 1e-6 (p = 2: 2^p - 1 = 3)
    assert jg.numerics.tolerance("float64", 1e-5, 1.0, 1e-15, 2.0, 2.0 + 3e-6, 2, 3.0) == pytest.approx(
        base + SAFETY * 1e-6
    )
    assert jg.numerics.tolerance("float64", 1e-5, 1.0, 1e-15, 2.0, 2.0, 2, 3.0, rtol=0.1, atol=1.0) == pytest.approx(
        base + 1.0 + 0.3
    )
    # looser in float32, and never zero at a zero gradient
    assert jg.numerics.tolerance("float32", 1e-2, 1.0, 1e-7, 0.0, 0.0, 2, 0.0) > 0


@pytest.mark.parametrize("odd_only", [False, True])
def test_noise_estimate_recovers_injected_noise(odd_only):
    """f = smooth polynomial + iid noise of known size σ along 200 lines: the pooled estimate is within 1.5× of σ.
    (The third difference on 5 points cancels polynomials of degree < 3, the fourth of degree < 4; the odd third
    alone, `odd_only`, also cancels the even quartic term.)"""
    rng = np.random.default_rng(0)
    positions = (-2, -1, 0, 1, 2)
    t = np.asarray(positions, np.float64)[:, None] * 1e-3
    sigma = 1e4 * np.finfo(DTYPES[-1]).eps  # far above the rounding of the values themselves
    values = 5.0 + 2 * t + 3 * t**2 + (7 * t**4 if odd_only else 0) + sigma * rng.normal(size=(5, 200))
    estimate = np.asarray(noise_estimate(jnp.asarray(values, DTYPES[-1]), positions, DTYPES[-1], odd_only=odd_only))
    assert estimate.shape == (200,)
    assert sigma / 1.5 < estimate[0] < 1.5 * sigma


def test_noise_estimate_reads_rounding_that_leaves_the_third_difference_zero():
    """Rounding on a coarse grid can leave the third difference of a line exactly 0 (exp(x) − 1 − x in float32 at the
    default step, on ulp(1)'s grid): one grid step at f(x) alone. The fourth difference reads it; the third alone gave
    the floor, 2·eps·|f|, and an error estimate 2,600 times below the error (tests/test_hardening.py)."""
    grid = 2.0**-23
    values = jnp.asarray([[1e-5], [1e-5], [1e-5 + grid], [1e-5], [1e-5]], DTYPES[-1])
    positions = (-2, -1, 0, 1, 2)
    assert float(noise_estimate(values, positions, DTYPES[-1], odd_only=True)[0]) < 1e-10  # the floor
    # |6·grid| / ‖(1, −4, 6, −4, 1)‖ = grid·6/√70, pooled with the third's 0: /√2
    assert float(noise_estimate(values, positions, DTYPES[-1])[0]) == pytest.approx(
        grid * 6 / 70**0.5 / 2**0.5, rel=1e-3
    )


def test_noise_estimate_floor_is_the_rounding_of_f():
    values = jnp.full((5, 3), 100.0, DTYPES[-1])  # constant: no noise visible
    estimate = np.asarray(noise_estimate(values, (-2, -1, 0, 1, 2), DTYPES[-1]))
    np.testing.assert_allclose(estimate, ROUNDING * np.finfo(DTYPES[-1]).eps * 100.0, rtol=1e-6)


# ------------------------------------------------------------------------------------------- correct never fails
def correct_cases():
    cases = [(f.name, f, lambda dt, f=f: f.sample(N_CORRECT, f.default_dim, seed=21, dtype=dt)) for f in
             functions.BUILTINS.values()]  # fmt: skip
    cases += [(name, f, lambda dt: zoo.sample(N_CORRECT, 6, dt, seed=21)) for name, f in zoo.CORRECT.items()]
    cases.append(("mlp_loss", zoo.mlp_loss, lambda dt: zoo.sample_mlp(N_CORRECT, dt, seed=21)))
    return cases


@pytest.mark.parametrize(("name", "fun", "sample"), correct_cases(), ids=[c[0] for c in correct_cases()])
def test_correct_gradients_never_fail(name, fun, sample, dtype):
    rep = jg.compare(fun, sample(dtype.name), reference_points=25)
    assert rep.ok, rep.summary()
    assert rep.num_points == N_CORRECT and rep.passed.all()
    for pair in rep.pairs:  # the NumPy reference agrees too, within its own tolerance
        assert pair.pass_rate == 1.0, rep.summary()


def test_gradients_near_zero_do_not_cry_wolf(dtype):
    """At and around the minimum of sphere and Rosenbrock the gradient is ~0; relative errors would explode there."""
    tiny = np.concatenate([np.zeros((1, 4)), 1e-30 * np.ones((1, 4)), np.random.default_rng(0).normal(size=(30, 4))])
    assert jg.compare(functions.sphere, (1e-6 * tiny).astype(dtype), reference=False).ok
    assert jg.compare(functions.rosenbrock, (1 + 1e-6 * tiny).astype(dtype), reference=False).ok


# ----------------------------------------------------------------------------------------------- bugs are caught
BUG_NAMES = [b.name for b in zoo.bugs("float32")]


@pytest.mark.parametrize("bug_name", BUG_NAMES)
def test_planted_bugs_are_caught_and_located(bug_name, dtype):
    bug = next(b for b in zoo.bugs(dtype.name) if b.name == bug_name)
    points = zoo.sample(64, 6, dtype.name, seed=9)
    with pytest.raises(jg.GradientMismatchError) as caught:
        jg.check_grad(bug.fun, points)
    assert isinstance(caught.value, AssertionError)
    rep = caught.value.comparison
    assert rep.worst.coordinate in bug.coordinates
    message = str(caught.value)
    assert f"x[{rep.worst.coordinate}]" in message and "tolerance" in message
    assert "Taylor test along" in message
    # no false alarm at the coordinates the bug leaves alone
    clean = [i for i in range(6) if i not in bug.coordinates]
    assert (rep.ratio[:, clean] <= 1).all()


def test_a_mismatch_error_pickles_with_its_comparison():
    """A check_grad failure inside a process pool reaches the parent as itself (it could not be unpickled: the pool
    reported "a process terminated abruptly" instead; from the review)."""
    points = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (20, 3)))
    with pytest.raises(jg.GradientMismatchError) as caught:
        jg.check_grad(lambda x: jnp.sum(x**2), points, grad_fn=lambda x: 2.5 * x)
    caught.value.add_note("seed 0")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is jg.GradientMismatchError and str(again) == str(caught.value)
    assert again.__notes__ == ["seed 0"]
    assert again.comparison.verdict == "MISMATCH" and again.comparison.mismatched.sum() == 20


@pytest.mark.parametrize("bug_name", BUG_NAMES)
def test_taylor_slope_is_one_for_bugs(bug_name, dtype):
    """Along the buggy coordinate, at the point where the bug shows most, the remainder shrinks like t."""
    bug = next(b for b in zoo.bugs(dtype.name) if b.name == bug_name)
    rep = jg.compare(bug.fun, zoo.sample(64, 6, dtype.name, seed=9), reference=False)
    x = jnp.asarray(zoo.sample(64, 6, dtype.name, seed=9)[rep.worst.point])
    axis = jnp.zeros(6, x.dtype).at[rep.worst.coordinate].set(1)
    result = jg.taylor_test(bug.fun, x, direction=axis)
    assert result.verdict is jg.Verdict.MISMATCH and abs(result.slope - 1) < 0.2, result.summary()


@pytest.mark.parametrize("name", list(zoo.CORRECT))
def test_taylor_slope_is_two_for_correct_gradients(name, dtype):
    for seed in range(3):
        x = jnp.asarray(zoo.sample(1, 6, dtype.name, seed=seed)[0])
        result = jg.taylor_test(zoo.CORRECT[name], x, seed=seed)
        assert result.verdict is jg.Verdict.OK and abs(result.slope - 2) < 0.15, result.summary()


def test_taylor_on_a_pytree_of_float32_and_float64_leaves():
    """f computes the float32 leaf's part in float32: below float32's resolution its coordinates do not move, which
    the remainder must know (it read the float64 step as moved: a correct gradient gave slope 1, MISMATCH), and f's
    rounding floor is float32's. (In the float32-only world both leaves are float32.)"""
    x = {"a": jnp.array([0.3, 0.7], jnp.float32), "b": jnp.array([0.5], "float64" if X64 else "float32")}

    def f(p):
        return jnp.sum(jnp.sin(p["a"])) + jnp.sum(p["b"] ** 2)

    def wrong_b(p):
        return {"a": jnp.cos(p["a"]), "b": 2.2 * p["b"]}  # 10% off in b

    for seed in range(3):
        right = jg.taylor_test(f, x, seed=seed)
        assert right.verdict is jg.Verdict.OK and abs(right.slope - 2) < 0.15, right.summary()
        wrong = jg.taylor_test(f, x, grad_fn=wrong_b, seed=seed)
        assert wrong.verdict is jg.Verdict.MISMATCH and abs(wrong.slope - 1) < 0.2, wrong.summary()


def test_taylor_on_a_linear_function_is_correct_to_rounding():
    result = jg.taylor_test(lambda x: jnp.sum(3 * x), jnp.asarray([1.0, 2.0]))
    assert result.verdict is jg.Verdict.OK and math.isnan(result.slope) and not result.used.any()


def test_taylor_hint_tells_a_wrong_gradient_from_a_step_problem(dtype):
    """The hint check_grad adds: slope 1 blames the gradient, slope 2 the finite-difference step."""
    x = jnp.asarray([0.3, -0.8, 1.2], dtype)
    f = zoo.CORRECT["softplus_ridge"]

    def slope(text):
        return float(re.search(r"slope (\S+),", text).group(1))

    right = taylor_hint(f, x, 1)
    assert abs(slope(right) - 2) < 0.2 and "the finite-difference step is at fault" in right and "x[1]" in right
    wrong = taylor_hint(f, x, 1, grad_fn=lambda v: jax.grad(f)(v) * jnp.asarray([1.0, 1.1, 1.0], dtype))
    assert abs(slope(wrong) - 1) < 0.2 and "the gradient is wrong there" in wrong


def test_a_step_too_large_for_the_function_is_inconclusive_not_a_false_alarm():
    """f = sin x + 1e-3 sin(1000 x) with a forced step of 0.01 averages the fast wave away, so the numeric gradient
    is wrong while jax.grad is right. The check must not cry wolf: its noise estimate sees the wave, the tolerance
    grows, and the verdict is INCONCLUSIVE (check_grad warns instead of passing silently). With the default step
    float64 resolves every point."""

    def f(v):
        return jnp.sum(jnp.sin(v) + 1e-3 * jnp.sin(1000 * v))

    points = np.random.default_rng(0).uniform(-1, 1, (50, 1)).astype(DTYPES[-1])
    rep = jg.compare(f, points, step=0.01, reference=False)
    assert rep.ok and rep.verdict == "INCONCLUSIVE" and "cannot be resolved" in rep.summary()
    with pytest.warns(UserWarning, match="check_grad is inconclusive"):
        jg.check_grad(f, points, step=0.01)
    default = jg.compare(f, points, reference=False)
    # float64's default step (6e-6) resolves the wave; float32's (5e-3, 1000·h ≈ 5 radians) cannot, and says so
    assert default.ok and default.verdict == ("OK" if DTYPES[-1] == "float64" else "INCONCLUSIVE")


def test_an_aliased_wave_never_blames_the_gradient():
    """The known limit (README, Troubleshooting): float32, order 4, x ≈ -1381 gives the default step 32, about 5
    periods of sin plus 0.58 radians, so g(h) and g(2h) both see almost none of cos(x) and agree: the Richardson
    estimate is blind to an error of 0.5. The noise estimate's even difference now reads part of the wave (the
    check passes at 0.99× its tolerance, where it was a MISMATCH); should it fail, check_grad's Taylor hint says the
    check cannot tell instead of blaming the gradient; float64 (step 1) resolves the point and passes."""

    def f(v):
        return jnp.sum(jnp.sin(v) + 0.5 * v**2)

    x = np.asarray([821.77014, -1381.2797], np.float32)
    try:
        jg.check_grad(f, x, order=4)
    except jg.GradientMismatchError as failure:
        assert re.search(r"(?s)x\[1\].*inconclusive.*run the check in float64", str(failure)), str(failure)
    if DTYPES[-1] == "float64":
        assert jg.compare(f, x[None].astype(np.float64), order=4, reference=False).verdict == "OK"


# ------------------------------------------------------------------------------------------------ the complex step
def test_compare_with_the_complex_step_is_inconclusive_and_says_why(dtype):
    """At the complex step's precision the exact gradient's own rounding decides (jax.grad of a sigmoid near 1
    computes σ(1 − σ), of tanh(19) in float64 1 − tanh², 11× the true value): no tolerance bounds it from outside,
    so every run is INCONCLUSIVE and says to use a real difference. Its NumPy reference needs the noise of the real
    f, not of Im f: it passed 2–59% of the built-ins' points with that; all now."""
    points = functions.rosenbrock.sample(200, 4, seed=3, dtype=dtype.name)
    rep = jg.compare(functions.rosenbrock, points, method="complex", reference_points=40)
    assert rep.verdict == "INCONCLUSIVE" and not rep.mismatched.any()
    assert rep.summary().endswith("compare with method='central' or method='richardson'")
    assert [pair.pass_rate for pair in rep.pairs[1:]] == [1.0, 1.0], rep.summary()
    with pytest.warns(UserWarning, match="complex step cannot check a gradient to its own precision"):
        jg.check_grad(lambda x: jnp.sum(jnp.tanh(x)), jnp.asarray([19.0], dtype), method="complex")


def test_compare_along_directions_needs_a_real_difference():
    """Directional derivatives of the complex step have no check that f is complex-safe: softplus came out wrong at
    every point, a MISMATCH against a right jax.grad."""
    with pytest.raises(ValueError, match="needs a real difference"):
        jg.compare(zoo.softplus_ridge, zoo.sample(20, 6, "float32"), method="complex", directions=2)


def test_the_worst_point_shows_its_values_with_the_digits_that_tell_them_apart():
    """A float64 mismatch can lie in the tenth digit: with 8 digits both values read 0.30000000."""
    worst = jg.verify.Worst(3, 1, "x[1]", 0.3, 0.3 + 3e-11, None, 3e-11, 1e-12)
    assert "jaxgrad 0.3, exact 0.30000000003;" in worst.describe()
    assert "jaxgrad 1.5, exact 2.25;" in jg.verify.Worst(0, 0, "x[0]", 1.5, 2.25, None, 0.75, 0.1).describe()


def test_an_inconclusive_run_counts_every_point_it_could_not_vouch_for():
    """Points unresolved and points not smooth here both make a run INCONCLUSIVE; its verdict counts both (it named
    the unresolved alone: "0 of 10 points cannot be resolved" for a run made inconclusive by kinks)."""
    exact = np.ones((10, 1))
    numeric = exact.copy()
    numeric[:3] = 0.5  # out of tolerance where f has a kink inside the stencil
    tolerance = np.full((10, 1), 0.1)
    tolerance[3:5] = 2.0  # as large as the gradient: unresolved
    not_smooth = np.arange(10) < 3
    rep = jg.Comparison("f", "jax.grad", "float64", jg.Mode.COORDINATES, "central", 2, 1, numeric, exact,
                        tolerance, np.zeros(0, int), None, None, ("x[0]",), {}, not_smooth=not_smooth)  # fmt: skip
    assert rep.verdict == "INCONCLUSIVE"
    assert rep.summary().splitlines()[-1] == (
        "verdict: INCONCLUSIVE, no mismatch, but 2 of 10 points cannot be resolved (the tolerance is as large as the "
        "gradient there); 3 of 10 points are not smooth here: try another step (step=...) or method='richardson'"
    )  # float64 is not offered to a float64 run
    float32 = dataclasses.replace(rep, dtype="float32")
    assert float32.summary().endswith(": try float64, another step (step=...) or method='richardson'")


class Tagged(jg.Comparison):
    """A user's subclass (module level: pickled by name)."""


def test_a_comparison_keeps_its_statistics_so_nothing_it_holds_or_returns_can_be_changed():
    """The verdict and the statistics are computed once and kept, so no write may change what they were computed
    from: the arrays it holds and the arrays it returns refuse writes, the caller's own arrays are copied (the caller
    may still write them), and a pickled or deep-copied one is as read-only and recomputes from its fields (from the
    review: a user who scaled rep.error in place for a plot turned a MISMATCH into OK)."""
    exact = np.ones((4, 1))
    numeric = exact.copy()
    numeric[0, 0] = 2.0  # a wrong gradient at point 0
    rep = jg.Comparison("f", "jax.grad", "float64", jg.Mode.COORDINATES, "central", 2, 1, numeric, exact,
                        np.full((4, 1), 0.1), np.zeros(0, int), None, None, ("x[0]",), {})  # fmt: skip
    assert rep.verdict == "MISMATCH"
    for array in (rep.numeric, rep.error, rep.ratio, rep.passed, rep.mismatched, rep.resolution):
        with pytest.raises(ValueError, match="read-only"):
            array *= 0
    numeric[0, 0] = 1.0  # the caller's own array: still writable, and not the comparison's
    fresh = jg.Comparison("f", "jax.grad", "float64", jg.Mode.COORDINATES, "central", 2, 1, numeric, exact,
                          np.full((4, 1), 0.1), np.zeros(0, int), None, None, ("x[0]",), {})  # fmt: skip
    assert rep.numeric[0, 0] == 2.0 and rep.rows()[0]["passed"] is False and fresh.verdict == "OK"
    for copied in (pickle.loads(pickle.dumps(rep)), copy.deepcopy(rep)):
        with pytest.raises(ValueError, match="read-only"):
            copied.numeric[0, 0] = 1.0
        assert copied.verdict == "MISMATCH" and copied.mismatched.tolist() == [True, False, False, False]
    assert dataclasses.replace(rep, numeric=exact).verdict == "OK"
    base = np.ones((4, 1))  # a read-only view of an array the caller still writes is copied too
    view = base.view()
    view.flags.writeable = False
    viewed = jg.Comparison("f", "jax.grad", "float64", jg.Mode.COORDINATES, "central", 2, 1, view, exact,
                           np.full((4, 1), 0.1), np.zeros(0, int), None, None, ("x[0]",), {})  # fmt: skip
    base[0, 0] = 5.0
    assert viewed.numeric[0, 0] == 1.0 and viewed.verdict == "OK"
    tagged = Tagged(*(getattr(rep, field.name) for field in dataclasses.fields(rep)))
    tagged.tag = "run 7"  # a subclass's own attributes travel; the kept statistics do not
    assert tagged.verdict == "MISMATCH"
    for copied in (pickle.loads(pickle.dumps(tagged)), copy.copy(tagged), copy.deepcopy(tagged)):
        assert type(copied) is Tagged and copied.tag == "run 7" and "verdict" not in vars(copied)


# ------------------------------------------------------------------------------------------------ directional mode
def test_above_4096_coordinates_a_step_of_ones_own_checks_every_coordinate():
    """Random directions are the default there, and they take no step of the caller's: with one, compare raised
    "Pass step=None, or directions=None" to a caller who had passed directions=None (from the review); it checks
    every coordinate at that step instead."""
    points = np.full((2, 4097), 0.5, np.float32)
    assert jg.compare(functions.sphere, points, reference=False).mode is jg.Mode.DIRECTIONAL
    rep = jg.compare(functions.sphere, points, step=1e-2, reference=False)
    assert rep.mode is jg.Mode.COORDINATES and rep.numeric.shape == (2, 4097) and rep.verdict == "OK"


def test_directional_mode_passes_correct_and_catches_a_bug(dtype):
    f = functions.rosenbrock
    points = f.sample(200, 40, seed=2, dtype=dtype.name)
    rep = jg.compare(f, points, directions=6)
    assert (
        rep.ok
        and rep.mode is jg.Mode.DIRECTIONAL
        and rep.mode_label == "6 random directions"
        and rep.numeric.shape == (200, 6)
    )
    bug = next(b for b in zoo.bugs(dtype.name) if b.name == "sign flip")
    with pytest.raises(jg.GradientMismatchError, match="direction"):
        jg.check_grad(bug.fun, zoo.sample(64, 6, dtype.name, seed=9), directions=4)


def test_a_line_where_f_does_not_change_at_all_is_not_a_mismatch(dtype):
    """erf(x0) + erf(x1) with both saturated is 1 − 1 = 0 exactly on the whole stencil, while its true gradient (and
    jax.grad's, right to 7 digits) is 2/√π·exp(−x²) ≈ 1e-8 (float32) / 1e-17 (float64): compare called all 1,000
    points a MISMATCH (tolerance ~1e-14 from 2·eps·|f| = 0; from an adversarial review). Such a line cannot resolve
    a change below f's rounding at unit scale: not resolved, INCONCLUSIVE. A wrong gradient of 1e-3 on relu's flat
    side is still a MISMATCH at every point."""
    edge = 4.0 if dtype == np.float32 else 6.2  # erf rounds to ±1 beyond
    rng = np.random.default_rng(7)
    points = jnp.asarray(np.stack([-rng.uniform(edge, edge + 1, 300), rng.uniform(edge, edge + 1, 300)], 1), dtype)
    f = lambda x: jax.scipy.special.erf(x[0]) + jax.scipy.special.erf(x[1])  # noqa: E731
    assert not np.any(np.asarray(jax.vmap(f)(points))), "f is exactly 0 at these points"
    exact = 2 / np.sqrt(np.pi) * np.exp(-(np.asarray(points, np.float64) ** 2))
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(f))(points), np.float64), exact, rtol=1e-5)
    report = jg.compare(f, points, reference=False)
    assert report.verdict is jg.Verdict.INCONCLUSIVE and not report.mismatched.any(), report.summary()
    relu_sum = lambda x: jnp.sum(jax.nn.relu(x))  # noqa: E731
    wrong = jg.compare(relu_sum, -jnp.abs(points), grad_fn=lambda x: jnp.full_like(x, 1e-3), reference=False)
    assert wrong.mismatched.all(), wrong.summary()


def test_directional_mode_calls_a_kink_on_the_line_not_smooth_not_a_mismatch(dtype):
    """relu(x) + 0.1·x² with its kink within a step of every point along x[0]: a central difference across the kink
    averages the two slopes, off from the right jax.grad by up to half the jump, at t and 2t alike (so the Richardson
    estimate sees nothing). Coordinate mode calls such points NOT_SMOOTH; directional mode called 11 of these 100
    float32 points (12 in float64) a MISMATCH, and with method='richardson' 7 (86). It now runs the same smoothness
    test along each direction. The points whose lines pass no kink still catch a wrong gradient."""

    def kinked(x):
        return jnp.sum(jax.nn.relu(x)) + 0.1 * jnp.sum(x**2)

    rng = np.random.default_rng(0)
    points = rng.standard_normal((200, 10)).astype(dtype)
    points[:100, 0] = rng.uniform(-1, 1, 100).astype(dtype) * float(np.finfo(dtype).eps) ** (1 / 3)  # at the kink
    points[100:] = np.where(np.abs(points[100:]) < 0.1, 0.5, points[100:])  # every kink more than 0.1 away
    for method in ("central", "richardson"):
        rep = jg.compare(kinked, points, directions=8, method=method, reference=False)
        assert not rep.mismatched.any() and rep.kinked[:100].any() and not rep.kinked[100:].any(), rep.summary()
        assert "mismatches; directions=None checks every coordinate, with step='auto'" in rep.summary()
    wrong = jax.grad(lambda x: kinked(x) + 0.1 * jnp.sum(x[1:] ** 2))  # off by 0.2·x in every smooth coordinate
    rep = jg.compare(kinked, points, grad_fn=wrong, directions=8, reference=False)
    assert rep.mismatched[100:].all(), rep.summary()


def test_directions_and_step_are_exclusive():
    with pytest.raises(ValueError, match="`step` applies to coordinate mode"):
        jg.compare(functions.sphere, np.ones((2, 3)), directions=3, step=1e-3)


# ------------------------------------------------------------------------------------------------ inputs and report
def test_check_grad_takes_one_point_or_a_batch():
    f = functions.rosenbrock
    one = f.sample(1, 5, seed=0)[0]
    assert jg.check_grad(f, one).num_points == 1
    assert jg.check_grad(f, f.sample(7, 5, seed=0)).num_points == 7
    assert jg.check_grad(lambda m: jnp.sum(m[0] * m[1]), np.ones((2, 3)), batched=False).num_points == 1


def test_check_grad_reads_a_list_of_numbers_as_one_point():
    """The notes' point [3, 4] (compare reads nested lists of numbers as an array, and so does check_grad): it was
    split into a list of two scalars that f could not take."""
    rep = jg.check_grad(functions.sphere, [3.0, 4.0])
    assert rep.num_points == 1 and rep.dim == 2
    np.testing.assert_allclose(np.ravel(rep.numeric), [6.0, 8.0], rtol=1e-5)  # 2x
    with pytest.raises(jg.GradientMismatchError, match=r"x\[1\]"):
        jg.check_grad(functions.sphere, [3, 4], grad_fn=lambda x: x * jnp.array([2.0, 2.2], x.dtype))


def test_pytree_points_and_names():
    rep = jg.compare(zoo.mlp_loss, zoo.sample_mlp(40, DTYPES[-1]), reference_points=3)
    assert rep.ok and rep.dim == 4 * 3 + 3 + 3
    assert "x['w1'][0, 0]" in rep.coordinate_names and "x['b1'][2]" in rep.coordinate_names


@pytest.mark.parametrize("as_tree", [False, True])
def test_the_reference_calls_jax_code_compiled_and_agrees_with_the_analytic_gradient(as_tree):
    """The reference's 4·d·m calls of a JAX fun (4,000 here) run compiled, not op by op, even where one call op by
    op is quick (~0.2-0.4 s in all, under the second it once took to jit): fun's Python body runs a handful of
    times (two probing calls, the traces), and the reference still agrees with cos(x)·x + sin(x) within its own
    tolerance. An unhashable callable (a dataclass holding an array) is jitted too."""

    @dataclasses.dataclass
    class Model:  # eq=True: unhashable, as an Equinox module holding arrays
        scale: np.ndarray
        calls: list

        def __call__(self, x):
            self.calls.append(1)
            v = x["v"] if as_tree else x
            return jnp.sum(self.scale * jnp.sin(v) * v)

    model = Model(np.ones(10, DTYPES[-1]), [])
    rows = np.random.default_rng(5).uniform(-1, 1, (100, 10)).astype(DTYPES[-1])
    for _ in range(3):  # its operations compiled op by op: a warm call takes ~20-100 µs
        model({"v": rows[0]} if as_tree else rows[0])
    model.calls.clear()
    rep = jg.compare(model, {"v": rows} if as_tree else rows, reference_points=100)
    assert rep.ok, rep.summary()
    assert len(model.calls) < 40, len(model.calls)  # op by op: 4,000 and more
    analytic = np.cos(rows.astype(np.float64)) * rows + np.sin(rows.astype(np.float64))
    assert np.all(np.abs(rep.reference - analytic[rep.reference_index]) <= rep.reference_tolerance)


def test_grad_fn_that_does_not_trace_runs_point_by_point():
    rep = jg.compare(functions.sphere, functions.sphere.sample(20, 3), grad_fn=lambda x: 2 * np.asarray(x))
    assert rep.ok and any("point by point" in note for note in rep.notes)


def test_grad_fn_with_the_wrong_structure():
    with pytest.raises(ValueError, match="structure of its input"):
        jg.compare(lambda t: jnp.sum(t["a"]), {"a": jnp.ones((3, 2))}, grad_fn=lambda t: t["a"], reference=False)


def test_rtol_atol_loosen_the_check():
    bug = next(b for b in zoo.bugs("float32") if b.name == "relative error")
    points = zoo.sample(16, 6, "float32", seed=1)
    assert not jg.compare(bug.fun, points, reference=False).ok
    assert jg.compare(bug.fun, points, reference=False, rtol=0.05).ok


def test_report_exports(tmp_path):
    f = functions.himmelblau
    rep = jg.compare(f, f.sample(30, seed=3), reference_points=5)
    summary = rep.summary()
    for text in ("jaxgrad vs jax.grad", "numpy ref vs jax.grad", "jaxgrad vs numpy ref", "verdict: OK", "times:"):
        assert text in summary
    data = rep.to_dict()
    assert data["ok"] and data["num_points"] == 30 and len(data["rows"]) == 30 and data["reference_points"] == 5
    rep.to_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["point"] == 0
    rep.to_csv(tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert len(lines) == 31 and lines[0].startswith("function,dtype,point,passed")
    assert rep.worst.tolerance > 0 and rep.worst.ratio <= 1


# ------------------------------------------------------------------------------------------------------ files, compiles
def _dict_writer_csv(rep) -> str:
    """What `csv.DictWriter` writes for `rows()` with the function and dtype first (the reference for the CSV)."""
    stream = io.StringIO()
    rows = [dict(function=rep.function, dtype=rep.dtype, **row) for row in rep.rows()]
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


@pytest.mark.parametrize("dtype", DTYPES)
def test_serialize_writes_what_json_and_csv_write_from_the_dicts(dtype):
    """The column-wise encoder gives the text of json.dumps(to_dict()) and of csv.DictWriter over rows(), with NaN and
    infinity (log at a negative point and at 0) and coordinate names that need quoting (a comma, a quote)."""

    def fun(p):
        return jnp.sum(p["w"] ** 2) + jnp.log(p['q"b'][0])

    rng = np.random.default_rng(1)
    q = rng.uniform(0.5, 2.0, (12, 2)).astype(dtype)
    q[0, 0], q[1, 0] = -1.0, 0.0  # f is NaN at point 0 and -inf at point 1
    points = {"w": rng.normal(size=(12, 2, 3)).astype(dtype), 'q"b': q}
    rep = jg.compare(fun, points, reference_points=3)
    assert rep.nonfinite[:2].all() and "x['w'][1, 2]" in rep.coordinate_names
    text = rep.serialize()
    assert text.json == json.dumps(rep.to_dict(), default=float)
    assert ",".join(text.csv_header) + "\r\n" + text.csv_body == _dict_writer_csv(rep)


def test_members_of_a_family_share_one_checking_program_and_check_as_themselves():
    """`Member(family, i)` is checked by one program per shapes and options for the whole family (the index is data,
    `lax.switch` picks the function): two members, one compile; each report is its function's own (the numeric
    gradient bit for bit, jax.grad's to rounding: XLA fuses it differently inside the switch)."""
    from compile_count import counting_compiles

    from jaxgrad.verify._compare import Member

    def wave(x):  # functions of this test alone: no other test has compiled a program for them
        return jnp.sum(jnp.sin(2 * x) * x)

    def bowl(x):
        return jnp.sum(jnp.cosh(x)) + x[0] * x[1]

    family = (wave, bowl)
    points = jax.device_put(np.random.default_rng(4).uniform(-1, 1, (64, 3)).astype(DTYPES[-1]))
    with counting_compiles() as (compiles, _):
        shared = [jg.compare(Member(family, i), points, reference=False) for i in range(2)]
    assert sum(compiles.values()) == 1, compiles
    eps = float(np.finfo(DTYPES[-1]).eps)
    for fun, rep in zip(family, shared, strict=True):
        alone = jg.compare(fun, points, reference=False)
        assert rep.function == fun.__name__ and rep.ok and alone.ok
        np.testing.assert_array_equal(rep.numeric, alone.numeric)
        np.testing.assert_allclose(rep.exact, np.asarray(jax.vmap(jax.grad(fun))(points)), rtol=8 * eps, atol=8 * eps)


def test_compare_compiles_one_program_and_a_second_call_none():
    """The check and jax.grad run in one program, whose static arguments are the caller's function itself (no fresh
    jax.grad or closure): a second compare at the same shapes, dtype and options compiles nothing."""
    from compile_count import counting_compiles

    def fun(x):  # a function of this test alone: no other test has compiled a program for it
        return jnp.sum(jnp.sin(x) * x**2)

    points = jax.device_put(np.random.default_rng(2).uniform(-1, 1, (64, 3)).astype(DTYPES[-1]))
    other = jax.device_put(np.random.default_rng(3).uniform(-1, 1, (64, 3)).astype(DTYPES[-1]))
    with counting_compiles() as (first, _):  # the NumPy reference, which calls fun op by op, is not counted
        rep = jg.compare(fun, points, reference=False)
    with counting_compiles() as (second, _):
        again = jg.compare(fun, other, reference=False)
    assert rep.ok and again.ok
    assert sum(first.values()) == 1, first
    assert sum(second.values()) == 0, second
    np.testing.assert_allclose(again.exact, np.asarray(jax.vmap(jax.grad(fun))(other)), rtol=1e-6)

"""Step studies, pictures, the study and plot commands."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, X64

import jaxgrad as jg
from jaxgrad import functions, plot
from jaxgrad.cli import main


@pytest.mark.parametrize("name", ["rosenbrock", "styblinski_tang", "himmelblau"])
def test_best_step_matches_theory_and_default_is_near_best(name):
    """Central order 2: the best step found is within 4x of the theory's, the default step's error within 10x of
    the best step's, in every dtype of this run."""
    f = functions.get(name)
    study = jg.step_study(f, f.sample(500, f.default_dim, seed=3), dtypes=DTYPES, methods=("central",))
    assert [b.dtype for b in study.best()] == list(DTYPES)
    for b in study.best():
        assert 0.25 <= b.step_ratio <= 4, b
        assert b.default_vs_best <= 10, b


def test_the_default_step_reported_is_the_one_taken():
    """At points with |x| ≤ 1 every default step is eps^(1/(p+1)) rounded to the nearest power of two: 2^-8 in
    float32 (eps^(1/3) = 4.9e-3) and 2^-17 in float64 (6.1e-6) for central order 2, 2^-12 and 2^-26 for forward
    order 1 (eps^(1/2): 3.5e-4 and 1.5e-8). The study reported eps^(1/(p+1)) unrounded, a step no run took."""
    expected = {("float32", "central"): 2**-8, ("float64", "central"): 2**-17, ("float32", "forward"): 2**-12,
                ("float64", "forward"): 2**-26}  # fmt: skip
    points = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    study = jg.step_study(lambda x: jnp.sum(jnp.sin(x)), points, steps=[1e-3], dtypes=DTYPES,
                          methods=("central", ("forward", 1)))  # fmt: skip
    for b in study.best():
        assert b.default_step == expected[b.dtype, b.method], b


def test_an_unhashable_grad_fn_or_fun_is_taken():
    """A callable dataclass (unhashable, as an Equinox module holding arrays) as grad_fn or fun: step_study's exact
    gradients and taylor_test's programs take it as a static argument, by identity. 2x, the exact gradient of
    sphere, gives the same curves as jax.grad's."""

    @dataclasses.dataclass
    class Twice:
        scale: object

        def __call__(self, x):
            return self.scale * x

    points = functions.sphere.sample(10, 3, seed=0)
    kwargs = {"steps": [1e-2, 1e-4], "dtypes": DTYPES[-1:], "methods": ("central",)}
    own = jg.step_study(functions.sphere, points, grad_fn=Twice(jnp.array(2.0)), **kwargs).curves[0]
    autodiff = jg.step_study(functions.sphere, points, **kwargs).curves[0]
    np.testing.assert_array_equal(own.median, autodiff.median)

    @dataclasses.dataclass
    class Squares:  # f(x) = scale/2 · |x|², unhashable too
        scale: object

        def __call__(self, x):
            return 0.5 * self.scale * jnp.sum(x**2)

    assert jg.taylor_test(Squares(jnp.array(2.0)), points[0]).correct  # jax.grad of it in one compiled program
    assert jg.taylor_test(Squares(jnp.array(2.0)), points[0], grad_fn=Twice(jnp.array(2.2))).verdict.name == "MISMATCH"


def test_the_step_grid_does_not_retrace():
    """A fresh function traced for a grid of 8 steps and for one of 32 is traced the same number of times: the grid
    is an array inside one compiled program per (dtype, method), not a Python loop."""

    def traces_for(num_steps):
        traces = []

        def f(x):
            traces.append(1)
            return jnp.sum(jnp.sin(x) * x)

        points = np.random.default_rng(0).uniform(-1, 1, (50, 3))
        jg.step_study(f, points, steps=np.logspace(0, -5, num_steps), dtypes=("float32",))
        return len(traces)

    assert traces_for(8) == traces_for(32)


def test_study_records_and_exports(tmp_path):
    f = functions.rosenbrock
    study = jg.step_study(f, f.sample(50, 3, seed=1), steps=np.logspace(0, -5, 11), dtypes=("float32",),
                          methods=("central", ("forward", 1)))  # fmt: skip
    rows = study.rows()
    assert len(rows) == 2 * 11 and {r["method"] for r in rows} == {"central", "forward"}
    for r in rows:
        assert r["median"] <= r["p90"] <= r["max"]
    study.to_csv(tmp_path / "s.csv")
    study.to_json(tmp_path / "s.json")
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 22
    assert len(json.loads((tmp_path / "s.json").read_text())["best"]) == 2
    assert "best/theory" in study.summary()


def test_float64_needs_x64():
    f = functions.sphere
    if X64:
        study = jg.step_study(f, f.sample(20, 2), steps=[1e-3], dtypes=("float32", "float64"))
        assert {c.dtype for c in study.curves} == {"float32", "float64"}
    else:
        with pytest.warns(UserWarning, match="float64 needs"):
            study = jg.step_study(f, f.sample(20, 2), steps=[1e-3], dtypes=("float32", "float64"))
        assert {c.dtype for c in study.curves} == {"float32"}


# ---------------------------------------------------------------------------------------------------- pictures
def test_minus_gradient_field_of_the_notes_function():
    """Arrows of -grad f for x0² + x1² point to (0, 0) and their length is 2·distance: they grow away from it."""
    X, Y, U, V = plot.gradient_field(lambda v: v[0] ** 2 + v[1] ** 2, ((-2.0, 2.5), (-2.0, 2.5)), grid=18)
    distance = np.hypot(X, Y)
    away = distance > 1e-9
    cosine = -(U * X + V * Y)[away] / (np.hypot(U, V)[away] * distance[away])
    np.testing.assert_allclose(cosine, 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(U, V)[away] / distance[away], 2.0, rtol=1e-4)


def test_descent_reaches_the_minimum():
    path = plot.descent_path(functions.sphere, [-3.0, 4.0], learning_rate=0.1, steps=100)
    assert path.shape == (101, 2)
    assert np.linalg.norm(path[-1]) <= 1.1 * 5.0 * 0.8**100  # each step scales x by 1 - 2·0.1 = 0.8
    assert np.all(np.diff(np.linalg.norm(path, axis=1)) < 0)  # every step goes downhill


def test_theory_best_step_stays_on_the_grid():
    """Rosenbrock is a quartic: f^(5) = 0, so central order 4 has no truncation term and the model's error falls
    with h up to the largest step of the grid, where its best step is put and marked (it was drawn at s = 10, off
    a grid ending at 1); central order 2 has a V inside the grid; a grid above the V marks its smallest step."""
    f = functions.rosenbrock
    points = f.sample(40, 3, seed=2, dtype="float32")
    grid = np.logspace(0, -6, 13)
    study = jg.step_study(f, points, steps=grid, dtypes=("float32",), methods=("central", ("central", 4)))
    order2, order4 = study.curves
    assert grid.min() < order2.theory_step < grid.max() and order2.theory_beyond == ""
    assert order4.theory_step == grid.max() and order4.theory_beyond == "above"
    assert any("float32 central 4" in note and "f^(5) is negligible" in note for note in study.notes)
    assert "≥1.00e+00" in study.summary() and [b.theory_beyond for b in study.best()] == ["", "above"]
    coarse = jg.step_study(f, points, steps=np.logspace(0, -1, 5), dtypes=("float32",))  # the V is near s = 4e-3
    assert coarse.curves[0].theory_step == pytest.approx(0.1) and coarse.curves[0].theory_beyond == "below"


def test_drawn_box_holds_the_descent_path():
    """The box grows by 5% of the new span on each side that must hold the path; a square box stays square."""
    grown = plot.domain_holding(((-2, 2), (-2, 2)), [[-3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(grown, [[-3.35, 4.35], [-3.35, 4.35]])  # [-3, 4] ± 0.05·7
    np.testing.assert_allclose(plot.domain_holding(((-2, 2), (-1, 1)), [[0.5, 3.0]]), [[-2, 2], [-1, 3.2]])
    assert plot.domain_holding(((-2, 2), (-2, 2)), [[1.0, 1.0]]) == ((-2, 2), (-2, 2))
    with pytest.raises(ValueError, match="not finite from step 2 on"):
        plot.domain_holding(((-2, 2), (-2, 2)), [[1.0, 1.0], [3.0, 3.0], [np.inf, 0.0]])


def test_field_picture_covers_a_path_from_outside_its_domain():
    """The arrows are drawn over the grown box, not only over the asked-for domain (a lopsided picture before)."""
    fig = plot.plot_gradient_field(functions.sphere, domain=((-2, 2), (-2, 2)), grid=5, descent_from=(-3.0, 4.0))
    arrows = fig.axes[0].collections[-1].get_offsets()  # the quiver's anchor points
    np.testing.assert_allclose([arrows[:, 0].min(), arrows[:, 1].max()], [-3.35, 4.35])
    x, history = jg.reference.gradient_descent(functions.sphere, np.array([-3.0, 4.0]), lr=0.1, step_num=10)
    fig = plot.plot_gradient_field(functions.sphere, domain=((-2, 2), (-2, 2)), descent=np.vstack([history, [x]]))
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xydata(), 0.8 ** np.arange(11)[:, None] * [-3.0, 4.0], atol=1e-10)
    with pytest.raises(ValueError, match="not both"):
        plot.plot_gradient_field(functions.sphere, descent_from=(1.0, 1.0), descent=history)


def test_pictures_are_written(tmp_path):
    f = functions.rosenbrock
    study = jg.step_study(f, f.sample(30, 2, seed=1), steps=np.logspace(0, -5, 6), dtypes=("float32",))
    plot.plot_study(study, tmp_path / "v.png")
    plot.plot_study(study, tmp_path / "v.svg")
    plot.plot_gradient_field(functions.sphere, tmp_path / "field.png", grid=7, descent_from=(-3.0, 4.0), steps=5)
    axis = np.linspace(-4, 4, 12)
    points = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    plot.plot_error_map(jg.compare(functions.himmelblau, points, reference=False), tmp_path / "map.png")
    for name in ("v.png", "field.png", "map.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "v.svg").read_bytes()[:2000]
    with pytest.raises(ValueError, match="function of 2 coordinates"):
        plot.plot_error_map(jg.compare(functions.sphere, np.ones((3, 3)), reference=False))


def test_the_error_map_marks_what_the_verdict_counts():
    """A point out of tolerance only where f is not smooth (Ackley's kink at 0, where jax.grad is NaN) is marked
    "not smooth here", not "fails" beside a title that says OK (from the review); a planted bug is a "mismatch"."""
    axis = np.linspace(-2, 2, 11)  # holds (0, 0)
    points = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    rep = jg.compare(functions.ackley, points, reference=False)
    assert rep.kinked.any() and not rep.mismatched.any()

    def labels(figure):
        return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]

    assert labels(plot.plot_error_map(rep)) == ["not smooth here"]
    wrong = jg.compare(functions.sphere, points, grad_fn=lambda x: 2.1 * x, reference=False)
    assert labels(plot.plot_error_map(wrong)) == ["mismatch"]


@pytest.mark.x64_independent
def test_study_and_plot_commands(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--function", "rosenbrock", "--dim", "3", "--points", "40", "--dtype", "float32", "--quiet"]
    assert main([*argv, "--method", "central", "forward", "central:4", "--out", str(out)]) == 0
    assert "best/theory" in capsys.readouterr().out
    for name in ("study.csv", "study.json", "v_curve.png", "v_curve.svg"):
        assert (out / name).stat().st_size > 0
    assert {r["method"] for r in json.loads((out / "study.json").read_text())["rows"]} == {"central", "forward"}
    assert main(["plot", "field", "--function", "sphere", "--out", str(tmp_path / "f.png"), "--descent=-3,4"]) == 0
    assert main(["plot", "errormap", "--function", "beale", "--grid", "9", "--out", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "e.png").stat().st_size > 0


# The notebooks are executed by tests/test_docs.py, with the docs site built from them.

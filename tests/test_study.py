"""Step studies, pictures, the study and plot commands, and the notebooks."""

import json
import pathlib

import jax.numpy as jnp
import nbformat
import numpy as np
import pytest
from conftest import DTYPES, X64
from nbclient import NotebookClient

import jaxgrad as jg
from jaxgrad import functions, plot
from jaxgrad.cli import main

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


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


# ---------------------------------------------------------------------------------------------------- notebooks
def test_three_notebooks_exist_without_outputs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_partial_derivatives_and_gradient.ipynb",
        "02_numeric_vs_autodiff.ipynb",
        "03_thousands_of_points.ipynb",
    ]
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    assert any(out.get("output_type") == "display_data" for cell in book.cells for out in cell.get("outputs", []))

"""The README's examples do what it says (its doctests run separately, via --doctest-glob)."""

import pathlib
import re

import jax
import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_ten_line_example_runs_and_is_right():
    text = README.read_text()
    block = re.search(r"## Ten lines\s+```python\n(.*?)```", text, re.S).group(1)
    assert len([line for line in block.splitlines() if line.strip()]) <= 10
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)  # the README's own example
    jg = namespace["jg"]
    points, g = namespace["points"], np.asarray(namespace["g"], np.float64)
    exact = jg.functions.rosenbrock.gradient(points.astype(np.float64))
    rel = np.linalg.norm(g - exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert g.shape == (100_000, 8) and np.median(rel) < 1e-4
    params = namespace["params"]
    numeric, autodiff = jg.grad(namespace["loss"])(params), jax.grad(namespace["loss"])(params)
    for a, b in zip(jax.tree_util.tree_leaves(numeric), jax.tree_util.tree_leaves(autodiff), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)


def test_readme_gives_the_two_setup_commands():
    text = README.read_text()
    assert "pip install . && jaxgrad compare" in text
    assert "ci/test" in text


def _block(heading: str) -> str:
    return re.search(rf"## {heading}\s+```python\n(.*?)```", README.read_text(), re.S).group(1)


def test_is_my_gradient_right_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_block("Is my gradient right\\?"), "README.md", "exec"), namespace)
    rep = namespace["rep"]
    assert rep.ok and rep.num_points == 10_000 and rep.passed.all()
    assert (tmp_path / "r.json").stat().st_size > 0 and (tmp_path / "r.csv").stat().st_size > 0
    jg, f, points = namespace["jg"], namespace["f"], namespace["points"]
    assert abs(jg.taylor_test(f, points[0], grad_fn=namespace["my_grad"]).slope - 2) < 0.2
    wrong = jg.compare(f, points[:64], grad_fn=lambda x: namespace["my_grad"](x) * 1.01)
    assert not wrong.ok  # the same check catches a 1% error


def test_studies_block_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_block("Studies, pictures, notebooks"), "README.md", "exec"), namespace)
    for name in ("study.csv", "v_curve.png", "field.svg", "map.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert {c.dtype for c in namespace["study"].curves} >= {"float32"}

"""The command line with the users' own functions and files (issue 15, items 1 and 2): `--like` pytree inputs,
`--dim` inferred or explained, and `jaxgrad grad --points-file ... --out ...` streamed in chunks.

Every expected gradient comes from a hand-written NumPy backpropagation or an analytic formula, never from jaxgrad.

A test that only runs the command (which computes under its own jax.enable_x64) on the module's functions is marked
x64_independent (ci/test's float32-only pass alone); one that uses what the module computed with JAX when the fixture
imported it (flat_params, flat_loss's unravel: float32 when x64 is off) or calls JAX itself is not.
"""

import importlib
import re
import sys
import warnings

import numpy as np
import pytest
from conftest import interrupt_on_call

from jaxgrad.cli import main
from jaxgrad.cli._args import Example

MODULE = "clifiles_mlp"
SOURCE = """
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

rng = np.random.default_rng(0)
X = rng.normal(size=(16, 4))
Y = np.sin(X.sum(axis=1))
params = {"W1": 0.5 * rng.normal(size=(4, 8)), "b1": np.zeros(8), "W2": 0.5 * rng.normal(size=(8,)), "b2": np.zeros(())}


def loss(p):
    h = jnp.tanh(X @ p["W1"] + p["b1"][None, :])
    return jnp.mean((h @ p["W2"] + p["b2"] - Y) ** 2)


flat_params, unravel = ravel_pytree(params)  # 49 values: W1, W2, b1, b2 (sorted keys), each row-major


def flat_loss(theta):
    return loss(unravel(theta))


def make_params():
    return params


def wrong_grad(p):  # a planted bug in one coordinate
    g = jax.grad(loss)(p)
    return {**g, "W1": g["W1"].at[0, 3].add(0.05)}


def wave(x):
    return jnp.sum(jnp.sin(3 * x) * x**2) + x[0] * x[1] * x[2]


with_an_int = {"w": np.ones(3), "steps": np.array(3)}
"""


@pytest.fixture
def mlp(tmp_path, monkeypatch):
    """The user's module, importable as `clifiles_mlp` (its directory on sys.path and the working directory)."""
    (tmp_path / f"{MODULE}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield importlib.import_module(MODULE)
    sys.modules.pop(MODULE, None)


def backprop(module, flat: np.ndarray) -> np.ndarray:
    """The MLP loss's gradient by hand (NumPy), at rows of 49 values in ravel_pytree order (W1, W2, b1, b2)."""
    flat = np.atleast_2d(np.asarray(flat, np.float64))
    w1, w2, b1, b2 = flat[:, :32].reshape(-1, 4, 8), flat[:, 32:40], flat[:, 40:48], flat[:, 48]
    x, y = module.X, module.Y
    h = np.tanh(np.einsum("si,nij->nsj", x, w1) + b1[:, None, :])  # (N, samples, 8)
    dr = 2 * (np.einsum("nsj,nj->ns", h, w2) + b2[:, None] - y) / len(y)  # dL/d(output)
    dz = dr[:, :, None] * w2[:, None, :] * (1 - h**2)
    grads = [np.einsum("si,nsj->nij", x, dz).reshape(-1, 32), np.einsum("nsj,ns->nj", h, dr), dz.sum(axis=1),
             dr.sum(axis=1)[:, None]]  # fmt: skip
    return np.concatenate(grads, axis=1)


def wave_gradient(x: np.ndarray) -> np.ndarray:
    """∂/∂x_i of sum sin(3x) x² + x0 x1 x2, analytically."""
    own = 3 * np.cos(3 * x) * x**2 + 2 * x * np.sin(3 * x)
    cross = np.stack([x[:, 1] * x[:, 2], x[:, 0] * x[:, 2], x[:, 0] * x[:, 1]], axis=1)
    return own + cross


# ------------------------------------------------------------------------------------------------- --like
def test_flat_mlp_needs_its_dimension_and_then_checks(mlp, capsys):
    argv = ["compare", "--function", f"{MODULE}:flat_loss", "--points", "200", "--no-reference", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "8 coordinates" in err and "pass --dim" in err and "--like" in err
    assert main([*argv, "--like", f"{MODULE}:flat_params"]) == 0  # --dim inferred: 49
    out = capsys.readouterr().out
    assert re.search(r"clifiles_mlp:flat_loss\s+49\s+float32\s+200 .* OK", out)
    assert re.search(r"clifiles_mlp:flat_loss\s+49\s+float64\s+200 .* OK", out)


@pytest.mark.x64_independent
def test_dict_mlp_is_checked_and_a_planted_bug_found(mlp, capsys):
    argv = ["compare", "--function", f"{MODULE}:loss", "--points", "100", "--dtype", "float64", "--no-reference",
            "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "string indexing" in err and "pass --like module:attr" in err
    assert main([*argv, "--like", f"{MODULE}:params"]) == 0
    assert re.search(r"clifiles_mlp:loss\s+49\s+float64\s+100 .* OK", capsys.readouterr().out)
    assert main([*argv, "--like", f"{MODULE}:make_params", "--grad", f"{MODULE}:wrong_grad"]) == 1
    assert "x['W1'][0, 3]" in capsys.readouterr().out


def test_grad_at_the_example_prints_every_leaf(mlp, capsys):
    assert main(["grad", "--function", f"{MODULE}:loss", "--like", f"{MODULE}:params"]) == 0
    blocks = re.split(r"^(x\[.*\] \(.*\)):$", capsys.readouterr().out, flags=re.MULTILINE)[1:]
    names = blocks[::2]
    assert names == ["x['W1'] (4, 8)", "x['W2'] (8,)", "x['b1'] (8,)", "x['b2'] ()"]
    printed = np.concatenate(
        [np.array(text.replace("[", " ").replace("]", " ").split(), float) for text in blocks[1::2]]
    )
    np.testing.assert_allclose(printed, backprop(mlp, mlp.flat_params)[0], rtol=1e-6, atol=1e-7)  # print: 8 digits


def test_study_sweeps_the_steps_of_a_dict_mlp(mlp, capsys, tmp_path):
    """`study --like`: the example's 49 values are the study's vector, each point cast to the studied dtype."""
    from jaxgrad.cli.study import on_vectors

    example = Example(f"{MODULE}:params", mlp.params)
    vector = on_vectors(mlp.loss, example)
    theta = np.asarray(mlp.flat_params) + 0.1
    assert float(vector(theta)) == pytest.approx(float(mlp.flat_loss(theta)), rel=1e-12)
    leaf_sum = on_vectors(lambda p: p["W1"].sum() + p["b2"], example)
    assert leaf_sum(theta.astype(np.float32)).dtype == np.float32
    assert float(leaf_sum(theta)) == pytest.approx(theta[:32].sum() + theta[48], rel=1e-12)  # W1 first, b2 last
    argv = ["study", "--function", f"{MODULE}:loss", "--like", f"{MODULE}:params", "--points", "20",
            "--dtype", "float32", "--method", "central", "--steps", "1e-1", "1e-3", "--out", str(tmp_path / "st"),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "d=49, 20 points" in out
    row = next(line for line in out.splitlines() if line.startswith("float32  central 2"))
    assert float(row.split()[9]) < 1e-3  # the default step's median relative error against jax.grad
    assert (tmp_path / "st" / "study.csv").exists()


def test_points_sampled_around_the_example():
    example = Example("m:p", {"w": np.full((3, 4), 2.0), "b": np.zeros(5)})
    points = example.sample(4000, seed=0, dtype=np.float32)
    assert points["w"].dtype == np.float32 and points["w"].shape == (4000, 3, 4) and points["b"].shape == (4000, 5)
    np.testing.assert_array_equal(points["w"][0], 2.0)  # point 0 is the example itself
    np.testing.assert_array_equal(points["b"][0], 0.0)
    np.testing.assert_allclose((points["w"][1:] - 2.0).std(), 2.0, rtol=0.05)  # the leaf's RMS
    overall = np.sqrt(12 * 4.0 / 17)  # a zero leaf takes the whole example's RMS
    np.testing.assert_allclose(points["b"][1:].std(), overall, rtol=0.05)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--like", f"{MODULE}:params", "--dim", "8"],
         "--dim 8 disagrees with --like clifiles_mlp:params, which holds 49 values (x['W1'] (4, 8), x['W2'] (8,), "
         "x['b1'] (8,), x['b2'] ()); drop --dim"),
        (["compare", "--like", f"{MODULE}:params", "--domain", "-1,1"], "--domain draws points from a box"),
        (["compare", "--like", f"{MODULE}:with_an_int"], "leaf x['steps'] is int64; every leaf must be a float"),
        (["compare", "--like", f"{MODULE}:nosuch"], "'clifiles_mlp' has no attribute 'nosuch'"),
        (["compare", "--function", "rosenbrock", "--like", f"{MODULE}:params"], "takes a vector of coordinates"),
        (["compare", "--function", f"{MODULE}:flat_loss", "--like", f"{MODULE}:params"],
         "fails on the --like clifiles_mlp:params example"),
        (["grad", "--like", f"{MODULE}:params", "--point", "1,2"], "--point has 2 numbers and --like"),
    ],
)  # fmt: skip
def test_mismatched_dim_and_like_are_explained(mlp, capsys, argv, message):
    if argv[0] == "compare" and "--function" not in argv:
        argv = [*argv, "--function", f"{MODULE}:loss"]
    elif argv[0] == "grad":
        argv = [*argv, "--function", f"{MODULE}:loss"]
    assert main([*argv, "--points", "10"] if argv[0] == "compare" else argv) == 2
    err = capsys.readouterr().err
    assert message in err, err


@pytest.mark.x64_independent
def test_study_and_plot_of_a_dict_loss_without_like_say_what_to_pass(mlp, capsys, tmp_path):
    """They said "JAX does not support string indexing; got idx='W1'" alone (from the review)."""
    loss = f"{MODULE}:loss"
    assert main(["study", "--function", loss, "--points", "5", "--out", str(tmp_path), "--quiet"]) == 2
    assert "it takes a structure, not a vector; pass --like module:attr" in capsys.readouterr().err
    assert main(["plot", "field", "--function", loss, "--out", str(tmp_path / "f.png")]) == 2
    assert f"--function {loss} cannot be drawn: plot draws a function of 2 coordinates" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


# ------------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_npy_to_npy_against_backprop(mlp, tmp_path, capsys, dtype):
    points = np.random.default_rng(1).normal(size=(1000, 49)).astype(dtype)
    np.save(tmp_path / "pts.npy", points)
    argv = ["grad", "--function", f"{MODULE}:flat_loss", "--points-file", "pts.npy", "--out", "grads.npy",
            "--chunk-size", "300"]  # fmt: skip  # 3 full chunks and a padded last one
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"wrote 1,000 gradients ({dtype}, 49 values each) to grads.npy" in captured.out
    assert captured.err == ""  # no progress bar off a terminal
    grads = np.load(tmp_path / "grads.npy")
    assert grads.dtype == dtype and grads.shape == (1000, 49)
    tolerance = dict(rtol=1e-2, atol=1e-3) if dtype == "float32" else dict(rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grads, backprop(mlp, points), **tolerance)


@pytest.mark.x64_independent
def test_npy_rows_of_a_pytree_function_with_errors(mlp, tmp_path, capsys):
    points = np.random.default_rng(2).normal(size=(1000, 49))
    np.save(tmp_path / "pts.npy", points)
    argv = ["grad", "--function", f"{MODULE}:loss", "--like", f"{MODULE}:params", "--points-file", "pts.npy",
            "--out", "g.npy", "--with-error"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "their errors to g.error.npy and statuses to g.status.npy; 1,000 OK" in out
    grads, errors = np.load(tmp_path / "g.npy"), np.load(tmp_path / "g.error.npy")
    np.testing.assert_allclose(grads, backprop(mlp, points), rtol=1e-7, atol=1e-9)
    assert errors.shape == (1000, 49) and np.all(errors > 0) and np.all(errors < 1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "g.status.npy"), np.zeros(1000, np.int8))


@pytest.mark.x64_independent
def test_csv_to_csv_against_the_analytic_gradient(mlp, tmp_path, capsys):
    points = np.random.default_rng(3).uniform(-2, 2, size=(1000, 3))
    np.savetxt(tmp_path / "pts.csv", points, delimiter=",", header="a,b,c", comments="")
    argv = ["grad", "--function", f"{MODULE}:wave", "--points-file", "pts.csv", "--out", "grads.csv",
            "--with-error", "--chunk-size", "400", "--progress"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "wrote 1,000 gradients (float64, 3 values each) to grads.csv" in captured.out
    assert "grad:   0%|" in captured.err and "/1.00k" in captured.err  # --progress: a bar on stderr, off a terminal too
    lines = (tmp_path / "grads.csv").read_text().splitlines()
    assert lines[0] == "grad[0],grad[1],grad[2],error[0],error[1],error[2],status" and len(lines) == 1001
    table = np.loadtxt(tmp_path / "grads.csv", delimiter=",", skiprows=1, usecols=range(6))
    np.testing.assert_allclose(table[:, :3], wave_gradient(points), rtol=1e-8, atol=1e-9)
    assert np.all(table[:, 3:] < 1e-7) and {line.rsplit(",", 1)[1] for line in lines[1:]} == {"OK"}


@pytest.mark.x64_independent
def test_rows_whose_gradient_is_not_finite_are_named(tmp_path, capsys, monkeypatch):
    """Points with NaN or inf wrote NaN gradients and 'wrote 30 gradients', exit 0, with no word unless --with-error
    counted NONFINITE (from a new-user review); the last line now names the rows, with or without it."""
    monkeypatch.chdir(tmp_path)
    points = np.random.default_rng(5).normal(size=(30, 3))
    points[17, 1], points[4, 0] = np.nan, np.inf
    np.save("pts.npy", points)
    for extra in ([], ["--with-error"]):
        assert main(["grad", "--function", "sphere", "--points-file", "pts.npy", "--out", "g.npy", *extra]) == 0
        assert "; 2 not finite (NaN or inf): rows 4, 17, counted from 0" in capsys.readouterr().out
        gradients = np.load("g.npy")
        np.testing.assert_array_equal(~np.isfinite(gradients).all(axis=1), np.isin(np.arange(30), [4, 17]))


@pytest.mark.parametrize("kind", ["npy", "csv"])
@pytest.mark.x64_independent
def test_an_interrupted_run_keeps_its_finished_rows(mlp, tmp_path, capsys, monkeypatch, kind):
    points = np.random.default_rng(4).uniform(-2, 2, size=(1000, 3))
    np.save(tmp_path / "pts.npy", points)
    interrupt_on_call(monkeypatch, importlib.import_module("jaxgrad.cli.grad"), "batch_grad", 3)  # Ctrl-C in chunk 3
    argv = ["grad", "--function", f"{MODULE}:wave", "--points-file", "pts.npy", "--out", f"g.{kind}",
            "--chunk-size", "100", "--with-error"]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted: 200 of 1,000 rows written to g." in capsys.readouterr().out
    if kind == "npy":
        grads, status = np.load(tmp_path / "g.npy"), np.load(tmp_path / "g.status.npy")
        assert np.load(tmp_path / "g.error.npy").shape == (200, 3) and status.shape == (200,)
    else:
        grads = np.loadtxt(tmp_path / "g.csv", delimiter=",", skiprows=1, usecols=range(3))
    np.testing.assert_allclose(grads, wave_gradient(points[:200]), rtol=1e-8, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--points-file", "pts.npy"], "--points-file and --out go together"),
        (["--points-file", "pts.npy", "--out", "g.txt"], "--out g.txt: the file name must end in .npy or .csv"),
        (["--points-file", "pts.npy", "--out", "g.npy", "--like", f"{MODULE}:params"],
         "has rows of 8 values and --like clifiles_mlp:params holds 49"),
        (["--points-file", "pts.npy", "--out", "g.npy", "--function", f"{MODULE}:flat_loss"],
         "fails on a point of 8 coordinates"),
        ([], "pass --point X,Y,... (one point), --like module:attr"),
    ],
)  # fmt: skip
def test_file_usage_errors(mlp, tmp_path, capsys, argv, message):
    np.save(tmp_path / "pts.npy", np.zeros((5, 8)))
    function = [] if "--function" in argv else ["--function", f"{MODULE}:loss" if "--like" in argv else "sphere"]
    assert main(["grad", *function, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "g.npy").exists()


@pytest.mark.x64_independent
@pytest.mark.parametrize(("text", "message"), [("x0,x1,x2\n", "holds no rows of numbers after its header"),
                                               ("", "holds no rows of numbers: it must hold")])  # fmt: skip
def test_a_csv_without_rows_is_one_line_of_ours(tmp_path, capsys, text, message):
    """No numpy warning with its source line, and no shape (0, 1) for a header of 3 columns (from the review)."""
    err = _grad_refuses_csv(tmp_path, capsys, text)
    assert message in err and "shape" not in err, err


def _grad_refuses_csv(tmp_path, capsys, text):
    """`jaxgrad grad` on a --points-file CSV holding `text`: exit 2 with no warning and no output file; its stderr."""
    (tmp_path / "pts.csv").write_text(text)
    argv = [
        "grad",
        "--function",
        "sphere",
        "--points-file",
        str(tmp_path / "pts.csv"),
        "--out",
        str(tmp_path / "g.csv"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(argv) == 2
    assert not (tmp_path / "g.csv").exists()
    return capsys.readouterr().err


@pytest.mark.x64_independent
@pytest.mark.parametrize(
    ("text", "message"),
    [("x,y\n1,2\n3,abc\n", "line 3 holds 'abc', not a number"),
     ("1,2\n\n# a comment\n3,\n", "line 4 holds an empty value, not a number"),
     ("x,y\n1,2\n3,4,5\n", "line 3 holds 3 values, line 2 holds 2 values"),
     ("1,2,3a\n4,5,6\n", "line 1 holds '3a', not a number"),  # was skipped as a header: every row off by one
     ("1 2 3\n4 5 6\n", "line 1 holds '1 2 3', not a number: separate the values by commas"),
     ("x;y\n1;2\n", "line 2 holds '1;2', not a number: separate the values by commas")],
)  # fmt: skip
def test_a_csv_that_cannot_be_read_names_the_line_as_the_file_counts_it(tmp_path, capsys, text, message):
    """numpy counted data rows from 0 after the header ("at row 1" for the file's line 3) and advised `usecols`."""
    err = _grad_refuses_csv(tmp_path, capsys, text)
    assert message in err and "usecols" not in err and "row 1" not in err, err

"""The adversarial suite: probes of the API and the CLI in eight areas, each asserting the acceptable outcome (the
right number, a clear error naming the argument and the fix, or a flagged status). Test names start with the area:
reference, switches, files, numerics, cli, deep, imports, interrupts. The files, cli, imports and interrupts probes
(file writes, and the command, which computes under its own jax.enable_x64) are marked x64_independent: ci/test runs
them in its float32-only pass alone (tests/conftest.py)."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, X64, interrupt_on_call

import jaxgrad as jg
from jaxgrad import functions
from jaxgrad.cli import main


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


X = jnp.array([3.0, 4.0])
POINTS = np.array([[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])


def run_cli(*args, cwd=None, timeout=300, script=False):
    """The CLI in a fresh process: `python -m jaxgrad`, or the installed `jaxgrad` script (which, unlike -m, does
    not put the working directory first on the path)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    command = (
        [os.path.join(os.path.dirname(sys.executable), "jaxgrad")] if script else [sys.executable, "-m", "jaxgrad"]
    )
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def exit_code(argv) -> int:
    """main(argv)'s exit code, argparse's own usage errors (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def one_line_error(capsys, code, argv, *needles):
    """main(argv) exits with `code` after printing one line on stderr that holds every needle, and no traceback."""
    assert exit_code(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "nothing on stderr"
    last = err[-1]
    assert "Traceback" not in "\n".join(err)
    for needle in needles:
        assert needle in last, (needle, last)


# =============================================================================================== 1. reference
def _mlp_case(samples=2000, num_points=20):
    rng = np.random.default_rng(0)
    data, target = rng.normal(size=(samples, 4)).astype(np.float32), rng.normal(size=samples).astype(np.float32)

    @jax.jit
    def loss(p):  # 49 parameters: 4 -> 8 -> 1
        w1, b1, w2, b2 = p[:32].reshape(4, 8), p[32:40], p[40:48], p[48]
        return jnp.mean((jnp.tanh(data @ w1 + b1[None]) @ w2 + b2 - target) ** 2)

    return loss, rng.normal(size=(num_points, 49)).astype(np.float32)


def test_reference_never_races_with_an_asynchronous_jax_function():
    """The notes' in-place x[i] += h; f(x); x[i] = old let a jitted JAX f read the restored buffer: entries came out
    0 or half the derivative, different on every call. Each evaluation now gets its own array."""
    loss, points = _mlp_case()
    synchronous = jg.reference.batch_numerical_gradient(lambda v: float(loss(v)), points)
    for _ in range(3):
        assert np.array_equal(jg.reference.batch_numerical_gradient(loss, points), synchronous)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
@pytest.mark.parametrize("shape", [(2,), (2, 3), (1,), ()])
def test_reference_never_mutates_and_returns_floats(dtype, shape):
    x = (
        np.arange(int(np.prod(shape))).reshape(shape) % 2
        if dtype == "bool"
        else np.arange(np.prod(shape)).reshape(shape)
    ).astype(dtype)
    before = x.copy()
    g = jg.reference.numerical_gradient(lambda v: np.sum(np.asarray(v, np.float64) ** 2), x)
    assert np.array_equal(x, before) and g.shape == x.shape and np.issubdtype(g.dtype, np.floating)
    np.testing.assert_allclose(g, 2 * x.astype(np.float64), atol=0.1 if g.dtype == np.float32 else 1e-6)  # h = 1e-4


@pytest.mark.parametrize("h", [0, -1e-4, float("nan"), float("inf"), "1e-4", None, [1e-4]])
def test_reference_refuses_a_bad_step(h):
    with pytest.raises(ValueError, match="`h` must be a positive finite number"):
        jg.reference.numerical_gradient(function_2, POINTS[0], h=h)


def test_reference_accepts_numpy_scalar_steps():
    np.testing.assert_allclose(jg.reference.numerical_gradient(function_2, POINTS[0], h=np.float32(1e-3)), [6, 8])


# =============================================================================================== 2. switches
WRONG = lambda x: 100 * jax.grad(functions.sphere)(x)  # noqa: E731 - a gradient 100x wrong


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [("rtol", -1, ValueError), ("rtol", -1e-300, ValueError), ("rtol", float("nan"), ValueError),
     ("rtol", float("inf"), ValueError), ("rtol", "0.1", TypeError), ("rtol", None, TypeError),
     ("rtol", True, TypeError), ("rtol", [0.1], TypeError), ("atol", -1, ValueError),
     ("atol", float("nan"), ValueError),
     ("atol", float("inf"), ValueError), ("atol", float("-inf"), ValueError), ("atol", "1", TypeError),
     ("reference_points", 0, ValueError), ("reference_points", -1, ValueError), ("reference_points", 1.5, TypeError),
     ("reference_points", "3", TypeError), ("seed", -1, ValueError), ("seed", 1.5, TypeError), ("seed", "0", TypeError),
     ("directions", 0, ValueError), ("directions", -2, ValueError), ("directions", 2.5, TypeError),
     ("directions", True, TypeError), ("chunk_size", 0, ValueError), ("chunk_size", 2.0, TypeError),
     ("memory_budget", -5, ValueError), ("memory_budget", "1GB", TypeError), ("reference", "yes", TypeError),
     ("traceable", 1, TypeError), ("name", 3, TypeError)],
)  # fmt: skip
def test_switches_compare_refuses_options_that_would_switch_the_check_off(option, value, error):
    with pytest.raises(error, match=f"`{option}`"):
        jg.compare(functions.sphere, POINTS, grad_fn=WRONG, **{option: value})


@pytest.mark.parametrize("rtol", [0, 0.0, np.float64(0), 1e-6])
def test_switches_a_wrong_gradient_is_a_mismatch_with_any_sensible_tolerance(rtol):
    rep = jg.compare(functions.sphere, POINTS, grad_fn=WRONG, rtol=rtol)
    assert not rep.ok and rep.verdict == jg.Verdict.MISMATCH


@pytest.mark.parametrize(
    ("option", "value"),
    [("margin", float("nan")), ("margin", float("inf")), ("margin", 0), ("margin", -1), ("margin", 0.5),
     ("margin", "10"), ("num_steps", 0), ("num_steps", 2), ("num_steps", -1), ("num_steps", 2.5), ("window", 0),
     ("window", 2), ("window", 1.5), ("seed", -3)],
)  # fmt: skip
def test_switches_taylor_test_refuses_bad_knobs(option, value):
    with pytest.raises((ValueError, TypeError), match=f"`{option}`"):
        jg.taylor_test(functions.sphere, X, grad_fn=WRONG, **{option: value})


@pytest.mark.parametrize(
    "direction",
    [jnp.zeros(2), jnp.array([np.nan, 1.0]), jnp.array([np.inf, 0.0]), jnp.ones(3), {"a": jnp.ones(2)}],
)
def test_switches_taylor_test_refuses_a_direction_that_sees_nothing(direction):
    with pytest.raises(ValueError, match="`direction`"):
        jg.taylor_test(functions.sphere, X, grad_fn=WRONG, direction=direction)


@pytest.mark.parametrize(
    ("grad_fn", "needle"),
    [(lambda x: 2 * x[:1], "got shape (1,) for shape (2,)"), (lambda x: jnp.sum(2 * x), "got shape () for shape (2,)"),
     (lambda x: (2 * x)[:, None], "got shape (2, 1) for shape (2,)"), (lambda x: {"g": 2 * x}, "the structure")],
)  # fmt: skip
def test_switches_taylor_test_refuses_a_gradient_not_shaped_like_x(grad_fn, needle):
    """A gradient of 1 or 0 values was a raw `matmul` error; a (2, 1) one, or one inside a dict, was checked as is."""
    with pytest.raises(ValueError, match=r"`grad_fn` must return a gradient") as caught:
        jg.taylor_test(functions.sphere, X, grad_fn=grad_fn)
    assert needle in str(caught.value)


def test_switches_taylor_test_calls_a_wrong_gradient_wrong():
    assert jg.taylor_test(functions.sphere, X, grad_fn=WRONG).verdict == jg.Verdict.MISMATCH


def test_switches_check_grad_says_when_it_read_one_matrix_as_a_batch_of_rows():
    """loss(W) = Σ W Wᵀ with its correct gradient at one (2, 3) W: W was read as 2 points of 3 (each row's own
    gradient is 2w, not 2·Σ rows), and the mismatch did not say so (from the review)."""
    W = jnp.arange(6.0).reshape(2, 3) / 5
    loss, gradient = lambda W: jnp.sum(W @ W.T), lambda W: 2 * jnp.broadcast_to(jnp.sum(W, axis=0), W.shape)
    with pytest.raises(jg.GradientMismatchError, match=r"read as a batch of 2 points of shape \(3,\).*batched=False"):
        jg.check_grad(loss, W, grad_fn=gradient, taylor=False)
    assert jg.check_grad(loss, W, grad_fn=gradient, batched=False).ok
    with pytest.raises(jg.GradientMismatchError) as caught:  # told batched=True, it is not told again
        jg.check_grad(loss, W, grad_fn=gradient, batched=True, taylor=False)
    assert "batched=False" not in str(caught.value)


def test_switches_check_grad_checks_points_it_could_read_as_one_point_as_one_point_too():
    """A gradient right for each row but wrong for the whole: read as a batch of rows alone, check_grad passed it (a
    model of two layers of width 4; Σ(W)² of one matrix), though `fun` takes the whole to a scalar too (from the
    review). It is now also checked as one point, and fails there, saying so; told batched=True, it passes."""

    @jax.custom_jvp
    def squared_sum(w):
        return jnp.sum(w) ** 2

    squared_sum.defjvp(lambda p, t: (squared_sum(p[0]), jnp.sum(2 * p[0] * t[0])))  # right for one number only
    model = {"a": jnp.array([1.0, 2.0, 3.0, 4.0]), "b": jnp.array([0.5, -1.0, 2.0, 1.0])}

    def loss(m):
        return squared_sum(m["a"]) + jnp.sum(m["b"] ** 2)

    def per_row(W):  # Σ(W)²'s gradient is 2·ΣW
        return 2 * jnp.sum(W, axis=-1, keepdims=True) * jnp.ones_like(W)

    W = jnp.arange(9.0).reshape(3, 3) / 10
    for fun, point, grad_fn in ((loss, model, None), (lambda W: jnp.sum(W) ** 2, W, per_row)):
        with pytest.raises(jg.GradientMismatchError, match=r"checked as one point.*it passed.*batched=True"):
            jg.check_grad(fun, point, grad_fn=grad_fn, taylor=False)
        assert jg.check_grad(fun, point, grad_fn=grad_fn, batched=True).ok


@pytest.mark.parametrize("call", [lambda P: jg.compare(functions.sphere, P).ok, lambda P: jg.check_grad(
    functions.sphere, P).ok])  # fmt: skip
def test_switches_compare_and_check_grad_inside_jit_say_so(call):
    """A raw TracerArrayConversionError before (from the review)."""
    with pytest.raises(TypeError, match=r"runs outside jax\.jit"):
        jax.jit(call)(jnp.ones((3, 2)))


@pytest.mark.parametrize(("option", "value"), [("taylor", "no"), ("batched", 1)])
def test_switches_check_grad_refuses_non_booleans(option, value):
    with pytest.raises(TypeError, match=f"`{option}`"):
        jg.check_grad(functions.sphere, X, grad_fn=WRONG, **{option: value})


@pytest.mark.parametrize("argv", [["--atol", "-1"], ["--rtol", "-1"], ["--rtol", "nan"], ["--atol", "inf"]])
@pytest.mark.x64_independent
def test_switches_cli_refuses_negative_or_nonfinite_tolerances(capsys, argv):
    assert exit_code(["compare", "--function", "sphere", "--points", "5", "--quiet", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


# =============================================================================================== 3. files
from jaxgrad._files import replace_file, write_json  # noqa: E402 - the one writer, probed directly


@pytest.mark.x64_independent
def test_files_concurrent_writers_never_collide(tmp_path):
    target = tmp_path / "same.json"
    errors = []

    def writer(k):
        try:
            for _ in range(20):
                write_json(target, {"writer": k, "rows": list(range(2000))})
        except Exception as error:  # recorded: the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert json.loads(target.read_text())["rows"][-1] == 1999
    assert [p.name for p in tmp_path.iterdir()] == ["same.json"]


@pytest.mark.x64_independent
def test_files_a_reader_never_sees_half_a_file(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"rows": []})
    stop, bad = threading.Event(), []

    def read():
        while not stop.is_set():
            try:
                json.loads(target.read_text())
            except json.JSONDecodeError:
                bad.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    for k in range(30):
        write_json(target, {"rows": list(range(k * 1000))})
    stop.set()
    reader.join()
    assert not bad


@pytest.mark.x64_independent
def test_files_a_symlink_target_is_refused_and_its_target_untouched(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "r.json"
    link.symlink_to(outside)
    with pytest.raises(ValueError, match="symbolic link"):
        write_json(link, {"a": 1})
    assert outside.read_text() == "precious" and link.is_symlink()


@pytest.mark.x64_independent
def test_files_a_planted_partial_symlink_is_never_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / "study.csv.partial").symlink_to(outside)
    (tmp_path / ".study.csv.partial").symlink_to(outside)
    write_json(tmp_path / "study.csv", {"a": 1})
    assert outside.read_text() == "precious" and json.loads((tmp_path / "study.csv").read_text()) == {"a": 1}


@pytest.mark.x64_independent
def test_files_a_directory_target_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_json(tmp_path, {"a": 1})


@pytest.mark.x64_independent
def test_files_a_fifo_target_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        write_json(fifo, {"a": 1})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def special_file(tmp_path):
    """A device node of our own (a copy of /dev/null's numbers; root can make one), else a UNIX socket: never a
    system device, so that a regression of the writer cannot replace one."""
    path = tmp_path / "device"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        import socket

        socket.socket(socket.AF_UNIX).bind(str(path))
    return path


@pytest.mark.x64_independent
def test_files_a_device_is_never_replaced(tmp_path):
    device = special_file(tmp_path)
    before = os.lstat(device)
    with pytest.raises(ValueError, match="not a regular file"):
        write_json(device, {"a": 1})
    after = os.lstat(device)
    assert not stat.S_ISREG(after.st_mode) and after.st_ino == before.st_ino


@pytest.mark.x64_independent
def test_files_a_hard_link_is_not_broken(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text("{}")
    os.link(first, second)
    with pytest.raises(ValueError, match="hard links"):
        write_json(first, {"a": 1})
    assert os.stat(first).st_ino == os.stat(second).st_ino


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o664])
@pytest.mark.x64_independent
def test_files_the_mode_is_kept(tmp_path, mode):
    target = tmp_path / "r.json"
    target.write_text("{}")
    os.chmod(target, mode)
    write_json(target, {"a": 1})
    assert stat.S_IMODE(os.stat(target).st_mode) == mode


@pytest.mark.x64_independent
def test_files_a_new_file_gets_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "new.json", {"a": 1})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o644


@pytest.mark.x64_independent
def test_files_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"old": true}')

    def failing(path):
        with open(path, "w") as stream:
            stream.write('{"half')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        replace_file(target, failing)
    assert json.loads(target.read_text()) == {"old": True} and len(list(tmp_path.iterdir())) == 1


@pytest.mark.x64_independent
def test_files_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"old": true}')

    def interrupted(path):
        open(path, "w").write("{")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_file(target, interrupted)
    assert json.loads(target.read_text()) == {"old": True} and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("path", ["", "missing/dir/r.json"])
@pytest.mark.x64_independent
def test_files_bad_paths_are_explained(tmp_path, path):
    with pytest.raises((ValueError, FileNotFoundError), match=r"empty|does not exist"):
        write_json(str(tmp_path / path) if path else path, {"a": 1})


@pytest.mark.parametrize(
    ("flag", "target", "needle"),
    [("--json", "missing/r.json", "does not exist"), ("--csv", "missing/r.csv", "does not exist"),
     ("--json", ".", "is a directory"), ("--csv", ".", "is a directory"),
     ("--json", "device", "not a regular file")],
)  # fmt: skip
@pytest.mark.x64_independent
def test_files_cli_bad_outputs_are_one_line_exit_2(capsys, tmp_path, monkeypatch, flag, target, needle):
    monkeypatch.chdir(tmp_path)
    special_file(tmp_path)
    one_line_error(capsys, 2, ["compare", "--function", "sphere", "--points", "5", "--quiet", flag, target], needle)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["compare", "--json", "r.out", "--csv", "./r.out"], "--json r.out and --csv ./r.out name the same file"),
     (["compare", "--json", "r.json", "--csv", "r.runs.jsonl"], "names the file the record of finished runs goes to"),
     (["grad", "--points-file", "p.npy", "--out", "./p.npy"], "--out ./p.npy names the same file as --points-file"),
     (["grad", "--points-file", "link.npy", "--out", "p.npy"], "--out p.npy names the same file as --points-file"),
     (["grad", "--points-file", "g.error.npy", "--out", "g.npy", "--with-error"], "its errors file")],
)  # fmt: skip
@pytest.mark.x64_independent
def test_files_an_output_never_replaces_an_input_or_another_output(capsys, tmp_path, monkeypatch, argv, needle):
    """Both used to run: grad wrote the gradients over the points, compare's CSV replaced its JSON."""
    monkeypatch.chdir(tmp_path)
    for name in ("p.npy", "g.error.npy"):
        np.save(name, np.ones((3, 2)))
    os.symlink("p.npy", "link.npy")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    one_line_error(capsys, 2, [*argv, "--function", "sphere", "--quiet"] + (["--points", "5"] if argv[0] == "compare"
                                                                         else []), needle)  # fmt: skip
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


@pytest.mark.x64_independent
def test_files_compare_never_replaces_its_functions_module_or_an_output_where_the_record_went(capsys, tmp_path,
                                                                                           monkeypatch):  # fmt: skip
    """--json mymod.py replaced the module's source; with R.runs.jsonl left by a killed run, the record went to
    R.runs-2.jsonl and --csv R.runs-2.jsonl was deleted with it (from the fifth review)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "cancelmod.py").write_text("import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x ** 2)\n")
    (tmp_path / "k.runs.jsonl").write_text('{"killed": 1}\n')
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    common = ["compare", "--points", "5", "--no-reference", "--quiet"]
    one_line_error(capsys, 2, [*common, "--function", "cancelmod:loss", "--dim", "2", "--json", "cancelmod.py"],
                   "names the same file as the module of cancelmod:loss")  # fmt: skip
    one_line_error(capsys, 2, [*common, "--function", "sphere", "--json", "k.json", "--csv", "k.runs-2.jsonl"],
                   "names the file the record of finished runs goes to")  # fmt: skip
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert after == before


@pytest.mark.parametrize("argv", [["plot", "field", "--out", "missing/f.png"], ["bench", "--quick", "--json",
                                                                                "missing/b.json"]])  # fmt: skip
@pytest.mark.x64_independent
def test_files_plot_and_bench_refuse_an_unwritable_output_before_the_work(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)

    def work(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(jg.plot, "plot_gradient_field", work)
    monkeypatch.setattr(jg.bench, "configurations", work)
    one_line_error(capsys, 2, argv, "its directory", "does not exist")


@pytest.mark.parametrize(("out", "needle"), [("afile.txt", "must name a directory"), ("", "must name a directory")])
@pytest.mark.x64_independent
def test_files_study_out_must_be_a_directory(capsys, tmp_path, monkeypatch, out, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile.txt").write_text("x")
    one_line_error(capsys, 2, ["study", "--function", "sphere", "--points", "5", "--out", out, "--quiet"], needle)


@pytest.mark.x64_independent
def test_files_json_to_stdout_is_valid_and_the_table_goes_to_stderr(capsys):
    argv = ["compare", "--function", "sphere", "--points", "5", "--dtype", "float32", "--quiet", "--json", "-"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    runs = json.loads(captured.out)
    assert [r["function"] for r in runs] == ["sphere"] and "verdict" in captured.err


@pytest.mark.x64_independent
def test_files_two_cli_writers_at_once_both_finish_with_a_valid_file(tmp_path):
    argv = ["compare", "--function", "sphere", "--points", "200", "--quiet", "--json", str(tmp_path / "same.json"),
            "--csv", str(tmp_path / "same.csv")]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    runs = [subprocess.Popen([sys.executable, "-m", "jaxgrad", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env) for _ in range(2)]  # fmt: skip
    assert [p.wait(timeout=300) for p in runs] == [0, 0]
    assert len(json.loads((tmp_path / "same.json").read_text())) == 2
    assert len((tmp_path / "same.csv").read_text().splitlines()) == 1 + 2 * 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.csv", "same.json"]


# =============================================================================================== 4. numerics
def test_numerics_jvp_refuses_a_step_that_rounds_away():
    with pytest.raises(ValueError, match="below the resolution"):
        jg.jvp(function_2, (X,), (jnp.ones(2),), step=1e-30)


@pytest.mark.parametrize("method", ["central", "forward", "richardson", "complex"])
def test_numerics_jvp_along_zero_is_zero_like_jax(method):
    assert float(jg.jvp(function_2, (X,), (jnp.zeros(2),), method=method)[1]) == 0.0
    assert float(jax.jvp(function_2, (X,), (jnp.zeros(2),))[1]) == 0.0


INTEGER_OUTPUTS = [
    lambda x: jnp.sum(x).astype(jnp.int32),
    lambda x: jnp.sum(x) > 0,
    lambda x: jnp.round(jnp.sum(x)).astype(jnp.int64),
]


@pytest.mark.parametrize("index", range(len(INTEGER_OUTPUTS)))
@pytest.mark.parametrize("where", ["grad", "batch_grad", "compare", "jacobian", "jvp", "host"])
def test_numerics_integer_outputs_are_refused_like_jax_grad(index, where):
    f = INTEGER_OUTPUTS[index]
    calls = {
        "grad": lambda: jg.grad(f)(X),
        "batch_grad": lambda: jg.batch_grad(f, POINTS),
        "compare": lambda: jg.compare(f, POINTS, grad_fn=lambda x: x),
        "jacobian": lambda: jg.jacobian(f)(X),
        "jvp": lambda: jg.jvp(f, (X,), (jnp.ones(2),)),
        "host": lambda: jg.batch_grad(lambda x: np.sum(np.asarray(x)).astype(np.int32), POINTS, traceable=False),
    }
    with pytest.raises(TypeError, match=r"real-valued|returns int|returns bool"):
        calls[where]()


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("with_error", [False, True])
def test_numerics_sixteen_bit_outputs_are_refused_not_confidently_wrong(dtype, with_error):
    with pytest.raises(TypeError, match="swamps a finite difference"):
        jg.grad(lambda x: function_2(x).astype(dtype), with_error=with_error)(X)


@pytest.mark.parametrize("where", ["grad", "jacobian", "batch_grad"])
def test_numerics_complex_outputs_are_refused_for_real_stencils(where):
    f = lambda x: jnp.sum(x) * (1 + 2j)  # noqa: E731
    call = {"grad": lambda: jg.grad(f)(X), "jacobian": lambda: jg.jacobian(f)(X),
            "batch_grad": lambda: jg.batch_grad(f, POINTS)}[where]  # fmt: skip
    with pytest.raises(TypeError, match=r"complex output|returns complex"):
        call()


@pytest.mark.parametrize("scheme", ["central", "forward", "backward", "richardson"])
def test_numerics_near_the_largest_float_the_step_stays_finite(scheme):
    x = jnp.array([3.4e38, 1.0], jnp.float32)
    g = np.asarray(jg.grad(lambda v: v[0] + 2 * v[1], method=scheme)(x))
    assert np.isfinite(g[0]) and g[0] == pytest.approx(1.0, rel=1e-3)  # the rounding of f there, divided by h


@pytest.mark.parametrize(("step", "method"), [(1e300, "central"), (1e39, "central"), (1e38, "richardson")])
def test_numerics_a_step_that_overflows_the_dtype_is_refused(step, method):
    with pytest.raises(ValueError, match="overflows float32"):
        jg.grad(function_2, step=step, method=method)(jnp.asarray(X, jnp.float32))


@pytest.mark.parametrize("call", ["grad", "batch_grad", "host"])
def test_numerics_float64_input_without_x64_warns(call):
    points = POINTS.astype(np.float64)
    run = {"grad": lambda: jg.grad(function_2)(points[0]), "batch_grad": lambda: jg.batch_grad(function_2, points),
           "host": lambda: jg.batch_grad(function_2, points, traceable=False)}[call]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    said = [str(w.message) for w in caught if "jax_enable_x64 is off" in str(w.message)]
    assert bool(said) == (not X64)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float16", "bool"])
def test_numerics_stream_grad_refuses_an_out_that_truncates(dtype):
    with pytest.raises(TypeError, match="`out` has dtype"):
        list(jg.stream_grad(functions.sphere, POINTS, out=np.zeros(POINTS.shape, dtype)))


@pytest.mark.parametrize("point", ["1e400", "nan,1", "inf", "3 4", "3,,4", "1e309,2", "-inf,0"])
@pytest.mark.x64_independent
def test_numerics_cli_points_must_be_finite_numbers(capsys, point):
    assert exit_code(["grad", f"--point={point}"]) == 2
    assert "must be finite numbers separated by commas" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", DTYPES)
def test_numerics_the_seed_example_stays_exact(dtype):
    assert np.array_equal(np.asarray(jg.grad(function_2)(jnp.asarray(X, dtype))), [6.0, 8.0])


# =============================================================================================== 5. cli
CLI_ERRORS = [
    (["compare", "--points", "1000000000000", "--function", "sphere"], "needs about"),
    (["compare", "--domain", "nan,1"], "LOW,HIGH"),
    (["compare", "--domain", "1e400,1"], "LOW,HIGH"),
    (["compare", "--domain", "5,-5"], "LOW < HIGH"),
    (["compare", "--domain", "1,1"], "LOW < HIGH"),
    (["compare", "--domain", "1"], "LOW,HIGH"),
    (["compare", "--dim", "0"], "positive integer"),
    (["compare", "--points", "0"], "positive integer"),
    (["compare", "--function", "nosuch"], "Unknown function"),
    (["compare", "--function", "json:nosuch"], "has no attribute"),
    (["compare", "--function", "sphere", "--grad", "json:nosuch"], "--grad json:nosuch"),
    (["compare", "--function", "no_such_module_xyz:f"], "does not import"),
    (["compare", "--function", "sphere", "--method", "nosuch"], "invalid choice"),
    (["compare", "--function", "sphere", "--order", "3", "--points", "5"], "must be one of 2, 4, 6, 8"),
    (["compare", "--function", "sphere", "--order", "0"], "positive integer"),
    (["compare", "--function", "sphere", "--step", "0", "--points", "5"], "positive and finite"),
    (["compare", "--function", "sphere", "--step", "-1", "--points", "5"], "positive and finite"),
    (["compare", "--function", "sphere", "--step", "nan"], "finite number"),
    (["compare", "--function", "sphere", "--step", "1e-30", "--points", "5", "--quiet"], "below the resolution"),
    (["compare", "--function", "sphere", "--directions", "0"], "positive integer"),
    (["compare", "--function", "sphere", "--reference-points", "0"], "positive integer"),
    (["compare", "--function", "sphere", "--numpy"], "--numpy needs --grad"),
    (["compare", "--function", "beale", "--dim", "3"], "beale takes dim 2 only, got 3; pass --dim 2"),
    (["grad", "--function", "beale", "--point", "1,2,3"], "beale takes dim 2 only, got 3"),
    (["grad", "--point", "1,2", "--order", "3"], "must be one of 2, 4, 6, 8"),
    (["grad", "--point", "1,2", "--method", "complex", "--order", "4"], "has order 2"),
    (["grad", "--point", "1,2", "--step", "1e300", "--dtype", "float32"], "overflows float32"),
    (["study", "--function", "sphere", "--method", "nosuch"], "unknown method"),
    (["study", "--function", "sphere", "--method", "central:x"], "must be an integer"),
    (["study", "--function", "sphere", "--steps", "0", "--quiet"], "positive and finite"),
    (["grad", "--point", "3,4", "--step", "0"], "argument --step: expected a positive and finite number"),
    (["study", "--function", "sphere", "--steps", "nan"], "finite number"),
    (["study", "--function", "sphere", "--points", "0"], "positive integer"),
    (["plot", "field", "--out", "x.png", "--grid", "100000"], "at most 1,000"),
    (["plot", "field", "--out", "x.png", "--steps", "100000000"], "at most 100,000"),
    (["plot", "field", "--out", "x.png", "--grid", "0"], "positive integer"),
    (["plot", "field", "--out", "x.png", "--domain", "3,-3"], "LOW < HIGH"),
    (["plot", "field", "--out", "x.png", "--descent", "nan,1"], "finite numbers"),
    (["plot", "what", "--out", "x.png"], "invalid choice"),
    (["bench", "--function", "nosuch", "--quick"], "Unknown function"),
    (["bench", "--repeats", "0"], "positive integer"),
    (["functions", "--nosuch"], "unrecognized arguments"),
]


@pytest.mark.parametrize(("argv", "needle"), CLI_ERRORS, ids=[" ".join(a) for a, _ in CLI_ERRORS])
@pytest.mark.x64_independent
def test_cli_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code = exit_code(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and needle in err.strip().splitlines()[-1], err


@pytest.mark.x64_independent
def test_cli_a_users_function_of_another_dimension_names_dim(capsys, tmp_path, monkeypatch):
    (tmp_path / "three.py").write_text("import jax.numpy as jnp\n"
                                       "def f(x):\n    return x[0] * x[1] * x[2] + jnp.zeros(())\n"
                                       "def g(x):\n    a, b, c = x\n    return a * b * c\n")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    one_line_error(capsys, 2, ["compare", "--function", "three:g", "--points", "5"], "--dim")
    one_line_error(capsys, 2, ["grad", "--function", "three:g", "--point", "1,2"], "--point")
    assert main(["compare", "--function", "three:g", "--dim", "3", "--points", "20", "--quiet"]) == 0


@pytest.mark.x64_independent
def test_cli_a_mismatch_is_still_exit_1(capsys, tmp_path, monkeypatch):
    (tmp_path / "badgrad.py").write_text("def g(x):\n    return 2.5 * x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["compare", "--function", "sphere", "--grad", "badgrad:g", "--points", "20", "--quiet"]) == 1


@pytest.mark.x64_independent
def test_cli_no_traceback_reaches_the_shell():
    done = run_cli("compare", "--domain", "5,-5")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    done = run_cli("compare", "--function", "sphere", "--points", "3", "--json", "/nonexistent/dir/r.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "does not exist" in done.stderr


# =============================================================================================== 6. deep
@pytest.mark.parametrize("where", ["grad", "batch_grad", "compare"])
def test_deep_longdouble_input_is_explained(where):
    x = np.array([[3.0, 4.0]], np.longdouble)
    if np.finfo(np.longdouble).bits <= 64:
        pytest.skip("longdouble is float64 on this platform")  # pragma: no cover - x86-64 Linux has 80-bit
    call = {"grad": lambda: jg.grad(function_2)(x[0]), "batch_grad": lambda: jg.batch_grad(function_2, x),
            "compare": lambda: jg.compare(function_2, x)}[where]  # fmt: skip
    with pytest.raises(TypeError, match="not supported by JAX; pass float64"):
        call()


@pytest.mark.parametrize("scale", [1.0, 2.0, -0.5])
def test_deep_keyword_arguments_reach_fun_as_with_jax_grad(scale):
    def f(x, *, scale=1.0, shift=0.0):
        return scale * jnp.sum((x - shift) ** 2)

    got = jg.grad(f)(X, scale=scale, shift=1.0)
    np.testing.assert_allclose(got, jax.grad(f)(X, scale=scale, shift=1.0), rtol=1e-5)


@pytest.mark.parametrize("bad", ["abc", b"bytes", object()])
def test_deep_a_non_array_argument_is_explained(bad):
    with pytest.raises(TypeError, match=r"functools.partial|must be an array"):
        jg.grad(lambda x, y: jnp.sum(x))(X, bad)
    with pytest.raises(TypeError, match="must be an array"):
        jg.grad(lambda x: jnp.sum(x))(bad)


class Unhashable:
    """A callable object with __eq__ and no __hash__."""

    def __eq__(self, other):
        return isinstance(other, Unhashable)

    __hash__ = None

    def __call__(self, x):
        return jnp.sum(x**2)


@pytest.mark.parametrize("where", ["batch_grad", "compare", "jvp", "stream_grad", "step_study", "grad", "jacobian"])
def test_deep_an_unhashable_callable_works(where):
    f = Unhashable()
    calls = {
        "batch_grad": lambda: np.asarray(jg.batch_grad(f, POINTS))[0],
        "compare": lambda: jg.compare(f, POINTS).numeric[0],
        "jvp": lambda: np.array([float(jg.jvp(f, (X,), (e,))[1]) for e in jnp.eye(2)]),
        "stream_grad": lambda: next(iter(jg.stream_grad(f, POINTS, chunk_size=3)))[2][0],
        "step_study": lambda: [6.0, 8.0] * (jg.step_study(f, POINTS, dtypes=("float32",), steps=[0.01]).dim == 2),
        "grad": lambda: np.asarray(jg.grad(f)(X)),
        "jacobian": lambda: np.asarray(jg.jacobian(f)(X)),
    }  # fmt: skip
    np.testing.assert_allclose(calls[where](), [6.0, 8.0], rtol=1e-3)


@pytest.mark.parametrize("spec", [("a",), (("a", "b"),)])
def test_deep_a_named_sharding_over_a_two_dimensional_mesh_works(spec):
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))
    np.testing.assert_allclose(jg.batch_grad(function_2, POINTS, sharding=sharding), 2 * POINTS, rtol=1e-3)


@pytest.mark.parametrize(
    ("call", "needle"),
    [(lambda: jg.jvp(function_2, (X,), (jnp.ones(3),)), "`tangents` must have the shapes"),
     (lambda: jg.jvp(function_2, (X,), ({"a": jnp.ones(2)},)), "`tangents` must have the structure"),
     (lambda: jg.hessian(function_2, step=jnp.ones(3))(X), "`step` has shape"),
     (lambda: jg.grad(function_2, step=jnp.ones(3))(X), "`step` has shape"),
     (lambda: jg.taylor_test(function_2, X, direction=jnp.ones(5)), "`direction` must have the shape")],
)  # fmt: skip
def test_deep_wrong_shapes_are_explained(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_deep_traceable_false_under_jit_is_explained():
    with pytest.raises(TypeError, match=r"cannot happen inside jax\.jit"):
        jax.jit(jg.grad(lambda x: np.sum(np.asarray(x) ** 2), traceable=False))(X)


@pytest.mark.parametrize(
    ("call", "error", "needle"),
    [(lambda: jg.step_study(function_2, POINTS, dtypes=("float16",)), ValueError, "`dtypes`"),
     (lambda: jg.step_study(function_2, POINTS, dtypes=()), ValueError, "`dtypes` is empty"),
     (lambda: jg.step_study(function_2, POINTS, steps=[]), ValueError, "`steps`"),
     (lambda: jg.step_study(function_2, POINTS, steps=[[1e-2]]), ValueError, "`steps`"),
     (lambda: jg.step_study(function_2, POINTS, steps="a"), ValueError, "`steps`"),
     (lambda: jg.step_study(function_2, POINTS, progress=3), TypeError, "`progress`"),
     (lambda: jg.taylor_test(function_2, X, num_steps=0), ValueError, "`num_steps`"),
     (lambda: jg.numerics.finite_difference_weights((-1, 1), derivative=-1), ValueError, "`derivative`"),
     (lambda: jg.numerics.finite_difference_weights((-1, 1), derivative=2), ValueError, "`derivative`=2 needs"),
     (lambda: jg.numerics.finite_difference_weights((-0.5, 0.5)), TypeError, "`offsets` must be integers"),
     (lambda: jg.numerics.finite_difference_weights((1, 1)), ValueError, "distinct"),
     (lambda: jg.num_evaluations(-1), ValueError, "`dim`"),
     (lambda: jg.num_evaluations(2.5), TypeError, "`dim`"),
     (lambda: jg.default_memory_budget("xyz"), ValueError, "`platform`"),
     (lambda: jg.grad(function_2, argnums="0")(X), TypeError, "`argnums`"),
     (lambda: jg.grad(function_2, has_aux="no")(X), TypeError, "`has_aux`"),
     (lambda: jg.grad(function_2, has_aux=True)(X), TypeError, r"pair \(value, aux\), got an array of shape \(\)"),
     (lambda: jg.grad(function_2, with_error=None)(X), TypeError, "`with_error`"),
     (lambda: jg.batch_grad(function_2, POINTS, traceable="yes"), TypeError, "`traceable`"),
     (lambda: jg.grad(3)(X), TypeError, "callable"),
     (lambda: jg.batch_grad(function_2, POINTS, method=jg.Central), ValueError, "scheme class"),
     (lambda: jg.grad(function_2, step="automatic"), ValueError, "not a step rule"),
     (lambda: jg.grad(function_2, step=jg.Relative(-1.0)), ValueError, "positive and finite")],
)  # fmt: skip
def test_deep_bad_arguments_get_clear_errors(call, error, needle):
    with pytest.raises(error, match=needle):
        call()


@pytest.mark.parametrize(
    ("numpy_value", "option", "call"),
    [(np.int64(2), "chunk_size", lambda v: jg.batch_grad(function_2, POINTS, chunk_size=v)),
     (np.int32(1 << 20), "memory_budget", lambda v: jg.batch_grad(function_2, POINTS, memory_budget=v)),
     (np.int64(4), "directions", lambda v: jg.compare(function_2, POINTS, directions=v).numeric.shape[1]),
     (np.int64(2), "reference_points", lambda v: jg.compare(function_2, POINTS, reference_points=v).reference.shape[0]),
     (np.int64(1), "seed", lambda v: jg.compare(function_2, POINTS, seed=v).ok),
     (np.int64(4), "order", lambda v: jg.grad(function_2, order=v)(X)),
     (np.int64(0), "argnums", lambda v: jg.grad(function_2, argnums=v)(X)),
     (np.int64(20), "num_steps", lambda v: jg.taylor_test(function_2, X, num_steps=v).verdict),
     (np.float32(0.1), "rtol", lambda v: jg.compare(function_2, POINTS, rtol=v).ok),
     (np.float64(1e-3), "step", lambda v: jg.grad(function_2, step=v)(X)),
     (np.int64(8), "dim", lambda v: jg.num_evaluations(v))],
)  # fmt: skip
def test_deep_numpy_scalars_are_accepted_where_python_ones_are(numpy_value, option, call):
    assert np.all(np.asarray(call(numpy_value)) == np.asarray(call(numpy_value.item())))


# =============================================================================================== 7. imports
@pytest.mark.parametrize("shadow", ["statistics", "tqdm", "csv", "json"])
@pytest.mark.x64_independent
def test_imports_a_module_in_the_working_directory_does_not_shadow_an_installed_one(tmp_path, shadow):
    (tmp_path / f"{shadow}.py").write_text("raise RuntimeError('the shadow was imported')\n")
    done = run_cli("compare", "--function", "sphere", "--points", "5", cwd=tmp_path, script=True)
    assert done.returncode == 0 and "shadow" not in done.stderr, done.stderr


@pytest.mark.x64_independent
def test_imports_module_attr_still_finds_the_working_directory(tmp_path):
    (tmp_path / "mine.py").write_text("import jax.numpy as jnp\ndef f(x):\n    return jnp.sum(x ** 2)\n")
    done = run_cli("grad", "--function", "mine:f", "--point", "3,4", cwd=tmp_path, script=True)
    assert done.returncode == 0 and done.stdout.strip() == "[6. 8.]", done.stderr


@pytest.mark.x64_independent
def test_imports_the_working_directory_is_appended_not_prepended(tmp_path, monkeypatch):
    (tmp_path / "mine2.py").write_text("def f(x):\n    return (x ** 2).sum()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    functions.resolve("mine2:f")
    assert sys.path[-1] == str(tmp_path) and sys.path.index(str(tmp_path)) > 0


# =============================================================================================== 8. interrupts
@pytest.mark.parametrize("call", [1, 2, 3, 4])
@pytest.mark.x64_independent
def test_interrupts_compare_keeps_every_finished_run_in_both_files(tmp_path, capsys, monkeypatch, call):
    import jaxgrad.cli.compare as command

    interrupt_on_call(monkeypatch, command, "compare", call)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["compare", "--function", "sphere", "--function", "beale", "--points", "30", "--quiet", "--json",
            str(out_json), "--csv", str(out_csv)]  # fmt: skip
    assert main(argv) == 130
    assert f"interrupted: {call - 1} of 4 runs finished" in capsys.readouterr().out
    if call == 1:  # no run finished: nothing is written
        assert not out_json.exists() and not out_csv.exists()
    else:
        assert len(json.loads(out_json.read_text())) == call - 1
        assert len(out_csv.read_text().splitlines()) == 1 + 30 * (call - 1)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("where", ["json", "csv"])
@pytest.mark.x64_independent
def test_interrupts_a_sigint_during_the_file_writes_waits_for_them(tmp_path, capsys, monkeypatch, where):
    """Ctrl-C while the JSON (or CSV) is written is deferred until both files hold the same runs."""
    import jaxgrad.cli.compare as command

    real, sent = getattr(command, f"write_{where}"), []

    def write_then_signal(*args, **kwargs):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(command, f"write_{where}", write_then_signal)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["compare", "--function", "sphere", "--points", "30", "--quiet", "--json", str(out_json), "--csv",
            str(out_csv)]  # fmt: skip
    assert main(argv) == 130  # the files are written once, at the end: both runs, in both files
    assert len(json.loads(out_json.read_text())) == 2 and len(out_csv.read_text().splitlines()) == 1 + 2 * 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json"]


@pytest.mark.parametrize("call", [1, 2])
@pytest.mark.x64_independent
def test_interrupts_bench_keeps_its_finished_rows(tmp_path, capsys, monkeypatch, call):
    import jaxgrad.bench as bench

    interrupt_on_call(monkeypatch, bench, "bench_one", call + 1)
    out = tmp_path / "b.json"
    argv = [
        "bench",
        "--quick",
        "--function",
        "sphere",
        "--dim",
        "2",
        "--points",
        "200",
        "--repeats",
        "1",
        "--reference-points",
        "5",
        "--quiet",
        "--json",
        str(out),
    ]  # 3 rows: f32 central, f64 central, richardson
    code = main(argv)
    rows = json.loads(out.read_text())
    assert code == 130 and len(rows) == call and "interrupted" in capsys.readouterr().out


@pytest.mark.parametrize("delay", [random.Random(seed).uniform(0.0, 5.0) for seed in range(2)])
@pytest.mark.x64_independent
def test_interrupts_a_real_ctrl_c_at_a_random_moment_keeps_consistent_files(tmp_path, delay):
    """Ctrl-C at a random moment of the runs (the delay counts from when jaxgrad would have been imported: a Ctrl-C
    during Python's own imports is Python's traceback, not jaxgrad's)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jaxgrad.cli"], env=env, check=True)
    delay += 1.5 * (time.perf_counter() - start)  # this machine's import time, now, with a margin
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    process = subprocess.Popen([sys.executable, "-m", "jaxgrad", "compare", "--points", "300", "--quiet", "--json",
                                str(out_json), "--csv", str(out_csv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)  # fmt: skip
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=300)
    assert process.returncode in (0, 130) and "Traceback" not in stderr, stderr
    if out_json.exists():
        runs = json.loads(out_json.read_text())
        assert len(out_csv.read_text().splitlines()) == 1 + 300 * len(runs)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.x64_independent
def test_a_ctrl_c_after_the_work_is_done_ends_the_process_at_once(monkeypatch):
    """Once main() has returned (files written), a Ctrl-C ends the process at once with main's exit code: it would
    otherwise interrupt the exit, in JAX's atexit callback (a KeyboardInterrupt traceback, exit code 0) or as death
    by SIGINT, and could not stop a process a module's leftover thread keeps alive. A Ctrl-C as main() returns is
    exit code 130. (The random-moment test above met the first two once the command took 4 s.)"""
    import jaxgrad.cli as cli

    previous = signal.getsignal(signal.SIGINT)
    exits = []
    monkeypatch.setattr(cli.os, "_exit", exits.append)  # os._exit, replaced here, returns
    try:
        monkeypatch.setattr(cli, "main", lambda: 1)
        with pytest.raises(SystemExit) as done:
            cli.run()
        assert done.value.code == 1 and exits == []
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the Ctrl-C during the exit
        assert exits == [1]

        def interrupted_as_it_returns():
            raise KeyboardInterrupt

        monkeypatch.setattr(cli, "main", interrupted_as_it_returns)
        with pytest.raises(SystemExit):
            cli.run()
        assert exits == [1, cli.INTERRUPTED]
    finally:
        signal.signal(signal.SIGINT, previous)


# =============================================================================================== more probes
@pytest.mark.parametrize("name", ["sphere", "rosenbrock", "beale", "logsumexp"])
def test_reference_equals_a_synchronous_float_version(name):
    f = jax.jit(functions.get(name))
    points = functions.get(name).sample(5, functions.get(name).default_dim, seed=3)
    expected = jg.reference.batch_numerical_gradient(lambda v: float(f(v)), points)
    assert np.array_equal(jg.reference.batch_numerical_gradient(f, points), expected)


@pytest.mark.parametrize(("option", "value"), [("rtol", -1), ("atol", -0.5), ("rtol", float("nan")), ("seed", -1)])
def test_switches_check_grad_refuses_what_compare_refuses(option, value):
    with pytest.raises((ValueError, TypeError), match=f"`{option}`"):
        jg.check_grad(functions.sphere, X, grad_fn=WRONG, **{option: value})


@pytest.mark.parametrize("output", [lambda v: jnp.sum(v).astype(jnp.int32), lambda v: jnp.sum(v).astype(jnp.float16),
                                    lambda v: jnp.sum(v) * 1j])  # fmt: skip
def test_numerics_hessian_refuses_outputs_grad_refuses(output):
    with pytest.raises(TypeError, match="`fun` returns"):
        jg.hessian(output)(X)


@pytest.mark.parametrize("call", [1, 2, 3])
@pytest.mark.x64_independent
def test_interrupts_study_keeps_every_finished_curve(tmp_path, capsys, monkeypatch, call):
    import jaxgrad.cli.study as command

    interrupt_on_call(monkeypatch, command, "step_study", call)
    argv = ["study", "--function", "sphere", "--points", "10", "--dtype", "float32", "--method", "central", "forward",
            "central:4", "--steps", "1e-2", "1e-3", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(argv) == 130
    assert f"interrupted: {call - 1} of 3 curves finished" in capsys.readouterr().out
    if call > 1:
        rows = json.loads((tmp_path / "study.json").read_text())["rows"]
        assert len({(r["method"], r["order"]) for r in rows}) == call - 1
        assert len((tmp_path / "study.csv").read_text().splitlines()) == 1 + 2 * (call - 1)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("shadow", ["statistics", "json"])
@pytest.mark.x64_independent
def test_imports_python_dash_m_does_not_let_the_working_directory_shadow_either(tmp_path, shadow):
    (tmp_path / f"{shadow}.py").write_text("raise RuntimeError('the shadow was imported')\n")
    done = run_cli("functions", cwd=tmp_path, script=True)
    assert done.returncode == 0 and "sphere" in done.stdout, done.stderr


@pytest.mark.x64_independent
def test_imports_a_module_attr_name_that_is_also_installed_gets_the_installed_one(tmp_path, capsys, monkeypatch):
    (tmp_path / "csv.py").write_text("def f(x):\n    return x\n")
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, 2, ["grad", "--function", "csv:f", "--point", "1,2"], "has no attribute")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["compare", "--function", "sphere", "--json", "-", "--csv", "-"], "both write to standard output"),
     (["compare", "--function", "sphere", "--points", "-3"], "positive integer"),
     (["compare", "--function", "sphere", "--seed", "x"], "invalid int"),
     (["grad", "--point", "1,2", "--step", "inf"], "finite number"),
     (["grad", "--point", "1,2", "--function", "sphere", "--method", "forward", "--order", "9"], "must be one of"),
     (["study", "--function", "sphere", "--dim", "-1"], "positive integer"),
     (["study", "--function", "sphere", "--domain", "2,1"], "LOW < HIGH"),
     (["plot", "field", "--out", "x.png", "--learning-rate", "nan"], "finite number"),
     (["plot", "field", "--out", "x.png", "--function", "beale", "--grid", "-1"], "positive integer")],
)  # fmt: skip
@pytest.mark.x64_independent
def test_cli_more_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, 2, argv, needle)


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS", "EACCES"])
@pytest.mark.x64_independent
def test_files_a_full_or_read_only_device_is_one_line_exit_2(capsys, tmp_path, monkeypatch, errno_name):
    """As root nothing is read-only, so the device's refusal is simulated where the bytes are written."""
    import errno

    import jaxgrad._files as files

    def refuse(path, write):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), str(path))

    monkeypatch.setattr(files, "replace_file", refuse)
    argv = ["compare", "--function", "sphere", "--points", "5", "--quiet", "--json", str(tmp_path / "r.json")]
    one_line_error(capsys, 2, argv, os.strerror(getattr(errno, errno_name)), "r.json")

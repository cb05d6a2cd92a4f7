"""Strict JAX configuration for the whole suite, set once.

`ci/test` runs the suite twice: with JAX_ENABLE_X64=1 (float32 and float64 cases) and with JAX_ENABLE_X64=0 (the
float32-only world most GPU users live in: integer input promotes to float32, nothing may silently need float64).
Under ci/test (JAXGRAD_TEST_PASSES=2) each float dtype's cases run once, in its own world: DTYPES is ("float64",) in
the float64-enabled pass and ("float32",) in the float32-only one, and what float32 input meets with x64 enabled
(a float64 constant would promote it) is checked by tests/test_dtypes.py, across the public calls. A plain `pytest`
with x64 enabled runs both dtypes.

Marker `x64_independent`: a test whose outcome cannot depend on jax_enable_x64 (file I/O, argument errors, the docs
build, the command line, which computes inside its own `jax.enable_x64(True)`, ...). When ci/test runs its two passes
(it sets JAXGRAD_TEST_PASSES=2), such a test runs in the float32-only pass alone: the float64-enabled pass deselects it
(it is not skipped; pytest reports it as deselected). That pass is the one that can see a difference: code that leaves
the CLI's enable_x64 context computes in float32 there. A plain `pytest` or `ci/test --quick` runs every test. A test
that computes gradients with default dtypes, or loops over DTYPES, depends on the mode: it is not marked.
"""

import functools
import os

import jax
import numpy as np
import pytest
from hypothesis import settings

X64 = os.environ.get("JAX_ENABLE_X64", "1").lower() in ("1", "true")
os.environ.setdefault("JAXGRAD_CACHE_DIR", "off")  # the CLI's persistent compilation cache: not in the tests' HOME
jax.config.update("jax_enable_x64", X64)
jax.config.update("jax_numpy_rank_promotion", "raise")

INDEPENDENT = "x64_independent"
TWO_PASSES = os.environ.get("JAXGRAD_TEST_PASSES") == "2"  # ci/test: the suite runs once per x64 mode

# the float dtypes of the `dtype` cases: under ci/test each runs in its own pass (float32 in the float32-only one)
DTYPES = ("float32",) if not X64 else ("float64",) if TWO_PASSES else ("float32", "float64")

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=1000, deadline=None, derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))  # HYPOTHESIS_PROFILE=explore: a long random hunt


# Long files first, longest first (as measured on 2 cores), so that with parallel workers none is left to run alone at
# the end: `ci/test` runs `pytest -n auto --dist loadfile --no-loadscope-reorder` (a file stays on one worker, so
# test_docs.py builds the site from the notebooks it executed; without --no-loadscope-reorder pytest-xdist would order
# the files by their number of tests instead, and test_peer_cases.py, 5 tests and the longest single one, came last).
FIRST = ("tests/test_derivatives.py", "tests/test_peer_cases.py", "tests/test_docs.py", "tests/test_verify.py",
         "tests/test_cli.py", "tests/test_accuracy.py", "tests/test_engine.py", "tests/test_trust.py",
         "tests/test_fuzz.py", "tests/test_domain.py", "tests/test_auto.py", "tests/test_study.py",
         "tests/test_filter.py", "tests/test_bench.py", "tests/test_cli_files.py",
         "tests/test_distributed.py")  # fmt: skip


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{INDEPENDENT}: outcome cannot depend on jax_enable_x64; under ci/test it runs in the float32-only "
        "pass alone (deselected in the float64-enabled one)",
    )
    if not X64:  # NumPy's float64 arrays in the float32-only world: announced by design (test_trust's
        # test_numerics_float64_input_without_x64_warns records it itself), not 77 lines of noise that would hide a
        # new warning in the summary
        config.addinivalue_line("filterwarnings", "ignore:float64 input is computed in float32:UserWarning")
        # and step_study's float32-only run, announced (test_study checks it with pytest.warns)
        config.addinivalue_line("filterwarnings", "ignore:step_study. float64 needs:UserWarning")


DESELECTED = []  # how many this process deselected
REPORTED = []  # what pytest-xdist's workers deselected (its summary leaves it out): the controller prints it


def pytest_collection_modifyitems(config, items):
    if TWO_PASSES and X64:
        once = [item for item in items if item.get_closest_marker(INDEPENDENT)]
        if once:
            config.hook.pytest_deselected(items=once)
            items[:] = [item for item in items if not item.get_closest_marker(INDEPENDENT)]
            DESELECTED.append(len(once))

    def rank(item):
        path = item.nodeid.split("::")[0]
        return FIRST.index(path) if path in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the order within each file is kept


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # a pytest-xdist worker
        session.config.workeroutput[INDEPENDENT] = sum(DESELECTED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    REPORTED.append(getattr(node, "workeroutput", {}).get(INDEPENDENT, 0))


def pytest_terminal_summary(terminalreporter):
    if max(REPORTED, default=0):  # every worker collects, and deselects, the same tests
        terminalreporter.write_line(f"{max(REPORTED)} deselected: marked {INDEPENDENT}, run in the float32-only pass")


@pytest.fixture(autouse=True)
def _config_is_restored():
    """No test may leave the global JAX configuration changed for the tests after it."""
    yield
    assert jax.config.jax_enable_x64 == X64


@pytest.fixture(params=DTYPES)
def dtype(request):
    """Every float dtype of this run (`DTYPES`)."""
    return np.dtype(request.param)


@functools.cache
def autodiff(transform, fun, batched: bool = True):
    """jax.jit(jax.vmap(transform(fun))) (without the vmap if not `batched`), built once per function: a reference by
    JAX's autodiff (jax.grad, jax.hessian, jax.jacfwd) compiled as one program per shape and dtype, shared by the
    tests that ask for it, where called eagerly it compiles each primitive on its first use (~80 compiles for a
    Hessian)."""
    derivative = transform(fun)
    return jax.jit(jax.vmap(derivative) if batched else derivative)


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def central_bound(dtype, f_size, h, third=0.0):
    """|error| a central difference may have: rounding of |f| (and near underflow, of the smallest normal) in each
    of its two evaluations, divided by the step, plus the truncation h²/6·|f'''|. Arrays broadcast."""
    info = np.finfo(dtype)
    f_size, h = np.asarray(f_size, np.float64), np.asarray(h, np.float64)
    return 8 * (float(info.eps) * (f_size + 1) + float(info.smallest_normal)) / h + h**2 / 6 * np.asarray(third)


def steps_of(points, order=2):
    """The default step at every point (rows of `points`), in float64."""
    return np.asarray(_default_steps(order)(points), np.float64)


def step_of(x, order=2):
    """The default step of every coordinate of x (any shape), in float64."""
    return np.asarray(_default_steps(order, rows=False)(x), np.float64)


@functools.cache
def _default_steps(order, rows: bool = True):
    """default_step (over rows), compiled once per order and shape, as jaxgrad's programs compute it: called eagerly it
    compiled each of its operations on its own per shape (~10 programs)."""
    import jaxgrad as jg

    step = functools.partial(jg.numerics.default_step, order=order)
    return jax.jit(jax.vmap(step) if rows else step)


def interrupt_on_call(monkeypatch, module, name: str, call: int) -> None:
    """Make module.name raise KeyboardInterrupt (as Ctrl-C would) on its `call`-th call."""
    real, calls = getattr(module, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)

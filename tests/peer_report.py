"""How jaxgrad, scipy.differentiate and numdifftools do on the peers' own first-derivative test cases.

Run: JAX_ENABLE_X64=1 .venv/bin/python tests/peer_report.py [--failures] [--json PATH]
Cases come from tests/peer_cases.py: CASES (the peers' functions, points and tolerances) and BADLY_SCALED (the same
functions at x = 1e-8, 1e8 or 1e-8 from a pole or domain edge, rtol=1e-6). A case passes when every entry of the
estimate is finite and |g - exact| <= atol + rtol * |exact|; an exception counts as a failure. Every tool runs with
its default options, in float64. Columns whose option jaxgrad does not have yet (step="auto") print "n/a".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxgrad as jg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_cases import BADLY_SCALED, CASES

PEERS = ["scipy.differentiate", "numdifftools", "FiniteDifferences.jl", "FiniteDiff.jl"]


def _jaxgrad(**options):
    def run(case):
        return jg.grad(case.fun, **options)(jnp.asarray(case.x))

    return run


def _vectorised(case):
    """A NumPy-in, NumPy-out version of case.fun that accepts the extra axes scipy adds (elementwise for 0-d x;
    for 1-d x of size m, the arrays of shape (m, ...) that scipy.differentiate.jacobian passes)."""
    batched = jax.jit(jax.vmap(case.fun))

    def f(x):
        x = np.asarray(x, dtype=np.float64)
        if case.x.ndim == 0:
            return np.asarray(batched(jnp.asarray(x.reshape(-1))), dtype=np.float64).reshape(x.shape)
        m, batch = x.shape[0], x.shape[1:]
        values = batched(jnp.asarray(x.reshape(m, -1).T))
        return np.asarray(values, dtype=np.float64).reshape(batch)

    return f


def _scipy(case):
    import scipy.differentiate as sd

    f = _vectorised(case)
    if case.x.ndim == 0:
        return sd.derivative(f, case.x).df
    return sd.jacobian(f, case.x).df


def _numdifftools(case):
    import numdifftools as nd

    def f(x):
        return float(case.fun(jnp.asarray(np.asarray(x, dtype=np.float64).reshape(case.x.shape))))

    if case.x.ndim == 0:
        return nd.Derivative(f)(float(case.x))
    return nd.Gradient(f)(case.x)


TOOLS = [
    ("jaxgrad default", _jaxgrad(), False),
    ('jaxgrad step="auto"', _jaxgrad(step="auto"), True),
    ('jaxgrad central order=4 step="auto"', _jaxgrad(method="central", order=4, step="auto"), True),
    ('jaxgrad richardson step="auto"', _jaxgrad(method="richardson", step="auto"), True),
    ("jaxgrad order=4", _jaxgrad(order=4), False),
    ("jaxgrad richardson", _jaxgrad(method="richardson"), False),
    ("scipy.differentiate", _scipy, False),
    ("numdifftools", _numdifftools, False),
]


def _auto_available():
    """False while jaxgrad has no step="auto" (its columns then print n/a rather than a column of failures)."""
    try:
        jg.grad(lambda x: jnp.sum(x**2), step="auto")(jnp.ones(2))
    except Exception:
        return False
    return True


def judge(case, g):
    """(passed, max relative error, max absolute error) of estimate g against case.exact."""
    g = np.asarray(g, dtype=np.float64)
    if g.size != case.exact.size:
        return False, float("inf"), float("inf")
    g = g.reshape(case.exact.shape)
    err = np.abs(g - case.exact)
    scale = np.abs(case.exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, err / scale, np.where(err == 0, 0.0, np.inf))
    finite = bool(np.all(np.isfinite(g)))
    passed = finite and bool(np.all(err <= case.atol + case.rtol * scale))
    max_rel = float(np.max(rel)) if finite else float("inf")
    max_abs = float(np.max(err)) if finite else float("inf")
    return passed, max_rel, max_abs


def evaluate(cases, tools):
    """results[tool][i] = dict(passed, max_rel, max_abs, error) for case i, or None for an unavailable tool."""
    results = {}
    for label, run, unavailable in tools:
        rows = []
        for case in cases:
            if unavailable:
                rows.append(None)
                continue
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    g = run(case)
                passed, max_rel, max_abs = judge(case, g)
                rows.append({"passed": passed, "max_rel": max_rel, "max_abs": max_abs, "error": None})
            except Exception as e:
                message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                rows.append({"passed": False, "max_rel": None, "max_abs": None, "error": message[:200]})
        results[label] = rows
    return results


def peer_of(case):
    return case.origin.split()[0]


def tables(title, cases, results):
    lines = [f"### {title} ({len(cases)} cases)", "", "| tool | cases passed / total |", "| --- | --- |"]
    for label, rows in results.items():
        if rows and rows[0] is None:
            lines.append(f"| {label} | n/a |")
        else:
            lines.append(f"| {label} | {sum(r['passed'] for r in rows)} / {len(rows)} |")
    peers = [p for p in PEERS if any(peer_of(c) == p for c in cases)]
    lines += ["", "By peer of origin:", "", "| tool | " + " | ".join(peers) + " |", "| --- |" + " --- |" * len(peers)]
    for label, rows in results.items():
        cells = []
        for p in peers:
            idx = [i for i, c in enumerate(cases) if peer_of(c) == p]
            if rows and rows[0] is None:
                cells.append("n/a")
            else:
                cells.append(f"{sum(rows[i]['passed'] for i in idx)} / {len(idx)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(title, cases, results):
    lines = [f"### Failures: {title}"]
    for label, rows in results.items():
        if rows and rows[0] is None:
            continue
        failed = [(c, r) for c, r in zip(cases, rows, strict=True) if not r["passed"]]
        lines.append(f"\n{label}: {len(failed)} failing")
        for c, r in failed:
            if r["error"] is not None:
                detail = r["error"]
            else:
                detail = f"rel err {r['max_rel']:.2e}, abs err {r['max_abs']:.2e}"
            lines.append(f"  - {c.name} ({c.origin}): {detail} [rtol={c.rtol:.2g}, atol={c.atol:.2g}]")
    return "\n".join(lines)


def to_json(sets):
    out = []
    for set_name, cases, results in sets:
        for i, case in enumerate(cases):
            entry = {
                "set": set_name,
                "name": case.name,
                "origin": case.origin,
                "peer": peer_of(case),
                "x": case.x.tolist(),
                "exact": case.exact.tolist(),
                "rtol": case.rtol,
                "atol": case.atol,
                "results": {label: rows[i] for label, rows in results.items()},
            }
            out.append(entry)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--failures", action="store_true", help="list each failing case per tool")
    parser.add_argument("--json", metavar="PATH", help="write the per-case results as JSON")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # here, not at import: pytest's doctest collection imports this module

    auto = _auto_available()
    tools = [(label, run, needs_auto and not auto) for label, run, needs_auto in TOOLS]
    sets = [("CASES", CASES, evaluate(CASES, tools)), ("BADLY_SCALED", BADLY_SCALED, evaluate(BADLY_SCALED, tools))]
    print("\n\n".join(tables(name, cases, results) for name, cases, results in sets))
    if args.failures:
        print()
        print("\n\n".join(failures(name, cases, results) for name, cases, results in sets))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(to_json(sets), fh, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

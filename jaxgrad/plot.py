"""Pictures: error-against-step V curves, the −∇f field of a 2-D function with a descent path, per-point error maps.

Needs matplotlib (`pip install 'jaxgrad[plot]'`); runs headless. Every function draws on a new figure, or on `ax`
when given, and saves it when `path` is given (PNG, SVG, PDF: by the suffix). The numbers behind the field pictures
come from `gradient_field` and `descent_path`, so they can be checked without looking.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._compile import program
from ._grad import batch_grad, grad

INSTALL_HINT = "pip install 'jaxgrad[plot]', or '.[plot]' from a checkout"
"""How to get matplotlib, the plot extra."""


def _pyplot():
    """matplotlib.pyplot; headless machines get the Agg backend from matplotlib itself, notebooks their inline one."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(f"jaxgrad.plot needs matplotlib: {INSTALL_HINT}") from error
    return plt


def _figure(ax, size=(7, 5)):
    plt = _pyplot()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


# ---------------------------------------------------------------------------------------------------- V curves
def plot_study(study, path=None, *, ax=None):
    """The error-against-step V curve of every (dtype, method) of a `Study`, log-log.

    Solid lines: the median relative error over the points (shaded: up to the 90th percentile). Dashed lines: the
    theory (truncation C·|f^(p+1)|·h^p plus rounding eps·|f|·sum|w|/h). Dotted verticals: jaxgrad's default step;
    circles: the best step found; crosses: the theoretical best step (a triangle at the grid's edge when it lies
    there or beyond: `Curve.theory_beyond`); diamonds: step="auto" (its median chosen step
    and median error), with thin lines at the bottom: the share of coordinates whose chosen step is near each step.
    """
    fig, ax = _figure(ax)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray"]
    share_axis = None
    for color, c in zip(colors * 4, study.curves, strict=False):
        label = c.label
        ax.loglog(c.steps, c.median, "-", color=color, label=label)
        ax.fill_between(c.steps, c.median, c.p90, color=color, alpha=0.15, linewidth=0)
        ax.loglog(c.steps, c.theory, "--", color=color, linewidth=1)
        ax.axvline(c.default_step, color=color, linestyle=":", linewidth=1)
        best = int(np.nanargmin(c.median))
        ax.plot(c.steps[best], c.median[best], "o", color=color)
        edge_marker = {"above": ">", "below": "<"}.get(c.theory_beyond, "x")  # a best step off the grid: a triangle
        ax.plot(c.theory_step, c.theory_error, edge_marker, color=color, markersize=8)
        if c.auto_share is not None and np.isfinite(c.auto_error):
            ax.plot(c.auto_step, c.auto_error, "D", color=color, markersize=6)
            if share_axis is None:
                share_axis = ax.twinx()
                share_axis.set_ylabel("share of steps chosen by step='auto'")
                share_axis.set_ylim(0, 4)  # the shares sit in the lower quarter, under the V curves
            share_axis.step(c.steps, c.auto_share, where="mid", color=color, linewidth=0.8, alpha=0.7)
    ax.set_xlabel("step factor s   (h = s·max(|x|, 1))")
    ax.set_ylabel("relative error |g − g*| / |g*|   (median over points)")
    ax.set_title(f"{study.function}: error against step, d={study.dim}, {study.num_points:,} points")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(title="solid: measured (shaded to the 90th pct), dashed: theory\ndotted: default step, "
              "o: best found, x: theory best (▷ ◁: at the grid's edge or beyond), ◆: step='auto'", fontsize=8,
              title_fontsize=8)  # fmt: skip
    return _finish(fig, path)


# ------------------------------------------------------------------------------------------------ fields, descent
def gradient_field(fun, domain=((-5.0, 5.0), (-5.0, 5.0)), grid: int = 15):
    """−∇f of a function of 2 coordinates on a grid×grid lattice: the arrows of the notes' figure.

    Returns:
      (X, Y, U, V): the lattice and the components of −∇f there (NumPy arrays of shape (grid, grid)), from one
      `batch_grad` call.

    Example:
      >>> import jaxgrad as jg
      >>> from jaxgrad.plot import gradient_field
      >>> X, Y, U, V = gradient_field(jg.functions.sphere, ((-2, 2), (-2, 2)), grid=3)
      >>> print(U[1, 2], V[1, 2])   # at (2, 0): -grad f = (-4, 0), pointing to the minimum
      -4.0 -0.0
    """
    (x0, x1), (y0, y1) = domain
    X, Y = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    points = np.stack([X.ravel(), Y.ravel()], axis=1).astype(jnp.result_type(float))  # float32 unless x64 is on
    g = np.asarray(batch_grad(fun, points))
    return X, Y, -g[:, 0].reshape(X.shape), -g[:, 1].reshape(X.shape)


def descent_path(fun, start, *, learning_rate: float = 0.1, steps: int = 100):
    """Gradient descent x ← x − learning_rate·∇f(x) with jaxgrad's numerical gradient, as in the notes.

    Returns:
      (steps + 1, d) array of the iterates, the start first.

    Example:
      >>> import jaxgrad as jg
      >>> from jaxgrad.plot import descent_path
      >>> path = descent_path(jg.functions.sphere, [-3.0, 4.0], learning_rate=0.1, steps=100)
      >>> bool(abs(path[-1]).max() < 1e-8)
      True
    """
    gradient = program(grad(fun))
    x = jnp.asarray(start, dtype=jnp.result_type(float))
    path = [np.asarray(x)]
    for _ in range(steps):
        x = x - learning_rate * gradient(x)
        path.append(np.asarray(x))
    return np.stack(path)


def domain_holding(domain, points, *, margin: float = 0.05):
    """The box `domain` ((x0, x1), (y0, y1)), grown where needed to hold `points` (an (n, 2) array, e.g. a descent
    path) with `margin`·span to spare on each side that grew; a square box stays square.

    Raises:
      ValueError: a point that is not finite (a diverging descent), naming the step and the fix.

    Example:
      >>> from jaxgrad.plot import domain_holding
      >>> domain_holding(((-2, 2), (-2, 2)), [[-3.0, 4.0], [0.0, 0.0]], margin=0)  # square: both axes [-3, 4]
      ((-3.0, 4.0), (-3.0, 4.0))
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    finite = np.all(np.isfinite(points), axis=1)
    if not finite.all():
        raise ValueError(f"the descent path is not finite from step {int(np.argmin(finite))} on (it diverges): use a "
                         "smaller learning rate")  # fmt: skip
    (x0, x1), (y0, y1) = [(float(lo), float(hi)) for lo, hi in domain]
    square = (x0, x1) == (y0, y1)
    low, high = points.min(axis=0, initial=np.inf), points.max(axis=0, initial=-np.inf)
    if square:
        low[:], high[:] = low.min(), high.max()
    grown = []
    for (lo, hi), p_lo, p_hi in zip(((x0, x1), (y0, y1)), low, high, strict=True):
        new_lo, new_hi = min(lo, p_lo), max(hi, p_hi)
        spare = margin * (new_hi - new_lo)
        grown.append((float(new_lo - spare if new_lo < lo else lo), float(new_hi + spare if new_hi > hi else hi)))
    return tuple(grown)


def plot_gradient_field(
    fun,
    path=None,
    *,
    domain=None,
    grid: int = 15,
    descent_from=None,
    learning_rate: float | None = None,
    steps: int = 30,
    descent=None,
    ax=None,
):
    """Contour lines of f and the arrows of −∇f (the notes' Figure_1), optionally a gradient-descent path.

    The arrows point downhill and their length is |∇f|: for x0² + x1² they all point to (0, 0) and grow away from it.
    The path is `steps` steps of `descent_path` from `descent_from`, or `descent`, an (n, 2) array of iterates from
    elsewhere (e.g. `reference.gradient_descent`; a `learning_rate` given with it is only named in the legend);
    `learning_rate` defaults to 0.1. The drawn box is `domain` (default: the function's) grown by
    `domain_holding` to hold the whole path.

    Example:
      >>> import numpy as np, jaxgrad as jg
      >>> from jaxgrad.plot import plot_gradient_field
      >>> x, history = jg.reference.gradient_descent(jg.functions.sphere, np.array([-3.0, 4.0]), lr=0.1, step_num=20)
      >>> fig = plot_gradient_field(jg.functions.sphere, domain=((-2, 2), (-2, 2)), descent=np.vstack([history, [x]]))
    """
    domain = domain or (tuple(getattr(fun, "domain", (-5.0, 5.0))),) * 2
    if descent is not None and descent_from is not None:
        raise ValueError("pass `descent_from` (a start, the path computed here) or `descent` (the path), not both.")
    if descent_from is not None:
        learning_rate = 0.1 if learning_rate is None else learning_rate
        descent = descent_path(fun, descent_from, learning_rate=learning_rate, steps=steps)
    if descent is not None:
        descent = np.asarray(descent, np.float64)
        if descent.ndim != 2 or descent.shape[1] != 2:
            raise ValueError(f"`descent` must be an (n, 2) array of iterates, got shape {descent.shape}.")
        rate = "" if learning_rate is None else f"lr={learning_rate}, "
        label = f"gradient descent, {rate}{len(descent) - 1} steps"
        domain = domain_holding(domain, descent)
    fig, ax = _figure(ax, size=(6, 6))
    (x0, x1), (y0, y1) = domain
    fine_x, fine_y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    values = np.asarray(jax.vmap(fun)(jnp.asarray(np.stack([fine_x.ravel(), fine_y.ravel()], axis=1))))
    contour = ax.contour(fine_x, fine_y, values.reshape(fine_x.shape), levels=12, cmap="viridis", linewidths=0.8)
    ax.clabel(contour, fontsize=7)
    X, Y, U, V = gradient_field(fun, domain, grid)
    ax.quiver(X, Y, U, V, angles="xy", color="tab:red", width=0.003)
    if descent is not None:
        ax.plot(descent[:, 0], descent[:, 1], "o-", color="black", markersize=3, linewidth=1, label=label)
        ax.legend(loc="upper right", fontsize=8)
    name = getattr(fun, "name", None) or getattr(fun, "__name__", "f")
    ax.set_title(f"{name}: −∇f (arrows) over contour lines of f")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_aspect("equal")
    return _finish(fig, path)


# ------------------------------------------------------------------------------------------------ error maps
def plot_error_map(comparison, path=None, *, ax=None):
    """Each point of a `Comparison` of a 2-D function, coloured by its worst error relative to its tolerance (log
    scale): ringed red where it mismatches (`comparison.mismatched`), grey where it is out of tolerance only because f
    is not smooth at the step there (`comparison.kinked`: no evidence against the gradient, as in the verdict)."""
    import matplotlib.colors as mcolors

    if comparison.points is None or comparison.points.shape[1] != 2:
        raise ValueError("plot_error_map needs a Comparison of a function of 2 coordinates.")
    fig, ax = _figure(ax, size=(6.5, 5.5))
    ratio = np.max(comparison.ratio, axis=1)
    shown = np.clip(np.where(np.isfinite(ratio), ratio, 1e3), 1e-4, 1e3)
    scatter = ax.scatter(comparison.points[:, 0], comparison.points[:, 1], c=shown, s=12, cmap="magma_r",
                         norm=mcolors.LogNorm(vmin=1e-4, vmax=max(1.0, shown.max())))  # fmt: skip
    fig.colorbar(scatter, ax=ax, label="error / tolerance (worst coordinate)")
    marked = [(comparison.mismatched, "red", "mismatch"), (comparison.kinked, "grey", "not smooth here")]
    for where, colour, label in marked:
        if where.any():
            ax.scatter(*comparison.points[where].T, facecolors="none", edgecolors=colour, s=40, label=label)
    if any(where.any() for where, _, _ in marked):
        ax.legend(loc="upper right")
    ax.set_title(
        f"{comparison.function} ({comparison.dtype}): jaxgrad vs {comparison.exact_name}, {comparison.verdict}"
    )
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    return _finish(fig, path)

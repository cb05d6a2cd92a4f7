"""Step rules: the dtype-aware default step and the checks on a user's step."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def working_dtype(dtype) -> np.dtype:
    """The float dtype a leaf of `dtype` is differentiated in.

    Floats of 32 bits and more keep their dtype (float32 stays float32). Integers and booleans are promoted to the
    default float dtype (float64 with `jax_enable_x64`, else float32), because x + h must not be truncated. float16
    and bfloat16 are computed in float32: their eps^(1/3) ≈ 0.1 step is too coarse for a useful derivative.
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"Inputs must be real, got dtype {dtype}: the gradient of a real function of complex input "
            "is not defined by these stencils. Pass the real and imaginary parts as separate arrays."
        )
    return np.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def round_to_power_of_two(h):
    """The power of two nearest to h (in log scale), for finite positive normal h; other values pass through.

    A power-of-two step is exactly representable, multiplying and dividing by it is exact, and x ± h is exact far
    more often; for the notes' f = x0² + x1² it makes every central difference exact, e.g. grad at (3, 4) is exactly
    (6, 8) in float32 and float64. Computed with bit operations (clear the mantissa of h·√2), which cost one multiply
    and one AND, and are exact.
    """
    info = jnp.finfo(h.dtype)
    int_dtype = {32: jnp.int32, 64: jnp.int64}[info.bits]
    keep_sign_and_exponent = ~((1 << info.nmant) - 1)
    bits = lax.bitcast_convert_type(h * math.sqrt(2), int_dtype)
    power = lax.bitcast_convert_type(bits & keep_sign_and_exponent, h.dtype)
    return jnp.where(jnp.isfinite(h) & (h >= info.smallest_normal), power, h)


def default_step(x, order: int = 2, *, exponent: float | None = None, representable: bool = True):
    """The default step of a stencil of order p: eps^(1/(p+1)) · max(|x|, 1), per coordinate.

    eps^(1/(p+1)) balances the truncation error (∝ h^p) against the round-off error (∝ eps/h) for a function whose
    derivatives are of the size of its values: the total error is then ≈ eps^(p/(p+1)), e.g. 2e-5 in float32 and
    4e-11 in float64 for central order 2 (the notes' fixed h = 1e-4 gives 7.7e-4 in float32 on Rosenbrock). The factor
    max(|x|, 1) keeps x + h resolvable for large |x|. The step is then rounded to the nearest power of two and made
    exactly representable, h = (x + h) - x, so the stencil's points are exactly x + k h. The complex step passes
    exponent=2 (h = eps²·max(|x|, 1)) and representable=False: its step is imaginary and never added to x.

    Args:
      x: a float array (the point, already in its working dtype).
      order: the order p of the stencil.
      exponent: eps's exponent, if not 1/(p+1).
      representable: make x + h exact (real steps).

    Returns:
      An array like x: the step of each coordinate. Non-finite x gives a non-finite step.

    Example:
      >>> import jax.numpy as jnp
      >>> print(default_step(jnp.array([0.0, 3.0, 100.0], jnp.float32), 2))  # eps^(1/3) ≈ 4.9e-3
      [0.00390625 0.015625   0.5       ]
    """
    eps = float(jnp.finfo(x.dtype).eps)
    power = 1.0 / (order + 1) if exponent is None else exponent
    h = round_to_power_of_two((eps**power * jnp.maximum(jnp.abs(x), 1)).astype(x.dtype))
    return representable_step(x, h) if representable else h


def representable_step(x, h):
    """(x + h) - x: the step the dtype actually takes from x, so that the difference divides by the true step."""
    return (x + h) - x


def check_step(step, name: str = "step"):
    """Validate a user step that is known on the host: every entry positive and finite.

    A step that is a tracer (computed under `jax.jit`) cannot be checked here; a zero or negative one then shows as
    a non-finite gradient.

    Raises:
      ValueError: naming `step`, the bad value and the fix.
    """
    leaves = jax.tree_util.tree_leaves(step)
    if not leaves:
        raise ValueError(f"`{name}` is an empty pytree; pass a positive scalar or None for the default step.")
    for leaf in leaves:
        if isinstance(leaf, jax.core.Tracer):
            continue
        values = np.asarray(leaf)
        if not (jnp.issubdtype(values.dtype, jnp.floating) or jnp.issubdtype(values.dtype, jnp.integer)):
            raise TypeError(f"`{name}` must be real numbers, got dtype {values.dtype}.")
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            example = values.reshape(-1)[np.argmax(bad.reshape(-1))].item()  # a Python number prints plainly
            raise ValueError(
                f"`{name}` must be positive and finite, got {example!r}. Pass a positive step, e.g. {name}=1e-3, "
                f"or {name}=None for the default eps^(1/(p+1))·max(|x|, 1)."
            )

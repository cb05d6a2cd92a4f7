"""How jaxgrad compiles its own programs: `program`, jax.jit with jaxgrad's XLA options (`COMPILER_OPTIONS`)."""

from __future__ import annotations

import functools

import jax
from jax.extend.core import find_top_trace

COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
"""The XLA options of jaxgrad's own programs: on a CPU, XLA's classic fusion emitters rather than its MLIR ones, which
compile jaxgrad's programs about a third slower for the same bits (jaxlib 0.10.2 on 2 cores: the checking program of
`compare` with the domain repair 1.60 -> 0.99 s; a mix of `batch_grad`, traced `grad`, `with_error`, `hessian` and
order 4, backend compile 10.4-10.8 -> 7.0-7.3 s with the option on every program (XLA_FLAGS), 9.0-9.3 -> 7.5-7.8 s on
jaxgrad's own programs alone, as here; float32 and float64 results equal bit for bit). Other backends ignore it.
A program that runs inside the user's own `jax.jit` is compiled with the user's options, not these."""


class program:
    """`jax.jit(fun, **jit_options)` with `COMPILER_OPTIONS` where it is compiled on its own; a plain `jax.jit` where
    it is staged into another program (inside the user's `jax.jit`: JAX takes compiler options at the top level only)
    and on a JAX that does not know the options (no `compiler_options`, or an XLA without the option).

    >>> import jax.numpy as jnp
    >>> double = program(lambda x: 2 * x)
    >>> double(jnp.arange(3.0)).tolist()
    [0.0, 2.0, 4.0]
    """

    def __init__(self, fun, **jit_options):
        functools.update_wrapper(self, fun)
        self._plain = jax.jit(fun, **jit_options)
        try:
            self._jitted = jax.jit(fun, compiler_options=COMPILER_OPTIONS, **jit_options)
        except TypeError:  # a JAX whose jit takes no compiler_options
            self._jitted = self._plain

    def __call__(self, *args, **kwargs):
        if _staging():
            return self._plain(*args, **kwargs)
        try:
            return self._jitted(*args, **kwargs)
        except ValueError as error:  # staged after all, where `_staging` could not tell
            if "compiler_options" not in str(error):
                raise
            return self._plain(*args, **kwargs)
        except RuntimeError as error:  # the compile, on an XLA without such an option: from now on without
            if "No such compile option" not in str(error):
                raise
            self._jitted = self._plain
            return self._plain(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """The jitted function's `lower` (`jax.stages.Lowered`), for its compiled program's analyses."""
        return self._jitted.lower(*args, **kwargs)


def _staging() -> bool:
    """Whether JAX is staging a program (tracing the user's `jax.jit`, `jax.lax` control flow or `jax.make_jaxpr`):
    the current trace is JAX's `DynamicJaxprTrace` (`jax.extend.core.find_top_trace`). An eager `jax.vmap` or `jax.grad`
    is not: the program it runs is compiled on its own."""
    return type(find_top_trace(())).__name__ == "DynamicJaxprTrace"

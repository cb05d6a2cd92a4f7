"""Test functions for the verification layer: correct ones (compositions of jax.numpy and jax.scipy.special) and
planted gradient bugs (custom_jvp rules that are wrong in a known coordinate)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

# ------------------------------------------------------------------------------------------------- correct functions
_W1 = np.random.default_rng(1).normal(size=(4, 3)) / 2
_X = np.random.default_rng(2).normal(size=(16, 4))
_Y = np.random.default_rng(3).normal(size=16)


def softplus_ridge(x):
    return jnp.sum(jax.nn.softplus(x)) + 0.1 * jnp.sum(x**2)


def erf_logsumexp(x):
    return jnp.sum(jsp.erf(x) * x) + jsp.logsumexp(x)


def gammaln_quadratic(x):
    return jnp.sum(jsp.gammaln(1.5 + x**2))


def damped_waves(x):
    return jnp.sum(jnp.sin(3 * x) * jnp.exp(-(x**2) / 4))


def log_norm(x):
    return jnp.log1p(jnp.sum(x**2))


def xlogy_mix(x):
    return jnp.sum(jsp.xlogy(x**2 + 1, x**2 + 2))


def expit_chain(x):
    return jnp.sum(jsp.expit(x[:-1] * x[1:])) + jnp.sum(jnp.log(jnp.cosh(x)))


def mlp_loss(params):
    hidden = jnp.tanh(jnp.asarray(_X, params["w1"].dtype) @ params["w1"] + params["b1"][None, :])
    return jnp.mean((hidden @ params["w2"] - jnp.asarray(_Y, params["w2"].dtype)) ** 2)


CORRECT = {
    f.__name__: f
    for f in (softplus_ridge, erf_logsumexp, gammaln_quadratic, damped_waves, log_norm, xlogy_mix, expit_chain)
}


def sample(num_points: int, dim: int, dtype, seed: int = 0, low: float = -2.0, high: float = 2.0):
    return np.random.default_rng(seed).uniform(low, high, size=(num_points, dim)).astype(dtype)


def sample_mlp(num_points: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(size=(num_points, 4, 3)).astype(dtype),
        "b1": rng.normal(size=(num_points, 3)).astype(dtype),
        "w2": rng.normal(size=(num_points, 3)).astype(dtype),
    }


# ---------------------------------------------------------------------------------------------------- planted bugs
def base(x):
    """A smooth function with every partial derivative of order one on [-2, 2]^6."""
    return jnp.sum(jnp.log(jnp.cosh(x))) + 0.5 * jnp.sum(x**2) + jnp.sum(x[:-1] * x[1:])


def base_grad(x):
    neighbours = jnp.concatenate([x[1:], jnp.zeros(1, x.dtype)]) + jnp.concatenate([jnp.zeros(1, x.dtype), x[:-1]])
    return jnp.tanh(x) + x + neighbours


SMALL = {"float32": 1e-2, "float64": 1e-5}
"""Relative size of the subtle bugs in each dtype."""


@dataclasses.dataclass(frozen=True)
class Bug:
    name: str
    fun: object  # f with a custom_jvp carrying the wrong gradient
    coordinates: tuple[int, ...]  # where the gradient is wrong


def _with_gradient(f, wrong_grad):
    g = jax.custom_jvp(f)
    g.defjvp(lambda primals, tangents: (f(primals[0]), jnp.dot(wrong_grad(primals[0]), tangents[0])))
    return g


def bugs(dtype: str) -> list[Bug]:
    """The planted bugs, sized for `dtype` (1e-2 relative in float32, 1e-5 in float64)."""
    small = SMALL[dtype]

    def relative(x):
        return base_grad(x).at[2].multiply(1 + small)

    def sign_flip(x):
        return base_grad(x).at[1].multiply(-1)

    def swapped(x):
        g = base_grad(x)
        return g.at[0].set(g[3]).at[3].set(g[0])

    def with_small_term(x):  # f gets c·x4³ whose derivative the gradient forgets
        return base(x) + small * x[4] ** 3

    def missing_term(x):
        return base_grad(x)

    def part_of_domain(x):  # wrong only where x0 > 1 (a quarter of [-2, 2])
        g = base_grad(x)
        return g.at[5].multiply(jnp.where(x[0] > 1, 1 + 10 * small, 1.0))

    return [
        Bug("relative error", _with_gradient(base, relative), (2,)),
        Bug("sign flip", _with_gradient(base, sign_flip), (1,)),
        Bug("swapped coordinates", _with_gradient(base, swapped), (0, 3)),
        Bug("missing small term", _with_gradient(with_small_term, missing_term), (4,)),
        Bug("error in part of the domain", _with_gradient(base, part_of_domain), (5,)),
    ]

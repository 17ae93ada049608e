"""The method's fixed-count log-domain Sinkhorn updates as one Pallas (Triton) kernel.

ott-jax runs every Sinkhorn update as a few XLA kernels. At the method's sizes (one ``[K, K']``
cost per frame pair with K about 40, 200 updates) each update is microseconds of launch-bound
work, and the loop takes most of the compressor's time on a GPU. Here one program holds one
problem's cost in registers and makes all its updates; ``jax.vmap`` over problems (frame pairs,
configs of a sweep) becomes the kernel's grid.

The updates are ott-jax's, operation for operation (``Geometry.update_potential`` in log space,
column potential first, momentum 1, potentials starting at zero), so the potentials agree with
``ott.solvers.linear.sinkhorn.Sinkhorn`` to float32 rounding.

Axes: R rows (the source's tokens, padded to a power of two ``R'``), C columns (the target's, ``C'``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from ottvid_jax.pallas_blocks import MIN_TILE, power_of_two

__all__ = ["sinkhorn_potentials"]


def _kernel(eps_ref, cost_ref, log_a_ref, log_b_ref, f_ref, g_ref, *, rows: int, cols: int, iterations: int):
  eps = eps_ref[0]
  cost = cost_ref[...]  # [R', C'], zero outside the problem
  row_ok = jax.lax.broadcasted_iota(jnp.int32, cost.shape, 0) < rows
  col_ok = jax.lax.broadcasted_iota(jnp.int32, cost.shape, 1) < cols
  log_a, log_b = log_a_ref[...], log_b_ref[...]  # [R'], [C'], zero outside the problem

  def lse(z, axis):  # eps * log sum exp(z / eps) over the valid entries of one axis
    z = jnp.where(row_ok & col_ok, z / eps, -jnp.inf)
    top = jnp.max(z, axis=axis, keepdims=True)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    return eps * (jnp.log(jnp.sum(jnp.exp(z - top), axis=axis)) + jnp.squeeze(top, axis))

  def update(_, potentials):
    f, g = potentials
    # ott: g <- eps log b - (eps LSE_i((f_i + g_j - C_ij) / eps) - g_j), f likewise with the new g.
    centred = f[:, None] + g[None, :] - cost
    app = lse(centred, 0) - g
    g = jnp.where(jnp.arange(g.shape[0]) < cols, eps * log_b - jnp.where(jnp.isfinite(app), app, 0.0), 0.0)
    centred = f[:, None] + g[None, :] - cost
    app = lse(centred, 1) - f
    f = jnp.where(jnp.arange(f.shape[0]) < rows, eps * log_a - jnp.where(jnp.isfinite(app), app, 0.0), 0.0)
    return f, g

  f, g = jax.lax.fori_loop(0, iterations, update, (jnp.zeros_like(log_a), jnp.zeros_like(log_b)))
  f_ref[...] = f
  g_ref[...] = g


@functools.partial(jax.named_call, name="sinkhorn_potentials")
def sinkhorn_potentials(cost: jax.Array, log_a: jax.Array, log_b: jax.Array, epsilon: jax.Array,
                        iterations: int, *, interpret: bool = False) -> tuple[jax.Array, jax.Array]:
  """Runs ``iterations`` log-domain Sinkhorn updates of one balanced problem from zero potentials.

  Args:
    cost: ``[R, C]`` float32 cost.
    log_a, log_b: ``[R]``, ``[C]`` float32 logs of the marginals (each summing to one).
    epsilon: the absolute entropic regularisation, a positive float32 scalar.
    iterations: the number of updates (each: the column potential, then the row potential).
    interpret: run the kernel in Pallas' interpreter (on a CPU).

  Returns:
    The potentials ``(f [R], g [C])``; the plan is ``exp((f_i + g_j - C_ij) / epsilon)``.
  """
  rows, cols = cost.shape
  if log_a.shape != (rows,) or log_b.shape != (cols,) or jnp.shape(epsilon) != ():
    raise ValueError(f"sinkhorn_potentials needs cost [R, C], log_a [R], log_b [C] and a scalar epsilon: got "
                     f"{cost.shape}, {log_a.shape}, {log_b.shape}, {jnp.shape(epsilon)}")
  r, c = power_of_two(rows, MIN_TILE), power_of_two(cols, MIN_TILE)
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  padded_cost = jnp.pad(f32(cost), ((0, r - rows), (0, c - cols)))
  f, g = pl.pallas_call(
      functools.partial(_kernel, rows=rows, cols=cols, iterations=iterations),
      out_shape=[jax.ShapeDtypeStruct((r,), jnp.float32), jax.ShapeDtypeStruct((c,), jnp.float32)],
      compiler_params=plt.CompilerParams(num_warps=_warps(r * c), num_stages=1),
      interpret=interpret,
  )(jnp.reshape(f32(epsilon), (1,)), padded_cost, jnp.pad(f32(log_a), (0, r - rows)),
    jnp.pad(f32(log_b), (0, c - cols)))
  return f[:rows], g[:cols]


def _warps(entries: int) -> int:
  """Warps of a program: about 32 entries of the padded cost a thread (a 64 x 64 cost: 4 warps)."""
  return max(1, min(8, entries // (32 * 32)))

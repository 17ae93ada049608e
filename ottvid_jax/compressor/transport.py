"""Stage 2b: entropic OT plans between adjacent frames, through ott-jax.

The method's Sinkhorn is the log-domain one with an **absolute** epsilon and a
**fixed** number of updates. ott-jax's defaults differ on both counts (its
``epsilon=None`` is relative to the cost's spread and its loop stops on a
threshold), so both are set explicitly here. ``min_iterations ==
max_iterations`` makes ott run a ``lax.scan`` instead of a ``while_loop``,
which stays one fixed-length loop under ``vmap``; the update order (column
potential, then row) is the authors'.

The same updates also run as one fused kernel (:mod:`.sinkhorn_kernel`), the default on a GPU,
where ott's loop is bound by kernel launches.

Gradients, whichever solver ran forward, are the exact derivative of the
fixed-count updates: the backward pass differentiates the same updates written
as a plain ``lax.scan`` (:func:`_scan_potentials`). ott's own gradients do not
serve: backpropagating through its loop (``implicit_diff=None``) is right for
one block of ``inner_iterations`` updates but wrong beyond it (on a 6 x 5
problem in float64 at 200 updates, a loss's derivative in epsilon came out 1.42
where finite differences and this scan give 0.187), and its implicit differentiation at
the fixed point solves a linear system that is nearly singular at the method's
epsilon (plan entries underflow to zero), where its conjugate-gradient solve
returns NaN.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn

from ottvid_jax.compressor import sinkhorn_kernel
from ottvid_jax.compressor.config import SinkhornSolver

__all__ = ["TransportResult", "transport_plan"]


class TransportResult(NamedTuple):
  """The OT solution of one frame pair.

  Attributes:
    plan: the coupling ``T`` of shape ``[K, K']``, float32.
    difficulty: the transport difficulty ``W = sum_ij T_ij C_ij``, a scalar.
    marginal_error: ``|T 1 - a|_1 + |T^T 1 - b|_1`` after the last update, a
      scalar; large values mean epsilon is too small for the iteration count.
  """

  plan: jnp.ndarray
  difficulty: jnp.ndarray
  marginal_error: jnp.ndarray


def transport_plan(
    cost: jnp.ndarray,
    source_mass: jnp.ndarray,
    target_mass: jnp.ndarray,
    epsilon: jnp.ndarray,
    iterations: int,
    solver: SinkhornSolver = SinkhornSolver.AUTO,
) -> TransportResult:
  """Solves one entropic OT problem between two sets of kept tokens.

  Args:
    cost: ``C`` of shape ``[K, K']``.
    source_mass: positive masses of frame t, ``[K]``; normalised here.
    target_mass: positive masses of frame t+1, ``[K']``; normalised here.
    epsilon: the absolute entropic regularisation, a positive scalar (traced).
    iterations: the fixed number of Sinkhorn updates (static).
    solver: which implementation makes the updates (static); ``AUTO`` takes the
      fused kernel when JAX's default backend is a GPU, ott-jax otherwise.

  Returns:
    A :class:`TransportResult`.

  Note:
    Everything is computed in float32 (in bf16 Sinkhorn stalls around a
    marginal error of 1e-2). Masses must be strictly positive: a zero entry
    makes ``log(a)`` infinite and the gradients NaN. Gradients are those of the
    ``iterations`` updates (see the module's docstring).
  """
  cost = cost.astype(jnp.float32)
  a = source_mass.astype(jnp.float32)
  b = target_mass.astype(jnp.float32)
  a = a / jnp.sum(a)
  b = b / jnp.sum(b)
  epsilon = jnp.asarray(epsilon, jnp.float32)
  if solver is SinkhornSolver.AUTO:
    solver = SinkhornSolver.FUSED if jax.default_backend() == "gpu" else SinkhornSolver.OTT
  f, g = _potentials(cost, a, b, epsilon, iterations, solver)
  plan = jnp.exp((f[:, None] + g[None, :] - cost) / epsilon)  # ott's transport_from_potentials
  error = jnp.sum(jnp.abs(jnp.sum(plan, 1) - a)) + jnp.sum(jnp.abs(jnp.sum(plan, 0) - b))
  return TransportResult(plan, jnp.sum(plan * cost), error)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _potentials(cost, a, b, epsilon, iterations, solver):
  """The potentials ``(f [K], g [K'])`` after ``iterations`` updates from zero, by ``solver``."""
  if solver is SinkhornSolver.FUSED:  # interpreted off a GPU
    return sinkhorn_kernel.sinkhorn_potentials(cost, jnp.log(a), jnp.log(b), epsilon, iterations,
                                               interpret=jax.default_backend() != "gpu")
  geom = geometry.Geometry(cost_matrix=cost, epsilon=epsilon)
  out = sinkhorn.Sinkhorn(lse_mode=True, min_iterations=iterations, max_iterations=iterations,
                          inner_iterations=_inner_iterations(iterations))(linear_problem.LinearProblem(geom, a=a, b=b))
  return out.f, out.g  # read inside any vmap: outside, ott's properties misbehave


def _forward(cost, a, b, epsilon, iterations, solver):
  return _potentials(cost, a, b, epsilon, iterations, solver), (cost, a, b, epsilon)


def _backward(iterations, solver, residuals, cotangents):
  del solver  # every solver makes the same updates
  _, pullback = jax.vjp(functools.partial(_scan_potentials, iterations=iterations), *residuals)
  return pullback(cotangents)


_potentials.defvjp(_forward, _backward)


def _scan_potentials(cost, a, b, epsilon, iterations):
  """ott's updates as a plain ``lax.scan`` (differentiated, never run forward on its own).

  Each update is rematerialised in the backward pass, so the saved state is the potentials of
  every update, not the ``[K, K']`` intermediates.
  """
  lse = jax.scipy.special.logsumexp

  @jax.checkpoint
  def update(potentials, _):
    f, g = potentials
    g = epsilon * jnp.log(b) - epsilon * lse((f[:, None] + g[None, :] - cost) / epsilon, axis=0) + g
    f = epsilon * jnp.log(a) - epsilon * lse((f[:, None] + g[None, :] - cost) / epsilon, axis=1) + f
    return (f, g), None

  (f, g), _ = jax.lax.scan(update, (jnp.zeros_like(a), jnp.zeros_like(b)), None, length=iterations)
  return f, g


def _inner_iterations(iterations: int) -> int:
  """The largest divisor of ``iterations`` up to 10 (ott's default block).

  ott runs ``iterations // inner_iterations`` blocks, so the block must divide
  the count exactly for the solver to make exactly ``iterations`` updates.
  """
  return max(d for d in range(1, min(10, iterations) + 1) if iterations % d == 0)

"""Stage 2b: entropic OT plans between adjacent frames, through ott-jax.

The method's Sinkhorn is the log-domain one with an **absolute** epsilon and a
**fixed** number of updates. ott-jax's defaults differ on both counts (its
``epsilon=None`` is relative to the cost's spread and its loop stops on a
threshold), so both are set explicitly here. ``min_iterations ==
max_iterations`` makes ott run a ``lax.scan`` instead of a ``while_loop``,
which stays one fixed-length loop under ``vmap``; the update order (column
potential, then row) is the authors'.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import implicit_differentiation as implicit_lib
from ott.solvers.linear import sinkhorn

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
) -> TransportResult:
  """Solves one entropic OT problem between two sets of kept tokens.

  Args:
    cost: ``C`` of shape ``[K, K']``.
    source_mass: positive masses of frame t, ``[K]``; normalised here.
    target_mass: positive masses of frame t+1, ``[K']``; normalised here.
    epsilon: the absolute entropic regularisation, a positive scalar (traced).
    iterations: the fixed number of Sinkhorn updates (static).

  Returns:
    A :class:`TransportResult`.

  Note:
    Everything is computed in float32 (in bf16 Sinkhorn stalls around a
    marginal error of 1e-2). Masses must be strictly positive: a zero entry
    makes ``log(a)`` infinite and the implicit-differentiation gradients NaN.
    Differentiating through this function uses ott's implicit differentiation
    at the fixed point.
  """
  cost = cost.astype(jnp.float32)
  a = source_mass.astype(jnp.float32)
  b = target_mass.astype(jnp.float32)
  a = a / jnp.sum(a)
  b = b / jnp.sum(b)
  geom = geometry.Geometry(cost_matrix=cost, epsilon=jnp.asarray(epsilon, jnp.float32))
  problem = linear_problem.LinearProblem(geom, a=a, b=b)
  solver = sinkhorn.Sinkhorn(
      lse_mode=True,
      min_iterations=iterations,
      max_iterations=iterations,
      inner_iterations=_inner_iterations(iterations),
      implicit_diff=_IMPLICIT_DIFF,
  )
  out = solver(problem)
  plan = out.matrix  # read inside any vmap: outside, ott's properties misbehave
  error = jnp.sum(jnp.abs(jnp.sum(plan, 1) - a)) + jnp.sum(jnp.abs(jnp.sum(plan, 0) - b))
  return TransportResult(plan, jnp.sum(plan * cost), error)


# Gradients (only) go through ott-jax's implicit differentiation at the fixed
# point. Its linear system is singular along constant potentials for balanced
# problems: the kernel ridge removes that direction, and float32 tolerances let
# the conjugate-gradient solve converge instead of failing (giving NaN).
_IMPLICIT_DIFF = implicit_lib.ImplicitDiff(solver_kwargs={"ridge_kernel": 1e-4, "ridge_identity": 1e-6,
                                                          "rtol": 1e-4, "atol": 1e-5})


def _inner_iterations(iterations: int) -> int:
  """The largest divisor of ``iterations`` up to 10 (ott's default block).

  ott runs ``iterations // inner_iterations`` blocks, so the block must divide
  the count exactly for the solver to make exactly ``iterations`` updates.
  """
  return max(d for d in range(1, min(10, iterations) + 1) if iterations % d == 0)

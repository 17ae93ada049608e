"""Stage 3: splitting the merge budget R over the frame pairs.

Pairs that are cheap to transport (low difficulty W, much redundancy) get more
merges, by a softmax over ``-W / tau_b``. A pair may merge at most ``cap``
tokens (K - 1); whatever a full pair cannot take is handed round again among
the pairs that still have room, with the same softmax restricted to them:

    remaining = R, all pairs with room active
    while remaining > 0 and some pair is active:
        omega = softmax(-W_active / tau_b)
        want  = floor(omega * remaining), the leftover units going one each
                to the largest fractional parts
        applied = min(want, cap - budget); budget += applied
        remaining = sum(want - applied); freeze the pairs at their cap

Each pass that leaves something over freezes at least one pair, so the loop
makes at most P + 1 passes (typically one). It runs as a loop of exactly P + 1
trips whose later trips leave the state unchanged: a ``lax.while_loop`` with a
data-dependent condition would make the GPU runtime copy the condition to the
host on every trip, stalling the host until the GPU reaches the loop (measured
on an H200: the next program, the LLM prefill, was queued 1.5 ms late).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["allocate_budgets", "rank_descending"]

_COUNT_MAX = 256  # rank_descending counts up to this many entries and sorts beyond


def rank_descending(values: jnp.ndarray) -> jnp.ndarray:
  """Rank of each entry ``[P]`` in a stable descending order (ties: lower index first).

  Up to :data:`_COUNT_MAX` entries by counting, ``rank_i = #{j : v_j > v_i or
  (v_j == v_i and j < i)}`` (one fused ``[P, P]`` comparison, no sort kernel:
  the budget loop ranks tens of pairs on every trip); beyond, by a stable sort.
  """
  n = values.shape[0]
  if n <= _COUNT_MAX:
    index = jnp.arange(n)
    ahead = (values[None, :] > values[:, None]) | ((values[None, :] == values[:, None]) & (index[None, :] < index[:, None]))
    return jnp.sum(ahead, axis=1, dtype=jnp.int32)
  order = jnp.argsort(-values, stable=True)
  return jnp.zeros_like(order).at[order].set(jnp.arange(n, dtype=order.dtype))


def allocate_budgets(difficulty: jnp.ndarray, total: int, cap: int, tau: jnp.ndarray) -> jnp.ndarray:
  """Per-pair merge budgets.

  Args:
    difficulty: transport difficulties W of shape ``[P]``.
    total: R, the merges to distribute (static int >= 0).
    cap: the most merges one pair may make, K - 1 (static int >= 0).
    tau: the budget temperature tau_b > 0 (traced scalar).

  Returns:
    Budgets of shape ``[P]``, int32, each in ``[0, cap]``, summing to
    ``min(R, P * cap)``.

  Note:
    Ties among fractional parts go to the lower pair index. A tiny ``tau``
    sends everything to the easiest pair first and then spills over in order
    of difficulty; a huge one approaches an even split.
  """
  pairs = difficulty.shape[0]
  difficulty = difficulty.astype(jnp.float32)
  caps = jnp.full((pairs,), cap, jnp.int32)

  def running(state):
    _, active, remaining, progressed = state
    return (remaining > 0) & jnp.any(active) & progressed

  def one_pass(state):
    budgets, active, remaining, _ = state
    omega = jax.nn.softmax(jnp.where(active, -difficulty / tau, -jnp.inf))  # [P], 0 off the active set
    share = omega * remaining.astype(jnp.float32)
    want = jnp.floor(share).astype(jnp.int32)
    leftover = remaining - jnp.sum(want)
    fraction = jnp.where(active, share - jnp.floor(share), -jnp.inf)
    want = want + (active & (rank_descending(fraction) < leftover)).astype(jnp.int32)
    applied = jnp.where(active, jnp.minimum(want, caps - budgets), 0)
    budgets = budgets + applied
    remaining = jnp.sum(jnp.where(active, want - applied, 0))
    return budgets, active & (budgets < caps), remaining, jnp.sum(applied) > 0

  init = (jnp.zeros(pairs, jnp.int32), caps > 0, jnp.asarray(total, jnp.int32), jnp.asarray(True))

  def trip(_, state):
    return jax.tree.map(lambda new, old: jnp.where(running(state), new, old), one_pass(state), state)

  budgets, *_ = jax.lax.fori_loop(0, pairs + 1, trip, init)  # static trip count: no host round trip
  return budgets

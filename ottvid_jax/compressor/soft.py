"""Differentiable OTT-Vid: every hard decision replaced by a relaxation with a temperature.

``soft_compress`` mirrors ``compress`` stage by stage:

1. selection: each of the K greedy steps picks a softmax over the coverage
   gains (normalised by the step's largest gain) instead of their argmax; the
   coverage is updated with the expected maximum; kept tokens are the
   softmax-weighted features; tokens already (softly) picked are pushed out
   of later steps by a mask that gradients do not flow through;
2. leave-one-out mass: the "most similar kept token" is a softmax over kept
   tokens, the second best a softmax after the best is pushed down;
3. cost and transport: unchanged, the plans differentiated through the
   Sinkhorn updates (``transport.transport_plan``);
4. budgets: the continuous ``R * softmax(-W / tau_b)``, capped at K - 1 (the
   hard method's redistribution of capped budgets is not relaxed; the two
   agree whenever no cap binds);
5. matching: column scores ranked by soft ranks (sums of sigmoids), a token
   merged with probability ``sigmoid((budget - 1/2 - rank) / t)``, its parent a
   softmax over its plan column, strong pruning a sigmoid of the matched cost
   against theta;
6. merge: chains are summed from the last frame back (a ``lax.scan``), each
   link weighted by its merge probability and parent weights, so a token's
   output is the soft mean of its soft chain; its weight (soft validity) is the
   probability that it is not merged away.

As the temperature goes to zero this is the hard method (tested). The default
path of the project stays hard: ``compress``.
"""

from __future__ import annotations

import functools
from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

from ottvid_jax.compressor import config as config_lib
from ottvid_jax.compressor import cost as cost_lib
from ottvid_jax.compressor import mass as mass_lib
from ottvid_jax.compressor import selection as selection_lib
from ottvid_jax.compressor import transport as transport_lib
from ottvid_jax.compressor.config import MassMode, MergeMode, OTTVidConfig
from ottvid_jax.compressor.pipeline import validate_inputs

__all__ = ["SoftCompressionOutput", "soft_compress", "soft_select"]

_BIG = 1e4  # pushes already-picked (or best) entries out of a softmax


@flax.struct.dataclass
class SoftCompressionOutput:
  """The relaxed output (all float32, differentiable).

  Attributes:
    tokens: ``[T * K, D]`` each kept slot's soft chain mean, frame-major.
    weight: ``[T * K]`` soft validity: the probability that the slot survives
      (is not merged or pruned away); sums to about M.
    selection: ``[T, K, N]`` soft selection weights (rows sum to one).
    mass: ``[T, K]`` OT marginals.
    plan: ``[P, K, K]`` transport plans.
    budget: ``[P]`` continuous merge budgets.
    merged: ``[P, K]`` merge probability of each frame-(t+1) slot.
    pruned: ``[P, K]`` strong-prune probability of each frame-(t+1) slot.
  """

  tokens: jnp.ndarray
  weight: jnp.ndarray
  selection: jnp.ndarray
  mass: jnp.ndarray
  plan: jnp.ndarray
  budget: jnp.ndarray
  merged: jnp.ndarray
  pruned: jnp.ndarray


def soft_select(similarity: jnp.ndarray, weights: jnp.ndarray, keep: int, temperature) -> jnp.ndarray:
  """Soft greedy coverage on one frame: ``[K, N]`` selection weights (a softmax per step).

  Args:
    similarity: ``[N, N]`` cosine similarities.
    weights: ``[N]`` normalised saliency.
    keep: K (static).
    temperature: > 0; step k's logits are its gains over the step's largest gain, divided by it.
  """
  n = similarity.shape[0]

  def step(state, _):
    cur, picked = state
    gain = jnp.sum(weights[:, None] * jax.nn.relu(similarity - cur[:, None]), axis=0)  # [N]
    gain = gain / (jnp.max(gain) + 1e-12)
    # Picked tokens are pushed out at any temperature; the push is a mask, not a path for gradients (its
    # slope, 1e4 per unit of soft pick, compounds over the K steps into gradients of 1e16).
    push = jax.lax.stop_gradient((2.0 + _BIG * temperature) * picked)
    p = jax.nn.softmax((gain - push) / temperature)
    cur = jnp.einsum("j,ij->i", p, jnp.maximum(cur[:, None], similarity))  # expected coverage
    return (cur, jnp.minimum(picked + p, 1.0)), p

  _, rows = jax.lax.scan(step, (jnp.zeros((n,)), jnp.zeros((n,))), None, length=keep)
  return rows


def _soft_leave_one_out(to_kept: jnp.ndarray, weights: jnp.ndarray, temperature) -> jnp.ndarray:
  """``[K]`` relaxed leave-one-out losses from similarities ``[N, K]`` to the kept tokens."""
  best_w = jax.nn.softmax(to_kept / temperature, axis=-1)  # [N, K]
  best = jnp.sum(best_w * to_kept, axis=-1)
  second = jnp.sum(jax.nn.softmax((to_kept - 3.0 * best_w) / temperature, axis=-1) * to_kept, axis=-1)
  if to_kept.shape[1] == 1:
    second = jnp.zeros_like(best)
  return jnp.einsum("n,nk->k", weights * jax.nn.relu(best - second), best_w)


def _soft_matching(plan, cost, budget, threshold, temperature):
  """One pair: merge and prune probabilities ``[K']`` and parent weights ``[K, K']``."""
  column = jnp.max(plan, axis=0)  # [K'] the walk's column maxima
  score = column / (jnp.max(column) + 1e-30)
  rank = jnp.sum(jax.nn.sigmoid((score[None, :] - score[:, None]) / temperature), axis=1) - 0.5  # soft rank, 0-based
  merged = jax.nn.sigmoid((budget - 0.5 - rank) / temperature)
  parent = jax.nn.softmax(plan / (temperature * (column[None, :] + 1e-30)), axis=0)
  if threshold is None:
    pruned = jnp.zeros_like(merged)
  else:
    matched_cost = jnp.sum(parent * cost, axis=0)
    pruned = merged * jax.nn.sigmoid((matched_cost - threshold) / temperature)
  return merged, pruned, parent


def soft_compress(
    features: jnp.ndarray,
    saliency: jnp.ndarray,
    config: Optional[OTTVidConfig] = None,
    *,
    grid_hw: tuple[int, int],
    temperature=0.05,
) -> SoftCompressionOutput:
  """Differentiable OTT-Vid (see the module docstring).

  Args:
    features: ``[T, N, D]`` (T >= 2).
    saliency: ``[T, N]`` non-negative.
    config: the hyperparameters (its traced fields get gradients too).
    grid_hw: ``(H, W)`` static.
    temperature: the relaxations' temperature (> 0, may be traced); each
      relaxation is scaled so that ~0.01 is close to the hard method.

  Returns:
    A :class:`SoftCompressionOutput`; gradients of any scalar function of it
    flow to ``features``, ``saliency`` and the traced hyperparameters.

  Note:
    Masses stay strictly positive (softmax), which keeps the Sinkhorn
    gradients finite. Chains are followed through every frame, as in the hard
    method; the relaxation drops only the redistribution of capped budgets.
  """
  config = OTTVidConfig() if config is None else config
  validate_inputs(features, saliency, config, grid_hw)
  frames, tokens, _ = features.shape
  if frames < 2:
    raise ValueError("soft_compress needs at least two frames")
  sizes = config_lib.budget(config, frames, tokens)
  keep = sizes.keep
  x = features.astype(jnp.float32)
  unit = selection_lib.l2_normalize(x)
  similarity = jnp.einsum("tnd,tmd->tnm", unit, unit, precision=jax.lax.Precision.HIGHEST)  # [T, N, N]
  weights = selection_lib.normalize_saliency(saliency)
  select = jax.vmap(functools.partial(soft_select, keep=keep, temperature=temperature))(similarity, weights)  # [T,K,N]
  kept = jnp.einsum("tkn,tnd->tkd", select, x)  # [T, K, D]
  kept_unit = selection_lib.l2_normalize(jnp.einsum("tkn,tnd->tkd", select, unit))
  positions = jnp.einsum("tkn,nc->tkc", select, jnp.asarray(cost_lib.grid_positions(*grid_hw)))  # [T, K, 2]
  if config.mass is MassMode.UNIFORM:
    mass = jnp.full((frames, keep), 1.0 / keep)
  else:
    to_kept = jnp.einsum("tnd,tkd->tnk", unit, kept_unit, precision=jax.lax.Precision.HIGHEST)
    loo = jax.vmap(functools.partial(_soft_leave_one_out, temperature=temperature))(to_kept, weights)
    mass = jax.vmap(mass_lib.mass_from_scores, in_axes=(0, None))(loo, config.mass_tau)
  alpha = jax.vmap(functools.partial(cost_lib.pair_alpha, normalized=True))(unit[:-1], unit[1:])
  pair_cost = functools.partial(cost_lib.pair_cost, normalized=True)
  cost = jax.vmap(pair_cost, in_axes=(0, 0, 0, 0, 0, None))(kept_unit[:-1], kept_unit[1:], positions[:-1],
                                                           positions[1:], alpha, config.locality_scale)
  solve = functools.partial(transport_lib.transport_plan, solver=config.sinkhorn_solver)
  plans = jax.vmap(solve, in_axes=(0, 0, 0, None, None))(
      cost, mass[:-1], mass[1:], config.epsilon, config.sinkhorn_iters)
  budget = jnp.minimum(sizes.merges * jax.nn.softmax(-plans.difficulty / config.budget_tau), float(sizes.cap))
  merged, pruned, parent = jax.vmap(_soft_matching, in_axes=(0, 0, 0, None, None))(
      plans.plan, cost, budget, config.cost_threshold, temperature)  # [P, K], [P, K], [P, K, K]
  link = merged - pruned  # merged and kept content
  unit_weight = mass if config.merge is MergeMode.MASS_WEIGHTED else jnp.ones((frames, keep))

  def backward(carry, t):  # chains summed from the last frame back to frame t
    sums, counts = carry  # of frame t + 1: [K, D], [K]
    flow = parent[t] * link[t][None, :]  # [K, K'] frame-t parent <- frame-(t+1) child
    sums = unit_weight[t][:, None] * kept[t] + flow @ sums
    counts = unit_weight[t] + flow @ counts
    return (sums, counts), (sums, counts)

  last = (unit_weight[-1][:, None] * kept[-1], unit_weight[-1])
  _, (sums, counts) = jax.lax.scan(backward, last, jnp.arange(frames - 2, -1, -1))
  sums = jnp.concatenate([sums[::-1], last[0][None]], axis=0)  # [T, K, D]
  counts = jnp.concatenate([counts[::-1], last[1][None]], axis=0)  # [T, K]
  weight = jnp.concatenate([jnp.ones((1, keep)), 1.0 - merged], axis=0)  # [T, K]
  return SoftCompressionOutput(
      tokens=(sums / counts[..., None]).reshape(frames * keep, -1),
      weight=weight.reshape(-1),
      selection=select,
      mass=mass,
      plan=plans.plan,
      budget=budget,
      merged=merged,
      pruned=pruned,
  )

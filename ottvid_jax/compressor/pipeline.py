"""OTT-Vid end to end: ``compress(features, saliency, config, grid_hw)``.

The stages, each a pure function of its own module, are lifted over frames and
pairs with ``jax.vmap`` and chained here:

1. selection: per frame, saliency-weighted coverage keeps K of N tokens;
2. mass: per frame, leave-one-out losses give the OT marginals;
3. cost and transport: per adjacent pair, the adaptive cost and the entropic
   plan (ott-jax), and the pair's transport difficulty W;
4. budget: R merges split over pairs by ``softmax(-W / tau_b)`` under caps;
5. matching and merge: column-maximum matching, strong pruning, chains,
   merged features, and the fixed-size output.

Shapes are static throughout (they depend on T, N, D and the static fields of
the config only), there is no host round-trip and no Python loop over frames
or pairs, so ``compress`` runs under ``jax.jit`` and ``jax.vmap`` (over videos
or over configs). It never calls ``jit`` itself.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor import allocation as allocation_lib
from ottvid_jax.compressor import config as config_lib
from ottvid_jax.compressor import cost as cost_lib
from ottvid_jax.compressor import mass as mass_lib
from ottvid_jax.compressor import matching as matching_lib
from ottvid_jax.compressor import merge as merge_lib
from ottvid_jax.compressor import selection as selection_lib
from ottvid_jax.compressor import transport as transport_lib
from ottvid_jax.compressor.config import MassMode, MatchScore, MergeMode, OTTVidConfig
from ottvid_jax.compressor.output import CompressionOutput

__all__ = [
    "CompressionOutput",
    "Diagnostics",
    "SpatialStage",
    "TransportStage",
    "compress",
    "merge_stage",
    "spatial_stage",
    "transport_stage",
    "validate_inputs",
]


@flax.struct.dataclass
class Diagnostics:
  """What the stages decided, for plots, tests and research.

  Shapes use T frames, K kept tokens per frame, P = T - 1 pairs.

  Attributes:
    selected: ``[T, K]`` int32, kept token indices of each frame (stage 1),
      ascending.
    mass: ``[T, K]`` float32, the OT marginals of the kept tokens.
    alpha: ``[P]`` float32, the appearance weight of each pair's cost.
    cost: ``[P, K, K]`` float32, the cost matrices.
    plan: ``[P, K, K]`` float32, the transport plans.
    difficulty: ``[P]`` float32, the transport difficulties W.
    marginal_error: ``[P]`` float32, Sinkhorn's final marginal error.
    budget: ``[P]`` int32, merges granted to each pair.
    parent: ``[P, K]`` int32, the frame-t token each frame-(t+1) kept token
      is matched to.
    accepted: ``[P, K]`` bool, matches within the pair's budget.
    pruned: ``[P, K]`` bool, accepted matches dropped by strong pruning.
    root: ``[T, K]`` int32, the flat index ``t * K + k`` of each kept token's
      chain root.
    slot: ``[T, K]`` int32, the output slot each kept token ends in, or -1
      where it was dropped by strong pruning.
  """

  selected: jnp.ndarray
  mass: jnp.ndarray
  alpha: jnp.ndarray
  cost: jnp.ndarray
  plan: jnp.ndarray
  difficulty: jnp.ndarray
  marginal_error: jnp.ndarray
  budget: jnp.ndarray
  parent: jnp.ndarray
  accepted: jnp.ndarray
  pruned: jnp.ndarray
  root: jnp.ndarray
  slot: jnp.ndarray


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def validate_inputs(
    features: jnp.ndarray, saliency: jnp.ndarray, config: OTTVidConfig, grid_hw: tuple[int, int]
) -> None:
  """Checks the inputs of :func:`compress`; raises ``ValueError`` on bad input.

  Shapes, dtypes, the grid and the config are always checked (they are static
  even under ``jit``). Values (NaN or infinite features, negative or
  non-finite saliency) are checked only when the arrays are concrete, i.e.
  outside ``jit``; call this function before a jitted call to check them.
  """
  if not isinstance(config, OTTVidConfig):
    raise ValueError(f"config must be an OTTVidConfig, got {type(config).__name__}")
  if getattr(features, "ndim", None) != 3:
    raise ValueError(f"features must have shape [T, N, D], got shape {getattr(features, 'shape', None)}")
  if getattr(saliency, "ndim", None) != 2:
    raise ValueError(f"saliency must have shape [T, N], got shape {getattr(saliency, 'shape', None)}")
  frames, tokens, width = features.shape
  if saliency.shape != (frames, tokens):
    raise ValueError(f"saliency shape {saliency.shape} does not match features [T, N] = {(frames, tokens)}")
  if frames < 1 or tokens < 1 or width < 1:
    raise ValueError(f"features must be non-empty, got shape {features.shape}")
  if not jnp.issubdtype(features.dtype, jnp.floating):
    raise ValueError(f"features must be floating point, got {features.dtype}")
  if not (jnp.issubdtype(saliency.dtype, jnp.floating) or jnp.issubdtype(saliency.dtype, jnp.integer)):
    raise ValueError(f"saliency must be real, got {saliency.dtype}")
  if (not isinstance(grid_hw, (tuple, list)) or len(grid_hw) != 2
      or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in grid_hw)):
    raise ValueError(f"grid_hw must be two positive Python ints (static), got {grid_hw!r}")
  if grid_hw[0] * grid_hw[1] != tokens:
    raise ValueError(f"grid_hw {tuple(grid_hw)} has {grid_hw[0] * grid_hw[1]} cells but features have N = {tokens}")
  if _is_concrete(features) and not _all(features, lambda xp, x: xp.isfinite(x)):
    raise ValueError("features contain NaN or infinite values")
  if _is_concrete(saliency) and not _all(saliency, lambda xp, x: xp.isfinite(x) & (x >= 0)):
    raise ValueError("saliency must be finite and non-negative")


def _all(values, test) -> bool:
  """Whether ``test`` holds everywhere, computed where ``values`` live (a device array is not copied to the host)."""
  if isinstance(values, jax.Array):
    return bool(jnp.all(test(jnp, values)))
  return bool(np.all(test(np, np.asarray(values, np.float32))))


class SpatialStage(NamedTuple):
  """Stage 1 of a video: the kept tokens and their masses.

  Attributes:
    selected: ``[T, K]`` int32 kept indices of each frame, ascending.
    mass: ``[T, K]`` float32 OT marginals (sum to one per frame).
  """

  selected: jnp.ndarray
  mass: jnp.ndarray


class TransportStage(NamedTuple):
  """Stage 2 of a video: the adjacent-pair costs and plans.

  Attributes:
    alpha: ``[P]`` appearance weights.
    cost: ``[P, K, K]`` cost matrices.
    plan: ``[P, K, K]`` transport plans.
    difficulty: ``[P]`` transport difficulties W.
    marginal_error: ``[P]`` Sinkhorn's final marginal errors.
  """

  alpha: jnp.ndarray
  cost: jnp.ndarray
  plan: jnp.ndarray
  difficulty: jnp.ndarray
  marginal_error: jnp.ndarray


def spatial_stage(features: jnp.ndarray, saliency: jnp.ndarray, config: OTTVidConfig, keep: int) -> SpatialStage:
  """Coverage selection and leave-one-out mass, per frame.

  Args:
    features: ``[T, N, D]`` features, any float dtype (unit float32 features
      from :func:`l2_normalize` as well): only their cosines are used.
    saliency: ``[T, N]`` non-negative saliency.
    config: the hyperparameters (``mass_tau`` and ``mass`` are read).
    keep: K, tokens kept per frame (static).

  Returns:
    The :class:`SpatialStage`.
  """
  frames = features.shape[0]
  similarity = jax.vmap(selection_lib.cosine_similarity)(features)  # [T, N, N] float32
  weights = selection_lib.normalize_saliency(saliency)  # [T, N]
  selected = jax.vmap(selection_lib.select_tokens, in_axes=(0, 0, None))(similarity, weights, keep)  # [T, K]
  if config.mass is MassMode.UNIFORM:
    mass = jnp.broadcast_to(mass_lib.uniform_mass(keep), (frames, keep))
  else:
    loo = jax.vmap(mass_lib.leave_one_out)(similarity, weights, selected)  # [T, K]
    mass = jax.vmap(mass_lib.mass_from_scores, in_axes=(0, None))(loo, config.mass_tau)  # [T, K]
  return SpatialStage(selected, mass)


def transport_stage(
    unit: jnp.ndarray, spatial: SpatialStage, config: OTTVidConfig, grid_hw: tuple[int, int]
) -> TransportStage:
  """Adaptive costs and entropic OT plans of all adjacent pairs.

  Args:
    unit: ``[T, N, D]`` unit float32 features.
    spatial: the :class:`SpatialStage` of the same video.
    config: the hyperparameters (``epsilon``, ``locality_scale``,
      ``sinkhorn_iters``).
    grid_hw: ``(H, W)``, static.

  Returns:
    The :class:`TransportStage`; with a single frame its arrays have P = 0.
  """
  selected, mass = spatial
  kept = jnp.take_along_axis(unit, selected[:, :, None], axis=1)  # [T, K, D]
  positions = jnp.asarray(cost_lib.grid_positions(*grid_hw))[selected]  # [T, K, 2]
  alpha = jax.vmap(functools.partial(cost_lib.pair_alpha, normalized=True))(unit[:-1], unit[1:])  # [P]
  pair_cost = functools.partial(cost_lib.pair_cost, normalized=True)
  cost = jax.vmap(pair_cost, in_axes=(0, 0, 0, 0, 0, None))(
      kept[:-1], kept[1:], positions[:-1], positions[1:], alpha, config.locality_scale)  # [P, K, K]
  if cost.shape[0] == 0:  # ott cannot vmap over an empty batch; there is nothing to transport.
    empty = jnp.zeros((0,), jnp.float32)
    return TransportStage(alpha, cost, cost, empty, empty)
  solve = functools.partial(transport_lib.transport_plan, solver=config.sinkhorn_solver)
  plans = jax.vmap(solve, in_axes=(0, 0, 0, None, None))(
      cost, mass[:-1], mass[1:], config.epsilon, config.sinkhorn_iters)
  return TransportStage(alpha, cost, *plans)


def merge_stage(
    features: jnp.ndarray,
    spatial: SpatialStage,
    transport: TransportStage,
    budgets: jnp.ndarray,
    config: OTTVidConfig,
    slots: int,
) -> CompressionOutput:
  """Matching, strong pruning, chains, merged features and the output slots.

  Args:
    features: ``[T, N, D]`` original features (the merge averages these).
    spatial: the :class:`SpatialStage`.
    transport: the :class:`TransportStage`.
    budgets: ``[P]`` int32 merges per pair (:func:`allocate_budgets`).
    config: the hyperparameters (``cost_threshold``, ``match_score``,
      ``merge``).
    slots: M, the static output length (:attr:`Budget.slots`).

  Returns:
    The :class:`CompressionOutput`.
  """
  frames, tokens, _ = features.shape
  selected, mass = spatial
  keep = selected.shape[1]
  score = transport.plan
  if config.match_score is MatchScore.MASS_NORMALISED:
    a = mass[:-1] / jnp.sum(mass[:-1], axis=-1, keepdims=True)
    b = mass[1:] / jnp.sum(mass[1:], axis=-1, keepdims=True)
    score = score / (a[:, :, None] * b[:, None, :])
  matches = jax.vmap(matching_lib.match_columns)(score, budgets)  # [P, K] each
  matched_cost = jnp.take_along_axis(transport.cost, matches.parent[:, None, :], axis=1)[:, 0, :]  # [P, K]
  if config.cost_threshold is None:
    pruned = jnp.zeros_like(matches.accepted)
  else:
    pruned = matches.accepted & (matched_cost > config.cost_threshold)
  chains = merge_lib.link_chains(matches.parent, matches.accepted & ~pruned, pruned)

  kept = jnp.take_along_axis(features, selected[:, :, None], axis=1).reshape(frames * keep, -1)  # [T*K, D]
  merge_weights = mass.reshape(-1) if config.merge is MergeMode.MASS_WEIGHTED else None
  merged = merge_lib.merge_features(kept, chains.root, merge_weights)  # [T*K, D]
  frame_of = jnp.repeat(jnp.arange(frames, dtype=jnp.int32), keep)  # [T*K]
  last_frame = jax.ops.segment_max(frame_of, chains.root, num_segments=frames * keep)  # [T*K]

  position, valid = merge_lib.compact(chains.survivor, slots)  # [M]
  global_index = (frame_of * tokens + selected.reshape(-1))[position]  # [M]
  slot_of_root = jnp.full((frames * keep,), -1, jnp.int32).at[
      jnp.where(valid, position, frames * keep)].set(jnp.arange(slots, dtype=jnp.int32), mode="drop")
  slot = slot_of_root[chains.root]  # [T*K], -1 where the chain was dropped
  span = jnp.stack([frame_of[position], last_frame[position]], axis=-1)  # [M, 2]
  diagnostics = Diagnostics(
      selected=selected,
      mass=mass,
      alpha=transport.alpha,
      cost=transport.cost,
      plan=transport.plan,
      difficulty=transport.difficulty,
      marginal_error=transport.marginal_error,
      budget=budgets,
      parent=matches.parent,
      accepted=matches.accepted,
      pruned=pruned,
      root=chains.root.reshape(frames, keep),
      slot=slot.reshape(frames, keep),
  )
  return CompressionOutput(
      tokens=jnp.where(valid[:, None], merged[position], 0.0).astype(features.dtype),
      index=jnp.where(valid, global_index, -1),
      valid=valid,
      span=jnp.where(valid[:, None], span, -1),
      diagnostics=diagnostics,
  )


def compress(
    features: jnp.ndarray,
    saliency: jnp.ndarray,
    config: Optional[OTTVidConfig] = None,
    *,
    grid_hw: tuple[int, int],
    diagnostics: bool = True,
) -> CompressionOutput:
  """Compresses the visual tokens of one video with OTT-Vid.

  Args:
    features: ``[T, N, D]`` LLM-input features in raster order (any float
      dtype; similarities are computed in float32).
    saliency: ``[T, N]`` non-negative saliency (attention received in the last
      vision block); normalised per frame here.
    config: the hyperparameters; the paper's setting when ``None``.
    grid_hw: ``(H, W)`` with ``H * W = N``, static Python ints.
    diagnostics: return the stages' decisions (:class:`Diagnostics`, with the
      ``[P, K, K]`` costs and plans); False returns ``diagnostics=None``, so a
      jitted sweep neither computes nor returns what it does not use.

  Returns:
    A :class:`CompressionOutput` with ``M = budget(config, T, N).slots`` slots,
    every one of them valid.

  Raises:
    ValueError: on bad shapes, a bad grid or config, and (outside ``jit``)
      non-finite features or negative saliency; before anything is traced.

  Note:
    ``retention=1`` returns the input unchanged. A strong-pruned match drops
    its token instead of merging it, so the survivors always fill exactly the
    ``M`` slots: strong pruning changes which tokens are kept, not how many.
    The validity mask is part of the interface shared with the peer methods,
    some of which pad.
    Under ``jax.vmap`` over configs, batch only the traced fields (see
    :func:`stack_configs`).
  """
  config = OTTVidConfig() if config is None else config
  validate_inputs(features, saliency, config, grid_hw)
  sizes = config_lib.budget(config, features.shape[0], features.shape[1])
  unit = selection_lib.l2_normalize(features)  # [T, N, D] float32, shared by the transport stage
  spatial = spatial_stage(features, saliency, config, sizes.keep)
  transport = transport_stage(unit, spatial, config, grid_hw)
  budgets = allocation_lib.allocate_budgets(transport.difficulty, sizes.merges, sizes.cap, config.budget_tau)
  out = merge_stage(features, spatial, transport, budgets, config, sizes.slots)
  return out if diagnostics else out.replace(diagnostics=None)

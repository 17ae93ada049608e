"""Hyperparameters of OTT-Vid and the static budgets derived from them.

The configuration is a frozen dataclass registered as a JAX pytree. The fields
split in two, in one place, the way ott-jax splits a geometry into children and
aux data:

* **static** fields (``retention``, ``temporal_share``, ``sinkhorn_iters`` and the
  variant switches) change array shapes or loop lengths. They live in the pytree
  structure, so a new value compiles a new program;
* **traced** fields (``mass_tau``, ``budget_tau``, ``cost_threshold``,
  ``epsilon``, ``locality_scale``) are ordinary array leaves. A new value reuses
  the compiled program, and :func:`stack_configs` builds a batch of them that
  ``jax.vmap`` sweeps in one call.

``cost_threshold=None`` switches strong pruning off; being ``None`` changes the
pytree structure, so "off" and "on" compile separately, while different
thresholds share one program.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor.interface import concrete, method_config

__all__ = [
    "Budget",
    "MassMode",
    "MatchScore",
    "MergeMode",
    "OTTVidConfig",
    "SinkhornSolver",
    "SpatialRounding",
    "budget",
    "stack_configs",
]


class MassMode(enum.Enum):
  """How the OT marginals are built from the kept tokens."""

  LEAVE_ONE_OUT = "leave_one_out"  # the method: m = softmax(-LOO/max(LOO)/tau_m)
  UNIFORM = "uniform"  # the paper's ablation: m = 1/K


class MergeMode(enum.Enum):
  """How a chain of merged tokens becomes one feature."""

  MEAN = "mean"  # the authors' code: plain mean of the original features
  MASS_WEIGHTED = "mass_weighted"  # the paper's prose: mean weighted by the OT mass


class MatchScore(enum.Enum):
  """Which score ranks the transport plan's entries for matching."""

  PLAN = "plan"  # the authors' code: the raw plan T_ij
  MASS_NORMALISED = "mass_normalised"  # the paper's prose: T_ij / (a_i b_j)


class SpatialRounding(enum.Enum):
  """How the per-frame keep count K is rounded from N * r_s."""

  FLOOR = "floor"  # the Qwen2.5-VL path of the authors' code
  ROUND = "round"  # the LLaVA path of the authors' code


class SinkhornSolver(enum.Enum):
  """Which implementation makes the Sinkhorn updates (the same updates, float32 rounding apart)."""

  AUTO = "auto"  # FUSED when JAX's default backend is a GPU, OTT otherwise
  OTT = "ott"  # ott-jax's solver (a scan of XLA kernels)
  FUSED = "fused"  # one Pallas kernel for all updates (Pallas' interpreter off a GPU: slow)


_TRACED = ("mass_tau", "budget_tau", "cost_threshold", "epsilon", "locality_scale")


@method_config(traced=_TRACED)
@dataclasses.dataclass(frozen=True)
class OTTVidConfig:
  """OTT-Vid hyperparameters; the defaults are the paper's setting.

  Attributes:
    retention: total retention r in (0, 1]: the output keeps about ``r`` of the
      ``T * N`` input tokens. Static.
    temporal_share: gamma in [0, 1]: the share of the compression done over
      time. The spatial keep ratio is ``r ** (1 - gamma)``. Static.
    mass_tau: tau_m > 0, the temperature of the leave-one-out mass. Traced.
    budget_tau: tau_b > 0, the temperature of the per-pair budget. Traced.
    cost_threshold: theta, the strong-prune threshold on the pair cost, or
      ``None`` to switch strong pruning off. Traced when not ``None``.
    epsilon: the absolute entropic regularisation of Sinkhorn, > 0. Traced.
    locality_scale: lambda_loc >= 0, multiplies the positional term of the
      cost: ``C = alpha * feature + (1 - alpha) * lambda_loc * position``.
      Traced.
    sinkhorn_iters: the fixed number of Sinkhorn updates. Static.
    mass: :class:`MassMode`; ``UNIFORM`` is the paper's uniform-mass ablation.
    merge: :class:`MergeMode`; ``MASS_WEIGHTED`` is the prose's weighted mean.
    match_score: :class:`MatchScore`; ``MASS_NORMALISED`` ranks ``T / (a b^T)``.
    spatial_rounding: :class:`SpatialRounding` of ``K = N * r_s``.
    sinkhorn_solver: :class:`SinkhornSolver`, the implementation of the
      updates (static); every choice has the same gradients, those of the
      updates themselves.

  Note:
    Ranges are checked when a config is constructed with concrete values
    (Python numbers or arrays); configs that JAX rebuilds from leaves (under
    ``jit``/``vmap``/``grad``, gradients and optimiser updates) are not
    checked. A tiny
    ``epsilon`` (below about 1e-3 for costs in [0, 1]) needs more Sinkhorn
    iterations than the paper's 200 to reach its marginals.
  """

  retention: float = 0.10
  temporal_share: float = 0.3
  mass_tau: Any = 0.3
  budget_tau: Any = 0.3
  cost_threshold: Any = 0.3
  epsilon: Any = 0.01
  locality_scale: Any = 1.0
  sinkhorn_iters: int = 200
  mass: MassMode = MassMode.LEAVE_ONE_OUT
  merge: MergeMode = MergeMode.MEAN
  match_score: MatchScore = MatchScore.PLAN
  spatial_rounding: SpatialRounding = SpatialRounding.FLOOR
  sinkhorn_solver: SinkhornSolver = SinkhornSolver.AUTO

  def __post_init__(self):
    if not isinstance(self.retention, (int, float)) or isinstance(self.retention, bool):
      raise ValueError(f"retention must be a Python float (static), got {self.retention!r}")
    if not 0.0 < self.retention <= 1.0:
      raise ValueError(f"retention must lie in (0, 1], got {self.retention}")
    if not isinstance(self.temporal_share, (int, float)) or not 0.0 <= self.temporal_share <= 1.0:
      raise ValueError(f"temporal_share must be a float in [0, 1], got {self.temporal_share!r}")
    if (not isinstance(self.sinkhorn_iters, (int, np.integer))
        or isinstance(self.sinkhorn_iters, bool) or self.sinkhorn_iters < 1):
      raise ValueError(f"sinkhorn_iters must be a positive int, got {self.sinkhorn_iters!r}")
    for name, kind in (("mass", MassMode), ("merge", MergeMode),
                       ("match_score", MatchScore), ("spatial_rounding", SpatialRounding),
                       ("sinkhorn_solver", SinkhornSolver)):
      if not isinstance(getattr(self, name), kind):
        raise ValueError(f"{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
    checks = {
        "mass_tau": (lambda v: v > 0, "> 0"),
        "budget_tau": (lambda v: v > 0, "> 0"),
        "epsilon": (lambda v: v > 0, "> 0"),
        "locality_scale": (lambda v: v >= 0, ">= 0"),
        "cost_threshold": (np.isfinite, "finite"),
    }
    for name, (ok, what) in checks.items():
      value = concrete(getattr(self, name))
      if value is None:
        continue
      if not np.issubdtype(value.dtype, np.number) or not np.all(np.isfinite(value) & ok(value)):
        raise ValueError(f"{name} must be {what} and finite, got {getattr(self, name)!r}")

  pads: ClassVar[bool] = False  # the survivors always fill every slot

  def replace(self, **changes: Any) -> "OTTVidConfig":
    """Returns a copy with ``changes`` applied (and checked)."""
    return dataclasses.replace(self, **changes)

  def slots(self, frames: int, tokens: int) -> int:
    """The output length on ``[frames, tokens, D]`` (:attr:`Budget.slots`)."""
    return budget(self, frames, tokens).slots

  def apply(self, features, saliency, grid_hw: tuple[int, int], key=None, *, diagnostics: bool = False):
    """:func:`~ottvid_jax.compressor.pipeline.compress` with this config (the compression interface)."""
    del key  # deterministic
    from ottvid_jax.compressor.pipeline import compress  # pylint: disable=import-outside-toplevel  (imports this module)

    return compress(features, saliency, self, grid_hw=grid_hw, diagnostics=diagnostics)

  @property
  def spatial_retention(self) -> float:
    """r_s = r ** (1 - gamma), the per-frame keep ratio of stage 1."""
    return self.retention ** (1.0 - self.temporal_share)


@dataclasses.dataclass(frozen=True)
class Budget:
  """The static integers of one compression problem.

  Attributes:
    frames: T, frames of the compressor (a temporal grid for Qwen2.5-VL).
    tokens: N = H * W tokens per frame.
    keep: K, tokens kept per frame by stage 1.
    target: M = round(T * N * r), the number of output tokens asked for.
    merges: R = T * K - M (at least 0), the merges to distribute over pairs.
    pairs: P = T - 1 adjacent frame pairs.
    cap: K - 1, the most merges one pair may make.
    slots: the output length, ``T * K - min(R, P * cap)``. It equals ``target``
      except where the caps cannot absorb ``R`` (for example a single frame,
      or gamma close to 1 with few frames): then every kept token survives the
      temporal stage that cannot merge it and the output is longer than M.
  """

  frames: int
  tokens: int
  keep: int
  target: int
  merges: int
  pairs: int
  cap: int
  slots: int


def budget(config: OTTVidConfig, frames: int, tokens: int) -> Budget:
  """Derives the static :class:`Budget` of a ``[frames, tokens, D]`` input.

  Args:
    config: the hyperparameters (only the static ones are read).
    frames: T >= 1.
    tokens: N >= 1.

  Returns:
    The :class:`Budget`, with ``K = max(1, floor(N * r_s))`` (or rounded, per
    ``config.spatial_rounding``), ``M = round(T * N * r)``, ``R = T K - M``.
  """
  scaled = tokens * config.spatial_retention
  if config.spatial_rounding is SpatialRounding.FLOOR:
    keep = int(scaled)
  else:
    keep = int(round(scaled))
  keep = min(tokens, max(1, keep))
  target = int(round(frames * tokens * config.retention))
  merges = max(0, frames * keep - target)
  pairs = frames - 1
  cap = keep - 1
  slots = frames * keep - min(merges, pairs * cap)
  return Budget(frames, tokens, keep, target, merges, pairs, cap, slots)


def stack_configs(configs: Sequence[OTTVidConfig]) -> OTTVidConfig:
  """Stacks configs that share their static fields into one batched config (any method's configs).

  The result has every traced field as a float32 array of shape ``[B]`` and is
  meant for ``jax.vmap(..., in_axes=(..., 0))``.

  Args:
    configs: a non-empty sequence of configs with equal static fields and
      either all or none of their ``cost_threshold`` set to ``None``.

  Returns:
    The batched config.

  Raises:
    ValueError: if the static fields (or the ``None``-ness of the threshold)
      differ, or the sequence is empty.
  """
  if not configs:
    raise ValueError("stack_configs needs at least one config")
  first = configs[0]
  structure = jax.tree_util.tree_structure(first)
  for other in configs[1:]:
    if jax.tree_util.tree_structure(other) != structure:
      raise ValueError(
          "configs differ in a static field (retention, temporal_share, sinkhorn_iters, "
          "a variant switch, a peer's counts) or in cost_threshold being None; static fields "
          "compile separately and cannot share one vmapped call"
      )
  return jax.tree_util.tree_map(
      lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *configs
  )


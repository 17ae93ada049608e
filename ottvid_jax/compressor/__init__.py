"""The OTT-Vid compressor: pure, jit-friendly JAX functions, one stage a module."""

from ottvid_jax.compressor.allocation import allocate_budgets, rank_descending
from ottvid_jax.compressor.config import (
    Budget,
    MassMode,
    MatchScore,
    MergeMode,
    OTTVidConfig,
    SinkhornSolver,
    SpatialRounding,
    budget,
    stack_configs,
)
from ottvid_jax.compressor.interface import CompressionMethod, concrete, method_config, register
from ottvid_jax.compressor.output import CompressionOutput
from ottvid_jax.compressor.cost import grid_positions, pair_alpha, pair_cost
from ottvid_jax.compressor.mass import leave_one_out, mass_from_scores, uniform_mass
from ottvid_jax.compressor.matching import Matching, match_columns
from ottvid_jax.compressor.merge import Chains, compact, link_chains, merge_features
from ottvid_jax.compressor.pipeline import (
    Diagnostics,
    SpatialStage,
    TransportStage,
    compress,
    merge_stage,
    spatial_stage,
    transport_stage,
    validate_inputs,
)
from ottvid_jax.compressor.soft import SoftCompressionOutput, soft_compress, soft_select
from ottvid_jax.compressor.selection import cosine_similarity, l2_normalize, normalize_saliency, select_tokens
from ottvid_jax.compressor.transport import TransportResult, transport_plan

__all__ = [
    "allocate_budgets",
    "Budget",
    "budget",
    "Chains",
    "compact",
    "compress",
    "CompressionMethod",
    "CompressionOutput",
    "concrete",
    "cosine_similarity",
    "Diagnostics",
    "grid_positions",
    "l2_normalize",
    "leave_one_out",
    "link_chains",
    "mass_from_scores",
    "MassMode",
    "match_columns",
    "Matching",
    "MatchScore",
    "merge_features",
    "merge_stage",
    "method_config",
    "MergeMode",
    "normalize_saliency",
    "OTTVidConfig",
    "pair_alpha",
    "pair_cost",
    "rank_descending",
    "register",
    "select_tokens",
    "SinkhornSolver",
    "soft_compress",
    "soft_select",
    "SoftCompressionOutput",
    "spatial_stage",
    "SpatialStage",
    "SpatialRounding",
    "stack_configs",
    "transport_plan",
    "transport_stage",
    "TransportStage",
    "TransportResult",
    "uniform_mass",
    "validate_inputs",
]

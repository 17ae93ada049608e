"""What every compression method returns: a fixed number of token slots, their anchors and validity."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax.numpy as jnp

__all__ = ["CompressionOutput"]


@flax.struct.dataclass
class CompressionOutput:
  """The compressed video tokens of one video (axes: M slots, D features).

  M is the method's static slot count (``method.slots(T, N)``). Survivors come
  first, in raster order (frame, row, col) of their anchor token. A method
  whose ``pads`` is False (OTT-Vid and most peers) fills all M slots; one whose
  ``pads`` is True (tree merging can leave fewer survivors) zero-pads the rest
  and marks them invalid.

  Attributes:
    tokens: ``[M, D]`` in the input dtype: the merged tokens (zeros where invalid).
    index: ``[M]`` int32, the global index ``t * N + n`` of each slot's anchor
      token (the earliest token of its group), -1 where invalid.
    valid: ``[M]`` bool, true for the survivors.
    span: ``[M, 2]`` int32, the first and last frame each survivor covers,
      -1 where invalid.
    diagnostics: the method's decisions (OTT-Vid's
      :class:`~ottvid_jax.compressor.pipeline.Diagnostics`), or None when not
      asked for or not provided.
  """

  tokens: jnp.ndarray
  index: jnp.ndarray
  valid: jnp.ndarray
  span: jnp.ndarray
  diagnostics: Any = None

  @property
  def num_valid(self) -> jnp.ndarray:
    """The number of survivors, an int32 scalar (per batch entry under vmap)."""
    return jnp.sum(self.valid, axis=-1)

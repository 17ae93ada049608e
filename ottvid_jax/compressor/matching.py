"""Stage 4a: turning a transport plan into merges, in the column-maximum form.

The authors' rule walks the plan's entries from the largest down and accepts
``(i, j)`` (frame-(t+1) token ``j`` into frame-t token ``i``) whenever ``j`` is
still unused, until ``budget`` entries are accepted; a frame-t token may absorb
any number. Because ``i`` is unrestricted, the first time column ``j`` appears
in that walk is at its column maximum. The walk is therefore exactly

    parent_j = argmax_i score_ij,  accept the ``budget`` columns with the
                                   largest max_i score_ij,

which needs no sort of the K^2 entries and no host loop (up to exact ties).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from ottvid_jax.compressor.allocation import rank_descending

__all__ = ["Matching", "match_columns"]


class Matching(NamedTuple):
  """The merges of one frame pair.

  Attributes:
    parent: ``[K']`` int32, the frame-t token each frame-(t+1) token would be
      merged into (its column argmax).
    accepted: ``[K']`` bool, the columns within the pair's budget.
  """

  parent: jnp.ndarray
  accepted: jnp.ndarray


def match_columns(score: jnp.ndarray, budget: jnp.ndarray) -> Matching:
  """Greedy many-to-one matching of one pair, in column-maximum form.

  Args:
    score: ``[K, K']`` matching scores, higher is stronger (the plan, or the
      mass-normalised plan).
    budget: the pair's number of merges, an int scalar in ``[0, K']``.

  Returns:
    A :class:`Matching`. Exactly ``budget`` columns are accepted; among equal
    column maxima the lower column index goes first, and among equal entries
    of a column the lower row.
  """
  parent = jnp.argmax(score, axis=0).astype(jnp.int32)  # [K']
  best = jnp.max(score, axis=0)  # [K']
  return Matching(parent, rank_descending(best) < budget)

"""Block sides for the project's Pallas (Triton) kernels, whose tiles have power-of-two sides."""

from __future__ import annotations

__all__ = ["MIN_TILE", "power_of_two"]

MIN_TILE = 16  # Triton's smallest side for a tile that enters a dot product


def power_of_two(n: int, minimum: int = 1) -> int:
  """The least power of two that is at least ``n`` and ``minimum``."""
  return max(minimum, 1 << (max(int(n), 1) - 1).bit_length())

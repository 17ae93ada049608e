"""Qwen2.5-VL's vision tower in Flax NNX, with the saliency OTT-Vid needs.

HF names: ``patch_embed.proj``, ``blocks[i].{norm1, attn.{qkv, proj}, norm2,
mlp.{gate,up,down}_proj}``, ``merger.{ln_q, mlp[0], mlp[2]}``. Axes: P patches,
U = P / 4 merge units, D tower width, E heads, H head dim, G attention segments,
L segment length.

All geometry (rotary positions, the window permutation, the attention
segments) is computed on the host with NumPy from ``grid_thw`` held as Python
ints, so shapes are static under ``jit``. Window and full-attention blocks both
run as one batched attention over padded segments: no loop over windows and
no P x P mask.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.models import add_rms_norm, layers
from ottvid_jax.models.qwen2_5_vl import window_attention
from ottvid_jax.models.received_attention import received_attention

__all__ = ["VisionConfig", "VisionLayout", "VisionTower", "embed_patches", "layout_of", "merge_units", "rotary",
           "run_blocks", "vision_layout"]

GridTHW = tuple[tuple[int, int, int], ...]


@dataclasses.dataclass(frozen=True)
class VisionConfig:
  depth: int
  hidden_size: int
  intermediate_size: int
  num_heads: int
  out_hidden_size: int
  fullatt_block_indexes: tuple[int, ...]
  in_channels: int = 3
  patch_size: int = 14
  temporal_patch_size: int = 2
  spatial_merge_size: int = 2
  window_size: int = 112
  rope_theta: float = 10000.0
  rms_norm_eps: float = 1e-6

  @property
  def patch_dim(self) -> int:
    return self.in_channels * self.temporal_patch_size * self.patch_size ** 2

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True)
class Segments:
  """Padded attention segments over the permuted patch sequence.

  Attributes:
    gather: ``int32[G, L]`` patch index of each segment slot (0 for padding).
    valid: ``bool[G, L]``.
    scatter: ``int32[P]`` flat slot ``g * L + l`` of each patch.
  """

  gather: np.ndarray
  valid: np.ndarray
  scatter: np.ndarray


@dataclasses.dataclass(frozen=True)
class VisionLayout:
  """Host-side geometry of one call of the tower.

  Attributes:
    positions: ``int32[P, 2]`` (row, col) of each patch, in the processor's
      block-major order.
    window_index: ``int32[U]`` the window permutation of merge units.
    windows: :class:`Segments` of the window blocks.
    grids: :class:`Segments` of the full-attention blocks (one per temporal
      grid).
  """

  positions: np.ndarray
  window_index: np.ndarray
  windows: Segments
  grids: Segments


def _segments(lengths: list[int]) -> Segments:
  lengths = [n for n in lengths if n > 0]
  size = max(lengths)
  starts = np.cumsum([0] + lengths[:-1])
  slot = np.arange(size)
  gather = np.where(slot[None] < np.array(lengths)[:, None], starts[:, None] + slot[None], 0)
  valid = slot[None] < np.array(lengths)[:, None]
  scatter = np.concatenate([g * size + np.arange(n) for g, n in enumerate(lengths)])
  return Segments(gather.astype(np.int32), valid, scatter.astype(np.int32))


@functools.lru_cache(maxsize=64)
def vision_layout(grid_thw: GridTHW, merge: int, window_size: int, patch_size: int) -> VisionLayout:
  """Rotary positions, window permutation and segments for ``grid_thw``.

  Args:
    grid_thw: per video ``(t, h, w)`` in patches (t temporal grids).
    merge: the spatial merge size (2).
    window_size: the window side in pixels (112: 4 x 4 merge units).
    patch_size: the patch side in pixels (14).
  """
  per_window = window_size // merge // patch_size  # merge units per window side
  positions, window_index, window_lengths, grid_lengths = [], [], [], []
  offset = 0
  for t, h, w in grid_thw:
    if h % merge or w % merge:
      raise ValueError(f"grid {h}x{w} is not a multiple of the merge size {merge}")
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    block = (h // merge, merge, w // merge, merge)
    rc = np.stack([rows.reshape(block).transpose(0, 2, 1, 3).reshape(-1),
                   cols.reshape(block).transpose(0, 2, 1, 3).reshape(-1)], axis=-1)
    positions.append(np.tile(rc, (t, 1)))
    uh, uw = h // merge, w // merge
    units = np.arange(t * uh * uw).reshape(t, uh, uw)
    for ti in range(t):
      for wy in range(0, uh, per_window):
        for wx in range(0, uw, per_window):
          window = units[ti, wy:wy + per_window, wx:wx + per_window].reshape(-1)
          window_index.append(window + offset)
          window_lengths.append(window.size * merge * merge)
      grid_lengths.append(h * w)
    offset += t * uh * uw
  return VisionLayout(
      positions=np.concatenate(positions).astype(np.int32),
      window_index=np.concatenate(window_index).astype(np.int32),
      windows=_segments(window_lengths),
      grids=_segments(grid_lengths),
  )


class VisionAttention(nnx.Module):

  def __init__(self, config: VisionConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.qkv = layers.linear(config.hidden_size, 3 * config.hidden_size, bias=True, **kw)
    self.proj = layers.linear(config.hidden_size, config.hidden_size, bias=True, **kw)
    self.heads, self.head_dim = config.num_heads, config.head_dim

  def qk_v(self, x, cos, sin):
    """Rotated queries and keys and the values, each ``[P, E, H]``."""
    q, k, v = jnp.split(self.qkv(x).reshape(x.shape[0], 3, self.heads, self.head_dim), 3, axis=1)
    q, k, v = q[:, 0], k[:, 0], v[:, 0]
    return layers.apply_rotary(q, cos, sin), layers.apply_rotary(k, cos, sin), v

  def attend(self, q, k, v, segments: Segments):
    """Attention inside ``segments`` of ``q, k, v [P, E, H]``, projected: ``[P, D]``. Right-padded segments
    pass their lengths, not a dense mask (cuDNN flash attention on GPUs)."""
    lengths = None if segments.valid.all() else jnp.asarray(segments.valid.sum(axis=1), jnp.int32)
    out = layers.attention(*(_segmented(a, segments) for a in (q, k, v)), None, self.head_dim ** -0.5,
                           lengths=lengths)  # [G, L, E, H]
    return self.proj(_unsegmented(out.reshape(out.shape[:2] + (-1,)), segments))


def _segmented(x: jax.Array, segments: Segments) -> jax.Array:
  """``[P, ...]`` to ``[G, L, ...]`` (a reshape when the segments are equal and contiguous, else a gather)."""
  if segments.valid.all():
    return x.reshape(segments.gather.shape + x.shape[1:])
  return x[jnp.asarray(segments.gather)]


def _unsegmented(x: jax.Array, segments: Segments) -> jax.Array:
  """``[G, L, ...]`` back to ``[P, ...]`` (the inverse of :func:`_segmented`, padding dropped)."""
  x = x.reshape((-1,) + x.shape[2:])
  return x if segments.valid.all() else x[jnp.asarray(segments.scatter)]


KERNELS = ("auto", "pallas", "interpret", "xla")


def _pallas(kernels: str, dtype) -> bool:
  """Whether the tower's Pallas kernels run: ``auto`` on a GPU in half precision, ``pallas`` / ``interpret``
  always (where their shapes allow), ``xla`` never."""
  if kernels not in KERNELS:
    raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
  return layers.half_precision_on_gpu(dtype) if kernels == "auto" else kernels != "xla"


def _use_window_kernel(kernels: str, segments: Segments, received: Optional[Segments], dtype) -> bool:
  fits = received is None and segments.valid.sum(axis=1).max() <= window_attention.MAX_WINDOW
  return _pallas(kernels, dtype) and bool(fits)


def _add_norm(norm: layers.RMSNorm, x: jax.Array, branch: Optional[jax.Array], kernels: str):
  """``(x + branch, norm(x + branch))``: one Pallas kernel where :func:`_pallas` says so, else XLA's ops
  (which leave the add, the normalisation and the scale as three kernels)."""
  if _pallas(kernels, x.dtype) and add_rms_norm.supported(x.shape[-1]):
    return add_rms_norm.add_rms_norm(x, branch, norm.weight[...], norm.eps, interpret=kernels == "interpret")
  x = x if branch is None else x + branch
  return x, norm(x)


class VisionBlock(nnx.Module):

  def __init__(self, config: VisionConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    self.norm1 = layers.RMSNorm(config.hidden_size, config.rms_norm_eps, param_dtype=param_dtype)
    self.norm2 = layers.RMSNorm(config.hidden_size, config.rms_norm_eps, param_dtype=param_dtype)
    self.attn = VisionAttention(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.mlp = layers.MLP(config.hidden_size, config.intermediate_size, bias=True, dtype=dtype,
                          param_dtype=param_dtype, rngs=rngs, pad=True)  # 3420 -> 3456 in the 7B

  def __call__(self, x, pending, cos, sin, segments: Segments, received: Optional[Segments] = None,
               kernels: str = "auto"):
    """``(x [P, D], mlp [P, D], saliency [P] or None)``: the block's output is ``x + mlp``, whose add is left
    to the next norm (:func:`_add_norm` fuses it).

    Args:
      x: ``[P, D]`` in window order; pending: the previous block's MLP output,
        not yet added to ``x``, or None; cos, sin: ``[P, H]`` rotary.
      segments: where attention runs (windows or temporal grids).
      received: also return the attention each patch receives inside these
        segments, averaged over heads and queries (from this block's own
        queries and keys), or None.
      kernels: :data:`KERNELS`: ``"auto"`` runs the residual adds with their
        norms, and segments of at most :data:`window_attention.MAX_WINDOW`
        patches, through the fused Pallas kernels on a GPU in half precision
        (the window attention: rotary, attention and layout in one pass);
        everything else through XLA's ops and cuDNN/XLA attention.
    """
    x, h = _add_norm(self.norm1, x, pending, kernels)
    saliency = None
    if _use_window_kernel(kernels, segments, received, h.dtype):
      out = self.attn.proj(window_attention.window_attention(
          self.attn.qkv(h), cos, sin, segments.valid.sum(axis=1), heads=self.attn.heads,
          scale=self.attn.head_dim ** -0.5, interpret=kernels == "interpret"))
    else:
      q, k, v = self.attn.qk_v(h, cos, sin)  # [P, E, H]
      if received is not None:
        saliency = received_attention(_segmented(q, received), _segmented(k, received), self.attn.head_dim ** -0.5,
                                      jnp.asarray(received.valid.sum(axis=1), jnp.int32))  # [G, L]
        saliency = _unsegmented(saliency, received)  # [P]
      out = self.attn.attend(q, k, v, segments)
    x, h = _add_norm(self.norm2, x, out, kernels)
    return x, self.mlp(h), saliency


class PatchEmbed(nnx.Module):
  """The Conv3d with kernel = stride as a matmul over flattened (C, T, H, W) patches."""

  def __init__(self, config: VisionConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    self.proj = layers.linear(config.patch_dim, config.hidden_size, bias=False, dtype=dtype,
                              param_dtype=param_dtype, rngs=rngs)

  def __call__(self, pixels):
    return self.proj(pixels)


class PatchMerger(nnx.Module):

  def __init__(self, config: VisionConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    width = config.hidden_size * config.spatial_merge_size ** 2
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.ln_q = layers.RMSNorm(config.hidden_size, 1e-6, param_dtype=param_dtype)
    self.mlp = nnx.List([layers.linear(width, width, bias=True, **kw),
                         layers.linear(width, config.out_hidden_size, bias=True, **kw)])
    self.width = width

  def __call__(self, x, pending=None, kernels: str = "auto"):
    """``[P, D]`` (plus the last block's pending MLP output) to ``[U, out]``."""
    x = _add_norm(self.ln_q, x, pending, kernels)[1].reshape(-1, self.width)  # [U, 4D]
    return self.mlp[1](jax.nn.gelu(self.mlp[0](x), approximate=False))


def rotary(config: VisionConfig, positions: np.ndarray) -> tuple[jax.Array, jax.Array]:
  """The 2-D rotary tables ``(cos, sin)``, each ``[P, H]`` float32, of patches at ``positions [P, 2]``."""
  hd = config.head_dim
  inv_freq = 1.0 / (config.rope_theta ** (np.arange(0, hd // 2, 2, dtype=np.float32) / (hd // 2)))
  angles = (positions[..., None].astype(np.float32) * inv_freq).reshape(positions.shape[0], -1)  # [P, H/2]
  angles = jnp.asarray(np.concatenate([angles, angles], axis=-1))  # [P, H]
  return jnp.cos(angles), jnp.sin(angles)


def layout_of(config: VisionConfig, grid_thw: GridTHW) -> VisionLayout:
  """:func:`vision_layout` of ``grid_thw`` (any int-like values) for ``config``."""
  return vision_layout(tuple(tuple(int(v) for v in g) for g in grid_thw), config.spatial_merge_size,
                       config.window_size, config.patch_size)


def _window_order(config: VisionConfig, layout: VisionLayout) -> np.ndarray:
  """``int[P]``: the processor-order index of each patch in window order."""
  unit = config.spatial_merge_size ** 2
  return (layout.window_index[:, None] * unit + np.arange(unit)).reshape(-1)


def embed_patches(patch_embed: PatchEmbed, pixels: jax.Array, config: VisionConfig,
                  layout: VisionLayout) -> jax.Array:
  """Patches ``[P, 1176]`` in the processor's order to embeddings ``[P, D]`` in window order."""
  return patch_embed(pixels)[jnp.asarray(_window_order(config, layout))]


def run_blocks(blocks, first: int, x: jax.Array, pending: Optional[jax.Array], config: VisionConfig,
               layout: VisionLayout, *, saliency: bool, kernels: str):
  """Blocks ``first, first + 1, ...`` of the tower (``blocks`` are those modules).

  Args:
    blocks: a sequence of :class:`VisionBlock`, the tower's blocks from ``first`` on.
    first: the index of ``blocks[0]`` in the tower (it decides which blocks
      attend over whole temporal grids).
    x, pending: ``[P, D]`` in window order: the previous block's output
      without its MLP branch, and that branch (None before the first block).
    config, layout: the tower's config and the call's :class:`VisionLayout`.
    saliency: return the received attention of the tower's last block (when
      it is among ``blocks``).
    kernels: :data:`KERNELS`.

  Returns:
    ``(x, pending, received [P] or None)``, in window order.
  """
  cos, sin = rotary(config, layout.positions)
  order = _window_order(config, layout)
  cos, sin = cos[order], sin[order]
  received = None
  for i, block in enumerate(blocks, start=first):
    segments = layout.grids if i in config.fullatt_block_indexes else layout.windows
    last = saliency and i == config.depth - 1
    x, pending, received = block(x, pending, cos, sin, segments, layout.grids if last else None, kernels)
  return x, pending, received


def merge_units(merger: PatchMerger, x: jax.Array, pending: Optional[jax.Array], received: Optional[jax.Array],
                config: VisionConfig, layout: VisionLayout, kernels: str):
  """The last block's output (window order) to ``(tokens [U, out], saliency [U] or None)`` in raster order."""
  restore = jnp.asarray(np.argsort(layout.window_index))
  tokens = merger(x, pending, kernels)[restore]  # [U, out]
  if received is not None:
    received = received.reshape(-1, config.spatial_merge_size ** 2).mean(axis=-1)[restore]  # [U]
  return tokens, received


class VisionTower(nnx.Module):
  """Pixels ``[P, 1176]`` to LLM-input video tokens ``[U, out]`` plus saliency.

  The forward is three functions of its parts (:func:`embed_patches`,
  :func:`run_blocks`, :func:`merge_units`), so that a caller may run it as
  several programs (``generation.llm_input`` does).
  """

  def __init__(self, config: VisionConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
    self.config = config
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.patch_embed = PatchEmbed(config, **kw)
    self.blocks = nnx.List([VisionBlock(config, **kw) for _ in range(config.depth)])
    self.merger = PatchMerger(config, **kw)
    self.kernels = "auto"  # the blocks' fused Pallas kernels (VisionBlock); "interpret" runs them on a CPU

  def __call__(self, pixels: jax.Array, grid_thw: GridTHW, *, saliency: bool = True):
    """Encodes video patches.

    Args:
      pixels: ``[P, C * 2 * 14 * 14]`` patches in the processor's order.
      grid_thw: per video ``(t, h, w)``, static Python ints.
      saliency: also return the received attention of the last block.

    Returns:
      ``(tokens [U, out], saliency [U] or None)``, both in raster order
      ``(video, t, h/2, w/2)``. The saliency is the last block's softmax
      attention inside each temporal grid (its full-attention span), averaged
      over heads and queries, then over each 2 x 2 merge unit, in float32.
    """
    cfg = self.config
    layout = layout_of(cfg, grid_thw)
    x = embed_patches(self.patch_embed, pixels, cfg, layout)
    x, pending, received = run_blocks(self.blocks, 0, x, None, cfg, layout, saliency=saliency, kernels=self.kernels)
    return merge_units(self.merger, x, pending, received, cfg, layout, self.kernels)

"""Qwen2.5-VL in Flax NNX: vision tower, Qwen2 decoder with M-RoPE, LM head.

``Qwen2_5_VL.forward`` is the traceable core (explicit position ids, static
``video_grid_thw``); ``Qwen2_5_VL.__call__`` takes the fields of the HF
processor's output like ``transformers`` does and computes the position ids on
the host with the reference rule (text after a video starts at the largest
video position + 1; ``transformers`` 5.x differs there, see
``shared/docs/BACKBONES.md`` section 1.4).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.compressor.interface import CompressionMethod
from ottvid_jax.models.decoder import DecoderConfig, DecoderLM, KVCache
from ottvid_jax.models.qwen2_5_vl.vision import GridTHW, VisionConfig, VisionTower

__all__ = ["Qwen2_5_VL", "Qwen2_5_VLConfig", "rope_index", "static_grid"]


@dataclasses.dataclass(frozen=True)
class Qwen2_5_VLConfig:
  vision: VisionConfig
  text: DecoderConfig
  video_token_id: int = 151656
  image_token_id: int = 151655
  vision_start_token_id: int = 151652
  vision_end_token_id: int = 151653
  eos_token_ids: tuple[int, ...] = (151645, 151643)
  tokens_per_second: float = 2.0
  tie_word_embeddings: bool = False

  @classmethod
  def from_hf(cls, cfg: dict) -> "Qwen2_5_VLConfig":
    """From a ``config.json`` dict (hub layout or ``transformers`` 5.x layout)."""
    v = cfg["vision_config"]
    t = dict(cfg.get("text_config") or cfg)
    rope = t.get("rope_parameters") or t.get("rope_scaling") or cfg.get("rope_scaling") or {}
    theta = rope.get("rope_theta", t.get("rope_theta", cfg.get("rope_theta", 1e6)))
    section = rope.get("mrope_section")
    if section is None:
      raise ValueError("config.json has no mrope_section (rope_parameters / rope_scaling)")
    vision_rope = v.get("rope_parameters") or {}
    vision = VisionConfig(
        depth=v["depth"], hidden_size=v["hidden_size"], intermediate_size=v["intermediate_size"],
        num_heads=v["num_heads"], out_hidden_size=v["out_hidden_size"],
        fullatt_block_indexes=tuple(v["fullatt_block_indexes"]), in_channels=v.get("in_channels", 3),
        patch_size=v.get("patch_size", 14), temporal_patch_size=v.get("temporal_patch_size", 2),
        spatial_merge_size=v.get("spatial_merge_size", 2), window_size=v.get("window_size", 112),
        rope_theta=vision_rope.get("rope_theta", 10000.0))
    if v.get("hidden_act", "silu") != "silu":
      raise NotImplementedError(f"vision hidden_act {v.get('hidden_act')!r} (only silu)")
    text = DecoderConfig(
        vocab_size=t["vocab_size"], hidden_size=t["hidden_size"], intermediate_size=t["intermediate_size"],
        num_hidden_layers=t["num_hidden_layers"], num_attention_heads=t["num_attention_heads"],
        num_key_value_heads=t["num_key_value_heads"], rope_theta=float(theta),
        rms_norm_eps=t.get("rms_norm_eps", 1e-6), mrope_section=tuple(section), head_dim=t.get("head_dim"),
        max_position_embeddings=t.get("max_position_embeddings", 128000))
    if vision.out_hidden_size != text.hidden_size:
      raise ValueError(f"vision out_hidden_size {vision.out_hidden_size} != text hidden_size {text.hidden_size}")
    eos = cfg.get("eos_token_id", t.get("eos_token_id", 151645))
    eos = tuple(eos) if isinstance(eos, (list, tuple)) else (eos,)
    return cls(vision=vision, text=text, video_token_id=cfg.get("video_token_id", 151656),
               image_token_id=cfg.get("image_token_id", 151655),
               vision_start_token_id=cfg.get("vision_start_token_id", 151652),
               vision_end_token_id=cfg.get("vision_end_token_id", 151653), eos_token_ids=eos,
               tokens_per_second=float(v.get("tokens_per_second", 2)),
               tie_word_embeddings=bool(cfg.get("tie_word_embeddings", t.get("tie_word_embeddings", False))))

  @classmethod
  def qwen2_5_vl_7b(cls) -> "Qwen2_5_VLConfig":
    """Qwen/Qwen2.5-VL-7B-Instruct."""
    return cls(
        vision=VisionConfig(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                            fullatt_block_indexes=(7, 15, 23, 31)),
        text=DecoderConfig(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                           num_attention_heads=28, num_key_value_heads=4, rope_theta=1e6,
                           mrope_section=(16, 24, 24), max_position_embeddings=128000))

  @classmethod
  def tiny(cls) -> "Qwen2_5_VLConfig":
    """A two-layer model of Qwen2.5-VL-7B's structure (its vision and rope settings) for tests and smoke runs."""
    base = cls.qwen2_5_vl_7b()
    return dataclasses.replace(
        base, text=DecoderConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, mrope_section=(4, 6, 6), head_dim=32),
        vision=dataclasses.replace(base.vision, depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                                   out_hidden_size=64, fullatt_block_indexes=(0,)))


def static_grid(video_grid_thw: Any) -> GridTHW:
  """``video_grid_thw`` (array or nested list) as a hashable tuple of Python ints."""
  return tuple(tuple(int(v) for v in row) for row in np.asarray(video_grid_thw).reshape(-1, 3))


def rope_index(
    input_ids: np.ndarray,
    video_grid_thw: GridTHW,
    second_per_grid_ts: Sequence[float],
    attention_mask: Optional[np.ndarray],
    config: Qwen2_5_VLConfig,
    mm_token_type_ids: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
  """M-RoPE position ids by the reference rule, on the host.

  Text tokens take consecutive positions; video token ``(i, j, k)`` of a video
  starting at position p takes ``(floor(i * tps * s) + p, j + p, k + p)``
  with ``tps`` tokens per second and ``s`` seconds per temporal grid; the text
  after a video starts at the video's largest position + 1. Padding (mask 0)
  gets position 0 and is skipped.

  Returns:
    ``(positions int32[3, B, S], deltas int32[B])`` with
    ``delta = max position + 1 - real length`` (for decoding).
  """
  input_ids = np.asarray(input_ids)
  batch, length = input_ids.shape
  mask = np.ones_like(input_ids, bool) if attention_mask is None else np.asarray(attention_mask).astype(bool)
  if mm_token_type_ids is None:
    is_video = input_ids == config.video_token_id
  else:
    is_video = np.asarray(mm_token_type_ids) == 2
  merge = config.vision.spatial_merge_size
  grids = iter(video_grid_thw)
  seconds = iter(second_per_grid_ts)
  positions = np.zeros((3, batch, length), np.int64)
  deltas = np.zeros((batch,), np.int64)
  for b in range(batch):
    kinds = is_video[b][mask[b]]
    pieces, current = [], 0
    for video, run in itertools.groupby(kinds):
      n = len(list(run))
      if not video:
        pieces.append(np.broadcast_to(np.arange(n) + current, (3, n)))
        current += n
        continue
      try:
        t, h, w = next(grids)
        interval = config.tokens_per_second * float(next(seconds))
      except StopIteration as err:
        raise ValueError("more video token runs than entries in video_grid_thw") from err
      gh, gw = h // merge, w // merge
      if n != t * gh * gw:
        raise ValueError(f"a run of {n} video tokens does not match grid {(t, h, w)} ({t * gh * gw} tokens)")
      ti = (np.arange(t) * interval).astype(np.int64)
      tt, hh, ww = np.meshgrid(ti, np.arange(gh), np.arange(gw), indexing="ij")
      ids = np.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)]) + current
      pieces.append(ids)
      current = int(ids.max()) + 1
    row = np.concatenate(pieces, axis=1) if pieces else np.zeros((3, 0), np.int64)
    positions[:, b, mask[b]] = row
    deltas[b] = (row.max() + 1 if row.size else 0) - int(mask[b].sum())
  return positions.astype(np.int32), deltas.astype(np.int32)


class Qwen2_5_VL(DecoderLM):
  """``Qwen2_5_VLForConditionalGeneration`` as an NNX module."""

  def __init__(self, config: Qwen2_5_VLConfig, *, dtype=jnp.float32, param_dtype=jnp.float32,
               rngs: Optional[nnx.Rngs] = None):
    rngs = rngs or nnx.Rngs(0)
    self.config = config
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.visual = VisionTower(config.vision, **kw)
    self._build_lm(config.text, config.tie_word_embeddings, **kw)

  def embed(self, input_ids: jax.Array, video_tokens: Optional[jax.Array]) -> jax.Array:
    """Token embeddings with the video tokens scattered over the video pads, ``[B, S, D]``."""
    embeds = self.language_model.embed_tokens(input_ids)
    if video_tokens is None:
      return embeds
    b, s, d = embeds.shape
    (where,) = jnp.nonzero((input_ids == self.config.video_token_id).reshape(-1), size=video_tokens.shape[0])
    return embeds.reshape(b * s, d).at[where].set(video_tokens.astype(embeds.dtype)).reshape(b, s, d)

  def forward(
      self,
      input_ids: jax.Array,
      attention_mask: jax.Array,
      position_ids: jax.Array,
      pixel_values_videos: Optional[jax.Array] = None,
      video_grid_thw: GridTHW = (),
      cache: Optional[KVCache] = None,
      cache_index: jax.Array | int = 0,
  ) -> tuple[jax.Array, Optional[KVCache]]:
    """The traceable forward: ``(logits [B, S, V], cache)``.

    Args:
      input_ids: ``[B, S]``.
      attention_mask: ``[B, S]`` (or ``[B, slots]`` with a cache).
      position_ids: ``[3, B, S]``.
      pixel_values_videos: ``[P, 1176]`` patches of every video, or None.
      video_grid_thw: static ``((t, h, w), ...)``.
      cache: an optional :class:`KVCache` written at ``cache_index``.
    """
    video = None
    if pixel_values_videos is not None:
      video, _ = self.visual(pixel_values_videos, video_grid_thw, saliency=False)
    hidden, cache = self.language_model(self.embed(input_ids, video), position_ids, attention_mask, cache,
                                        cache_index)
    return self.logits(hidden), cache

  def video_slots(self, video_grid_thw: GridTHW, compression: Optional[CompressionMethod]) -> tuple[int, ...]:
    """Per video, the number of LLM slots its tokens take (static)."""
    merge = self.config.vision.spatial_merge_size
    sizes = []
    for t, h, w in video_grid_thw:
      n = (h // merge) * (w // merge)
      sizes.append(t * n if compression is None else compression.slots(t, n))
    return tuple(sizes)

  def prefill_inputs(
      self,
      input_ids: jax.Array,
      position_ids: jax.Array,
      pixel_values_videos: jax.Array,
      video_grid_thw: GridTHW,
      text_source: jax.Array,
      video_source: jax.Array,
      run_start: jax.Array,
      compression: Optional[CompressionMethod] = None,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The LLM input of a (compressed) prefill: ``(embeds [B, S', D], positions [3, B, S'], mask [B, S'])``.

    Args:
      input_ids: ``[B, S]`` with the video placeholders.
      position_ids: ``[3, B, S]`` uncompressed ids (:func:`rope_index`).
      pixel_values_videos: ``[P, 1176]``.
      video_grid_thw: static grids.
      text_source, video_source, run_start: a :class:`SequencePlan`'s arrays.
      compression: a compression method (:mod:`ottvid_jax.compressor.interface`), or None for the plain path.

    Survivors keep the (t, h, w) ids of their anchor token, text keeps its
    uncompressed ids, padding slots are masked out.
    """
    video, saliency = self.visual(pixel_values_videos, video_grid_thw, saliency=compression is not None)
    return self.assemble_inputs(input_ids, position_ids, video, saliency, video_grid_thw, text_source, video_source,
                                run_start, compression)

  def assemble_inputs(
      self,
      input_ids: jax.Array,
      position_ids: jax.Array,
      video: jax.Array,
      saliency: Optional[jax.Array],
      video_grid_thw: GridTHW,
      text_source: jax.Array,
      video_source: jax.Array,
      run_start: jax.Array,
      compression: Optional[CompressionMethod] = None,
  ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:meth:`prefill_inputs` after the vision tower: ``video [U, D]`` and ``saliency [U]``
    (None without ``compression``) are the tower's outputs for every video."""
    b, s = input_ids.shape
    merge = self.config.vision.spatial_merge_size
    tokens, index, valid, offset = [], [], [], 0
    for t, h, w in video_grid_thw:
      gh, gw = h // merge, w // merge
      n = t * gh * gw
      feats = video[offset:offset + n]
      if compression is None:
        tokens.append(feats)
        index.append(jnp.arange(n, dtype=jnp.int32))
        valid.append(jnp.ones((n,), bool))
      else:
        out = compression.apply(feats.reshape(t, gh * gw, -1), saliency[offset:offset + n].reshape(t, gh * gw),
                                (gh, gw))
        tokens.append(out.tokens)
        index.append(jnp.maximum(out.index, 0))
        valid.append(out.valid)
      offset += n
    tokens, index, valid = (jnp.concatenate(x) for x in (tokens, index, valid))
    text_embeds = self.language_model.embed_tokens(input_ids).reshape(b * s, -1)  # [B*S, D]
    flat_positions = position_ids.reshape(3, b * s)
    is_text, is_video = text_source >= 0, video_source >= 0
    t_src, v_src = jnp.maximum(text_source, 0), jnp.maximum(video_source, 0)  # [B, S']
    embeds = jnp.where(is_text[..., None], text_embeds[t_src],
                       jnp.where(is_video[..., None], tokens[v_src].astype(text_embeds.dtype), 0))
    video_positions = flat_positions[:, run_start + index]  # [3, V]
    positions = jnp.where(is_text, flat_positions[:, t_src], jnp.where(is_video, video_positions[:, v_src], 0))
    mask = is_text | (is_video & valid[v_src])
    return embeds, positions, mask

  def __call__(
      self,
      input_ids,
      attention_mask=None,
      pixel_values_videos=None,
      video_grid_thw=None,
      second_per_grid_ts=None,
      mm_token_type_ids=None,
      position_ids=None,
  ) -> jax.Array:
    """Logits ``[B, S, V]`` from the fields of the HF processor's output."""
    input_ids = np.asarray(input_ids)
    mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask)
    grid = static_grid(video_grid_thw) if video_grid_thw is not None else ()
    count = int(np.sum(input_ids == self.config.video_token_id))
    expected = sum(t * h * w for t, h, w in grid) // self.config.vision.spatial_merge_size ** 2
    if count != expected:
      raise ValueError(f"input_ids hold {count} video tokens but video_grid_thw {grid} needs {expected}")
    if position_ids is None:
      seconds = [1.0] * len(grid) if second_per_grid_ts is None else list(np.asarray(second_per_grid_ts, float))
      position_ids, _ = rope_index(input_ids, grid, seconds, mask, self.config, mm_token_type_ids)
    pixels = None if pixel_values_videos is None else jnp.asarray(pixel_values_videos)
    logits, _ = self.forward(jnp.asarray(input_ids), jnp.asarray(mask), jnp.asarray(position_ids), pixels, grid)
    return logits

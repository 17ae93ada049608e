"""LLaVA-OneVision and LLaVA-Video in Flax NNX, on the shared Qwen2 decoder.

Video path (as ``transformers``' ``LlavaOnevisionModel.get_video_features``):
SigLIP up to the feature layer (no post-norm) -> projector (linear, exact GELU,
linear) -> 2-D pooling -> newline tokens per mode. OTT-Vid runs after pooling
and before the newlines; its survivors are grouped by anchor frame in raster
order and the LLM's 1-D positions stay contiguous over the real tokens.
Axes: B batch, T frames, g patch grid side, o pooled side, n = o * o tokens per
frame, D LLM width.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.compressor.interface import CompressionMethod
from ottvid_jax.models import layers
from ottvid_jax.models.decoder import DecoderConfig, DecoderLM
from ottvid_jax.models.llava_onevision import pooling
from ottvid_jax.models.llava_onevision.siglip import SiglipConfig, SiglipTower

__all__ = ["LlavaConfig", "LlavaOnevision", "video_features"]

SO400M = dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, num_hidden_layers=27,
              image_size=384, patch_size=14)


@dataclasses.dataclass(frozen=True)
class LlavaConfig:
  """LLaVA-OneVision / LLaVA-Video.

  Attributes:
    pool: :data:`pooling.POOL_MODES` (``bilinear`` for OneVision in HF,
      ``average`` for LLaVA-Video's evaluation).
    newline: :data:`pooling.NEWLINE_MODES` (``one_token`` in HF, ``grid`` for
      LLaVA-Video's evaluation).
  """

  vision: SiglipConfig
  text: DecoderConfig
  video_token_id: int = 151647
  image_token_id: int = 151646
  pool: str = "bilinear"
  newline: str = "one_token"
  projector_bias: bool = True
  eos_token_ids: tuple[int, ...] = (151645, 151643)
  tie_word_embeddings: bool = False

  def __post_init__(self):
    pooling.pooled_size(self.vision.grid, self.pool)  # checks the mode
    if self.newline not in pooling.NEWLINE_MODES:
      raise NotImplementedError(f"newline mode {self.newline!r}; supported: {pooling.NEWLINE_MODES}")

  @property
  def pooled(self) -> int:
    return pooling.pooled_size(self.vision.grid, self.pool)

  def video_tokens(self, frames: int) -> int:
    """Placeholder tokens of an uncompressed video of ``frames`` frames."""
    o = self.pooled
    extra = {"one_token": 1, "frame": frames, "grid": frames * o, "no_token": 0}[self.newline]
    return frames * o * o + extra

  def newlines(self, frames: int) -> int:
    """Newline tokens of a compressed video (``grid`` becomes one per frame: rows do not survive merging)."""
    return {"one_token": 1, "frame": frames, "grid": frames, "no_token": 0}[self.newline]

  @classmethod
  def from_hf(cls, cfg: dict) -> "LlavaConfig":
    """From a ``config.json``: llava-hf (``vision_config``/``text_config``) or lmms-lab (``mm_*`` keys)."""
    if "vision_config" in cfg:
      v = dict(SO400M, **cfg["vision_config"])
      feature_layer = cfg.get("vision_feature_layer", -1)
      t = cfg["text_config"]
      video_id, image_id = cfg.get("video_token_index", 151647), cfg.get("image_token_index", 151646)
    else:  # the original lmms-lab LLaVA-Video / OneVision config
      if "siglip" not in str(cfg.get("mm_vision_tower", "")):
        raise NotImplementedError(f"vision tower {cfg.get('mm_vision_tower')!r} (only SigLIP so400m)")
      v = dict(SO400M, num_hidden_layers=26)  # the checkpoints keep 26 layers and use the last
      feature_layer = -1
      t = cfg
      video_id, image_id = 151647, 151646
    if isinstance(feature_layer, (list, tuple)):
      raise NotImplementedError("several vision feature layers")
    if cfg.get("vision_feature_select_strategy", "full") != "full":
      raise NotImplementedError("vision_feature_select_strategy 'default' (SigLIP has no CLS token to drop)")
    if v.get("hidden_act", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
      raise NotImplementedError(f"SigLIP hidden_act {v.get('hidden_act')!r}")
    run = feature_layer if feature_layer >= 0 else v["num_hidden_layers"] + 1 + feature_layer
    vision = SiglipConfig(hidden_size=v["hidden_size"], intermediate_size=v["intermediate_size"],
                          num_attention_heads=v["num_attention_heads"], feature_layers=run,
                          image_size=v["image_size"], patch_size=v["patch_size"],
                          num_channels=v.get("num_channels", 3), layer_norm_eps=v.get("layer_norm_eps", 1e-6))
    rope = t.get("rope_parameters") or {}
    text = DecoderConfig(
        vocab_size=t["vocab_size"], hidden_size=t["hidden_size"], intermediate_size=t["intermediate_size"],
        num_hidden_layers=t["num_hidden_layers"], num_attention_heads=t["num_attention_heads"],
        num_key_value_heads=t["num_key_value_heads"], rope_theta=float(rope.get("rope_theta", t.get("rope_theta", 1e6))),
        rms_norm_eps=t.get("rms_norm_eps", 1e-6), head_dim=t.get("head_dim"),
        max_position_embeddings=t.get("max_position_embeddings", 32768))
    eos = t.get("eos_token_id", cfg.get("eos_token_id", 151645))
    eos = tuple(eos) if isinstance(eos, (list, tuple)) else (eos,)
    return cls(vision=vision, text=text, video_token_id=video_id, image_token_id=image_id,
               pool=cfg.get("mm_spatial_pool_mode", "bilinear"), newline=cfg.get("mm_newline_position", "one_token"),
               projector_bias=cfg.get("multimodal_projector_bias", True), eos_token_ids=eos,
               tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)))

  @classmethod
  def llava_onevision_7b(cls) -> "LlavaConfig":
    """llava-hf/llava-onevision-qwen2-7b-ov-hf."""
    return cls(vision=SiglipConfig(1152, 4304, 16, feature_layers=26),
               text=DecoderConfig(vocab_size=152128, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                  num_attention_heads=28, num_key_value_heads=4, rope_theta=1e6,
                                  max_position_embeddings=32768))

  @classmethod
  def llava_video_7b(cls) -> "LlavaConfig":
    """lmms-lab/LLaVA-Video-7B-Qwen2 with its evaluation's pooling (average 13 x 13, newline per row)."""
    return dataclasses.replace(cls.llava_onevision_7b(), pool="average", newline="grid")


def video_features(vision_tower: SiglipTower, projector: nnx.Dict, config: LlavaConfig, pixels: jax.Array, *,
                   saliency: bool = False):
  """:meth:`LlavaOnevision.video_features` as a function of the modules it uses (so that a program can take
  only their parameters)."""
  f = pixels.shape[0]
  g, o = config.vision.grid, config.pooled
  feats, received = vision_tower(pixels, saliency=saliency)  # [F, g*g, Dv]
  x = projector["linear_2"](jax.nn.gelu(projector["linear_1"](feats), approximate=False))  # [F, g*g, D]
  x = pooling.pool(x.reshape(f, g, g, -1), config.pool).reshape(f, o * o, -1)
  if received is not None:
    received = pooling.pool(received.reshape(f, g, g), config.pool).reshape(f, o * o)
  return x, received


class LlavaOnevision(DecoderLM):
  """``LlavaOnevisionForConditionalGeneration`` (videos) as an NNX module."""

  def __init__(self, config: LlavaConfig, *, dtype=jnp.float32, param_dtype=jnp.float32,
               rngs: Optional[nnx.Rngs] = None):
    rngs = rngs or nnx.Rngs(0)
    self.config = config
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    d_in, d = config.vision.hidden_size, config.text.hidden_size
    self.vision_tower = SiglipTower(config.vision, **kw)
    self.multi_modal_projector = nnx.Dict(linear_1=layers.linear(d_in, d, bias=config.projector_bias, **kw),
                                          linear_2=layers.linear(d, d, bias=config.projector_bias, **kw))
    self.image_newline = nnx.Param(jnp.zeros((d,), param_dtype))
    self._build_lm(config.text, config.tie_word_embeddings, **kw)

  def video_features(self, pixels: jax.Array, *, saliency: bool = False):
    """Pooled LLM-input tokens of every frame: ``([F, n, D], saliency [F, n] or None)``.

    Args:
      pixels: ``[F, C, S, S]`` frames (all videos' frames in a row).
    """
    return video_features(self.vision_tower, self.multi_modal_projector, self.config, pixels, saliency=saliency)

  def video_slots(self, frames: tuple[int, ...], compression: Optional[CompressionMethod]) -> tuple[int, ...]:
    """Per video, its slots in the LLM input (static)."""
    n = self.config.pooled ** 2
    if compression is None:
      return tuple(self.config.video_tokens(t) for t in frames)
    return tuple(compression.slots(t, n) + self.config.newlines(t) for t in frames)

  def _video_sequence(self, tokens, saliency, frames: int, compression):
    """One video's LLM slots: ``(tokens [L, D], valid [L])`` with the newlines in place."""
    o, n, d = self.config.pooled, self.config.pooled ** 2, tokens.shape[-1]
    newline = self.image_newline[...].astype(tokens.dtype)
    mode = self.config.newline
    if compression is None:  # the uncompressed layout: a static interleaving
      grid = tokens.reshape(frames, o, o, d)
      if mode == "grid":
        rows = jnp.concatenate([grid, jnp.broadcast_to(newline, (frames, o, 1, d))], axis=2)
        seq = rows.reshape(-1, d)
      elif mode == "frame":
        seq = jnp.concatenate([tokens.reshape(frames, n, d), jnp.broadcast_to(newline, (frames, 1, d))], 1)
        seq = seq.reshape(-1, d)
      elif mode == "one_token":
        seq = jnp.concatenate([tokens, newline[None]], axis=0)
      else:
        seq = tokens
      return seq, jnp.ones((seq.shape[0],), bool)
    out = compression.apply(tokens.reshape(frames, n, d), saliency.reshape(frames, n), (o, o))
    m = out.tokens.shape[0]
    newlines = self.config.newlines(frames)
    length = m + newlines
    frame = jnp.where(out.valid, out.index // n, frames)  # anchor frame; padding after everything
    if mode in ("frame", "grid"):  # a newline after each frame's survivors
      slot_pos = jnp.arange(m) + jnp.minimum(frame, frames)  # newlines of earlier frames come first
      per_frame = jnp.sum(frame[None, :] <= jnp.arange(frames)[:, None], axis=1)  # survivors up to frame t
      newline_pos = per_frame + jnp.arange(frames)
    else:
      slot_pos = jnp.arange(m)
      newline_pos = jnp.full((newlines,), m)  # one_token: after the video; no_token: none
    seq = jnp.zeros((length, d), tokens.dtype).at[slot_pos].set(out.tokens).at[newline_pos].set(newline)
    valid = jnp.zeros((length,), bool).at[slot_pos].set(out.valid).at[newline_pos].set(True)
    return seq, valid

  def prefill_inputs(self, input_ids, pixel_values_videos, frames: tuple[int, ...], text_source, video_source,
                     compression=None):
    """The LLM input ``(embeds [B, S', D], positions [B, S'], mask [B, S'])``.

    Args:
      input_ids: ``[B, S]`` with the video placeholders.
      pixel_values_videos: ``[F, C, S, S]``, the frames of every video in order.
      frames: static frame count of each video.
      text_source, video_source: a :class:`SequencePlan`'s arrays.
      compression: a compression method (:mod:`ottvid_jax.compressor.interface`), or None.
    """
    tokens, saliency = self.video_features(pixel_values_videos, saliency=compression is not None)
    return self.assemble_inputs(input_ids, tokens, saliency, frames, text_source, video_source, compression)

  def assemble_inputs(self, input_ids, tokens, saliency, frames: tuple[int, ...], text_source, video_source,
                      compression=None):
    """:meth:`prefill_inputs` after the vision side: ``tokens [F, N, D]`` and ``saliency [F, N]`` (None
    without ``compression``) are :meth:`video_features` of every frame."""
    b, s = input_ids.shape
    seqs, valids, offset = [], [], 0
    for t in frames:
      sal = None if saliency is None else saliency[offset:offset + t]
      seq, valid = self._video_sequence(tokens[offset:offset + t].reshape(t * tokens.shape[1], -1), sal, t,
                                        compression)
      seqs.append(seq)
      valids.append(valid)
      offset += t
    video, valid = jnp.concatenate(seqs), jnp.concatenate(valids)
    text = self.language_model.embed_tokens(input_ids).reshape(b * s, -1)
    is_text, is_video = text_source >= 0, video_source >= 0
    t_src, v_src = jnp.maximum(text_source, 0), jnp.maximum(video_source, 0)
    embeds = jnp.where(is_text[..., None], text[t_src], jnp.where(is_video[..., None], video[v_src].astype(text.dtype), 0))
    mask = is_text | (is_video & valid[v_src])
    positions = jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0).astype(jnp.int32)  # contiguous over real tokens
    return embeds, positions, mask

  def forward(self, input_ids, attention_mask, pixel_values_videos, frames, text_source, video_source):
    embeds, positions, mask = self.prefill_inputs(input_ids, pixel_values_videos, frames, text_source, video_source)
    hidden, _ = self.language_model(embeds, positions, mask)
    return self.logits(hidden)

  def __call__(self, input_ids, attention_mask=None, pixel_values_videos=None) -> jax.Array:
    """Logits ``[B, S, V]`` like ``transformers`` (``pixel_values_videos`` ``[B, T, C, S, S]``)."""
    from ottvid_jax.models.sequence import plan_sequence  # pylint: disable=import-outside-toplevel

    input_ids = np.asarray(input_ids)
    mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask)
    pixels = np.asarray(pixel_values_videos)
    frames = (pixels.shape[1],) * pixels.shape[0]
    slots = self.video_slots(frames, None)
    plan = plan_sequence(input_ids == self.config.video_token_id, mask, slots, slots)
    if plan.length != input_ids.shape[1]:
      raise ValueError("left-padded batches keep their length; got a different LLM length")
    return self.forward(jnp.asarray(input_ids), jnp.asarray(mask), jnp.asarray(pixels.reshape((-1,) + pixels.shape[2:])),
                        frames, jnp.asarray(plan.text), jnp.asarray(plan.video))

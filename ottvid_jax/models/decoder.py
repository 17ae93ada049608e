"""The Qwen2 decoder, shared by Qwen2.5-VL (M-RoPE) and LLaVA (1-D RoPE).

Names follow HF's ``Qwen2Model``: ``embed_tokens``, ``layers[i].{input_layernorm,
self_attn.{qkv,o}_proj, post_attention_layernorm, mlp.{gate_up,down}_proj}``,
``norm``, except that q, k, v and gate, up are fused into one projection each
(fewer, larger matmuls; one read of the activations when decoding). Axes: B batch, T new tokens, S cache slots, N query heads, K key/value
heads, H head dim, D model width.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.models import decode_attention, layers

__all__ = ["Decoder", "DecoderConfig", "DecoderLM", "KVCache", "lm_logits", "rope_tables"]

MLP_TOKEN_CHUNK = 2048  # a long prefill's MLP runs in slices of about this many tokens (see layers.MLP)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Shapes and constants of a Qwen2 decoder.

  ``mrope_section`` splits the rotary frequencies between the (t, h, w)
  position axes (Qwen2.5-VL); ``None`` is plain 1-D RoPE.
  """

  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_hidden_layers: int
  num_attention_heads: int
  num_key_value_heads: int
  rope_theta: float = 1e6
  rms_norm_eps: float = 1e-6
  mrope_section: Optional[tuple[int, ...]] = None
  head_dim: Optional[int] = None
  max_position_embeddings: int = 32768

  @property
  def head_size(self) -> int:
    return self.head_dim or self.hidden_size // self.num_attention_heads


@flax.struct.dataclass
class KVCache:
  """Preallocated keys and values of every layer.

  One array per layer, so that a jitted step that donates the cache updates
  every layer in place.

  Attributes:
    k: L arrays ``[B, S, K, H]``.
    v: L arrays ``[B, S, K, H]``.
  """

  k: tuple[jax.Array, ...]
  v: tuple[jax.Array, ...]

  @classmethod
  def zeros(cls, config: DecoderConfig, batch: int, slots: int, dtype) -> "KVCache":
    shape = (batch, slots, config.num_key_value_heads, config.head_size)
    layers_ = range(config.num_hidden_layers)
    return cls(tuple(jnp.zeros(shape, dtype) for _ in layers_), tuple(jnp.zeros(shape, dtype) for _ in layers_))

  @property
  def slots(self) -> int:
    return self.k[0].shape[1]


def rope_tables(config: DecoderConfig, positions: jax.Array) -> tuple[jax.Array, jax.Array]:
  """cos and sin of the rotary angles, ``[B, T, H]`` each, in float32.

  Args:
    config: the decoder config.
    positions: ``[3, B, T]`` (t, h, w) position ids, or ``[B, T]`` for 1-D.
  """
  hd = config.head_size
  inv_freq = 1.0 / (config.rope_theta ** (np.arange(0, hd, 2, dtype=np.float32) / hd))  # [H/2]
  if positions.ndim == 2:
    positions = jnp.broadcast_to(positions[None], (3,) + positions.shape)
  freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # [3, B, T, H/2]
  sections = config.mrope_section or (hd // 2,)
  if sum(sections) != hd // 2:
    raise ValueError(f"mrope_section {sections} must sum to head_dim / 2 = {hd // 2}")
  bounds = np.cumsum((0,) + tuple(sections))
  freqs = jnp.concatenate([freqs[i % 3, ..., bounds[i]:bounds[i + 1]] for i in range(len(sections))], axis=-1)
  angles = jnp.concatenate([freqs, freqs], axis=-1)  # [B, T, H]
  return jnp.cos(angles), jnp.sin(angles)


class Attention(nnx.Module):
  """Grouped-query self-attention with q/k/v biases and a preallocated cache."""

  def __init__(self, config: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    d, hd = config.hidden_size, config.head_size
    n, kv = config.num_attention_heads, config.num_key_value_heads
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.qkv_proj = layers.linear(d, (n + 2 * kv) * hd, bias=True, **kw)  # HF's q_proj | k_proj | v_proj
    self.o_proj = layers.linear(n * hd, d, bias=False, **kw)
    self.heads, self.kv_heads, self.head_dim = n, kv, hd

  def __call__(self, x, cos, sin, mask, cache_kv=None, cache_index=0, kernel: Optional[str] = None):
    """``mask``: ``[B, 1, T, T]`` (or None: plain causal) when ``cache_index`` is the
    Python int 0 (a prefill: attention over the new tokens only), else
    ``[B, 1, T, S]`` over the cache slots (decoding). ``kernel``: a decoding
    step's rotary, cache write and attention as one :func:`decode_attention.decode_attention`
    (``"pallas"``, or ``"interpret"`` on a CPU), or None: XLA's ops."""
    b, t, _ = x.shape
    qkv = self.qkv_proj(x).reshape(b, t, self.heads + 2 * self.kv_heads, self.head_dim)
    prefill = isinstance(cache_index, int) and cache_index == 0
    if kernel is not None and not prefill and cache_kv is not None:  # rotary, cache write and attention fused
      valid = jnp.broadcast_to(mask, (b, 1, t, cache_kv[0].shape[1]))[:, 0, 0]  # [B, S]
      out, *cache_kv = decode_attention.decode_attention(qkv, cos, sin, *cache_kv, cache_index, valid,
                                                         self.head_dim ** -0.5, self.heads,
                                                         interpret=kernel == "interpret")
      return self.o_proj(out.reshape(b, t, -1)), tuple(cache_kv)
    q = qkv[:, :, :self.heads]  # [B, T, N, H]
    k = qkv[:, :, self.heads:self.heads + self.kv_heads]  # [B, T, K, H]
    v = qkv[:, :, self.heads + self.kv_heads:]
    q = layers.apply_rotary(q, cos, sin)
    k = layers.apply_rotary(k, cos, sin)
    if cache_kv is not None:  # write the new keys at cache_index
      ck, cv = cache_kv
      ck = jax.lax.dynamic_update_slice(ck, k.astype(ck.dtype), (0, cache_index, 0, 0))  # [B, S, K, H]
      cv = jax.lax.dynamic_update_slice(cv, v.astype(cv.dtype), (0, cache_index, 0, 0))
      cache_kv = (ck, cv)
      if not prefill:  # decoding attends over every slot written so far
        k, v = ck.astype(q.dtype), cv.astype(q.dtype)
    out = layers.attention(q, k, v, mask, self.head_dim ** -0.5, is_causal=prefill and mask is None)
    return self.o_proj(out.reshape(b, t, -1)), cache_kv  # out: [B, T, N, H]


class DecoderLayer(nnx.Module):

  def __init__(self, config: DecoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    self.input_layernorm = layers.RMSNorm(config.hidden_size, config.rms_norm_eps, param_dtype=param_dtype)
    self.self_attn = Attention(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.post_attention_layernorm = layers.RMSNorm(config.hidden_size, config.rms_norm_eps, param_dtype=param_dtype)
    self.mlp = layers.MLP(config.hidden_size, config.intermediate_size, bias=False, dtype=dtype,
                          param_dtype=param_dtype, rngs=rngs, token_chunk=MLP_TOKEN_CHUNK)

  def __call__(self, x, cos, sin, mask, cache_kv=None, cache_index=0, kernel: Optional[str] = None):
    h, cache_kv = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache_kv, cache_index, kernel)
    x = x + h
    return x + self.mlp(self.post_attention_layernorm(x)), cache_kv


class Decoder(nnx.Module):
  """Token embeddings, the decoder layers and the final norm (no LM head)."""

  def __init__(self, config: DecoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
    self.config = config
    self.embed_tokens = nnx.Embed(config.vocab_size, config.hidden_size, dtype=dtype, param_dtype=param_dtype,
                                  rngs=rngs, embedding_init=nnx.initializers.normal(0.02))
    self.layers = nnx.List([DecoderLayer(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
                            for _ in range(config.num_hidden_layers)])
    self.norm = layers.RMSNorm(config.hidden_size, config.rms_norm_eps, param_dtype=param_dtype)

  def __call__(
      self,
      embeds: jax.Array,
      positions: jax.Array,
      attention_mask: Optional[jax.Array],
      cache: Optional[KVCache] = None,
      cache_index: jax.Array | int = 0,
      decode_kernel: Optional[str] = None,
  ) -> tuple[jax.Array, Optional[KVCache]]:
    """Runs the decoder on input embeddings.

    Args:
      embeds: ``[B, T, D]`` input embeddings.
      positions: ``[3, B, T]`` M-RoPE ids or ``[B, T]`` 1-D ids.
      attention_mask: ``[B, T]`` for a prefill (``cache_index`` the Python int
        0), ``[B, S]`` over the cache slots when decoding (True: a real token,
        False: padding); None means no padding, which lets a prefill use
        plain causal attention (cuDNN flash attention on GPUs).
      cache: the :class:`KVCache`; the T new keys are written at
        ``cache_index``; decoding attends over slots ``<= cache_index + i``.
      cache_index: 0 (a Python int) for a prefill, else the traced slot of
        the first new token.
      decode_kernel: decoding one token a row: ``"pallas"`` runs each layer's
        rotary, cache write and attention as one fused kernel (GPU), ``"interpret"``
        the same kernel in Pallas' interpreter; None: XLA's ops.

    Returns:
      ``([B, T, D]`` final hidden states, the updated cache or None).
    """
    b, t, _ = embeds.shape
    cos, sin = rope_tables(self.config, positions)
    prefill = isinstance(cache_index, int) and cache_index == 0
    if prefill and attention_mask is None:
      mask = None  # plain causal
    else:
      keys = jnp.arange(t if prefill else cache.slots)
      causal = keys[None, :] <= (cache_index + jnp.arange(t))[:, None]  # [T, T or S]
      mask = causal[None, None]
      if attention_mask is not None:
        mask = mask & attention_mask.astype(bool)[:, None, None, :]  # [B, 1, T, T or S]
    x = embeds
    new_k, new_v = [], []
    for i, layer in enumerate(self.layers):
      kv = None if cache is None else (cache.k[i], cache.v[i])
      x, kv = layer(x, cos, sin, mask, kv, cache_index, decode_kernel)
      if cache is not None:
        new_k.append(kv[0])
        new_v.append(kv[1])
    x = self.norm(x)
    if cache is not None:
      cache = KVCache(tuple(new_k), tuple(new_v))
    return x, cache


class DecoderLM(nnx.Module):
  """Base of the backbones: a ``language_model`` (:class:`Decoder`) and its LM head, tied or not."""

  def _build_lm(self, config: DecoderConfig, tie_word_embeddings: bool, *, dtype, param_dtype, rngs: nnx.Rngs):
    self.language_model = Decoder(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.tie_word_embeddings = tie_word_embeddings
    if not tie_word_embeddings:
      self.lm_head = layers.linear(config.hidden_size, config.vocab_size, bias=False, dtype=dtype,
                                   param_dtype=param_dtype, rngs=rngs)

  def language_part(self) -> tuple:
    """``(decoder, LM head or None when tied)``: what the logits of hidden states need, without the vision side."""
    return self.language_model, None if self.tie_word_embeddings else self.lm_head

  def logits(self, hidden: jax.Array) -> jax.Array:
    """``[..., D]`` final hidden states to ``[..., V]`` vocabulary logits."""
    return lm_logits(*self.language_part(), hidden)


def lm_logits(language_model: Decoder, lm_head: Optional[nnx.Linear], hidden: jax.Array) -> jax.Array:
  """:meth:`DecoderLM.logits` from its parts: ``lm_head`` is None when tied to the input embedding."""
  if lm_head is None:
    return language_model.embed_tokens.attend(hidden)
  return lm_head(hidden)

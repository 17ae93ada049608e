"""The SigLIP vision tower (so400m layout, no CLS token) in Flax NNX.

HF names: ``embeddings.{patch_embedding, position_embedding}``,
``encoder.layers[i].{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2,
mlp.{fc1, fc2}}``. LLaVA takes the hidden state after ``feature_layers``
layers, **without** ``post_layernorm``, so neither the post-norm nor the layers
after the feature layer are built. Axes: F frames (images), P patches, D width,
E heads, H head dim.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from ottvid_jax.models import layers
from ottvid_jax.models.received_attention import received_attention

__all__ = ["SiglipConfig", "SiglipTower"]


@dataclasses.dataclass(frozen=True)
class SiglipConfig:
  hidden_size: int
  intermediate_size: int
  num_attention_heads: int
  feature_layers: int  # how many encoder layers run (the feature layer)
  image_size: int = 384
  patch_size: int = 14
  num_channels: int = 3
  layer_norm_eps: float = 1e-6

  @property
  def grid(self) -> int:
    return self.image_size // self.patch_size

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_attention_heads


class SiglipAttention(nnx.Module):

  def __init__(self, config: SiglipConfig, *, dtype, param_dtype, rngs):
    kw = dict(bias=True, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    d = config.hidden_size
    self.q_proj, self.k_proj, self.v_proj = (layers.linear(d, d, **kw) for _ in range(3))
    self.out_proj = layers.linear(d, d, **kw)
    self.heads, self.head_dim = config.num_attention_heads, config.head_dim

  def qkv(self, x):
    f, p, _ = x.shape
    split = lambda y: y.reshape(f, p, self.heads, self.head_dim)  # noqa: E731  [F, P, E, H]
    return split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))

  def attend(self, q, k, v):
    """Attention of ``q, k, v [F, P, E, H]`` within each frame, projected: ``[F, P, D]``."""
    out = layers.attention(q, k, v, None, self.head_dim ** -0.5)
    return self.out_proj(out.reshape(out.shape[:2] + (-1,)))


class SiglipLayer(nnx.Module):

  def __init__(self, config: SiglipConfig, *, dtype, param_dtype, rngs):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    d = config.hidden_size
    self.layer_norm1 = nnx.LayerNorm(d, epsilon=config.layer_norm_eps, **kw)
    self.self_attn = SiglipAttention(config, **kw)
    self.layer_norm2 = nnx.LayerNorm(d, epsilon=config.layer_norm_eps, **kw)
    self.mlp = nnx.Dict(fc1=layers.linear(d, config.intermediate_size, bias=True, **kw),
                        fc2=layers.linear(config.intermediate_size, d, bias=True, **kw))

  def __call__(self, x, *, saliency: bool = False):
    """``(x [F, P, D], received [F, P] or None)``; ``saliency``: also return the attention each patch
    receives, averaged over heads and queries (from this layer's own queries and keys)."""
    q, k, v = self.self_attn.qkv(self.layer_norm1(x))
    received = received_attention(q, k, self.self_attn.head_dim ** -0.5) if saliency else None
    x = x + self.self_attn.attend(q, k, v)
    h = jax.nn.gelu(self.mlp["fc1"](self.layer_norm2(x)), approximate=True)  # gelu_pytorch_tanh
    return x + self.mlp["fc2"](h), received


class SiglipTower(nnx.Module):
  """Images ``[F, C, S, S]`` to patch features ``[F, P, D]`` (+ received attention)."""

  def __init__(self, config: SiglipConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.config = config
    patch_dim = config.num_channels * config.patch_size ** 2
    self.embeddings = nnx.Dict(
        patch_embedding=layers.linear(patch_dim, config.hidden_size, bias=True, **kw),
        position_embedding=nnx.Embed(config.grid ** 2, config.hidden_size, dtype=dtype, param_dtype=param_dtype,
                                     rngs=rngs, embedding_init=nnx.initializers.normal(0.02)))
    self.encoder = nnx.Dict(layers=nnx.List([SiglipLayer(config, **kw) for _ in range(config.feature_layers)]))

  def patches(self, pixels: jax.Array) -> jax.Array:
    """``[F, C, S, S]`` to ``[F, P, C * 14 * 14]`` in raster order (the stride-14 conv as a matmul)."""
    f, c, _, _ = pixels.shape
    g, p = self.config.grid, self.config.patch_size
    x = pixels[:, :, :g * p, :g * p].reshape(f, c, g, p, g, p)  # pixels past g * p are ignored, as by the conv
    return x.transpose(0, 2, 4, 1, 3, 5).reshape(f, g * g, c * p * p)

  def __call__(self, pixels: jax.Array, *, saliency: bool = False):
    """Returns ``(features [F, P, D], received attention [F, P] or None)``.

    The received attention is the last run layer's softmax attention averaged
    over heads and queries, in float32.
    """
    x = self.embeddings["patch_embedding"](self.patches(pixels).astype(self.embeddings["patch_embedding"].kernel.dtype))
    x = x + self.embeddings["position_embedding"].embedding[...][None].astype(x.dtype)
    last = len(self.encoder["layers"]) - 1
    for i, layer in enumerate(self.encoder["layers"]):
      x, received = layer(x, saliency=saliency and i == last)
    return x, received

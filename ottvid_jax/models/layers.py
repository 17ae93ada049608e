"""Building blocks shared by the backbones (bonsai style: HF names, shape comments)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["MLP", "PAD_MULTIPLE", "RMSNorm", "apply_rotary", "attention", "half_precision_on_gpu", "linear", "padded",
           "rotate_half"]

PAD_MULTIPLE = 128  # widths that a model pads with zero units are rounded up to this


def padded(width: int, multiple: int = PAD_MULTIPLE) -> int:
  """``width`` rounded up to a multiple of ``multiple``."""
  return -(-width // multiple) * multiple


def linear(din: int, dout: int, *, bias: bool, dtype, param_dtype, rngs: nnx.Rngs) -> nnx.Linear:
  """An ``nnx.Linear`` (kernel ``[in, out]``, the transpose of HF's weight)."""
  return nnx.Linear(din, dout, use_bias=bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs,
                    kernel_init=nnx.initializers.normal(0.02))


class RMSNorm(nnx.Module):
  """HF's RMSNorm: normalise in float32, cast back, then scale (in that order)."""

  def __init__(self, dim: int, eps: float, *, param_dtype=jnp.float32):
    self.weight = nnx.Param(jnp.ones((dim,), param_dtype))
    self.eps = eps

  def __call__(self, x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return self.weight[...] * x32.astype(x.dtype)


class MLP(nnx.Module):
  """SwiGLU: ``down(silu(gate(x)) * up(x))``.

  HF's ``gate_proj`` and ``up_proj`` are one fused ``gate_up_proj`` here (one
  matmul, one read of the input; the converter concatenates them). With
  ``pad=True`` the hidden width is rounded up to :data:`PAD_MULTIPLE` with
  units whose weights and biases are zero (the loader pads the checkpoint's
  tensors): ``silu(0) * 0 = 0`` and their rows of ``down`` are zero, so the
  output is unchanged, while every matmul gets an aligned width (Qwen2.5-VL's
  3420-wide vision MLP made its down projection run at a third of the speed
  of the others on an H100).
  """

  def __init__(self, dim: int, hidden: int, *, bias: bool, dtype, param_dtype, rngs: nnx.Rngs, pad: bool = False,
               token_chunk: int | None = None):
    """``token_chunk``: inputs of more tokens (``[..., T, D]``, T > token_chunk) run in
    ``ceil(T / token_chunk)`` sequential slices, so the ``[T, 2 * hidden]``
    intermediate exists for one slice at a time (the LLM prefill's largest
    temporary: 315 MB of 4156 x 37888 bf16 for Qwen2.5-VL-7B)."""
    kw = dict(bias=bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    hidden = padded(hidden) if pad else hidden
    self.gate_up_proj = linear(dim, 2 * hidden, **kw)
    self.down_proj = linear(hidden, dim, **kw)
    self.token_chunk = token_chunk

  def _apply(self, x: jax.Array) -> jax.Array:
    gate, up = jnp.split(self.gate_up_proj(x), 2, axis=-1)
    return self.down_proj(jax.nn.silu(gate) * up)

  def __call__(self, x: jax.Array) -> jax.Array:
    tokens = x.shape[-2] if x.ndim >= 2 else 1
    if self.token_chunk is None or tokens <= self.token_chunk:
      return self._apply(x)
    bounds = np.linspace(0, tokens, -(-tokens // self.token_chunk) + 1).round().astype(int)  # near-equal slices
    outs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
      part = x[..., a:b, :]
      if outs:  # one slice after the other: the next starts once the previous output exists
        part, _ = jax.lax.optimization_barrier((part, outs[-1]))
      outs.append(self._apply(part))
    return jnp.concatenate(outs, axis=-2)


def rotate_half(x: jax.Array) -> jax.Array:
  """``[x1, x2] -> [-x2, x1]`` over the last axis (the non-interleaved RoPE form)."""
  half = x.shape[-1] // 2
  return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """RoPE on ``x [..., S, N, H]`` with ``cos, sin [..., S, H]`` (broadcast over heads N)."""
  cos = cos[..., None, :].astype(x.dtype)
  sin = sin[..., None, :].astype(x.dtype)
  return x * cos + rotate_half(x) * sin


def half_precision_on_gpu(dtype) -> bool:
  """JAX's default backend is a GPU and ``dtype`` a 16-bit float: where cuDNN's attention and the project's
  fused attention kernels run by default."""
  return jax.default_backend() == "gpu" and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16)


def _use_cudnn(q: jax.Array, mask) -> bool:
  """cuDNN flash attention applies: a GPU, half precision, no dense mask, head dim <= 128."""
  return (half_precision_on_gpu(q.dtype) and mask is None
          and q.shape[-1] % 8 == 0 and q.shape[-1] <= 128)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None, scale: float,
              is_causal: bool = False, lengths: jax.Array | None = None) -> jax.Array:
  """Softmax attention, grouped-query when K < N heads.

  Args:
    q: ``[B, T, N, H]`` queries.
    k: ``[B, S, K, H]`` keys, N a multiple of K.
    v: ``[B, S, K, H]`` values.
    mask: boolean, broadcastable to ``[B, N, T, S]`` (True: attend), or None.
    scale: the logit scale, usually ``H ** -0.5``.
    is_causal: apply a causal mask (T = S).
    lengths: ``int32[B]``: only the first ``lengths[b]`` queries and keys of
      row b are real (right padding), or None.

  Returns:
    ``[B, T, N, H]``. Without a dense mask, in bf16/fp16 on a GPU, this is
    cuDNN's flash attention (JAX's default would be XLA's, which materialises
    the ``[B, N, T, S]`` logits); elsewhere XLA's.
  """
  impl = "cudnn" if _use_cudnn(q, mask) else "xla"
  return jax.nn.dot_product_attention(q, k, v, mask=mask, scale=scale, is_causal=is_causal,
                                      query_seq_lengths=lengths, key_value_seq_lengths=lengths,
                                      implementation=impl)

"""Weight-free fidelity measures of a compressed video (proxies, not benchmark accuracy).

Every input token is rebuilt from the output token of its own frame's span that
is most similar to it; the measures compare the rebuilt tokens with the input.
Used by ``experiments/fidelity.py``, ``experiments/sweep.py`` and
``experiments/learn_hparams.py``. Pure functions of arrays: jit and vmap apply.
"""

from __future__ import annotations

import jax.numpy as jnp

from ottvid_jax.compressor.selection import l2_normalize

__all__ = ["psnr", "rebuild", "reconstruction_error"]


def rebuild(features: jnp.ndarray, tokens: jnp.ndarray, valid: jnp.ndarray, span: jnp.ndarray) -> jnp.ndarray:
  """``[T, N, D]``: each input token replaced by its most similar valid output token covering its frame.

  Args:
    features: ``[T, N, D]`` input tokens.
    tokens: ``[M, D]`` output tokens; ``valid`` ``[M]``; ``span`` ``[M, 2]`` first and last frame.
  """
  t, n, d = features.shape
  sim = l2_normalize(features).reshape(t * n, d) @ l2_normalize(tokens.astype(jnp.float32)).T  # [T*N, M]
  frame = jnp.arange(t * n) // n
  covers = valid[None, :] & (span[None, :, 0] <= frame[:, None]) & (span[None, :, 1] >= frame[:, None])
  best = jnp.argmax(jnp.where(covers, sim, -jnp.inf), axis=1)
  rebuilt = jnp.where(jnp.any(covers, axis=1)[:, None], tokens.astype(jnp.float32)[best], 0.0)
  return rebuilt.reshape(t, n, d)


def reconstruction_error(features: jnp.ndarray, saliency: jnp.ndarray, rebuilt: jnp.ndarray) -> jnp.ndarray:
  """Saliency-weighted mean over frames of ``|x - x_hat|^2 / |x|^2`` (lower is better), a scalar."""
  w = saliency / jnp.sum(saliency, axis=1, keepdims=True)
  relative = jnp.sum((features - rebuilt) ** 2, -1) / jnp.maximum(jnp.sum(features ** 2, -1), 1e-8)
  return jnp.mean(jnp.sum(w * relative, axis=1))


def psnr(features: jnp.ndarray, rebuilt: jnp.ndarray, offset: jnp.ndarray | float = 0.0) -> jnp.ndarray:
  """PSNR (dB) of pixel-valued tokens (``features + offset`` in [0, 1])."""
  mse = jnp.mean((jnp.clip(features + offset, 0, 1) - jnp.clip(rebuilt + offset, 0, 1)) ** 2)
  return 10.0 * jnp.log10(1.0 / mse)

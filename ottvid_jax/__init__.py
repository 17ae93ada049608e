"""ottvid_jax: OTT-Vid, optimal-transport compression of video tokens, in JAX.

    import ottvid_jax as ov
    out = ov.compress(features, saliency, ov.OTTVidConfig(), grid_hw=(H, W))
"""

from ottvid_jax.compressor import *  # noqa: F401,F403  (the public API of the compressor)
from ottvid_jax.compressor import __all__ as _compress_all

__version__ = "0.1.0"
__all__ = list(_compress_all) + ["__version__", "load"]


def load(checkpoint_dir: str, dtype=None):
  """Loads a Hugging Face checkpoint folder (see :func:`ottvid_jax.models.load`); bf16 by default."""
  from ottvid_jax import models  # pylint: disable=import-outside-toplevel  # keeps `import ottvid_jax` light

  return models.load(checkpoint_dir) if dtype is None else models.load(checkpoint_dir, dtype=dtype)

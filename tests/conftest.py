"""Shared test setup: float32 matmuls at full precision, small video fixtures."""

import jax
import numpy as np
import pytest

jax.config.update("jax_default_matmul_precision", "highest")

# transformers imports torchvision when it is installed; the PyPI wheel beside a
# CPU-only torch fails to register its compiled ops, so import its Python parts
# first (see tests/hf_tiny.py).
from tests import hf_tiny  # noqa: E402

hf_tiny.import_torchvision()


def make_video(seed: int, frames: int, height: int, width: int, dim: int, motion: float = 0.6):
  """Features with temporal redundancy (a shared base plus per-frame noise) and saliency."""
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(1, height * width, dim))
  features = (base + motion * rng.normal(size=(frames, height * width, dim))).astype(np.float32)
  saliency = rng.random((frames, height * width)).astype(np.float32)
  return features, saliency


@pytest.fixture
def video():
  return make_video(0, 8, 7, 7, 32)

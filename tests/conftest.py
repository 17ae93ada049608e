"""Shared test setup: float32 matmuls at full precision, small video fixtures."""

import importlib.abc
import importlib.util
import sys

import jax
import numpy as np
import pytest

jax.config.update("jax_default_matmul_precision", "highest")



class _TorchvisionFirst(importlib.abc.MetaPathFinder):
  """Imports torchvision through :func:`tests.hf_tiny.import_torchvision` before the first package that needs it.

  transformers, qwen-vl-utils and lmms-eval import torchvision when it is
  installed, and the PyPI wheel beside a CPU-only torch fails to register its
  compiled ops. Done lazily, so tests that use none of them (the compressor's,
  the readers', the parsers') never import torch.
  """

  TRIGGERS = ("transformers", "qwen_vl_utils", "lmms_eval", "torchvision")

  def find_spec(self, name, path=None, target=None):  # pylint: disable=unused-argument
    if name not in self.TRIGGERS:
      return None
    sys.meta_path.remove(self)
    from tests import hf_tiny  # pylint: disable=import-outside-toplevel

    hf_tiny.import_torchvision()
    if name != "torchvision":
      return None  # the normal finders go on with the package asked for
    return importlib.util.spec_from_loader(name, _Imported())


class _Imported(importlib.abc.Loader):
  """Hands the import system the torchvision module that is already imported."""

  def create_module(self, spec):
    return sys.modules[spec.name]

  def exec_module(self, module):
    pass


sys.meta_path.insert(0, _TorchvisionFirst())


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

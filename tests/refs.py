"""The reference implementations the tests compare against, imported so that they load on a CPU-only machine.

PyPI's torchvision wheel for torch 2.13 is a CUDA build whose compiled
operators do not load beside the CPU build of torch; its import then stops
while registering fake kernels for those operators (``torchvision::nms``).
Nothing the tests use needs them (``transforms.functional.resize`` runs on
torch's own ``interpolate``), so :func:`torchvision` imports it with those
registrations skipped. qwen-vl-utils imports torchvision at the top, so it is
imported through here too.
"""

from __future__ import annotations

import functools
import importlib

__all__ = ["qwen_vl_utils", "torchvision"]


@functools.cache
def torchvision():
  """The ``torchvision`` module, imported without its compiled operators if they do not load."""
  import torch.library  # pylint: disable=import-outside-toplevel

  register_fake = torch.library.register_fake

  def tolerant(op, *args, **kwargs):
    decorate = register_fake(op, *args, **kwargs)

    def apply(fn):
      try:
        return decorate(fn)
      except RuntimeError:  # the operator's compiled library did not load
        return fn

    return apply

  torch.library.register_fake = tolerant
  try:
    return importlib.import_module("torchvision")
  finally:
    torch.library.register_fake = register_fake


@functools.cache
def qwen_vl_utils():
  """``qwen_vl_utils.vision_process`` (qwen-vl-utils 0.0.14), with torchvision imported as above."""
  torchvision()
  return importlib.import_module("qwen_vl_utils.vision_process")

"""The reference implementations the tests compare against, imported so that they load on a CPU-only machine.

PyPI's torchvision wheel for torch 2.13 is a CUDA build whose compiled
operators do not load beside the CPU build of torch; nothing the tests use
needs them (``transforms.functional.resize`` runs on torch's own
``interpolate``), so :func:`torchvision` imports it as
:func:`tests.hf_tiny.import_torchvision` does. qwen-vl-utils imports
torchvision at the top, so it is imported through here too.
"""

from __future__ import annotations

import functools
import importlib
import sys

from tests import hf_tiny

__all__ = ["qwen_vl_utils", "torchvision"]


@functools.cache
def torchvision():
  """The ``torchvision`` module, imported without its compiled operators if they do not load."""
  if "torchvision" in sys.modules:  # tests/conftest.py imports it first
    return sys.modules["torchvision"]
  return hf_tiny.import_torchvision()


@functools.cache
def qwen_vl_utils():
  """``qwen_vl_utils.vision_process`` (qwen-vl-utils 0.0.14), with torchvision imported as above."""
  torchvision()
  return importlib.import_module("qwen_vl_utils.vision_process")

"""The compression interface: what every method is, and the registry that names them.

A compression method is a frozen configuration that is also a JAX pytree
(:func:`method_config`): its **traced** fields (continuous hyperparameters) are
array leaves, so new values reuse a compiled program and a batch of them is
swept by ``jax.vmap`` (:func:`ottvid_jax.sweep.config_grid`); its **static**
fields (retention, counts, switches) are part of the pytree structure and
compile separately. It answers three questions:

- ``slots(T, N)``: its static output length M on ``T`` frames of ``N`` tokens;
- ``pads``: whether fewer than M slots can be valid (the rest is padding that
  a backbone must mask at prefill);
- ``apply(features, saliency, grid_hw, key=None, *, diagnostics=False)``:
  the pure function from ``features [T, N, D]`` and ``saliency [T, N]`` to the
  shared :class:`~ottvid_jax.compressor.output.CompressionOutput`.

The backbones depend on this interface alone. A new method is one module:
a ``@method_config`` dataclass with those three members and a
``register("name", Class)``; ``make("name", retention)`` then builds it for
``ottvid eval --method name``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, ClassVar, Optional, Protocol, Sequence, runtime_checkable

import jax
import numpy as np

from ottvid_jax.compressor.output import CompressionOutput

__all__ = ["CompressionMethod", "concrete", "get", "make", "method_config", "names", "register"]


@runtime_checkable
class CompressionMethod(Protocol):
  """The contract of a compression method (see the module docstring)."""

  retention: float
  TRACED: ClassVar[tuple[str, ...]]
  pads: ClassVar[bool]

  def slots(self, frames: int, tokens: int) -> int:
    ...

  def apply(self, features, saliency, grid_hw: tuple[int, int], key: Optional[jax.Array] = None, *,
            diagnostics: bool = False) -> CompressionOutput:
    ...


def method_config(cls=None, *, traced: Sequence[str] = ()):
  """Makes ``cls`` a frozen dataclass registered as a pytree: ``traced`` fields are leaves, the rest static.

  A config rebuilt from leaves (under ``jit``, ``vmap``, ``grad``) skips
  ``__post_init__``, so checks there see only the values a user passes.
  ``cls.TRACED`` and ``cls.STATIC`` name the two groups.
  """

  def wrap(klass):
    if "__dataclass_fields__" not in vars(klass):  # not yet a dataclass of its own (a subclass inherits the name)
      klass = dataclasses.dataclass(frozen=True)(klass)
    fields = [f.name for f in dataclasses.fields(klass)]
    unknown = sorted(set(traced) - set(fields))
    if unknown:
      raise ValueError(f"{klass.__name__} has no fields {unknown} to trace")
    leaves = tuple(traced)
    static = tuple(f for f in fields if f not in leaves)
    klass.TRACED, klass.STATIC = leaves, static

    def unflatten(aux, children):
      config = object.__new__(klass)
      for name, value in zip(static + leaves, tuple(aux) + tuple(children)):
        object.__setattr__(config, name, value)
      return config

    jax.tree_util.register_pytree_with_keys(
        klass, lambda c: ([(jax.tree_util.GetAttrKey(n), getattr(c, n)) for n in leaves],
                          tuple(getattr(c, n) for n in static)),
        unflatten, flatten_func=lambda c: ([getattr(c, n) for n in leaves], tuple(getattr(c, n) for n in static)))
    return klass

  return wrap if cls is None else wrap(cls)


def concrete(value: Any) -> Optional[np.ndarray]:
  """``value`` as a NumPy array if it is concrete, else None (for range checks in ``__post_init__``).

  Tracers (under ``jit``/``vmap``) and the placeholder objects that JAX puts in
  pytrees while transforming them are not checked.
  """
  if isinstance(value, (bool, int, float, np.ndarray, np.generic)):
    return np.asarray(value)
  if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
    try:
      return np.asarray(value)
    except Exception:  # pylint: disable=broad-except  # e.g. deleted buffers
      return None
  return None


_REGISTRY: dict[str, Callable[..., Any]] = {}
# Modules whose import registers the shipped methods (OTT-Vid's variants, the peers).
_SHIPPED = ("ottvid_jax.compressor.variants", "ottvid_jax.peers")


def register(name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
  """Names a method: ``factory(retention=r, **options)`` builds its config (a class or a function).

  Raises:
    ValueError: the name is taken by another factory.
  """
  known = _REGISTRY.get(name)
  if known is not None and known is not factory:
    raise ValueError(f"a compression method is already registered as {name!r}")
  _REGISTRY[name] = factory
  return factory


def _load() -> None:
  for module in _SHIPPED:
    importlib.import_module(module)


def names() -> tuple[str, ...]:
  """Every registered method's name, sorted."""
  _load()
  return tuple(sorted(_REGISTRY))


def get(name: str) -> Callable[..., Any]:
  """The factory registered as ``name``.

  Raises:
    ValueError: for an unknown name (the message lists the known ones).
  """
  _load()
  if name not in _REGISTRY:
    raise ValueError(f"unknown method {name!r}; choose one of {sorted(_REGISTRY)}")
  return _REGISTRY[name]


def make(name: str, retention: float, **options: Any) -> CompressionMethod:
  """The config of method ``name`` at ``retention``, with ``options`` set (its fields)."""
  return get(name)(retention=float(retention), **options)

"""Jitted prefill and decode with a preallocated KV cache; greedy and sampling.

Works for any backbone that has ``language_model`` (a :class:`Decoder`) and
``logits(hidden)``. The model is split once (``nnx.split``) and the steps are
pure functions of ``(state, ...)`` under ``jax.jit``; the decode step donates
the cache so that XLA updates it in place. Axes: B batch, S' prefill length,
C cache slots, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import weakref
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.models import decode_attention, layers
from ottvid_jax.models.decoder import KVCache, lm_logits

__all__ = ["GenerationResult", "Generator", "SamplingConfig", "decode_text", "generator_for", "run", "sample"]


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """``temperature == 0`` is greedy decoding; otherwise nucleus sampling."""

  max_new_tokens: int = 64
  temperature: float = 0.0
  top_p: float = 1.0
  seed: int = 0

  def __post_init__(self):
    if self.max_new_tokens < 1:
      raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
    if self.temperature < 0 or not 0 < self.top_p <= 1:
      raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")


def sample(logits: jax.Array, key: jax.Array, temperature: float, top_p: float) -> jax.Array:
  """Next tokens ``[B]`` from logits ``[B, V]`` (static temperature and top_p)."""
  if temperature == 0.0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_p < 1.0:
    order = jnp.argsort(-logits, axis=-1)
    sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
    cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    keep_sorted = cumulative - jax.nn.softmax(sorted_logits, axis=-1) < top_p  # the first token always stays
    keep = jnp.zeros_like(keep_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(keep_sorted)
    logits = jnp.where(keep, logits, -jnp.inf)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


_NO_GRAPHS = {"xla_gpu_graph_min_graph_size": 1 << 30}  # no kernel sequence is long enough for a CUDA graph


def _merge(graphdef, treedef, leaves):
  """The modules from their flat parameter list (inside a jitted function)."""
  return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))


def _prefill(merge, leaves, embeds, positions, mask, slots: int, dense: bool):
  lm, head = merge(leaves)
  b, s, _ = embeds.shape
  cache = KVCache.zeros(lm.config, b, slots, embeds.dtype)
  kv_mask = jnp.ones((b, slots), bool).at[:, :s].set(mask)  # slots after the prefill: masked by causality
  hidden, cache = lm(embeds, positions, None if dense else mask, cache, 0)
  logits = lm_logits(lm, head, hidden[:, -1])  # [B, V]: rows are left-padded, the last slot is real
  top = positions if positions.ndim == 2 else jnp.max(positions, axis=0)  # [B, S']
  delta = jnp.max(jnp.where(mask, top, -1), axis=-1) + 1 - s  # [B]: position = slot + delta
  return logits, cache, kv_mask, delta


def _step(merge, kernel, leaves, cache, kv_mask, token, index, delta, finished, key, eos, mrope: bool,
          temperature: float, top_p: float):
  """One decode step, sampling and end-of-sequence bookkeeping included (no host work between steps);
  ``kernel``: the decoder's ``decode_kernel``."""
  lm, head = merge(leaves)
  position = (index + delta)[:, None]  # [B, 1]
  positions = jnp.broadcast_to(position[None], (3,) + position.shape) if mrope else position
  embeds = lm.embed_tokens(token[:, None])  # [B, 1, D]
  hidden, cache = lm(embeds, positions, kv_mask, cache, index, decode_kernel=kernel)
  key, sub = jax.random.split(key)
  new = sample(lm_logits(lm, head, hidden[:, 0]), sub, temperature, top_p)
  new = jnp.where(finished, token, new)  # finished rows keep repeating their EOS
  return new, cache, finished | jnp.isin(new, eos), key, index + 1


def _steps(merge, kernel, leaves, cache, kv_mask, token, index, delta, finished, key, eos, steps: int, mrope: bool,
           temperature: float, top_p: float):
  """``steps`` decode steps as one ``fori_loop`` (a loop of known trip count: XLA queues every iteration
  without a round trip to the host). Returns the carried state and the new tokens ``[B, steps]`` with
  ``all finished`` after each ``[steps]``."""

  def body(i, carry):
    cache, token, index, finished, key, out, done = carry
    token, cache, finished, key, index = _step(merge, kernel, leaves, cache, kv_mask, token, index, delta, finished,
                                               key, eos, mrope, temperature, top_p)
    return cache, token, index, finished, key, out.at[:, i].set(token), done.at[i].set(finished.all())

  out = jnp.zeros((token.shape[0], steps), jnp.int32)
  done = jnp.zeros((steps,), bool)
  return jax.lax.fori_loop(0, steps, body, (cache, token, index, finished, key, out, done))


def _until_done(tokens: np.ndarray, done: np.ndarray) -> np.ndarray:
  """``tokens [B, n]`` up to the first step after which every row had finished (``done [n]``)."""
  return tokens[:, :int(np.argmax(done)) + 1] if done.any() else tokens


@dataclasses.dataclass(frozen=True)
class GenerationResult:
  """Generated tokens and what reached the LLM.

  Attributes:
    tokens: ``int32[B, n]`` new tokens (EOS repeated after a row ends).
    visual_tokens: video slots that reached the LLM (valid slots, newline
      tokens included), per row.
    input_visual_tokens: video tokens before compression, per row.
    llm_length: the LLM's prefill length S' (padding included).
    timings: seconds: ``first_token_s`` (host preparation, vision tower,
      compression and LLM prefill up to the first token), ``prefill_s``
      (the LLM prefill alone, as seen from the host), ``decode_s``,
      ``total_s``, and ``new_tokens``.
  """

  tokens: np.ndarray
  visual_tokens: np.ndarray
  input_visual_tokens: np.ndarray
  llm_length: int
  timings: dict


def _flat(node) -> tuple[Callable, list]:
  """``(merge, leaves)``: ``node``'s (a module or a tuple of them) parameters as a flat list and the function
  that rebuilds ``node`` from it."""
  graphdef, state = nnx.split(node)
  leaves, treedef = jax.tree.flatten(state)
  return functools.partial(_merge, graphdef, treedef), leaves


class Generator:
  """Prefill and decode for one model; compiled functions are cached per shape.

  The parameters are kept as flat lists of arrays that every jitted function
  takes first: flattening a list costs JAX microseconds per call, flattening
  an ``nnx.State`` milliseconds. Prefill and decoding take only the language
  side's (``leaves``: 199 arrays of Qwen2.5-VL-7B's 525): the host's dispatch
  grows with a program's arrays, and between decoding calls the GPU waits
  for it.
  """

  def __init__(self, model: nnx.Module, step_graphs: bool = False, steps_per_call: int | None = 8,
               decode_kernel: str = "auto"):
    """Args:
      model: a backbone.
      step_graphs: one step a call only: let XLA capture the step in CUDA graphs. Off by default, as
        slower (``docs/PERFORMANCE.md``): the step's small buffers move between calls, so XLA has to
        update its graph on the host each time, while kernel by kernel the host queues the next step
        as the GPU runs this one.
      steps_per_call: decode this many steps in one program (a device-side loop whose body XLA
        runs as one CUDA graph with fixed buffers; the host looks at the end-of-sequence flags
        between calls, so up to this many steps run past the end), or None: one step a call
        (slower per token, ``docs/PERFORMANCE.md``).
      decode_kernel: each layer's rotary, cache write and attention when decoding: ``"pallas"`` (one fused
        kernel, :mod:`decode_attention`), ``"xla"`` (XLA's ops), ``"interpret"`` (the kernel in
        Pallas' interpreter, for CPU tests) or ``"auto"``: the kernel on a single GPU for a
        half-precision model whose shapes it supports, else XLA's.
    """
    self.merge, self.leaves = _flat(model.language_part())  # what prefill and decoding use
    self._whole = _flat(model)  # for builders over the whole model
    self.config = model.language_model.config
    self.decode_kernel = self._resolve_kernel(decode_kernel, model)
    kernel = None if self.decode_kernel == "xla" else self.decode_kernel
    # The compiled programs (public for benchmarks and profilers; each takes ``self.leaves`` first).
    self.prefill_program = jax.jit(functools.partial(_prefill, self.merge), static_argnames=("slots", "dense"))
    self.step_program = jax.jit(functools.partial(_step, self.merge, kernel),
                                static_argnames=("mrope", "temperature", "top_p"), donate_argnums=(1,),
                                compiler_options=None if step_graphs else _NO_GRAPHS)
    self.steps_per_call = steps_per_call
    self.steps_program = jax.jit(functools.partial(_steps, self.merge, kernel),
                                 static_argnames=("steps", "mrope", "temperature", "top_p"), donate_argnums=(1,))
    self._sample = jax.jit(sample, static_argnums=(2, 3))
    self._builders: dict = {}
    self.probe = _probe(model)  # generator_for: the parameters this generator was made from
    self._model = weakref.ref(model)  # for builders over one part (the generator is kept per model, weakly)

  def _resolve_kernel(self, choice: str, model: nnx.Module) -> str:
    if choice not in ("auto", "pallas", "xla", "interpret"):
      raise ValueError(f"decode_kernel must be 'auto', 'pallas', 'xla' or 'interpret', got {choice!r}")
    cfg = self.config
    fits = decode_attention.supported(model.language_model.embed_tokens.embedding.dtype, cfg.num_attention_heads,
                                      cfg.num_key_value_heads, cfg.head_size)
    devices = self.leaves[0].sharding.device_set  # the kernel runs on one device: a sharded model needs XLA's ops
    one_gpu = len(devices) == 1 and next(iter(devices)).platform == "gpu"
    if choice == "auto":
      return "pallas" if fits and one_gpu else "xla"
    if choice in ("pallas", "interpret") and not fits:
      raise ValueError(f"decode_kernel={choice!r} needs half-precision weights, at most {decode_attention.GROUP_ROWS} "
                       "query heads a key/value head and a power-of-two head dim")
    if choice == "pallas" and not one_gpu:
      raise ValueError("decode_kernel='pallas' needs the model on one GPU (sharded or elsewhere: 'xla'; on a CPU, "
                       "'interpret' runs the kernel in Pallas' interpreter)")
    return choice

  def builder(self, fn: Callable, static_argnames: Sequence[str] = (),
              part: Optional[Callable[[nnx.Module], Any]] = None) -> Callable:
    """``fn(model, *args, **static)`` jitted as a function of ``(*args, **static)``.

    Compiled once per shape and static value; the model's parameters are
    passed in, not baked into the program. ``part``: a function of the model
    that picks the sub-modules ``fn`` needs (a module, or a tuple or list of
    them; a module-level function, as it keys the cache); ``fn`` then gets
    those instead of the model and only their parameters are passed, which
    shortens the host's dispatch of the call (1-2 us a parameter array;
    Qwen2.5-VL-7B has 525, its vision tower 326).
    """
    key = (fn, part, tuple(static_argnames))
    if key not in self._builders:
      merge, leaves = self._whole if part is None else _flat(part(self._model()))
      pure = lambda leaves, *args, **kw: fn(merge(leaves), *args, **kw)  # noqa: E731
      self._builders[key] = (jax.jit(pure, static_argnames=tuple(static_argnames)), leaves)
    jitted, leaves = self._builders[key]
    return lambda *args, **kw: jitted(leaves, *args, **kw)

  def prefill(self, embeds, positions, mask, slots: int, dense: bool = False):
    """``(last logits [B, V], cache, kv mask [B, C], delta [B])``.

    ``dense``: the caller knows that ``mask`` is all True (no padding), so the
    prefill runs plain causal attention.
    """
    return self.prefill_program(self.leaves, embeds, positions, mask, slots=slots, dense=dense)

  def decode(self, token, cache, kv_mask, delta, length: int, sampling: SamplingConfig, eos_token_ids: Sequence[int],
             mrope: bool, key: Optional[jax.Array] = None, progress: Optional[object] = None) -> np.ndarray:
    """Decodes after the first token ``token [B]``; returns ``int32[B, n]``, the first token included.

    With ``steps_per_call`` (the default), each call runs that many steps on
    the device and the host checks the end-of-sequence flags between calls.
    One step a call, steps are queued without waiting for each other: the host
    looks at the flags of the step two behind the one it just queued. Either
    way the steps run past the point where every row has finished are cut
    off, so ``n`` is the same. ``cache`` is consumed (donated).
    """
    eos = jnp.asarray(list(eos_token_ids) or [-1], jnp.int32)
    key = jax.random.key(sampling.seed) if key is None else key
    index = jnp.asarray(length, jnp.int32)
    finished = jnp.isin(token, eos)
    task = progress.add_task("decoding", total=sampling.max_new_tokens) if progress is not None else None
    if self.steps_per_call:
      return self._decode_in_calls(token, cache, kv_mask, delta, index, finished, key, eos, sampling, mrope, progress,
                                   task)
    out, flags = [token], [finished]
    for i in range(1, sampling.max_new_tokens):
      if i >= 2 and bool(flags[i - 2].all()):
        break
      token, cache, finished, key, index = self.step_program(self.leaves, cache, kv_mask, token, index, delta, finished, key,
                                                      eos, mrope=mrope, temperature=sampling.temperature,
                                                      top_p=sampling.top_p)
      out.append(token)
      flags.append(finished)
      if task is not None:
        progress.update(task, advance=1)
    done = np.asarray(jax.device_get(flags)).all(axis=1)  # [n]: every row finished after this token
    return _until_done(np.stack(jax.device_get(out), axis=1), done)

  def _decode_in_calls(self, token, cache, kv_mask, delta, index, finished, key, eos, sampling, mrope, progress, task):
    """:meth:`decode` with ``steps_per_call`` steps a call."""
    first = np.asarray(token)[:, None]
    outs, dones = [first], [np.asarray(finished).all()[None]]
    steps = self.steps_per_call
    for _ in range(-(-(sampling.max_new_tokens - 1) // steps)):
      if dones[-1][-1]:
        break
      cache, token, index, finished, key, out, done = self.steps_program(
          self.leaves, cache, kv_mask, token, index, delta, finished, key, eos, steps=steps, mrope=mrope,
          temperature=sampling.temperature, top_p=sampling.top_p)
      outs.append(np.asarray(out))
      dones.append(np.asarray(done))
      if task is not None:
        progress.update(task, advance=steps)
    n = sampling.max_new_tokens
    return _until_done(np.concatenate(outs, axis=1)[:, :n], np.concatenate(dones)[:n])

  def slots(self, length: int, max_new_tokens: int) -> int:
    """Cache slots for a prompt of ``length`` and ``max_new_tokens``: room for every step a call may run,
    rounded up to a multiple of 128 (the attention over the cache needs no padding then)."""
    steps = self.steps_per_call or 1
    return layers.padded(length + 1 + -(-(max_new_tokens - 1) // steps) * steps)

  def generate(self, embeds, positions, mask, sampling: SamplingConfig, eos_token_ids: Sequence[int],
               progress: Optional[object] = None, dense: bool = False) -> tuple[np.ndarray, dict]:
    """Decodes up to ``sampling.max_new_tokens`` tokens after a prefill.

    Args:
      embeds, positions, mask: the LLM input (``[B, S', D]``, ``[3, B, S']`` or
        ``[B, S']``, ``[B, S']``).
      sampling: a :class:`SamplingConfig`.
      eos_token_ids: generation stops for a row at any of these.
      progress: a ``rich.progress.Progress`` to report to, or None.
      dense: ``mask`` is known to be all True (see :meth:`prefill`).

    Returns:
      ``(tokens int32[B, n], timings)``; after a row's EOS its tokens repeat the
      EOS id; ``n`` stops early when every row has finished.
    """
    length = embeds.shape[1]
    if length + sampling.max_new_tokens > self.config.max_position_embeddings:
      raise ValueError(f"the prompt ({length} tokens) plus {sampling.max_new_tokens} new tokens exceeds the "
                       f"model's context of {self.config.max_position_embeddings} tokens")
    start = time.perf_counter()
    logits, cache, kv_mask, delta = self.prefill(embeds, positions, mask, self.slots(length, sampling.max_new_tokens),
                                                 dense)
    key, sub = jax.random.split(jax.random.key(sampling.seed))
    token = self._sample(logits, sub, sampling.temperature, sampling.top_p)
    token.block_until_ready()
    timings = {"prefill_s": time.perf_counter() - start, "first_token_at": time.perf_counter()}
    start = time.perf_counter()
    tokens = self.decode(token, cache, kv_mask, delta, length, sampling, eos_token_ids, positions.ndim == 3, key,
                         progress)
    timings["decode_s"] = time.perf_counter() - start
    timings["new_tokens"] = tokens.shape[1]
    return tokens, timings


_GENERATORS: "weakref.WeakKeyDictionary[nnx.Module, Generator]" = weakref.WeakKeyDictionary()


def _probe(model: nnx.Module):
  """An array that every replacement of the model's parameters replaces (the input embedding)."""
  return model.language_model.embed_tokens.embedding.get_value()


def generator_for(model: nnx.Module, refresh: bool = False) -> Generator:
  """The model's :class:`Generator`, made (and the model split) once per model object and parameters.

  A model whose parameters were replaced since (``nnx.update`` of its state,
  :func:`~ottvid_jax.models.sharding.tensor_parallel`) gets a new generator;
  ``refresh=True`` makes one after changing single arrays in place, which is
  not detected.
  """
  generator = _GENERATORS.get(model)
  if refresh or generator is None or generator.probe is not _probe(model):
    generator = _GENERATORS[model] = Generator(model)
  return generator


def run(model, batch, llm_input: Callable, sampling: SamplingConfig, compression=None,
        eos_token_ids: Optional[Sequence[int]] = None, progress=None) -> GenerationResult:
  """The body of every backbone's ``generate``: build the LLM input, prefill, decode.

  Args:
    model: a backbone (``language_model``, ``logits``, ``config.video_token_id``,
      ``config.eos_token_ids``).
    batch: its host inputs (``input_ids``, ``attention_mask`` and the pixels).
    llm_input: ``(model, batch, compression) -> ((embeds, positions, mask), plan)``.
    sampling, compression, eos_token_ids, progress: as in ``generate``.
  """
  start = time.perf_counter()
  (embeds, positions, mask), plan = llm_input(model, batch, compression)
  eos = model.config.eos_token_ids if eos_token_ids is None else eos_token_ids
  # OTT-Vid's survivors (and most peers') always fill their slots: the only padding is then a batch's left
  # padding, which the plan shows.
  dense = bool(((plan.text >= 0) | (plan.video >= 0)).all()) and (compression is None or not compression.pads)
  tokens, timings = generator_for(model).generate(embeds, positions, mask, sampling, eos, progress, dense)
  timings["first_token_s"] = timings.pop("first_token_at") - start  # host prep + vision + compression + prefill
  timings["total_s"] = time.perf_counter() - start
  visual = (np.asarray(mask) & (plan.video >= 0)).sum(axis=1)
  is_video = (np.asarray(batch.input_ids) == model.config.video_token_id) & np.asarray(batch.attention_mask, bool)
  return GenerationResult(tokens, visual, is_video.sum(axis=1), plan.length, timings)


def decode_text(tokenizer, tokens, eos_token_ids: Sequence[int]) -> str:
  """The text of generated ``tokens`` up to the first EOS (a ``tokenizers.Tokenizer``)."""
  kept = []
  for t in tokens:
    if int(t) in set(eos_token_ids):
      break
    kept.append(int(t))
  return tokenizer.decode(kept, skip_special_tokens=True)

"""Probe: bf16 matrix-vector products of a 7B decode step, XLA against hand-written Pallas (Triton) kernels.

    python experiments/probe_gemv.py          # on a GPU: the Qwen2-7B shapes, 28 matrices of each per call
    python experiments/probe_gemv.py small    # anywhere: small shapes, kernels in Pallas' interpreter

Variants: XLA's dot over ``[K, N]`` weights (the layout ``nnx.Linear`` keeps) and over ``[N, K]``; a Pallas
GEMV over ``[N, K]`` (``bn`` rows a program, a loop over K); a split-K Pallas GEMV over ``[K, N]``. Each line:
milliseconds for 28 distinct matrices (2 for the LM head) in one jitted call, host-timed median, and GB/s.
Results of the H100 run are in docs/PERFORMANCE.md (decode section).
"""
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

INTERPRET = jax.default_backend() != "gpu"


def gemv_t(x, w_t, bn=8, bk=512, warps=4, stages=3):
  """x [1,K] @ w_t[N,K].T -> [1,N]; one program per bn rows, loop over K."""
  n, k = w_t.shape
  def kernel(x_ref, w_ref, o_ref):
    def body(i, acc):
      k0 = pl.multiple_of(i * bk, bk)
      w = w_ref[:, pl.ds(k0, bk)].astype(jnp.float32)
      xv = x_ref[0, pl.ds(k0, bk)].astype(jnp.float32)
      return acc + w * xv[None, :]
    acc = jax.lax.fori_loop(0, k // bk, body, jnp.zeros((bn, bk), jnp.float32))
    o_ref[0, :] = jnp.sum(acc, axis=1).astype(o_ref.dtype)
  return pl.pallas_call(kernel, grid=(n // bn,),
                        in_specs=[pl.BlockSpec((1, k), lambda i: (0, 0)), pl.BlockSpec((bn, k), lambda i: (i, 0))],
                        out_specs=pl.BlockSpec((1, bn), lambda i: (0, i)),
                        out_shape=jax.ShapeDtypeStruct((1, n), x.dtype), interpret=INTERPRET,
                        compiler_params=plt.CompilerParams(num_warps=warps, num_stages=stages))(x, w_t)


def gemv_kn(x, w, bn=128, bk=32, split=4, warps=4, stages=3):
  """x [1,K] @ w[K,N] with split-K partials [split, N] summed after."""
  k, n = w.shape
  rows = k // split
  def kernel(x_ref, w_ref, o_ref):
    def body(i, acc):
      k0 = pl.multiple_of(i * bk, bk)
      wv = w_ref[pl.ds(k0, bk), :].astype(jnp.float32)
      xv = x_ref[0, pl.ds(k0, bk)].astype(jnp.float32)
      return acc + wv * xv[:, None]
    acc = jax.lax.fori_loop(0, rows // bk, body, jnp.zeros((bk, bn), jnp.float32))
    o_ref[0, :] = jnp.sum(acc, axis=0)
  part = pl.pallas_call(kernel, grid=(n // bn, split),
                        in_specs=[pl.BlockSpec((1, rows), lambda i, s: (0, s)),
                                  pl.BlockSpec((rows, bn), lambda i, s: (s, i))],
                        out_specs=pl.BlockSpec((1, bn), lambda i, s: (s, i)),
                        out_shape=jax.ShapeDtypeStruct((split, n), jnp.float32), interpret=INTERPRET,
                        compiler_params=plt.CompilerParams(num_warps=warps, num_stages=stages))(x, w)
  return jnp.sum(part, axis=0, keepdims=True).astype(x.dtype)


def timeit(fn, *a, n=30):
  for _ in range(3):
    jax.block_until_ready(fn(*a))
  ts = []
  for _ in range(n):
    t0 = time.perf_counter(); jax.block_until_ready(fn(*a)); ts.append(time.perf_counter() - t0)
  return statistics.median(ts)


SHAPES = [(3584, 4608), (3584, 3584), (3584, 37888), (18944, 3584)]
LAYERS = 28


def main():
  small = len(sys.argv) > 1
  layers = 2 if small else LAYERS
  shapes = [(256, 512), (256, 256), (256, 1024), (512, 256)] if small else SHAPES
  print(jax.devices()[0].device_kind, jax.__version__, flush=True)
  # correctness against a float32 product (bf16 outputs: about 2e-3)
  for (k, n) in shapes:
    w = jax.random.normal(jax.random.key(k + n), (k, n), jnp.bfloat16)
    xx = jax.random.normal(jax.random.key(1), (1, k), jnp.bfloat16)
    ref = (xx.astype(jnp.float32) @ w.astype(jnp.float32))
    checks = [("T 8x512", jax.jit(lambda x, w, bk=min(512, k): gemv_t(x, w.T, 8, bk))),
              ("KN 128x32 s4", jax.jit(lambda x, w, bn=min(128, n): gemv_kn(x, w, bn)))]
    for name, f in checks:
      out = f(xx, w).astype(jnp.float32)
      rel = float(jnp.linalg.norm(out - ref) / jnp.linalg.norm(ref))
      print(f"check {k}x{n} {name}: rel {rel:.2e}", flush=True)
  # per shape, 28 distinct matrices in one program
  for (k, n) in shapes + ([] if small else [(3584, 152064)]):
    count = layers if n < 100000 else 2
    ws = [jax.random.normal(jax.random.key(i), (k, n), jnp.bfloat16) * 0.02 for i in range(count)]
    wts = [jnp.asarray(w.T) for w in ws]
    xx = jax.random.normal(jax.random.key(1), (1, k), jnp.bfloat16)
    gb = count * k * n * 2 / 1e9
    variants = {
      "xla KN": (lambda x, ws: sum(x @ w for w in ws), ws),
      "xla NK": (lambda x, ws: sum(jnp.einsum("bk,nk->bn", x, w) for w in ws), wts),
    }
    for bn, bk, wp, st in [(8, 512, 4, 1), (8, 512, 4, 3), (16, 256, 4, 3), (4, 1024, 4, 3), (16, 512, 8, 3),
                           (32, 256, 8, 3), (8, 256, 2, 3), (16, 128, 4, 4)]:
      if n % bn or k % bk:
        continue
      variants[f"pl T bn{bn} bk{bk} w{wp} s{st}"] = (
          lambda x, ws, bn=bn, bk=bk, wp=wp, st=st: sum(gemv_t(x, w, bn, bk, wp, st) for w in ws), wts)
    for bn, bk, sp, wp in [(128, 32, 4, 4), (64, 64, 8, 4), (128, 16, 8, 4), (256, 16, 4, 8)]:
      if n % bn or k % (sp * bk):
        continue
      variants[f"pl KN bn{bn} bk{bk} s{sp} w{wp}"] = (
          lambda x, ws, bn=bn, bk=bk, sp=sp, wp=wp: sum(gemv_kn(x, w, bn, bk, sp, wp) for w in ws), ws)
    for name, (f, arg) in variants.items():
      try:
        t = timeit(jax.jit(f), xx, arg)
        print(f"{k}x{n:>6} {name:28s} {t*1e3:8.3f} ms {gb/t:7.0f} GB/s", flush=True)
      except Exception as e:  # noqa: BLE001  a variant that fails to compile is reported, the rest run
        print(f"{k}x{n} {name} FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
    del ws, wts


if __name__ == "__main__":
  main()

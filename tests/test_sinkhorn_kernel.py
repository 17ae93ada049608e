"""The fused Sinkhorn kernel (Pallas' interpreter on the CPU) against ott-jax and a float64 reference."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ottvid_jax as ov
from ottvid_jax.compressor import sinkhorn_kernel
from ottvid_jax.compressor import transport as transport_lib
from tests import reference

FUSED, OTT = ov.SinkhornSolver.FUSED, ov.SinkhornSolver.OTT


def _problem(seed, rows, cols, batch=()):
  rng = np.random.default_rng(seed)
  cost = rng.random(batch + (rows, cols)).astype(np.float32)
  a = rng.random(batch + (rows,)).astype(np.float32) + 0.05
  b = rng.random(batch + (cols,)).astype(np.float32) + 0.05
  return cost, a / a.sum(-1, keepdims=True), b / b.sum(-1, keepdims=True)


def _plan(solver, cost, a, b, epsilon, iterations):
  return transport_lib.transport_plan(cost, a, b, epsilon, iterations, solver=solver)


@pytest.mark.parametrize("rows,cols,epsilon,iterations", [(9, 9, 0.01, 200), (39, 33, 0.01, 200), (1, 5, 0.05, 7),
                                                         (17, 16, 0.1, 30), (70, 40, 0.02, 50)])
def test_potentials_match_ott_and_the_float64_reference(rows, cols, epsilon, iterations):
  cost, a, b = _problem(rows * cols, rows, cols)
  f, g = sinkhorn_kernel.sinkhorn_potentials(cost, jnp.log(a), jnp.log(b), jnp.float32(epsilon), iterations, interpret=True)
  assert f.shape == (rows,) and g.shape == (cols,) and f.dtype == g.dtype == jnp.float32
  ott_f, ott_g = transport_lib._potentials(jnp.asarray(cost), jnp.asarray(a), jnp.asarray(b),
                                           jnp.float32(epsilon), iterations, OTT)
  np.testing.assert_allclose(f, ott_f, atol=2e-6)
  np.testing.assert_allclose(g, ott_g, atol=2e-6)
  fused, ott = _plan(FUSED, cost, a, b, epsilon, iterations), _plan(OTT, cost, a, b, epsilon, iterations)
  np.testing.assert_allclose(fused.plan, ott.plan, atol=1e-6, rtol=1e-4)
  np.testing.assert_allclose(fused.difficulty, ott.difficulty, rtol=1e-5)
  np.testing.assert_allclose(fused.marginal_error, ott.marginal_error, atol=1e-6)
  ref = reference.sinkhorn(cost.astype(np.float64), a.astype(np.float64), b.astype(np.float64), epsilon, iterations)
  np.testing.assert_allclose(fused.plan, ref, atol=2e-6)


def test_vmap_over_pairs_and_configs_equals_a_loop():
  cost, a, b = _problem(0, 12, 12, batch=(3,))
  eps = jnp.array([0.01, 0.03])
  solve = jax.vmap(functools.partial(_plan, FUSED), in_axes=(0, 0, 0, None, None))  # pairs
  sweep = jax.jit(jax.vmap(solve, in_axes=(None, None, None, 0, None)), static_argnums=4)  # configs
  out = sweep(cost, a, b, eps, 40)
  assert out.plan.shape == (2, 3, 12, 12)
  for i, e in enumerate(eps):
    for p in range(3):
      one = _plan(FUSED, cost[p], a[p], b[p], e, 40)
      np.testing.assert_allclose(out.plan[i, p], one.plan, atol=1e-7)


def test_jit_equals_eager_and_epsilon_does_not_recompile():
  cost, a, b = _problem(1, 10, 8)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(e):
    return _plan(FUSED, cost, a, b, e, 25).plan

  for e in (0.02, 0.05):
    np.testing.assert_allclose(run(jnp.float32(e)), _plan(FUSED, cost, a, b, jnp.float32(e), 25).plan, atol=1e-7)


def test_gradients_are_those_of_the_updates_for_either_solver():
  cost, a, b = _problem(2, 8, 7)
  epsilon, iterations = 0.05, 200

  def loss(plan, c):
    return (plan * c).sum() + (plan[:, 0] ** 2).sum()  # NumPy or JAX arrays

  def jax_loss(solver, c, x, y, e):
    return loss(_plan(solver, c, x, y, e, iterations).plan, c)

  def reference_loss(c, e):  # float64 NumPy, the same updates
    return loss(reference.sinkhorn(c, a.astype(np.float64), b.astype(np.float64), e, iterations), c)

  args = (jnp.asarray(cost), jnp.asarray(a), jnp.asarray(b), jnp.float32(epsilon))
  fused = jax.grad(functools.partial(jax_loss, FUSED), argnums=(0, 1, 2, 3))(*args)
  ott = jax.grad(functools.partial(jax_loss, OTT), argnums=(0, 1, 2, 3))(*args)
  for got, want in zip(fused, ott):
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)  # the forward passes differ by rounding
  c64, h = cost.astype(np.float64), 1e-6
  numeric_eps = (reference_loss(c64, epsilon + h) - reference_loss(c64, epsilon - h)) / (2 * h)
  np.testing.assert_allclose(fused[3], numeric_eps, rtol=2e-3)
  for i, j in ((0, 0), (3, 5), (7, 6)):
    step = np.zeros_like(c64)
    step[i, j] = h
    numeric = (reference_loss(c64 + step, epsilon) - reference_loss(c64 - step, epsilon)) / (2 * h)
    np.testing.assert_allclose(fused[0][i, j], numeric, rtol=2e-3, atol=1e-5)


def test_compress_keeps_the_same_tokens_with_either_solver():
  rng = np.random.default_rng(3)
  features = jnp.asarray(rng.normal(size=(5, 36, 24)), jnp.bfloat16)
  saliency = jnp.asarray(rng.random((5, 36)), jnp.float32)
  outs = [ov.compress(features, saliency, ov.OTTVidConfig(retention=0.25, sinkhorn_solver=s), grid_hw=(6, 6))
          for s in (FUSED, OTT)]
  np.testing.assert_array_equal(outs[0].index, outs[1].index)
  np.testing.assert_array_equal(outs[0].valid, outs[1].valid)
  np.testing.assert_allclose(np.asarray(outs[0].tokens, np.float32), np.asarray(outs[1].tokens, np.float32))


def test_auto_takes_ott_off_a_gpu_and_fused_runs_the_kernel():
  cost, a, b = _problem(4, 6, 6)

  def kernels(solver):
    jaxpr = jax.make_jaxpr(lambda c: _plan(solver, c, a, b, 0.05, 5).plan)(cost)
    return str(jaxpr).count("pallas_call")

  assert jax.default_backend() == "cpu"
  assert kernels(ov.SinkhornSolver.AUTO) == 0 and kernels(OTT) == 0 and kernels(FUSED) == 1
  assert ov.OTTVidConfig().sinkhorn_solver is ov.SinkhornSolver.AUTO
  with pytest.raises(ValueError, match="sinkhorn_solver"):
    ov.OTTVidConfig(sinkhorn_solver="fused")


def test_kernel_lowers_to_triton_for_a_gpu():
  # The CPU cannot run the Triton kernel, but it can lower it: Pallas' GPU lowering is checked here.
  cost, a, b = _problem(5, 39, 39, batch=(4,))
  fn = jax.jit(jax.vmap(lambda c, x, y: sinkhorn_kernel.sinkhorn_potentials(c, jnp.log(x), jnp.log(y), jnp.float32(0.01), 200)))
  exported = jax.export.export(fn, platforms=["cuda"],
                               disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(
                                   cost, a, b)
  text = exported.mlir_module()
  assert "__gpu$xla.gpu.triton" in text and "grid_x = 4" in text


def test_bad_shapes_are_clear_errors():
  cost, a, b = _problem(6, 5, 4)
  with pytest.raises(ValueError, match=r"cost \[R, C\]"):
    sinkhorn_kernel.sinkhorn_potentials(cost, jnp.log(b), jnp.log(b), jnp.float32(0.1), 3, interpret=True)
  with pytest.raises(ValueError, match="scalar epsilon"):
    sinkhorn_kernel.sinkhorn_potentials(cost, jnp.log(a), jnp.log(b), jnp.ones(2), 3, interpret=True)

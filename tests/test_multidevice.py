"""Several devices on the CPU (``--xla_force_host_platform_device_count``): sharded == unsharded."""

import os
import subprocess
import sys
import textwrap


def run_with_devices(script: str, count: int = 4) -> str:
  env = dict(os.environ, PYTHONPATH=os.getcwd(), XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
  result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_tensor_parallel_logits_and_generation_equal_unsharded(tmp_path):
  out = run_with_devices(f"""
      import jax, jax.numpy as jnp, numpy as np
      jax.config.update("jax_default_matmul_precision", "highest")
      from tests import hf_tiny
      hf_tiny.import_torchvision()
      from flax import nnx
      from ottvid_jax import models
      from ottvid_jax.models import sharding
      from ottvid_jax.models.generate import SamplingConfig
      from ottvid_jax.models.qwen2_5_vl.generation import VideoBatch, generate
      assert jax.local_device_count() == 4
      hf_tiny.tiny_qwen().save_pretrained({str(tmp_path)!r})
      plain = models.load({str(tmp_path)!r}, dtype=jnp.float32)
      split = sharding.tensor_parallel(models.load({str(tmp_path)!r}, dtype=jnp.float32), sharding.make_mesh())
      leaves = jax.tree_util.tree_leaves(nnx.state(split))
      assert sum(not l.sharding.is_fully_replicated for l in leaves) >= 20
      ids, pixels = hf_tiny.random_video_inputs(np.random.default_rng(0), [(2, 6, 8)])
      ids = np.asarray([ids])
      a = np.asarray(plain(ids, None, pixels, [(2, 6, 8)], [1.0]))
      b = np.asarray(split(ids, None, pixels, [(2, 6, 8)], [1.0]))
      np.testing.assert_allclose(a, b, atol=1e-5)
      batch = VideoBatch(ids, np.ones_like(ids), pixels, ((2, 6, 8),), (1.0,))
      ta = generate(plain, batch, SamplingConfig(max_new_tokens=6), eos_token_ids=[]).tokens
      tb = generate(split, batch, SamplingConfig(max_new_tokens=6), eos_token_ids=[]).tokens
      np.testing.assert_array_equal(ta, tb)
      print("TP OK")
  """)
  assert "TP OK" in out


def test_data_parallel_evaluation_equals_serial(tmp_path):
  """``ottvid eval --data-parallel`` on two devices writes the records of a serial run (order aside)."""
  out = run_with_devices(f"""
      import json, os
      from tests import hf_tiny, releases
      hf_tiny.import_torchvision()
      from ottvid_jax import cli, eval as evaluation
      folder = {str(tmp_path)!r}
      hf_tiny.save_tiny_qwen(os.path.join(folder, "ckpt"), seed=3)
      release = releases.build_egoschema(folder)
      common = ["eval", "--checkpoint", os.path.join(folder, "ckpt"), "--benchmark", "egoschema", "--data",
                release.path, "--frames", "2", "--dtype", "float32", "--method", "ottvid", "--retention", "0.25"]
      assert cli.main(common + ["--out", os.path.join(folder, "serial.jsonl")]) == 0
      assert cli.main(common + ["--out", os.path.join(folder, "parallel.jsonl"), "--data-parallel"]) == 0
      _, serial = evaluation.read_results(os.path.join(folder, "serial.jsonl"))
      _, parallel = evaluation.read_results(os.path.join(folder, "parallel.jsonl"))
      strip = lambda rs: sorted(({{k: v for k, v in r.items() if k not in ("seconds", "first_token_s")}}
                                 for r in rs), key=lambda r: r["id"])
      assert len(parallel) == release.count and len({{r["id"] for r in parallel}}) == release.count
      assert all(r["error"] is None and r["response"] is not None for r in serial + parallel)
      assert strip(serial) == strip(parallel), (strip(serial), strip(parallel))
      print("DP OK")
  """, count=2)  # each worker compiles its own programs
  assert "DP OK" in out


def test_multi_device_benchmark_smoke():
  """``experiments/bench_multi_gpu.py`` at toy size on two host devices: both rows, sharded logits close."""
  out = run_with_devices("""
      from experiments.bench_multi_gpu import report, run
      result = run([1, 2], [40], 1, True)
      assert [r["devices"] for r in result["rows"]] == [1, 2]
      assert result["rows"][0]["max_logit_difference"] == 0.0
      assert 0 < result["rows"][1]["max_logit_difference"] < 0.05 * result["rows"][1]["logit_scale"]
      assert "| 2 | 40 |" in report(result)
      print("BENCH OK")
  """, count=2)
  assert "BENCH OK" in out

"""Random weights drawn block by block (the benchmarks' initialisation)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.models.llava_onevision import LlavaConfig, LlavaOnevision
from ottvid_jax.models.random_weights import _rows_per_block, random_model


def _tiny_llava() -> LlavaConfig:
  return LlavaConfig.from_hf({
      "vision_config": {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "image_size": 70, "patch_size": 14},
      "text_config": {"vocab_size": 1000, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "num_key_value_heads": 2},
      "video_token_index": 900, "image_token_index": 901})


def test_rows_per_block_divides_and_bounds():
  assert _rows_per_block((152064, 3584), 1 << 25) == 8448  # 18 blocks of 30.3 M elements
  assert _rows_per_block((3584, 152064), 1 << 25) == 128
  assert _rows_per_block((7, 10), 25) == 1  # 7 is prime: one row at a time
  assert _rows_per_block((4, 1000), 10) == 1  # a row larger than a block still makes progress


def test_random_model_matches_the_eager_skeleton_and_rules():
  cfg = _tiny_llava()
  build = lambda: LlavaOnevision(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))  # noqa: E731
  drawn = jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(nnx.state(random_model(build, block=500))))
  eager = jax.tree.leaves(nnx.to_pure_dict(nnx.state(build())))
  assert len(drawn) == len(eager)
  normals = []
  for (path, a), b in zip(drawn, eager):
    assert a.shape == b.shape and a.dtype == b.dtype, jax.tree_util.keystr(path)
    name = str(path[-1].key)
    a = np.asarray(a, np.float32)
    if name in ("scale", "weight"):
      np.testing.assert_array_equal(a, 1.0)
    elif name == "bias":
      np.testing.assert_array_equal(a, 0.0)
    else:
      normals.append(a.reshape(-1))
  values = np.concatenate(normals)
  assert abs(values.std() - 0.02) < 1e-3 and abs(values.mean()) < 1e-3
  # Blocks draw different numbers (no block repeats another).
  by_name = {jax.tree_util.keystr(p): v for p, v in drawn}
  embed = np.asarray(by_name["['language_model']['embed_tokens']['embedding']"], np.float32)  # 1000 x 64: blocks of 5 rows
  assert len({embed[i:i + 5].tobytes() for i in range(0, 1000, 5)}) == 200


def test_random_model_is_reproducible_and_seeded():
  cfg = _tiny_llava()
  build = lambda: LlavaOnevision(cfg, dtype=jnp.float32, param_dtype=jnp.float32, rngs=nnx.Rngs(0))  # noqa: E731
  first = nnx.to_pure_dict(nnx.state(random_model(build, seed=3, block=500)))
  again = nnx.to_pure_dict(nnx.state(random_model(build, seed=3, block=500)))
  other = nnx.to_pure_dict(nnx.state(random_model(build, seed=4, block=500)))
  jax.tree.map(np.testing.assert_array_equal, first, again)
  k1 = first["language_model"]["layers"][0]["mlp"]["down_proj"]["kernel"]
  k2 = other["language_model"]["layers"][0]["mlp"]["down_proj"]["kernel"]
  assert not np.allclose(k1, k2)

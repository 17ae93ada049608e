"""The backbone registry: which backbone a config.json or a model is, and a new backbone as one entry."""

import json

import pytest

from ottvid_jax import inputs, models
from ottvid_jax.models import registry
from tests import hf_tiny


def test_the_shipped_backbones_are_told_apart_by_their_configs():
  assert registry.names() == ("qwen2_5_vl", "llava_vid", "llava_onevision")
  qwen = hf_tiny.tiny_qwen().config.to_dict()
  assert registry.for_config(qwen).name == "qwen2_5_vl"
  from tests.test_llava import tiny_config  # pylint: disable=import-outside-toplevel

  llava = dict(tiny_config().to_dict(), architectures=["LlavaOnevisionForConditionalGeneration"])
  assert registry.for_config(llava).name == "llava_onevision"
  assert registry.for_config(dict(llava, mm_newline_position="grid")).name == "llava_vid"
  with pytest.raises(models.CheckpointError, match=r"unsupported architecture \['MambaForCausalLM'\].*supported"):
    registry.for_config({"architectures": ["MambaForCausalLM"]})


def test_a_new_backbone_is_one_registry_entry(tmp_path, monkeypatch):
  built = []

  class Toy:
    def __init__(self, config):
      self.config = config

  def build(config, files, dtype):
    built.append((config["hidden"], dtype))
    return Toy(config)

  toy = registry.Backbone(name="toy", architectures=("ToyForCausalLM",), parse=lambda c: c, matches=lambda c: True,
                          model=lambda: Toy, build=build, processor=lambda folder, cfg: ("processor", folder),
                          generate=lambda *a, **k: "answer", demo_tokens=lambda m, b: ())
  monkeypatch.setitem(registry.BACKBONES, "toy", toy)
  (tmp_path / "config.json").write_text(json.dumps({"architectures": ["ToyForCausalLM"], "hidden": 8}))
  (tmp_path / "model.safetensors").write_bytes(b"")
  model = models.load(str(tmp_path), dtype="float32")
  assert isinstance(model, Toy) and built == [(8, "float32")]
  assert registry.of(model) is toy and inputs.backbone_name(model) == "toy"
  assert inputs.checkpoint_backbone(str(tmp_path)) == "toy"
  with pytest.raises(ValueError, match="not a registered backbone"):
    registry.of(object())
  with pytest.raises(ValueError, match="already registered"):
    registry.register(toy)

"""Qwen2.5-VL: vision tower, model, checkpoint names."""

from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VL, Qwen2_5_VLConfig, rope_index, static_grid
from ottvid_jax.models.qwen2_5_vl.vision import VisionConfig, VisionTower, vision_layout

__all__ = ["Qwen2_5_VL", "Qwen2_5_VLConfig", "VisionConfig", "VisionTower", "rope_index", "static_grid",
           "vision_layout"]

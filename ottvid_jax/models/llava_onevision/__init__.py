"""LLaVA-OneVision and LLaVA-Video: SigLIP, projector, pooling and newlines, on the Qwen2 decoder."""

from ottvid_jax.models.llava_onevision.model import LlavaConfig, LlavaOnevision
from ottvid_jax.models.llava_onevision.siglip import SiglipConfig, SiglipTower

__all__ = ["LlavaConfig", "LlavaOnevision", "SiglipConfig", "SiglipTower"]

"""Resizes against torchvision (qwen-vl-utils' resize) and Pillow (LLaVA-NeXT's), on synthetic and real frames."""

import numpy as np
import pytest
import torch
from PIL import Image

from ottvid_jax import resize, video
from tests import refs


def _torchvision(frames, height, width):
  """qwen-vl-utils fetch_video's call: transforms.functional.resize(uint8 TCHW, BICUBIC, antialias=True)."""
  tv = refs.torchvision()
  out = tv.transforms.functional.resize(torch.from_numpy(frames).permute(0, 3, 1, 2), [height, width],
                                        interpolation=tv.transforms.InterpolationMode.BICUBIC, antialias=True)
  return out.permute(0, 2, 3, 1).numpy()


def _agree(ours, ref):
  diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
  assert ours.shape == ref.shape and ours.dtype == np.uint8
  assert diff.max() <= 1 and (diff > 0).mean() < 2e-3, (diff.max(), (diff > 0).mean())
  return diff


@pytest.fixture(scope="module")
def real_frames():
  clip = video.read_video(video.sample_clip("bigbuckbunny")[0], num_frames=3)
  return clip.frames  # 720 x 1280


@pytest.mark.parametrize("size,target", [
    ((48, 64), (28, 56)),  # down, unequal factors
    ((48, 64), (112, 140)),  # up
    ((37, 53), (56, 84)),  # odd input
    ((53, 37), (29, 17)),  # odd output, portrait
    ((5, 7), (28, 28)),  # tiny input, many taps past the edge
    ((3, 2), (9, 4)),
    ((100, 1), (50, 3)),
    ((48, 64), (48, 30)),  # one side unchanged
    ((272, 640), (252, 588)),
])
def test_bicubic_equals_torchvision(size, target):
  frames = np.random.default_rng(sum(size) + sum(target)).integers(0, 256, (2,) + size + (3,), dtype=np.uint8)
  _agree(resize.resize_bicubic_antialias(frames, *target), _torchvision(frames, *target))


def test_bicubic_equals_torchvision_on_real_frames(real_frames):
  for target, frames in [((560, 1008), real_frames[:1]), ((336, 588), real_frames), ((28, 56), real_frames),
                         ((1008, 1792), real_frames[:1, :360, :640]), ((721, 1279), real_frames[:1])]:
    _agree(resize.resize_bicubic_antialias(frames, *target), _torchvision(frames, *target))
  smooth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :, None], 48, axis=1).repeat(3, axis=3)
  assert np.array_equal(resize.resize_bicubic_antialias(smooth, 24, 32), _torchvision(smooth, 24, 32))


def test_bicubic_same_size_is_identity():
  frames = np.random.default_rng(0).integers(0, 256, (1, 30, 40, 3), dtype=np.uint8)
  assert resize.resize_bicubic_antialias(frames, 30, 40) is frames
  with pytest.raises(ValueError, match="uint8"):
    resize.resize_bicubic_antialias(frames.astype(np.float32), 28, 28)


def test_weights_follow_torch_support():
  first, w = resize.aa_bicubic_weights(854, 588)  # downscale 1.45: support 2.9, 7 taps
  assert w.shape == (588, 7) and np.allclose(w.sum(axis=1), 1.0) and first[0] == 0
  first, w = resize.aa_bicubic_weights(10, 40)  # upscale: plain bicubic, 5 taps with the padding tap
  assert w.shape == (40, 5) and np.allclose(w.sum(axis=1), 1.0) and (w[:, 4] == 0).all()


def test_pil_bicubic_equals_pillow(real_frames):
  ours = resize.resize_pil_bicubic(real_frames, 384, 384)
  ref = np.stack([np.asarray(Image.fromarray(f).resize((384, 384), Image.Resampling.BICUBIC)) for f in real_frames])
  np.testing.assert_array_equal(ours, ref)
  assert video.resize_frames is resize.resize_pil_bicubic
  # Pillow and torchvision differ (the reason qwen-vl-utils' frames need their own resize).
  assert np.abs(resize.resize_bicubic_antialias(real_frames, 336, 588).astype(int)
                - resize.resize_pil_bicubic(real_frames, 336, 588)).max() > 1

"""Frame-index rules against their references: qwen-vl-utils' own functions, torch's linspace, the wrappers' code."""

import math

import numpy as np
import pytest
import torch

from ottvid_jax import sampling
from ottvid_jax.sampling import FrameRule, Sampling, frame_indices
from tests import refs

FUSED = torch.backends.cpu.get_cpu_capability() != "DEFAULT"  # torch's AVX2 / AVX-512 kernels fuse multiply-adds


@pytest.fixture(scope="module")
def qvu():
  return refs.qwen_vl_utils()


def _cases(seed, count, top=3_000_000):
  """Random ``(total, start, end, n)``: short, long and huge videos, windows anywhere."""
  rng = np.random.default_rng(seed)
  for _ in range(count):
    total = int(rng.choice([rng.integers(2, 100), rng.integers(100, 20_000), rng.integers(20_000, top)]))
    start = int(rng.integers(0, total))
    yield total, start, int(rng.integers(start + 1, total + 1)), int(rng.integers(2, 769))


def test_linspace_equals_torch():
  for start, end, n in [(0, 1, 2), (0, 0, 5), (7, 7, 2), (0, 249, 32), (0, 131, 33), (5, 6, 768), (0, 999_999, 768),
                        (123_457, 2_999_999, 767), (0, 16_777_219, 3), (0, 40_000_001, 768)]:
    np.testing.assert_array_equal(sampling.torch_linspace(start, end, n, FUSED), torch.linspace(start, end, n).numpy())
  for total, start, end, n in _cases(0, 3000, top=40_000_000):
    got = sampling.torch_linspace(start, end, n, FUSED)
    np.testing.assert_array_equal(got, torch.linspace(start, end, n).numpy(), err_msg=f"{start} {end} {n}")
  assert sampling.torch_linspace(3, 9, 1).tolist() == [3.0] and sampling.torch_linspace(3, 9, 0).size == 0


def test_float32_matters_on_long_videos():
  """The rounded float32 linspace is not the float64 one (nor the unfused one) on long videos."""
  total, n = 150_000, 768
  ours = np.rint(sampling.torch_linspace(0, total - 1, n)).astype(np.int64)
  assert not np.array_equal(ours, np.round(np.linspace(0, total - 1, n)).astype(np.int64))
  assert not np.array_equal(ours, np.rint(sampling.torch_linspace(0, total - 1, n, fused=False)))


def _qvu_indices(qvu, ele, total, fps):
  """What qwen-vl-utils' decord reader computes, from its own functions."""
  start, end, count = qvu.calculate_video_frame_range(ele, total, fps)
  n = qvu.smart_nframes(ele, total_frames=count, video_fps=fps)
  return torch.linspace(start, end, n).round().long().tolist(), n / max(count, 1e-6) * fps


def _window_ele(rng, total, fps):
  kind = rng.integers(0, 4)
  if kind == 0:
    return {}, None
  duration = total / fps
  start = float(rng.uniform(-1.0, duration * 0.6)) if kind != 2 else None
  end = (start or 0.0) + float(rng.uniform(0.0, duration + 1.0)) if kind != 3 else None
  return {"video_start": start, "video_end": end}, (start, end)


def _both(qvu, rule, ele, total, fps, window):
  try:
    ref = _qvu_indices(qvu, ele, total, fps)
  except (ValueError, AssertionError) as err:
    with pytest.raises(ValueError):
      frame_indices(rule, total, fps, window)
    return str(err)
  got = frame_indices(rule, total, fps, window)
  assert got.indices.tolist() == ref[0] and got.fetched.tolist() == ref[0], (total, fps, window)
  assert got.sample_fps == pytest.approx(ref[1], rel=1e-12) and got.fetch_count == len(ref[0])
  return None


def test_qwen_nframes_equals_qwen_vl_utils(qvu):
  rng = np.random.default_rng(1)
  rule = FrameRule(Sampling.QWEN_NFRAMES, frames=32)
  for total, *_ in _cases(2, 300, top=500_000):
    fps = float(rng.choice([25.0, 29.97002997, 30.0, 3.0, 60.0, 12.5]))
    ele, window = _window_ele(rng, total, fps)
    try:
      count = qvu.calculate_video_frame_range(ele, total, fps)[2]
    except ValueError:
      count = total  # refused by both below
    ele = dict(ele, nframes=max(2, (min(32, count) // 2) * 2))  # the authors' wrapper
    _both(qvu, rule, ele, total, fps, window)
  big = FrameRule(Sampling.QWEN_NFRAMES, frames=768)
  for total in (186_411, 999_983, 2_500_001):
    _both(qvu, big, {"nframes": 768}, total, 29.97, None)


def test_qwen_fps_equals_qwen_vl_utils(qvu):
  rng = np.random.default_rng(3)
  raised = []
  for total, *_ in _cases(4, 300, top=500_000):
    fps = float(rng.choice([25.0, 29.97, 30.0, 3.0, 1.0, 0.5]))
    sample_fps = float(rng.choice([2.0, 1.0, 0.5, 4.0, 40.0]))
    extra = {}
    if rng.random() < 0.3:
      extra = {"min_frames": int(rng.integers(1, 40)), "max_frames": int(rng.integers(2, 900))}
    ele, window = _window_ele(rng, total, fps)
    rule = FrameRule(Sampling.QWEN_FPS, fps=sample_fps, **extra)
    raised.append(_both(qvu, rule, dict(ele, fps=sample_fps, **extra), total, fps, window))
  assert any(raised) and not all(raised)  # both the refusals and the samples were compared


@pytest.mark.parametrize("total,fps", [(1, 25.0), (3, 25.0), (5, 1.0)])
def test_qwen_refuses_as_qwen_vl_utils(qvu, total, fps):
  for rule, ele in [(FrameRule(Sampling.QWEN_NFRAMES, frames=32), {"nframes": max(2, (min(32, total) // 2) * 2)}),
                    (FrameRule(Sampling.QWEN_FPS), {"fps": 2.0})]:
    message = _both(qvu, rule, ele, total, fps, None)
    assert (message is not None) == (total == 1)
  with pytest.raises(ValueError, match="positive"):
    frame_indices(FrameRule(Sampling.QWEN_FPS), 100, 0.0)


def test_frame_range_equals_qwen_vl_utils(qvu):
  rng = np.random.default_rng(5)
  for _ in range(500):
    total = int(rng.integers(1, 5000))
    fps = float(rng.choice([25.0, 29.97, 3.0, 0.7]))
    ele, window = _window_ele(rng, total, fps)
    try:
      ref = qvu.calculate_video_frame_range(ele, total, fps)
    except ValueError:
      with pytest.raises(ValueError, match="Invalid time range"):
        sampling.frame_range(total, fps, window)
      continue
    assert sampling.frame_range(total, fps, window) == ref
  with pytest.raises(ValueError, match="Invalid time range"):
    sampling.frame_range(100, 25.0, (3.0, 3.03))  # one frame
  assert sampling.frame_range(100, 25.0, (None, None)) == (0, 99, 100)


def _authors_stage2(count, k):  # lmms_eval_wrappers/qwen2_5_vl.py, as written there
  idx = np.arange(count)
  if count > k:
    idx = np.linspace(0, count - 1, k, dtype=int)
    idx = np.unique(idx)
    if count - 1 not in idx:
      idx = np.append(idx, count - 1)
      idx = np.unique(idx)
  return idx


def _stock_stage2(count, k):  # lmms_eval/models/simple/qwen2_5_vl.py 0.7.3, as written there
  indices = np.linspace(0, count - 1, k, dtype=int)
  indices = np.unique(indices)
  if count - 1 not in indices:
    indices = np.append(indices, count - 1)
    indices = np.unique(indices)
  return indices


def test_second_stage_equals_the_wrappers():
  for count in range(1, 200):
    for k in (1, 2, 7, 32, 33):
      authors, stock = _authors_stage2(count, k), _stock_stage2(count, k)
      assert sampling.stage2_positions(count, k).tolist() == authors.tolist()
      assert sampling.stage2_positions(count, k, always=True).tolist() == stock.tolist()
      assert authors.tolist() == stock.tolist()  # as the FrameRule docstring says


def test_dense_rule_subsamples_the_decoded_frames(qvu):
  total, fps = 9000, 30.0  # 5 minutes: 600 frames at 2 fps, then 32 of them
  ref, _ = _qvu_indices(qvu, {"fps": 2.0}, total, fps)
  got = frame_indices(FrameRule(Sampling.QWEN_FPS, fps=2.0, subsample=32), total, fps)
  assert got.fetch_count == len(ref) == 600 and got.fetched.tolist() == ref
  assert got.indices.tolist() == np.asarray(ref)[_authors_stage2(600, 32)].tolist()
  assert got.indices[-1] == ref[-1] and len(got.indices) == 32  # the last frame kept
  assert got.sample_fps == pytest.approx(2.0, abs=1e-9)
  few = frame_indices(FrameRule(Sampling.QWEN_FPS, fps=2.0, subsample=32, subsample_always=True), 300, 30.0)
  assert few.indices.tolist() == few.fetched.tolist() and any("all 20 kept" in w for w in few.warnings)


def test_linspace_int_as_llava_onevision():
  rule = FrameRule(Sampling.LINSPACE_INT, frames=32)
  for total in (32, 33, 250, 131, 100_003):
    got = frame_indices(rule, total, 25.0)
    assert got.indices.tolist() == np.linspace(0, total - 1, 32, dtype=int).tolist() and not got.warnings
  short = frame_indices(rule, 10, 25.0)
  assert short.indices.tolist() == np.linspace(0, 9, 32, dtype=int).tolist()  # repeats, as the reference
  assert short.warnings == ("32 frames asked for, the range has 10: frames repeat",)
  windowed = frame_indices(rule, 1000, 25.0, (4.0, 20.0))
  assert windowed.indices.tolist() == np.linspace(100, 500, 32, dtype=int).tolist()


def _llava_vid_reference(total, avg_fps, max_frames_num, fps, force_sample):
  """The index and time logic of llava_vid.py load_video (the authors' wrapper), as written there."""
  fps = round(avg_fps / fps)
  frame_idx = [i for i in range(0, total, fps)]
  frame_time = [i / fps for i in frame_idx]
  if len(frame_idx) > max_frames_num or force_sample:
    frame_idx = np.linspace(0, total - 1, max_frames_num, dtype=int).tolist()
    frame_time = [i / avg_fps for i in frame_idx]
  return frame_idx, frame_time


@pytest.mark.parametrize("force", [False, True])
def test_llava_vid_as_its_wrapper(force):
  rule = FrameRule(Sampling.LLAVA_VID, frames=20, fps=1.0, force_sample=force)
  for total, avg in [(250, 25.0), (480, 25.0), (501, 25.0), (300, 29.97), (9, 2.5), (3000, 60.0), (61, 3.0)]:
    ref_idx, ref_time = _llava_vid_reference(total, avg, 20, 1, force)
    got = frame_indices(rule, total, avg)
    assert got.indices.tolist() == ref_idx and got.times == pytest.approx(ref_time, abs=1e-12)
  with pytest.raises(ValueError, match="step"):
    frame_indices(FrameRule(Sampling.LLAVA_VID, frames=20, fps=2.0), 100, 0.9)  # round(0.45) == 0


def test_rules_warn_when_asking_for_more_than_there_is():
  nf = frame_indices(FrameRule(Sampling.QWEN_NFRAMES, frames=32), 11, 25.0)
  assert nf.indices.tolist() == torch.linspace(0, 10, 10).round().long().tolist()
  assert nf.warnings == ("32 frames asked for, the range has 11: 10 taken (even)",)
  dense = frame_indices(FrameRule(Sampling.QWEN_FPS, fps=50.0), 40, 25.0)
  assert len(dense.indices) == 40 and "80 frames asked for" in dense.warnings[0] and "has 40" in dense.warnings[0]
  assert not frame_indices(FrameRule(Sampling.QWEN_FPS), 250, 25.0).warnings


def test_rule_settings_are_checked():
  with pytest.raises(ValueError, match="frame count"):
    FrameRule(Sampling.LINSPACE_INT)
  with pytest.raises(ValueError, match="second stage"):
    FrameRule(Sampling.QWEN_NFRAMES, frames=32, subsample=8)
  with pytest.raises(ValueError, match="fps"):
    FrameRule(Sampling.QWEN_FPS, fps=0.0)
  assert FrameRule(Sampling.QWEN_FPS).fps == 2.0 and FrameRule(Sampling.LLAVA_VID, frames=20).fps == 1.0
  assert "2 fps" in FrameRule(Sampling.QWEN_FPS, subsample=32).describe()
  assert math.isclose(frame_indices(FrameRule(Sampling.LINSPACE_INT, frames=4), 100, 25.0).sample_fps, 1.0)

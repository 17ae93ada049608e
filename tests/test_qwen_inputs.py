"""Qwen2.5-VL inputs (pixels, prompt) and the ``answer`` command on a tiny checkpoint."""

import io
import json

import jax.numpy as jnp
import numpy as np
import pytest
from rich.console import Console

from ottvid_jax import cli, demo, sampling, video
from ottvid_jax.eval import protocol as protocols
from ottvid_jax.answer import answer
from ottvid_jax.models.qwen2_5_vl.processing import preprocess_video
from tests import hf_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  return hf_tiny.save_tiny_qwen(str(tmp_path_factory.mktemp("tiny_qwen_answer")), seed=1)


@pytest.mark.parametrize("shape", [(4, 56, 84, 3), (5, 56, 84, 3), (6, 84, 112, 3)])
def test_pixels_equal_hf_processor_without_resize(shape):
  from transformers import Qwen2VLVideoProcessor

  frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  ref = Qwen2VLVideoProcessor()(videos=[frames], return_tensors="np", do_resize=False)
  ours, grid = preprocess_video(frames, min_pixels=1, max_pixels=10 ** 9)
  assert grid == tuple(ref["video_grid_thw"][0])
  np.testing.assert_array_equal(ours, ref["pixel_values_videos"])


def test_pixels_close_to_hf_processor_with_resize():
  from transformers import Qwen2VLVideoProcessor

  path, _ = video.sample_clip("bikes")
  frames = video.read_video(path, num_frames=4).frames  # 272 x 640 -> resized to multiples of 28
  bounds = dict(min_pixels=128 * 28 * 28, max_pixels=256 * 28 * 28)
  processor = Qwen2VLVideoProcessor(**bounds)
  ref = processor(videos=[frames], return_tensors="np")
  ours, grid = preprocess_video(frames, **bounds)
  assert grid == tuple(ref["video_grid_thw"][0])
  diff = np.abs(ours - ref["pixel_values_videos"])
  # The HF processor resizes uint8 with torchvision's v2 functional (torch's integer kernel); ours is the v1
  # float path qwen-vl-utils takes: one uint8 level apart (1 / (255 * 0.26) = 0.015 after normalisation), rarely.
  assert diff.max() < 0.02 and diff.mean() < 2e-3


def test_prompt_and_batch(checkpoint):
  from ottvid_jax.answer import load_backbone

  model, processor, _ = load_backbone(checkpoint, jnp.float32)
  path, _ = video.sample_clip("bikes")
  clip = video.read_video(path, num_frames=4)
  batch = processor(clip, "what is in the video?")
  ids = list(batch.input_ids[0])
  t, h, w = batch.video_grid_thw[0]
  assert ids.count(105) == t * h * w // 4 and ids[:1] == [100] and ids[-2:] == [100, 3]  # im_start assistant (this tokenizer drops newlines)
  assert ids[ids.index(105) - 1] == 102 and ids[len(ids) - ids[::-1].index(105)] == 103
  assert batch.second_per_grid_ts[0] == pytest.approx(2 / clip.sampled_fps)
  with pytest.raises(ValueError, match="context"):
    processor(clip, "what " * 50, max_length=40)


def test_answer_command(checkpoint, capsys, tmp_path):
  path, _ = video.sample_clip("bikes")
  code = cli.main(["answer", "--checkpoint", checkpoint, "--video", path, "--question", "what is in the video?",
                   "--frames", "4", "--max-new-tokens", "4", "--dtype", "float32"])
  out = capsys.readouterr().out
  assert code == 0 and "visual tokens:" in out and "into the LLM" in out
  assert "4 frames of 250 (protocol paper+frames=4)" in " ".join(out.split())
  result = answer(checkpoint, path, "describe it", retention=0.25, frames=4, max_new_tokens=3, dtype=jnp.float32)
  assert result.visual_tokens_llm <= round(0.25 * result.visual_tokens_in) and result.new_tokens <= 3
  # The eval's inputs: the protocol's frame rule on this clip, its time positions.
  rule = protocols.PAPER.with_frames(4).inputs["qwen2_5_vl"].frames
  assert result.inputs["frames"] == [int(i) for i in sampling.frame_indices(rule, 250, 25.0, None).indices]
  assert result.inputs["second_per_grid"] == [1.0] and result.inputs["prompt"] == "describe it"
  peer = answer(checkpoint, path, "describe it", retention=0.25, frames=4, max_new_tokens=3, dtype=jnp.float32,
                method="visionzip")
  assert peer.visual_tokens_llm <= round(0.25 * peer.visual_tokens_in)
  plain = answer(checkpoint, path, "describe it", retention=1.0, frames=4, max_new_tokens=3, dtype=jnp.float32)
  assert plain.visual_tokens_llm == plain.visual_tokens_in
  bad = tmp_path / "bad.mp4"
  bad.write_bytes(b"nope")
  assert cli.main(["answer", "--checkpoint", checkpoint, "--video", str(bad), "--question", "q"]) == 2
  assert "cannot read video" in capsys.readouterr().err
  assert cli.main(["answer", "--checkpoint", str(tmp_path), "--video", path, "--question", "q"]) == 2
  assert "config.json" in capsys.readouterr().err


def test_demo_with_checkpoint(checkpoint, tmp_path):
  result = demo.run_demo(checkpoint=checkpoint, frames=4, out=str(tmp_path / "d"),
                         console=Console(file=io.StringIO()))
  summary = json.loads(open(result.summary_path).read())
  assert "vision features" in summary["features"]
  tokens = summary["tokens"]
  assert tokens["output"] == round(tokens["input"] * 0.1)
  # The frames of ottvid eval / answer under the paper's protocol (Big Buck Bunny: 1,440 frames at 24 fps).
  path, _ = video.sample_clip("bigbuckbunny")
  info = video.probe(path)
  rule = protocols.PAPER.with_frames(4).inputs["qwen2_5_vl"].frames
  expected = sampling.frame_indices(rule, info.total_frames, info.fps, None).indices
  assert summary["frames_sampled"] == [int(i) for i in expected]

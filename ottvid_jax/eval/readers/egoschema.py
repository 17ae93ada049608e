"""EgoSchema (the 500-question subset with public answers): ``questions.json``, ``subset_answers.json``, videos.

``questions.json`` rows ``{q_uid, question, option 0, ..., option 4}``;
``subset_answers.json`` ``{q_uid: index}``; videos ``videos/<q_uid>.mp4`` (the
official ``download.py`` and lmms-eval's ``egoschema_doc_to_visual``, which
also tries ``.MP4``), else ``good_clips_git/<q_uid>.mp4`` (the Google Drive
archive). Questions without a public answer are skipped.
"""

from __future__ import annotations

import os

from ottvid_jax.eval.readers.files import first_file, layout_error, load_json, read_rows
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip
from ottvid_jax.eval.sample import LETTERS

__all__ = ["read"]

OFFICIAL = "official"
OPTIONS = 5
EXPECTED = ("questions.json and subset_answers.json with videos videos/<q_uid>.mp4 (or good_clips_git/<q_uid>.mp4)",)


def read(root: str) -> ReadResult:
  """Reads the EgoSchema subset under ``root``."""
  questions, answers = os.path.join(root, "questions.json"), os.path.join(root, "subset_answers.json")
  if not (os.path.isfile(questions) and os.path.isfile(answers)):
    raise layout_error("egoschema", EXPECTED, root)
  known = load_json(answers)
  if not isinstance(known, dict):
    raise ValueError(f"{answers} holds a JSON {type(known).__name__}, not {{q_uid: answer index}}")
  reading = Reading("egoschema", OFFICIAL)
  keys = [f"option {i}" for i in range(OPTIONS)]
  for index, row in enumerate(read_rows(questions)):
    where = f"questions.json[{index}]"
    if not (isinstance(row, dict) and isinstance(row.get("q_uid"), str)):
      reading.skip(Skip.CORRUPT_ENTRY, f"{where}: no q_uid")
      continue
    uid = row["q_uid"]
    if uid not in known:
      reading.skip(Skip.NO_PUBLIC_ANSWER, f"{where}: {uid}")
      continue
    if not (isinstance(row.get("question"), str) and all(isinstance(row.get(k), str) for k in keys)):
      reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs question and option 0 ... option 4")
      continue
    answer = known[uid]
    if not (isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < OPTIONS):
      reading.skip(Skip.ANSWER_NOT_AMONG_CANDIDATES, f"{where}: subset_answers.json gives {answer!r}")
      continue
    # egoschema_doc_to_visual: videos/<q_uid>.mp4, then .MP4; good_clips_git/ is the Drive archive's folder
    video = first_file(os.path.join(root, folder, uid + ext)
                       for folder, ext in (("videos", ".mp4"), ("videos", ".MP4"), ("good_clips_git", ".mp4")))
    if video is None:
      reading.skip(Skip.MISSING_VIDEO, f"{where}: videos/{uid}.mp4")
      continue
    reading.add(id=uid, task="subset", video=video, question=row["question"], options=[row[k] for k in keys],
                answer=LETTERS[answer], row=row)
  return reading.result()

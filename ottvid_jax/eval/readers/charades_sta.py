"""Charades-STA test: ``charades_sta_test.txt`` lines ``VID start end##sentence``, videos ``Charades_v1_480/``.

One question per line (blank lines ignored); the id is ``<VID>/<line number>``.
The question is the sentence without its trailing period: lmms-eval's prompt
(``charades_sta/utils.py::temporal_grounding_doc_to_text``) appends ". " to the
``lmms-eval/charades_sta`` caption itself and its in-prompt example caption
("person turn a light on", the first test line) has none, so the repackaging's
captions are taken to be period-free (inferred: the repackaged parquet is not
public here). ``meta["sentence"]`` keeps the released text.
"""

from __future__ import annotations

import os

import numpy as np

from ottvid_jax.eval.readers.files import layout_error
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip

__all__ = ["caption", "read"]

OFFICIAL = "official"
FILE = "charades_sta_test.txt"
EXPECTED = (f"{FILE} (lines 'VID start end##sentence') with videos Charades_v1_480/<VID>.mp4",)


def caption(sentence: str) -> str:
  """The sentence as the lmms-eval caption is taken to be: stripped, one trailing period removed."""
  text = sentence.strip()
  return text[:-1].rstrip() if text.endswith(".") else text


def read(root: str) -> ReadResult:
  """Reads Charades-STA test under ``root``."""
  path = os.path.join(root, FILE)
  if not os.path.isfile(path):
    raise layout_error("charades_sta", EXPECTED, root)
  reading = Reading("charades_sta", OFFICIAL)
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    where = f"{FILE}:{number}"
    head, _, sentence = line.partition("##")
    parts = head.split()
    try:
      if not sentence.strip() or len(parts) != 3:
        raise ValueError
      start, end = float(parts[1]), float(parts[2])
      if not (np.isfinite(start) and np.isfinite(end)):
        raise ValueError
    except ValueError:
      reading.skip(Skip.CORRUPT_ENTRY, f"{where}: {line[:60]!r}")
      continue
    vid = parts[0]
    video = os.path.join(root, "Charades_v1_480", vid + ".mp4")
    if not os.path.isfile(video):
      reading.skip(Skip.MISSING_VIDEO, f"{where}: Charades_v1_480/{vid}.mp4")
      continue
    text = caption(sentence)
    reading.add(id=f"{vid}/{number}", task="charades_sta", video=video, question=text, span=(start, end), row=line,
                meta={"sentence": sentence, "caption": text, "line": number,
                      # lmms-eval/charades_sta stores `timestamp` as float16 (its dataset card)
                      "lmms_eval_span": [float(np.float16(start)), float(np.float16(end))]})
  return reading.result()

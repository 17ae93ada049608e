"""TimeLens-Bench (``TencentARC/TimeLens-Bench``): ``<set>-timelens.json`` and ``videos/<set>/``.

Each file is an object ``{vid: {"duration": s, "spans": [[s, e], ...],
"queries": [q, ...]}}``; one question per (span, query) pair, paired as
TimeLens's ``timelens/dataset/timelens_data.py::load_annos`` pairs them (``zip``:
the surplus of a longer list is skipped, reported as unpaired), queries cleaned
as its ``parse_query`` does. The file is found at the top, under
``TimeLens-Bench/`` or under ``annotations/``; videos
``videos/<set>/<vid>.mp4`` beside the file, else at the top. Each set reads its
own file only. The id is ``<vid>/<query index>``.
"""

from __future__ import annotations

import os
import re

from ottvid_jax.eval.readers.files import first_file, is_number, layout_error, load_json
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip

__all__ = ["SETS", "parse_query", "read"]

OFFICIAL = "official"
SETS = {"charades_timelens": "charades", "activitynet_timelens": "activitynet", "qvhighlights_timelens": "qvhighlights"}
_FOLDERS = ("", "TimeLens-Bench", "annotations")


def parse_query(query: str) -> str:
  """Whitespace runs collapsed, then outer whitespace and periods stripped (TimeLens ``parse_query``)."""
  return re.sub(r"\s+", " ", query).strip().strip(".").strip()


def _span(value) -> bool:
  return isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)


def read(root: str, benchmark: str) -> ReadResult:
  """Reads one TimeLens-Bench set (``charades_timelens``, ``activitynet_timelens``, ``qvhighlights_timelens``)."""
  name = SETS[benchmark]
  file = f"{name}-timelens.json"
  path = first_file(os.path.join(root, folder, file) for folder in _FOLDERS)
  if path is None:
    raise layout_error(benchmark, (f"{file} (at the top, under TimeLens-Bench/ or under annotations/) with videos "
                                   f"videos/{name}/<vid>.mp4",), root)
  data = load_json(path)
  if not isinstance(data, dict):
    raise ValueError(f"{path} holds a JSON {type(data).__name__}, not {{vid: {{duration, spans, queries}}}}")
  shown = os.path.relpath(path, root)
  bases = list(dict.fromkeys([os.path.dirname(path), root]))
  reading = Reading(benchmark, OFFICIAL)
  for vid, entry in data.items():
    where = f"{shown}[{vid!r}]"
    if not (isinstance(entry, dict) and is_number(entry.get("duration")) and isinstance(entry.get("spans"), list)
            and isinstance(entry.get("queries"), list)):
      reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs duration, spans and queries")
      continue
    spans, queries = entry["spans"], entry["queries"]
    if len(spans) != len(queries):
      reading.skip(Skip.UNPAIRED, f"{where}: {len(spans)} spans, {len(queries)} queries",
                   count=abs(len(spans) - len(queries)))
    video = first_file(os.path.join(base, "videos", name, vid + ".mp4") for base in bases)
    # timelens_data.py::load_annos pairs spans and queries with zip
    for index, (span, query) in enumerate(zip(spans, queries)):
      if not (_span(span) and isinstance(query, str) and parse_query(query)):
        reading.skip(Skip.CORRUPT_ENTRY, f"{where}[{index}]: span {span!r}, query {query!r}")
        continue
      if video is None:
        reading.skip(Skip.MISSING_VIDEO, f"{where}[{index}]: videos/{name}/{vid}.mp4")
        continue
      reading.add(id=f"{vid}/{index}", task=benchmark, video=video, question=parse_query(query),
                  span=(float(span[0]), float(span[1])), duration=float(entry["duration"]), row=entry,
                  meta={"vid": vid, "query_index": index, "raw_query": query})
  return reading.result()

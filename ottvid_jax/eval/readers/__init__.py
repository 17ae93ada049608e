"""Benchmark releases as downloaded, read into :class:`~ottvid_jax.eval.sample.Sample` questions.

``read_benchmark(name, folder)`` detects the release's layout, reads every
question it can and reports the rest, grouped by reason, in a
:class:`ReadResult` (``result.summary()`` is one line). A folder that matches
none of the benchmark's layouts raises ``ValueError`` naming the expected
files and what is at the top of the folder.

==================== ==========================================================================
benchmark            layouts (paths relative to the folder)
==================== ==========================================================================
mvbench              official: ``json/<task>.json``, ``video/<source>/`` (VideoChat2 data_list;
                     five bounded tasks, TVQA frame folders at 3 fps); lmms-eval: ``json/``
                     plus the ``video`` revision's pre-cut sources at the top
videomme,            ``videomme/test-00000-of-00001.parquet``, ``data/<videoID>.mp4``;
videomme_w_subtitle  ``subtitle/<videoID>.srt`` (the latter sets ``Sample.subtitles``)
mlvu_dev             official: ``json/<n>_<task>.json``, ``video/<n>_<task>/``; lmms-eval:
                     ``sy1998/MLVU_dev``'s table (``video_name``, ``question``, ``answer``,
                     ``task_type``) at the top, under ``mlvu/`` or ``data/``
longvideobench,      ``lvb_val.json``, ``videos/``, ``subtitles/`` (val_v; val_i requires and
longvideobench_i     sets the subtitles)
egoschema            ``questions.json``, ``subset_answers.json``, ``videos/<q_uid>.mp4``
                     (or ``good_clips_git/``); only the questions with a public answer
charades_sta         ``charades_sta_test.txt``, ``Charades_v1_480/<VID>.mp4``
charades_timelens,   ``<set>-timelens.json`` (top, ``TimeLens-Bench/`` or ``annotations/``),
activitynet_timelens ``videos/<set>/<vid>.mp4``; each set reads its own file only
qvhighlights_timelens
==================== ==========================================================================

Ids: the release's own where it has one (Video-MME ``question_id``,
LongVideoBench ``id``, EgoSchema ``q_uid``, MLVU lmms-eval ``question_id``),
else ``<task file>/<video>/<index in the file>`` (MVBench, MLVU official),
``<VID>/<line number>`` (Charades-STA), ``<vid>/<query index>`` (TimeLens); an
id taken already gets ``#2``, ``#3``... appended, in release order.

``Sample.meta`` keys (every sample; all JSON values):

* ``layout``: the layout read (``"official"``, ``"lmms-eval"``).
* ``row``: the annotation entry as released (Charades-STA: the line; TimeLens:
  the video's ``{duration, spans, queries}`` object).
* ``duplicate_of``: only on a question that repeats an earlier one (same video,
  question, options, answer, span, window and subtitles): the earlier id.

Per benchmark:

* mvbench: ``source`` (the video folder of the task, e.g.
  ``star/Charades_v1_480``), ``data_type`` (``"video"`` or ``"frame"``).
* videomme(_w_subtitle): ``option_lines`` (the released ``"A. ..."`` lines;
  ``options`` has the texts), ``task_type``, ``domain``, ``sub_category``.
* mlvu_dev: official ``question_type``; lmms-eval ``lmms_question`` (the
  ``question`` verbatim, options embedded; ``question`` and ``options`` are
  split out of it).
* longvideobench(_i): ``duration_group``, ``starting_timestamp_for_subtitles``
  (0.0 when absent).
* charades_sta: ``sentence`` (as released), ``caption`` (the question: the
  sentence without its trailing period), ``line``, ``lmms_eval_span`` (the span
  rounded to float16, as ``lmms-eval/charades_sta`` stores it).
* TimeLens sets: ``vid``, ``query_index``, ``raw_query`` (before ``parse_query``).
"""

from __future__ import annotations

import functools
import os
from typing import Callable

from ottvid_jax.eval.readers import (charades_sta, egoschema, longvideobench, mlvu, mvbench, timelens,
                                     videomme)
from ottvid_jax.eval.readers.result import ReadResult, Skip, Skipped
from ottvid_jax.eval.sample import LETTERS, Sample

__all__ = ["BENCHMARKS", "LETTERS", "ReadResult", "Sample", "Skip", "Skipped", "read_benchmark"]

BENCHMARKS: dict[str, Callable[[str], ReadResult]] = {
    "mvbench": mvbench.read,
    "videomme": videomme.read,
    "videomme_w_subtitle": functools.partial(videomme.read, subtitles=True, benchmark="videomme_w_subtitle"),
    "mlvu_dev": mlvu.read,
    "longvideobench": longvideobench.read,
    "longvideobench_i": functools.partial(longvideobench.read, subtitles=True, benchmark="longvideobench_i"),
    "egoschema": egoschema.read,
    "charades_sta": charades_sta.read,
    **{name: functools.partial(timelens.read, benchmark=name) for name in timelens.SETS},
}


def read_benchmark(name: str, data: str) -> ReadResult:
  """The questions of benchmark ``name`` in the release folder ``data``.

  Raises:
    ValueError: an unknown benchmark, a missing folder, a folder in none of the
      benchmark's layouts, or an annotation file that does not parse.
  """
  if name not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(sorted(BENCHMARKS))}")
  if not os.path.isdir(data):
    raise ValueError(f"data folder {data!r} does not exist")
  return BENCHMARKS[name](os.path.abspath(data))

"""One benchmark question, as every reader returns it and every prompt, parser and metric reads it."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

__all__ = ["LETTERS", "Sample"]

LETTERS = "ABCDEFGH"


@dataclasses.dataclass(frozen=True)
class Sample:
  """One question of a benchmark release.

  Attributes:
    id: unique within one read of a benchmark and stable across reads (a
      question that a release lists twice gets ``#2``, ``#3``... appended).
    benchmark: the registry name (``mvbench``, ``videomme``, ...).
    task: the subtask the metrics group by (MVBench task, MLVU task type,
      Video-MME duration, LongVideoBench category, ...).
    video: a video file, or a folder of frame images (MVBench's TVQA frames).
    question: the question as released (for grounding, the cleaned query).
    options: option texts, without their letters (multiple choice).
    answer: the correct option's letter (multiple choice).
    span: ``(start, end)`` in seconds of the ground-truth event (grounding).
    window: ``(start, end)`` in seconds: only this part of the video is
      sampled (MVBench's bounded tasks); None for the whole video.
    frame_rate: frames per second of a frame folder (3 for MVBench's TVQA).
    duration: the video's length in seconds, when the annotation gives it.
    subtitles: a subtitle file that the prompt may interleave (Video-MME's
      ``.srt``, LongVideoBench's ``.json``), when the benchmark uses one.
    meta: per-benchmark fields the prompt or the metrics need verbatim (for
      example Video-MME's released option lines, LongVideoBench's
      ``starting_timestamp_for_subtitles``, MLVU's lmms-eval question text).
  """

  id: str
  benchmark: str
  task: str
  video: str
  question: str
  options: tuple[str, ...] = ()
  answer: Optional[str] = None
  span: Optional[tuple[float, float]] = None
  window: Optional[tuple[float, float]] = None
  frame_rate: Optional[float] = None
  duration: Optional[float] = None
  subtitles: Optional[str] = None
  meta: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

  @property
  def grounding(self) -> bool:
    """Whether the answer is a time span (temporal grounding) rather than a letter."""
    return self.span is not None

  @property
  def letters(self) -> str:
    """The option letters, ``"ABCD"`` for four options."""
    return LETTERS[:len(self.options)]

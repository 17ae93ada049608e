"""Where each token of the LLM's input comes from, with or without compression.

The host decides, once per input shape, which slot of the LLM sequence holds
which text token or which video slot; the jitted prefill then only gathers.
With OTT-Vid a video's run of tokens becomes its M compressed slots (padding
slots masked out); rows of a batch are left-padded to a common length so that
decoding appends at the same slot for every row.

Axes: B batch, S input length, S' LLM length, V video slots of all videos.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

__all__ = ["SequencePlan", "plan_sequence"]


@dataclasses.dataclass(frozen=True)
class SequencePlan:
  """Host-side layout of the LLM input.

  Attributes:
    text: ``int32[B, S']`` flat index ``b * S + i`` of the input token in each
      LLM slot, -1 where the slot holds video or padding.
    video: ``int32[B, S']`` index into the concatenated video slots, -1 where
      the slot holds text or padding.
    run_start: ``int32[V]`` flat index ``b * S + i`` of the first input token
      of the video run each video slot belongs to.
    slots: per video, its number of slots.
  """

  text: np.ndarray
  video: np.ndarray
  run_start: np.ndarray
  slots: tuple[int, ...]

  @property
  def length(self) -> int:
    return self.text.shape[1]


def plan_sequence(is_video: np.ndarray, attention_mask: np.ndarray, slots: Sequence[int],
                  tokens: Sequence[int]) -> SequencePlan:
  """Lays out text tokens and video slots for every row.

  Args:
    is_video: ``bool[B, S]``, the video placeholder tokens.
    attention_mask: ``[B, S]``, 0 for padding (skipped).
    slots: per video (in order of appearance), its slots in the LLM input.
    tokens: per video, its placeholder tokens in the input (checked).

  Returns:
    The :class:`SequencePlan`, left-padded to the longest row.
  """
  batch, length = is_video.shape
  mask = np.asarray(attention_mask).astype(bool)
  rows_text, rows_video, run_start = [], [], []
  video_number, offset = 0, 0
  for b in range(batch):
    text_row, video_row = [], []
    positions = np.flatnonzero(mask[b])  # the real tokens; runs are taken over them, padding skipped
    kinds = np.asarray(is_video[b])[positions]
    for run in np.split(positions, np.flatnonzero(kinds[1:] != kinds[:-1]) + 1):
      if not len(run):  # a row of padding only
        continue
      if not is_video[b, run[0]]:
        text_row.append(b * length + run)
        video_row.append(np.full(len(run), -1))
        continue
      if video_number >= len(slots):
        raise ValueError("more video placeholder runs than videos")
      if len(run) != tokens[video_number]:
        raise ValueError(f"video {video_number} has {len(run)} placeholder tokens, {tokens[video_number]} expected")
      n = slots[video_number]
      text_row.append(np.full(n, -1))
      video_row.append(np.arange(offset, offset + n))
      run_start.append(np.full(n, b * length + run[0]))
      offset += n
      video_number += 1
    rows_text.append(np.concatenate(text_row or [np.zeros(0, int)]))
    rows_video.append(np.concatenate(video_row or [np.zeros(0, int)]))
  if video_number != len(slots):
    raise ValueError(f"{len(slots)} videos given but {video_number} placeholder runs found")
  longest = max(len(r) for r in rows_text)
  text = np.full((batch, longest), -1, np.int32)
  video = np.full((batch, longest), -1, np.int32)
  for b in range(batch):
    n = len(rows_text[b])
    text[b, longest - n:] = rows_text[b]
    video[b, longest - n:] = rows_video[b]
  run_start = np.concatenate(run_start or [np.zeros(0, int)]).astype(np.int32)
  return SequencePlan(text, video, run_start, tuple(int(s) for s in slots))

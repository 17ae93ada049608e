"""Evaluation protocols: named, frozen settings that fix every input and every scoring rule of a run.

A protocol decides, per backbone, which frames are sampled (:class:`FrameRule`),
how they become pixels (Qwen2.5-VL's :class:`QwenPixels`; LLaVA's SigLIP
preprocessing has no settings), which time positions Qwen2.5-VL's M-RoPE sees
(``second_per_grid``), and, per benchmark, the prompt style, the answer
parser's lmms-eval version, the grounding scorer and ``max_new_tokens``. It is
printed at the start of a run and stored in every results file's identity.

======================  ==================================================================================
protocol                what it reproduces
======================  ==================================================================================
``paper`` (default)     the authors' lmms-eval wrappers (``minseokii/OTT-Vid``, ``lmms_eval_wrappers/``) and
                        ``scripts/eval_qwen_mvbench.sh``: Qwen2.5-VL with ``max_num_frames=32`` sampled as
                        an even count by rounded linspace, ``min_pixels=200704``, ``max_pixels=1605632``
                        (capped by qwen-vl-utils), ``second_per_grid_ts = 1.0`` (their wrapper passes no
                        fps, and transformers 4.57.3 then assumes 2 fps, so 2 / 2); on the TimeLens sets
                        their ``stage2_subsample`` (2 fps up to 768 frames, resized for that count, then 32
                        by truncated linspace). LLaVA-OneVision: 32 frames by truncated linspace.
                        LLaVA-Video: the wrapper's defaults, 1 fps, at most 20 frames, uniform above.
``lmms-eval``           stock lmms-eval 0.7.3 model wrappers: Qwen2.5-VL decodes at 2 fps (up to 768
                        frames) and always subsamples to 32; LLaVA as in ``paper``.
``native``              the model cards: Qwen2.5-VL through qwen-vl-utils' defaults (2 fps, 4 to 768
                        frames, 128 to 768 tokens a frame within a 128k-token budget) with true time
                        positions (``2 / sampled fps`` seconds a temporal patch); LLaVA-Video with 64
                        uniform frames and its time instruction; TimeLens sets scored as the official
                        TimeLens release does, with its 512 new tokens.
======================  ==================================================================================

Prompts and parsers are lmms-eval 0.7.3's in every protocol; the v0.7.1
multiple-choice parser of Video-MME and MLVU is an option
(``protocol.replace(parser=ParserVersion.V0_7_1)``, ``ottvid eval --parser 0.7.1``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Mapping, Optional

from ottvid_jax.eval import prompts
from ottvid_jax.eval.parsers import Parser
from ottvid_jax.eval.prompts import TIMELENS, Style
from ottvid_jax.models.qwen2_5_vl.processing import QwenPixels
from ottvid_jax.sampling import FrameRule, Sampling

__all__ = ["BACKBONES", "PROTOCOLS", "BackboneInputs", "GroundingScorer", "ParserVersion", "Protocol", "get_protocol"]

BACKBONES = tuple(b.value for b in prompts.Backbone)


class ParserVersion(enum.Enum):
  """Which lmms-eval release's multiple-choice parser Video-MME and MLVU use."""

  V0_7_3 = "0.7.3"  # extract_mcq_answer: priority rules, the last occurrence wins
  V0_7_1 = "0.7.1"  # up to v0.7.1: the first letter after stripping answer prefixes


class GroundingScorer(enum.Enum):
  """How the TimeLens sets are asked and scored."""

  LMMS_EVAL = "lmms-eval"  # lmms-eval's timelens task: its prompt, 50 new tokens, extract_time, first pair
  OFFICIAL = "official"  # the TimeLens release: GROUNDER_PROMPT, 512 new tokens, compute_metrics.py's rules


@dataclasses.dataclass(frozen=True)
class BackboneInputs:
  """How one backbone's inputs are made.

  Attributes:
    frames: which frames are sampled.
    pixels: Qwen2.5-VL's per-frame pixel bounds (None for LLaVA, whose SigLIP
      processor resizes every frame to the tower's square size).
    second_per_grid: Qwen2.5-VL's seconds per temporal patch for M-RoPE; None
      takes it from the sampled frame rate (``temporal_patch_size / sampled fps``).
    time_instruction: LLaVA-Video's "The video lasts for ... seconds" preamble.
  """

  frames: FrameRule
  pixels: Optional[QwenPixels] = None
  second_per_grid: Optional[float] = None
  time_instruction: bool = False


@dataclasses.dataclass(frozen=True)
class Protocol:
  """A named evaluation protocol (see the module docstring for the three that exist).

  Attributes:
    name: how results files and reports name it.
    inputs: per backbone, its inputs for every benchmark but those in ``dense``.
    dense_inputs: per backbone, its inputs on the benchmarks in ``dense``.
    dense: benchmarks that sample densely (the authors' temporal-grounding setting).
    parser: the multiple-choice parser's lmms-eval version (Video-MME, MLVU).
    grounding: how the TimeLens sets are asked and scored.
  """

  name: str
  inputs: Mapping[str, BackboneInputs]
  dense_inputs: Mapping[str, BackboneInputs]
  dense: tuple[str, ...] = TIMELENS
  parser: ParserVersion = ParserVersion.V0_7_3
  grounding: GroundingScorer = GroundingScorer.LMMS_EVAL

  def inputs_for(self, backbone: str, benchmark: str) -> BackboneInputs:
    """The inputs of ``backbone`` on ``benchmark``."""
    table = self.dense_inputs if benchmark in self.dense else self.inputs
    if backbone not in table:
      raise ValueError(f"protocol {self.name!r} has no settings for backbone {backbone!r}; it has {sorted(table)}")
    return table[backbone]

  def _official(self, benchmark: str) -> bool:
    return self.grounding is GroundingScorer.OFFICIAL and prompts.base_benchmark(benchmark)[0] in TIMELENS

  def style(self, benchmark: str) -> Style:
    """The prompt wording ``benchmark`` gets."""
    return Style.TIMELENS if self._official(benchmark) else Style.LMMS_EVAL

  def parser_for(self, benchmark: str) -> Parser:
    """The parsing and scoring rules ``benchmark`` gets."""
    if self._official(benchmark):
      return Parser.TIMELENS
    return Parser.LMMS_EVAL_0_7_1 if self.parser is ParserVersion.V0_7_1 else Parser.LMMS_EVAL

  def new_tokens(self, benchmark: str) -> int:
    """``max_new_tokens`` on ``benchmark`` (the task yaml's, or the TimeLens release's 512)."""
    return prompts.max_new_tokens(benchmark, self.style(benchmark))

  def replace(self, **changes) -> "Protocol":
    """A variant; its name records what changed (``paper+parser=0.7.1``)."""
    name = changes.pop("name", None)
    if name is None:
      name = self.name + "".join(f"+{k}={getattr(v, 'value', v)}" for k, v in sorted(changes.items()))
    return dataclasses.replace(self, name=name, **changes)

  def with_frames(self, count: int) -> "Protocol":
    """A variant that samples ``count`` frames: the count of a uniform rule, the second stage of a two-stage
    rule, or the most frames of an fps rule (``paper+frames=16``)."""
    if count < 1:
      raise ValueError(f"the frame count must be positive, got {count}")

    def change(inputs: BackboneInputs) -> BackboneInputs:
      rule = inputs.frames
      if rule.sampling is not Sampling.QWEN_FPS:
        rule = dataclasses.replace(rule, frames=count)
      elif rule.subsample is not None:
        rule = dataclasses.replace(rule, subsample=count)
      else:
        rule = dataclasses.replace(rule, max_frames=count, min_frames=min(rule.min_frames, count))
      return dataclasses.replace(inputs, frames=rule)

    return dataclasses.replace(self, name=f"{self.name}+frames={count}",
                               inputs={k: change(v) for k, v in self.inputs.items()},
                               dense_inputs={k: change(v) for k, v in self.dense_inputs.items()})

  def settings(self, backbone: Optional[str] = None, benchmark: Optional[str] = None) -> dict[str, Any]:
    """Every setting as JSON-compatible data (all backbones, or the one that ``backbone`` gets on ``benchmark``)."""

    def plain(value):
      if isinstance(value, enum.Enum):
        return value.value
      if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
      if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
      if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
      return value

    data = plain(self)
    if backbone is not None and benchmark is not None:
      data.pop("dense_inputs")
      data["inputs"] = plain(self.inputs_for(backbone, benchmark))
      data["dense"] = benchmark in self.dense
      data.update(style=self.style(benchmark).value, parser=self.parser_for(benchmark).value,
                  max_new_tokens=self.new_tokens(benchmark))
    return json.loads(json.dumps(data))


# Qwen2.5-VL pixel bounds the authors' script passes (scripts/eval_qwen_mvbench.sh); lmms-eval's defaults are
# the same (min_pixels 256 * 28 * 28).
_AUTHORS_PIXELS = QwenPixels(min_pixels=200704, max_pixels=1605632)

_LLAVA_OV = BackboneInputs(FrameRule(Sampling.LINSPACE_INT, frames=32))
# The authors' llava_vid.py defaults: 1 fps, at most 20 frames (uniform when the video is longer).
_LLAVA_VID = BackboneInputs(FrameRule(Sampling.LLAVA_VID, frames=20, fps=1.0))

PAPER = Protocol(
    name="paper",
    inputs={"qwen2_5_vl": BackboneInputs(FrameRule(Sampling.QWEN_NFRAMES, frames=32), _AUTHORS_PIXELS, 1.0),
            "llava_onevision": _LLAVA_OV, "llava_vid": _LLAVA_VID},
    dense_inputs={"qwen2_5_vl": BackboneInputs(FrameRule(Sampling.QWEN_FPS, fps=2.0, subsample=32), _AUTHORS_PIXELS,
                                               1.0),
                  "llava_onevision": _LLAVA_OV, "llava_vid": _LLAVA_VID},
)

_STOCK_QWEN = BackboneInputs(FrameRule(Sampling.QWEN_FPS, fps=2.0, subsample=32, subsample_always=True),
                             _AUTHORS_PIXELS, 1.0)
LMMS_EVAL = Protocol(
    name="lmms-eval",
    inputs={"qwen2_5_vl": _STOCK_QWEN, "llava_onevision": _LLAVA_OV, "llava_vid": _LLAVA_VID},
    dense_inputs={"qwen2_5_vl": _STOCK_QWEN, "llava_onevision": _LLAVA_OV, "llava_vid": _LLAVA_VID},
    dense=(),
)

_NATIVE_QWEN = BackboneInputs(FrameRule(Sampling.QWEN_FPS, fps=2.0), QwenPixels(), None)
_NATIVE_VID = BackboneInputs(FrameRule(Sampling.LLAVA_VID, frames=64, fps=1.0, force_sample=True),
                             time_instruction=True)
NATIVE = Protocol(
    name="native",
    inputs={"qwen2_5_vl": _NATIVE_QWEN, "llava_onevision": _LLAVA_OV, "llava_vid": _NATIVE_VID},
    dense_inputs={"qwen2_5_vl": _NATIVE_QWEN, "llava_onevision": _LLAVA_OV, "llava_vid": _NATIVE_VID},
    dense=(),
    grounding=GroundingScorer.OFFICIAL,
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (PAPER, LMMS_EVAL, NATIVE)}


def get_protocol(name: str) -> Protocol:
  """The protocol called ``name``."""
  if name not in PROTOCOLS:
    raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
  return PROTOCOLS[name]

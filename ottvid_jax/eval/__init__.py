"""Benchmark evaluation: readers of the released formats, scoring, and the resumable runner."""

from ottvid_jax.eval.readers import BENCHMARKS, read_benchmark
from ottvid_jax.eval.sample import Sample
from ottvid_jax.eval.runner import evaluate, read_results, summarise
from ottvid_jax.eval.scoring import grounding_metrics, iou, mc_accuracy, parse_letter, parse_span, prompt

__all__ = ["BENCHMARKS", "Sample", "evaluate", "grounding_metrics", "iou", "mc_accuracy", "parse_letter",
           "parse_span", "prompt", "read_benchmark", "read_results", "summarise"]

"""Benchmark evaluation under a named protocol: release readers, prompts, parsers, metrics, resumable results.

    samples = eval.read_benchmark("mvbench", "data/MVBench").samples
    protocol = eval.get_protocol("paper")
    outcome = eval.evaluate(samples, answerer, path, identity, protocol.parser_for("mvbench"))
    eval.summarise("mvbench", samples, outcome.records)
"""

from ottvid_jax.eval.metrics import aggregate, paired_percent, record
from ottvid_jax.eval.parsers import Parser, parse
from ottvid_jax.eval.prompts import prompt
from ottvid_jax.eval.protocol import PROTOCOLS, Protocol, get_protocol
from ottvid_jax.eval.readers import BENCHMARKS, ReadResult, read_benchmark
from ottvid_jax.eval.results import ResultsFile, RunIdentity, read_results
from ottvid_jax.eval.runner import RunOutcome, evaluate, summarise
from ottvid_jax.eval.sample import Sample

__all__ = ["BENCHMARKS", "PROTOCOLS", "Parser", "Protocol", "ReadResult", "ResultsFile", "RunIdentity", "RunOutcome",
           "Sample", "aggregate", "evaluate", "get_protocol", "paired_percent", "parse", "prompt", "read_benchmark",
           "read_results", "record", "summarise"]

"""Program synthesis of sub-graphs from property specs: enumeration over abstract states with
reachability pruning, Z3 for the numeric attributes, independent re-verification."""

from alphanas.synth.problem import Context, Problem, Settings, SynthError
from alphanas.synth.search import Result, Stats, synthesize

__all__ = ["Context", "Problem", "Result", "Settings", "Stats", "SynthError", "synthesize"]

"""The independent oracle: properties of a concrete program computed from its graph alone.

Shapes and parameter counts come from a `jax.eval_shape` trace of the Flax lowering, mixing
exactly by the definition (pulled-back index masks), depth by a plain path walk, FLOPs and peak
activation from their documented definitions. It shares no code with `alphanas.properties`
(the analytic rules it checks) or the synthesizer's pruning; `judge` compares it with a spec.
"""

from alphanas.oracle.deps import OracleUnsupported, exact_mixing
from alphanas.oracle.facts import Facts, facts
from alphanas.oracle.judge import Verdict, host_linear_inputs, judge

__all__ = ["Facts", "OracleUnsupported", "Verdict", "exact_mixing", "facts", "host_linear_inputs",
           "judge"]

"""Adversarial synthesis tasks: hand-written specs aimed at the engine's weak spots, each
labelled sat/unsat by brute force (`benchmarks.synthesis.bruteforce`, judged by the oracle), not
by the synthesizer.

Families: global ops collapsing a map in one op (global_mean keepdims: 8x8 -> 1x1 needs no
stride), binding peak-activation budgets, params budgets between kernel sizes, off-centre strides
(stride 2 on odd/even sizes after 3x3/5x5/7x7 windows), windows that together span a dim, concat
then strided 1x1, several inputs (added, concatenated, multiplied; one that may be ignored),
[context] tables with linear producers, depth upper bounds (exactly / range), mixing that needs
kernel 5 or 7 under a budget that excludes 7, batch size 2 (no menu op mixes the batch),
flatten/dense heads, attention vs. mean-and-broadcast token mixing, ops whose output is constant
in their input (softmax / layer norm over one element).

Every spec is standalone (no host) with max_ops <= 3, so brute force decides it. The labels live
in `adversarial_labels.json` next to this file (label, brute-force candidate count, the witness
program, a hash of the spec); `expect` is the author's expectation, kept to flag surprises.

    python -m benchmarks.synthesis.adversarial            # the tasks and their stored labels
    python -m benchmarks.synthesis.adversarial --relabel  # recompute every label by brute force
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alphanas.properties.spec import Spec, parse_spec

__all__ = ["LABELS", "SUITE", "AdvTask", "adversarial_tasks", "label", "labels", "relabel",
           "spec_hash"]

SUITE = "adversarial"
LABELS = Path(__file__).with_name("adversarial_labels.json")

# -- helpers to write specs ------------------------------------------------------------------

_CODE = {0: "none", 1: "one", 2: "many", 3: "all"}


def mix(inp: str, out: str, rank_in: int, rank_out: int, **cells: str) -> dict[str, Any]:
    """A mixing pair with every entry "none" but `cells`, written `c<i><j>="all"` (input dim
    i, output dim j)."""
    m = [["none"] * rank_out for _ in range(rank_in)]
    for key, v in cells.items():
        m[int(key[1])][int(key[2])] = v
    return {"input": inp, "output": out, "matrix": m}


def spec(inputs: Mapping[str, list[int]], out: list[int], ops: Sequence[str], max_ops: int,
         mixing: Sequence[dict[str, Any]] = (), depth: Mapping[str, Any] | None = None,
         context: Mapping[str, str] | None = None, **resources: int) -> dict[str, Any]:
    d: dict[str, Any] = {"inputs": dict(inputs), "outputs": {"y": list(out)}}
    if context:
        d["context"] = dict(context)
    if depth:
        d["depth"] = dict(depth)
    if mixing:
        d["mixing"] = {"pairs": list(mixing)}
    if resources:
        d["resources"] = dict(resources)
    d["search"] = {"ops": list(ops), "max_ops": max_ops}
    return d


def _sp(inp: str = "x", v: str = "all", rank: int = 4) -> dict[str, Any]:
    """Both spatial dims of a rank-4 map at least `v` (and nothing else)."""
    return mix(inp, "y", rank, rank, c11=v, c22=v)


def _spc(inp: str = "x", v: str = "all", c: str = "all") -> dict[str, Any]:
    """Spatial dims at least `v` and channels at least `c`."""
    return mix(inp, "y", 4, 4, c11=v, c22=v, c33=c)


X8 = {"x": [1, 8, 8, 16]}
CONV = ("conv",)


@dataclass(frozen=True)
class AdvTask:
    """A standalone synthesis task (no host), Task-like for `benchmarks.synthesis.run`."""

    name: str
    family: str
    data: Mapping[str, Any]     # the spec as TOML-like data
    expect: str                 # the author's expectation: "sat" | "unsat"
    note: str = ""
    label: str | None = None    # brute force's: "sat" | "unsat" | None (not labelled)
    suite: str = SUITE
    kind: str = "adversarial"
    mutation: str = ""

    @property
    def spec(self) -> Spec:
        return _parse(self.name, json.dumps(self.data, sort_keys=True))

    @property
    def specs(self) -> tuple[Spec, ...]:
        return (self.spec,)

    @property
    def n_ops(self) -> int:
        return int(self.data["search"]["max_ops"])

    @property
    def source_satisfies(self) -> bool:
        """True only when brute force found a program (an "unsat" answer is then unsound)."""
        return self.label == "sat"

    @property
    def hosts(self) -> tuple[None, ...]:
        return (None,)


@cache
def _parse(name: str, text: str) -> Spec:
    return parse_spec(json.loads(text), f"adversarial:{name}")


def spec_hash(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# -- the tasks -------------------------------------------------------------------------------

def _raw() -> list[tuple[str, str, dict[str, Any], str, str]]:
    """(name, family, spec data, expected label, why)."""
    t: list[tuple[str, str, dict[str, Any], str, str]] = []

    def add(name: str, family: str, data: dict[str, Any], expect: str, why: str) -> None:
        t.append((name, family, data, expect, why))

    # global ops: one op collapses a map ------------------------------------------------------
    g = "global"
    add("gm_keep_8x8_to_1x1", g, spec(X8, [1, 1, 1, 16], ("conv", "mean"), 1), "sat",
        "global_mean keepdims is 8x8 -> 1x1 in one op (no 3 stride-2 convs needed)")
    add("gm_keep_spatial_all", g, spec(X8, [1, 1, 1, 16], ("conv", "mean", "relu"), 1,
                                       [_sp()], depth={"mode": "at_least", "value": 1}), "sat",
        "the global mean reads every position; depth 1 (mean is linear)")
    add("gm_keep_then_conv_32", g, spec(X8, [1, 1, 1, 32], ("conv", "mean"), 2, [_spc()]), "sat",
        "global mean + conv1x1 to 32 channels")
    add("gm_keep_conv_relu_depth2", g, spec(X8, [1, 1, 1, 32], ("conv", "mean", "relu"), 3,
                                            [_spc()], depth={"mode": "at_least", "value": 2}),
        "sat", "mean, conv, relu: depth N->L->L->N = 2")
    add("strided_convs_8_to_1_in_2", g, spec(X8, [1, 1, 1, 16], CONV, 2), "unsat",
        "convs alone halve at most once per op: 8 -> 4 -> 2")
    add("strided_convs_8_to_1_in_3", g, spec(X8, [1, 1, 1, 16], CONV, 3), "sat",
        "three stride-2 convs: 8 -> 4 -> 2 -> 1")
    add("gm_flat_rank_drop", g, spec(X8, [1, 16], ("mean", "conv"), 1), "sat",
        "global_mean (no keepdims) drops the spatial dims")
    add("dense_cannot_drop_rank", g, spec(X8, [1, 16], ("dense", "conv", "relu"), 3), "unsat",
        "no op of {dense, conv, relu} lowers the rank")
    add("se_gate_mean_mul", g, spec(X8, [1, 8, 8, 16], ("mean", "mul"), 2, [_sp()]), "sat",
        "x * global_mean(x) (broadcast) reads every position at every output")
    add("se_gate_needs_two_ops", g, spec(X8, [1, 8, 8, 16], ("mean", "mul", "add"), 1, [_sp()]),
        "unsat", "one op cannot both reduce and restore the map")
    add("token_mean_add_all_tokens", g, spec({"x": [1, 16, 32]}, [1, 16, 32],
                                              ("self_attention", "mean", "add"), 2,
                                              [mix("x", "y", 3, 3, c11="all")], max_params=1000),
        "sat", "x + token_mean(x) mixes all tokens with 0 params (attention costs 4096)")
    add("attention_all_tokens", g, spec({"x": [1, 16, 32]}, [1, 16, 32], ("self_attention",), 1,
                                        [mix("x", "y", 3, 3, c11="all", c22="all")]), "sat",
        "self-attention reads every token and feature")
    add("attention_over_budget", g, spec({"x": [1, 16, 32]}, [1, 16, 32], ("self_attention",), 1,
                                         [mix("x", "y", 3, 3, c11="all")], max_params=4000),
        "unsat", "q/k/v/out projections: 4 x 32 x 32 = 4096 params > 4000")

    # peak activation ---------------------------------------------------------------------------
    p = "peak"
    d2 = {"mode": "at_least", "value": 2}
    add("peak_2048_two_ops", p, spec(X8, [1, 8, 8, 16], ("conv", "relu"), 2, depth=d2,
                                     max_peak_activation=2048), "sat",
        "conv then relu: input + one map = 2048 live at most")
    add("peak_1600_two_ops", p, spec(X8, [1, 8, 8, 16], ("conv", "relu"), 2, depth=d2,
                                     max_peak_activation=1600), "unsat",
        "the first op's output must be 8x8x16 in 2 ops: 2048 > 1600")
    add("peak_1600_three_ops_bottleneck", p, spec(X8, [1, 8, 8, 16], ("conv", "relu"), 3, depth=d2,
                                                  max_peak_activation=1600), "sat",
        "conv to 8 channels, relu, conv to 16: peak 1536")
    add("peak_below_input", p, spec(X8, [1, 8, 8, 16], ("conv", "relu", "batch_norm"), 3,
                                    max_peak_activation=1023), "unsat",
        "the inputs alone are 1024 elements live")
    add("peak_one_op_in_plus_out", p, spec(X8, [1, 8, 8, 16], ("conv", "relu"), 1,
                                           max_peak_activation=2047), "unsat",
        "one op: input + output = 2048")
    add("peak_skip_add", p, spec(X8, [1, 8, 8, 16], ("conv", "relu", "add"), 3,
                                 [_spc(v="many")], depth={"mode": "exactly", "value": 1},
                                 max_peak_activation=2048), "sat",
        "a spatial conv alone meets it (depth 1); a skip add would need 3072 live")
    add("peak_skip_add_forced", p, spec({"x": [1, 8, 8, 16], "z": [1, 8, 8, 16]}, [1, 8, 8, 16],
                                        ("conv", "add"), 2, [_sp("x", "many"), _sp("z", "one")],
                                        max_peak_activation=3071), "unsat",
        "conv(x) + z: inputs 2048 + conv out 1024 live at the conv")
    add("peak_downsample_first", p, spec({"x": [1, 16, 16, 8]}, [1, 8, 8, 16], ("conv", "relu"), 2,
                                         depth=d2, max_peak_activation=3072), "sat",
        "stride-2 conv then relu: 2048 + 1024")
    add("peak_downsample_first_tight", p, spec({"x": [1, 16, 16, 8]}, [1, 8, 8, 16],
                                               ("conv", "relu"), 2, depth=d2,
                                               max_peak_activation=3071), "unsat",
        "2 ops: the conv must make the 8x8x16 output's width (relu keeps it)")

    # params between kernel sizes ---------------------------------------------------------------
    k = "kernel-budget"
    x5 = {"x": [1, 5, 5, 16]}
    add("dw5_fits_dw7_not", k, spec(x5, [1, 5, 5, 16], CONV, 1, [_spc(c="one")], max_params=500),
        "sat", "depthwise 5x5 = 400 params reads all of 5 rows; 7x7 = 784 is over")
    add("dw5_over_budget_one_op", k, spec(x5, [1, 5, 5, 16], CONV, 1, [_spc(c="one")],
                                          max_params=399), "unsat",
        "3x3 reads 3 of 5 rows; 5x5 costs 400")
    add("two_dw3_fit_where_dw5_not", k, spec(x5, [1, 5, 5, 16], CONV, 2, [_spc(c="one")],
                                             max_params=399), "sat",
        "two depthwise 3x3 (288 params) span 5 rows")
    x5c4 = {"x": [1, 5, 5, 4]}
    add("full5_fits_full7_not", k, spec(x5c4, [1, 5, 5, 4], CONV, 1, [_spc()], max_params=500),
        "sat", "full conv 5x5 4->4 = 400 params; the channels must all mix")
    add("full5_over_budget_one_op", k, spec(x5c4, [1, 5, 5, 4], CONV, 1, [_spc()], max_params=399),
        "unsat", "depthwise does not mix channels, full 5x5 = 400")
    x7 = {"x": [1, 7, 7, 4]}
    add("seven_rows_need_7x7", k, spec(x7, [1, 7, 7, 4], CONV, 1, [_spc()], max_params=783),
        "unsat", "all of 7 rows in one op needs 7x7 (784 params)")
    add("seven_rows_3x3_then_5x5", k, spec(x7, [1, 7, 7, 4], CONV, 2, [_spc()], max_params=600),
        "sat", "3x3 + 5x5 span 7 rows for 544 params")
    add("seven_rows_flops_excludes_7", k, spec(x7, [1, 7, 7, 4], CONV, 1, [_spc()],
                                               max_flops=2 * 49 * 4 * 49 * 4 - 1), "unsat",
        "one op needs 7x7; its FLOPs are one over the budget")
    x9 = {"x": [1, 9, 9, 4]}
    add("nine_rows_one_op", k, spec(x9, [1, 9, 9, 4], CONV, 1, [_sp()]), "unsat",
        "a 7x7 reads 7 of 9 rows")
    add("nine_rows_two_5x5", k, spec(x9, [1, 9, 9, 4], CONV, 2, [_spc()], max_params=900), "sat",
        "two 5x5 (800 params) read all 9 rows; so does 3x3 + depthwise 7x7")
    add("nine_rows_two_ops_tight", k, spec(x9, [1, 9, 9, 4], CONV, 2, [_spc()], max_params=399),
        "sat", "dw7x7 (196) + 3x3 (144) also spans 9 rows and mixes channels")
    add("nine_rows_two_ops_too_tight", k, spec(x9, [1, 9, 9, 4], CONV, 2, [_spc()],
                                               max_params=199), "unsat",
        "spanning 9 rows needs windows summing to >= 10, and the channels must mix: the "
        "cheapest pair is 5x5 4->1, 5x5 1->4 (200 params) at any width")
    add("flops_dw_then_1x1", k, spec(X8, [1, 4, 4, 32], CONV, 2, [_spc(v="many")],
                                     max_flops=100_000), "sat",
        "depthwise 3x3/s2 then 1x1 to 32: ~21k FLOPs")
    add("flops_full_3x3_s2_over", k, spec(X8, [1, 4, 4, 32], CONV, 1, [_spc(v="many")],
                                          max_flops=100_000), "unsat",
        "one op: full 3x3/s2 16->32 costs 147k FLOPs")

    # off-centre strides ------------------------------------------------------------------------
    o = "stride"
    add("s2_on_5_with_5x5_all", o, spec(x5c4, [1, 3, 3, 4], CONV, 1, [_spc()]), "sat",
        "5x5/s2 SAME on 5 rows: centre output reads rows 0..4")
    add("s2_on_5_with_3x3_not_all", o, spec(x5c4, [1, 3, 3, 4], CONV, 1, [_spc()], max_params=399),
        "unsat", "3x3/s2 reads rows 1..3 of 5; 5x5 costs 400")
    x6 = {"x": [1, 6, 6, 4]}
    add("s2_on_6_needs_7x7", o, spec(x6, [1, 3, 3, 4], CONV, 1, [_spc()], max_params=783), "unsat",
        "on 6 rows the low pad is smaller: 5x5/s2 reads rows 1..5, only 7x7/s2 reads all")
    add("s2_on_6_7x7", o, spec(x6, [1, 3, 3, 4], CONV, 1, [_spc()]), "sat",
        "7x7/s2 on 6 rows reads 0..5")
    add("s2_on_6_two_ops_no_7", o, spec(x6, [1, 3, 3, 4], CONV, 2, [_spc()], max_params=600),
        "sat", "3x3 then 5x5/s2: rows 0..5")
    add("s2_on_8_7x7_reads_6", o, spec({"x": [1, 8, 8, 4]}, [1, 4, 4, 4], CONV, 1, [_spc()]),
        "unsat", "7x7/s2 on 8 rows: centre reads rows 2..7 (low pad 2)")
    add("s2_on_8_3x3_then_7x7s2_misses_row0", o, spec({"x": [1, 8, 8, 4]}, [1, 4, 4, 4], CONV, 2,
                                                       [_spc()], max_params=1000), "sat",
        "7x7/s2 then 3x3 (928 params) reads all 8; 3x3 then 7x7/s2 misses row 0")
    add("s1x1_s2_after_7x7_reads_6", o, spec(x7, [1, 4, 4, 4], CONV, 2, [_spc()], max_params=850),
        "sat", "7x7 then 1x1/s2 on 7 rows reads 6 (many); 3x3 then depthwise 7x7/s2 reads all")
    add("dw_s2_order_matters_136", o, spec(x7, [1, 4, 4, 4], CONV, 2, [_spc(c="one")],
                                           max_params=136), "sat",
        "dw3x3/s2 then dw5x5 (136 params) reads all 7 rows; dw5x5 then dw3x3/s2 reads 1..6, "
        "dw7x7 then 1x1/s2 reads 6")
    add("dw_s2_order_matters_135", o, spec(x7, [1, 4, 4, 4], CONV, 2, [_spc(c="one")],
                                           max_params=135), "unsat",
        "every 2-op span of 7 rows down to 4 costs >= 136")
    add("s1x1_s2_after_7x7_many", o, spec(x7, [1, 4, 4, 4], CONV, 2, [_spc(v="many")],
                                          max_params=850), "sat",
        "'many' is enough: one 3x3/s2 already")
    add("pool3_s2_on_7", o, spec({"x": [1, 7, 7, 8]}, [1, 4, 4, 8], ("max_pool", "avg_pool"), 1,
                                 [_sp(v="many")]), "sat", "3x3/s2 SAME pool: 7 -> 4, rows 3..5")
    add("pool3_s2_on_7_not_all", o, spec({"x": [1, 7, 7, 8]}, [1, 4, 4, 8], ("max_pool", "avg_pool"),
                                         2, [_sp()]), "unsat",
        "pools only: 3x3 then 3x3/s2 spans 5 of 7 rows")
    add("avgpool2_odd_valid", o, spec({"x": [1, 7, 7, 8]}, [1, 3, 3, 8], ("avg_pool",), 1), "sat",
        "2x2 VALID pool: 7 -> 3")

    # concat then strided 1x1 / several inputs --------------------------------------------------
    m = "inputs"
    xz = {"x": [1, 8, 8, 4], "z": [1, 8, 8, 4]}
    chan = [mix("x", "y", 4, 4, c33="all"), mix("z", "y", 4, 4, c33="all")]
    add("concat_then_1x1_s2", m, spec(xz, [1, 4, 4, 8], ("conv", "concat"), 2, chan,
                                      max_params=64), "sat", "concat then 1x1/s2 8->8: 64 params")
    add("concat_1x1_s2_skips_odd_rows", m, spec(xz, [1, 4, 4, 8], ("conv", "concat"), 2,
                                                [_spc("x", "one"), _spc("z", "one")],
                                                max_params=64), "unsat",
        "a stride-2 1x1 never reads the odd rows, so its spatial entry is none; 3x3/s2 is over")
    add("concat_1x1_s2_budget_63", m, spec(xz, [1, 4, 4, 8], ("conv", "concat"), 3, chan,
                                                  max_params=63), "sat",
        "e.g. concat, 1x1/s2 to 4 (32 params), concat(t, t): every output channel reads all")
    add("concat_1x1_s2_budget_15", m, spec(xz, [1, 4, 4, 8], ("conv", "concat"), 3, chan,
                                           max_params=15), "unsat",
        "every input channel must reach every output channel: through a width-1 bottleneck "
        "8 + 8 weights at least")
    add("concat_then_3x3_s2_many", m, spec(xz, [1, 4, 4, 8], ("conv", "concat"), 2,
                                           [_spc("x", "many"), _spc("z", "many")]), "sat",
        "concat then 3x3/s2")
    xy16 = {"x": [1, 8, 8, 16], "z": [1, 8, 8, 16]}
    add("add_two_inputs", m, spec(xy16, [1, 8, 8, 16], ("add",), 1,
                                  [mix("x", "y", 4, 4, c33="one"), mix("z", "y", 4, 4, c33="one")],
                                  depth={"mode": "exactly", "value": 1}), "sat", "x + z")
    add("two_inputs_depth0_impossible", m, spec(xy16, [1, 8, 8, 16], ("add", "relu", "identity"), 3,
                                                depth={"mode": "exactly", "value": 0}), "unsat",
        "joining two inputs needs a linear merge: depth >= 1 from one of them")
    add("mul_broadcast_gate", m, spec({"x": [1, 8, 8, 16], "z": [1, 1, 1, 16]}, [1, 8, 8, 16],
                                      ("mul",), 1, [mix("z", "y", 4, 4, c33="one")]), "sat",
        "x * z with z broadcast over space")
    add("concat_uneven_channels", m, spec({"x": [1, 8, 8, 4], "z": [1, 8, 8, 12]}, [1, 8, 8, 16],
                                          ("concat",), 1), "sat", "concat(x, z)")
    add("concat_self_doubles", m, spec({"x": [1, 8, 8, 4]}, [1, 8, 8, 8], ("concat",), 1,
                                       [mix("x", "y", 4, 4, c33="one")]), "sat",
        "concat(x, x): a binary op reading one tensor twice")
    add("add_self_depth1", m, spec({"x": [1, 8, 8, 4]}, [1, 8, 8, 4], ("add", "relu"), 1,
                                   depth={"mode": "exactly", "value": 1}), "sat",
        "add(x, x) is the only linear op allowed")
    add("ignore_unconstrained_input", m, spec({"x": [1, 8, 8, 16], "z": [1, 4, 4, 3]},
                                              [1, 8, 8, 16], ("conv", "relu", "add"), 2,
                                              [_sp("x", "many")], depth={"mode": "at_least",
                                                                         "x->y": 2}), "sat",
        "z is constrained by nothing: conv(x), relu")
    add("small_input_joins_by_broadcast", m, spec({"x": [1, 8, 8, 16], "z": [1, 4, 4, 3]},
                                                  [1, 8, 8, 16], ("conv", "relu", "add"), 3,
                                                  depth={"mode": "at_least", "value": 1}), "sat",
        "two 1x1/s2 convs take z to 1x1x16, which broadcasts onto x")
    add("unignorable_input", m, spec({"x": [1, 8, 8, 16], "z": [1, 4, 4, 3]}, [1, 8, 8, 16],
                                     ("relu", "add", "batch_norm"), 3,
                                     depth={"mode": "at_least", "value": 1}), "unsat",
        "the default depth bound covers z, which no allowed op can fit to the 8x8x16 output")
    add("upsample_joins_small_input", m, spec({"x": [1, 8, 8, 16], "z": [1, 4, 4, 16]},
                                              [1, 8, 8, 16], ("resize", "add"), 2,
                                              [_sp("z", "one")]), "sat",
        "x + upsample2(z)")

    # [context]: linear producers ----------------------------------------------------------------
    c = "context"
    x8s = {"x": [1, 8, 8, 16]}
    lin = {"x": "linear"}
    add("ctx_linear_relu_depth1", c, spec(x8s, [1, 8, 8, 16], ("relu",), 1,
                                          depth={"mode": "at_least", "value": 1}, context=lin),
        "sat", "a linear producer then relu: 1 switch")
    add("ctx_nonlinear_relu_depth1", c, spec(x8s, [1, 8, 8, 16], ("relu",), 3,
                                             depth={"mode": "at_least", "value": 1}), "unsat",
        "standalone inputs are non-linear: relus never switch")
    add("ctx_linear_convs_depth1", c, spec(x8s, [1, 8, 8, 16], ("conv", "batch_norm"), 3,
                                           depth={"mode": "at_least", "value": 1}, context=lin),
        "unsat", "linear after a linear producer: 0 switches")
    add("ctx_linear_conv_depth0", c, spec(x8s, [1, 8, 8, 32], ("conv", "relu"), 1,
                                          depth={"mode": "exactly", "value": 0}, context=lin),
        "sat", "conv after a linear producer: depth 0")
    add("ctx_nonlinear_conv_depth0", c, spec(x8s, [1, 8, 8, 32], ("conv", "relu"), 3,
                                             depth={"mode": "exactly", "value": 0}), "unsat",
        "the width change needs a conv, a switch after a non-linear input")
    add("ctx_mixed_add_depths", c, spec(xy16, [1, 8, 8, 16], ("add",), 1,
                                        depth={"mode": "exactly", "x->y": 0, "z->y": 1},
                                        context={"x": "linear", "z": "non-linear"}), "sat",
        "x + z: 0 switches from the linear x, 1 from z")
    add("ctx_mixed_swapped", c, spec(xy16, [1, 8, 8, 16], ("add", "relu"), 3,
                                     depth={"mode": "exactly", "x->y": 1, "z->y": 0},
                                     context={"x": "linear", "z": "non-linear"}), "unsat",
        "z must meet x at a linear merge, a switch after non-linear z")

    # depth upper bounds -------------------------------------------------------------------------
    dd = "depth"
    add("exactly1_spatial", dd, spec(X8, [1, 8, 8, 16], ("conv", "relu", "batch_norm"), 3,
                                     [_sp(v="many")], depth={"mode": "exactly", "value": 1}), "sat",
        "a 3x3 conv: depth 1")
    add("exactly3_in_2", dd, spec(X8, [1, 8, 8, 16], ("conv", "relu"), 2,
                                  depth={"mode": "exactly", "value": 3}), "unsat",
        "each op switches at most once")
    add("exactly3_in_3", dd, spec(X8, [1, 8, 8, 16], ("conv", "relu"), 3,
                                  depth={"mode": "exactly", "value": 3}), "sat", "conv relu conv")
    add("range2_nine_rows_3ops", dd, spec(x9, [1, 9, 9, 4], ("conv", "relu"), 3, [_sp()],
                                          depth={"mode": "range", "value": {"min": 2, "max": 2}}),
        "sat", "5x5, 5x5, relu: all 9 rows and depth 2")
    add("range2_nine_rows_2ops", dd, spec(x9, [1, 9, 9, 4], ("conv", "relu"), 2, [_sp()],
                                          depth={"mode": "range", "value": {"min": 2, "max": 2}}),
        "unsat", "2 ops with depth 2 leave one conv: 7 of 9 rows")
    add("skip_raises_max_depth", dd, spec(X8, [1, 8, 8, 16], ("conv", "relu", "add"), 3,
                                          [_sp(v="many")], depth={"mode": "exactly", "value": 2}),
        "sat", "relu(conv(x)) meets it; add(x, relu(conv(x))) would be 3 (max over paths)")
    add("identity_transparent_depth0", dd, spec(X8, [1, 8, 8, 16], ("identity",), 1,
                                                depth={"mode": "exactly", "value": 0}), "sat",
        "identity is transparent")
    add("dropout_is_linear", dd, spec(X8, [1, 8, 8, 16], ("dropout",), 2,
                                      depth={"mode": "exactly", "value": 0}), "unsat",
        "dropout counts as linear: one switch")

    # batch dim ----------------------------------------------------------------------------------
    b = "batch"
    add("batch2_nothing_mixes_batch", b, spec({"x": [2, 8, 8, 16]}, [2, 8, 8, 16],
                                              ("conv", "batch_norm", "relu", "mean", "add"), 3,
                                              [mix("x", "y", 4, 4, c00="many")]), "unsat",
        "batch norm is per example in eval mode; no menu op mixes the batch")
    add("batch2_one_to_one", b, spec({"x": [2, 8, 8, 16]}, [2, 8, 8, 16], ("conv", "batch_norm"), 1,
                                     [mix("x", "y", 4, 4, c00="one", c11="many")]), "sat",
        "every op is per example")
    add("batch1_is_all", b, spec(X8, [1, 8, 8, 16], ("relu",), 1, [mix("x", "y", 4, 4, c00="all")]),
        "sat", "a size-1 dim read once is 'all'")
    add("one_by_one_spatial_all", b, spec({"x": [1, 1, 1, 16]}, [1, 1, 1, 16], ("conv",), 1,
                                          [_spc()]), "sat", "a 1x1 map: a 1x1 conv reads 'all' rows")
    add("batch2_attention", b, spec({"x": [2, 10, 32]}, [2, 10, 32], ("self_attention",), 1,
                                    [mix("x", "y", 3, 3, c00="one", c11="all")]), "sat",
        "attention mixes tokens, not examples")

    # flatten / dense heads ----------------------------------------------------------------------
    h = "head"
    x4 = {"x": [1, 4, 4, 8]}
    add("flatten_dense_head", h, spec(x4, [1, 10], ("flatten", "dense"), 2,
                                      [mix("x", "y", 4, 2, c11="all", c21="all", c31="all")]), "sat",
        "flatten then dense to 10")
    add("mean_dense_head", h, spec(x4, [1, 10], ("dense", "mean"), 2), "sat", "global mean, dense")
    add("dense_only_head", h, spec(x4, [1, 10], ("dense",), 3), "unsat", "dense keeps the rank")
    add("flatten_exact", h, spec(x4, [1, 128], ("flatten",), 1), "sat", "4 * 4 * 8 = 128")
    add("conv_then_flatten", h, spec(x4, [1, 64], ("flatten", "conv"), 2), "sat",
        "1x1 conv to 4 channels, flatten")
    add("head_params_mean_dense", h, spec(X8, [1, 10], ("flatten", "dense", "mean"), 3,
                                          max_params=160), "sat",
        "mean + dense 16->10 = 160 weights; flatten + dense = 10240")
    add("head_params_bottleneck_25", h, spec(X8, [1, 10], ("flatten", "dense", "mean"), 3,
                                             max_params=25), "unsat",
        "the cheapest head is a width-1 bottleneck: 16 + 10 weights")
    add("token_head", h, spec({"x": [1, 10, 32]}, [1, 10], ("mean", "dense"), 2), "sat",
        "token mean, dense")

    # constant-in-input ops ----------------------------------------------------------------------
    z = "constant"
    w1 = {"x": [1, 8, 8, 1]}
    add("softmax_over_one_is_constant", z, spec(w1, [1, 8, 8, 1], ("softmax",), 2,
                                                [mix("x", "y", 4, 4, c33="one")]), "unsat",
        "softmax over a single element is 1 whatever the input")
    add("norms_over_one_constant", z, spec(w1, [1, 8, 8, 1], ("softmax", "layer_norm"), 3,
                                           [mix("x", "y", 4, 4, c33="one")]), "unsat",
        "layer norm over one element is its bias")
    add("relu_over_one_reads", z, spec(w1, [1, 8, 8, 1], ("softmax", "layer_norm", "relu"), 1,
                                       [mix("x", "y", 4, 4, c33="one")]), "sat",
        "relu reads its input")
    add("softmax_then_conv_over_one", z, spec(w1, [1, 8, 8, 4], ("softmax", "conv"), 2,
                                              [mix("x", "y", 4, 4, c11="one")]), "sat",
        "the conv reads x directly")

    # upsampling ---------------------------------------------------------------------------------
    u = "upsample"
    add("upsample_once", u, spec(x4, [1, 8, 8, 8], ("resize", "conv"), 1, [_sp(v="one")]), "sat",
        "nearest upsample2: each output reads one input")
    add("upsample_needs_conv_for_many", u, spec(x4, [1, 8, 8, 8], ("resize", "conv"), 1,
                                                [_sp(v="many")]), "unsat",
        "one op: nearest upsample reads one row per output")
    add("upsample_then_conv_many", u, spec(x4, [1, 8, 8, 8], ("resize", "conv"), 2, [_sp(v="many")]),
        "sat", "upsample then 3x3")
    add("upsample_x4_in_one", u, spec(x4, [1, 16, 16, 8], ("resize",), 1), "unsat",
        "the menu's upsample doubles")
    add("upsample_x4_in_two", u, spec(x4, [1, 16, 16, 8], ("resize",), 2), "sat", "two upsample2")
    return t


def adversarial_tasks(limit: int | None = None) -> list[AdvTask]:
    """The tasks with their stored brute-force labels (None where a task is not labelled or its
    spec changed since). `limit` takes that many round-robin over the families, in order."""
    stored = labels()
    out = []
    for name, family, data, expect, why in _raw():
        rec = stored.get(name)
        lab = rec["label"] if rec and rec.get("spec_hash") == spec_hash(data) else None
        out.append(AdvTask(name, family, data, expect, why, lab))
    if limit is None or limit >= len(out):
        return out
    families: dict[str, list[AdvTask]] = {}
    for t in out:
        families.setdefault(t.family, []).append(t)
    picked: list[AdvTask] = []
    for rank in range(max(len(v) for v in families.values())):
        picked += [v[rank] for v in families.values() if rank < len(v)]
    return picked[:limit]


def labels(path: Path = LABELS) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text())["tasks"])


def label(task: AdvTask, cap: int = 2_000_000) -> dict[str, Any]:
    """Brute force's label for one task, as stored in the JSON file."""
    from benchmarks.synthesis.bruteforce import describe, search

    o = search(task.spec, cap=cap)
    wide = {}
    if o.status == "unsat":  # does unsat survive every width the synthesizer may choose?
        w = search(task.spec, cap=cap, width_set=synth_widths(task.spec))
        wide = {"wide_label": w.status, "wide_count": w.count, "wide_wall_s": round(w.wall_s, 2)}
        if w.graph is not None:
            wide["wide_program"] = describe(w.graph)
    return {"label": o.status, "count": o.count, "wall_s": round(o.wall_s, 2), **wide,
            "program": describe(o.graph) if o.graph is not None else None,
            **({"space_notes": list(o.space_notes)} if o.space_notes else {}),
            "rejected": o.rejected, "spec_hash": spec_hash(task.data),
            **({"undecided": o.undecided_note} if o.undecided else {})}


def synth_widths(spec: Spec) -> tuple[int, ...]:
    """The widths the synthesizer's options take in this spec's one context."""
    from alphanas.synth import Problem
    from alphanas.synth.solve import width_options

    p = Problem.of(spec)
    ref = p.contexts[0].ref_channels
    return tuple(sorted({v for o in width_options(p) if (v := o.value(ref)) is not None}))


def relabel(path: Path = LABELS, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Recompute the labels (all, or `names`) by brute force and write them to `path`."""
    from alphanas.ir.serialize import atomic_write_text

    old = labels(path)
    res: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for task in adversarial_tasks():
        if names and task.name not in names:
            if task.name in old:
                res[task.name] = old[task.name]
            continue
        rec = label(task)
        res[task.name] = rec
        flag = "" if rec["label"] == task.expect else f"   <-- expected {task.expect}"
        if rec.get("wide_label", "unsat") != "unsat":
            flag += f"   <-- {rec['wide_label']} with the synthesizer's widths"
        print(f"{task.name:40s} {rec['label']:7s} {rec['count']:>9,} cand {rec['wall_s']:6.2f}s{flag}",
              file=sys.stderr, flush=True)
    doc = {"about": "brute-force labels of benchmarks/synthesis/adversarial.py (python -m "
                    "benchmarks.synthesis.adversarial --relabel)",
           "total_wall_s": round(time.perf_counter() - t0, 1), "tasks": res}
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return res


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.synthesis.adversarial",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--relabel", action="store_true", help="recompute the labels by brute force")
    ap.add_argument("--only", action="append", help="relabel only this task (repeatable)")
    a = ap.parse_args(argv)
    if a.relabel:
        relabel(names=a.only)
    tasks = adversarial_tasks()
    for t in tasks:
        print(f"{t.family:14s} {t.name:40s} label={t.label} expect={t.expect}")
    n_sat = sum(t.label == "sat" for t in tasks)
    n_unsat = sum(t.label == "unsat" for t in tasks)
    print(f"{len(tasks)} tasks: {n_sat} sat, {n_unsat} unsat, {len(tasks) - n_sat - n_unsat} other")
    return 0


if __name__ == "__main__":
    sys.exit(main())

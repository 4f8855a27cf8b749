"""The NAS-Bench-201 search space in the IR (Dong & Yang, ICLR 2020).

A cell has 4 nodes; node 0 is the cell input and node j = sum over i < j of op(i->j)(node i).
Its six edges, in NAS-Bench-201's order, are (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2),
and each takes one of `NB201_OPS`:

- `none`: no edge (NAS-Bench-201 multiplies by zero);
- `skip_connect`: the identity;
- `nor_conv_1x1`, `nor_conv_3x3`: ReLU -> conv (no bias) -> batch norm;
- `avg_pool_3x3`: 3x3 average pooling, stride 1, SAME padding.

A node without a live input edge is zero: `scalar_mul(input, 0)`, so that the ops reading it keep
their parameters, exactly as in NAS-Bench-201's networks (its `params` column counts them).

The network: a 3x3 conv stem (16 channels, no bias) + batch norm; three stages of 5 cells at 16,
32 and 64 channels, joined by residual reduction blocks (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, with
an avg-pool/2 + 1x1 conv shortcut); batch norm, ReLU, global average pool, dense. The cell is one
block template, so its 15 instances are the 15 positions the NAS driver mutates together.

One difference from NAS-Bench-201's PyTorch code: its 3x3 average pool excludes the padding from
the count (`count_include_pad=False`); the IR's SAME pool includes it. Shapes, parameters,
FLOPs, depth and mixing are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from alphanas.errors import AttrError
from alphanas.ir.attrs import OpKind as K
from alphanas.ir.attrs import rel
from alphanas.ir.graph import BlockTemplate, Graph, GraphBuilder, template
from alphanas.ir.zoo import ZooEntry, register

__all__ = ["EDGES", "NB201_OPS", "cell_template", "nb201", "parse_cell"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""(source, target) of each edge, in NAS-Bench-201's order (the digits of a table key)."""


def parse_cell(cell: str | Sequence[str] | Sequence[int]) -> tuple[str, ...]:
    """A cell as six op names: from a 6-digit table key ("013300"), a NAS-Bench-201 string
    ("|nor_conv_3x3~0|+|none~0|none~1|+|...~2|"), or a sequence of names or op indices."""
    if isinstance(cell, str):
        if len(cell) == 6 and all(c in "01234" for c in cell):
            return tuple(NB201_OPS[int(c)] for c in cell)
        parts = [p for p in cell.replace("+", "|").split("|") if p]
        ops = [p.rsplit("~", 1)[0] for p in parts]
        srcs = [p.rsplit("~", 1)[-1] for p in parts]
        if len(ops) != 6 or srcs != [str(s) for s, _ in EDGES] or any(o not in NB201_OPS for o in ops):
            raise AttrError(f"not a NAS-Bench-201 cell: {cell!r} (expected 6 digits 0-4, or "
                            "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops from "
                            f"{', '.join(NB201_OPS)})")
        return tuple(ops)
    seq = list(cell)
    if len(seq) != 6:
        raise AttrError(f"a NAS-Bench-201 cell has 6 edges, got {len(seq)}: {seq!r}")
    out = []
    for v in seq:
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(NB201_OPS):
            out.append(NB201_OPS[v])
        elif isinstance(v, str) and v in NB201_OPS:
            out.append(v)
        else:
            raise AttrError(f"unknown NAS-Bench-201 op {v!r}; expected one of {', '.join(NB201_OPS)}")
    return tuple(out)


def cell_key(cell: str | Sequence[str] | Sequence[int]) -> str:
    """The 6-digit table key of a cell."""
    return "".join(str(NB201_OPS.index(o)) for o in parse_cell(cell))


def edge_op(b: GraphBuilder, op: str, x: str, name: str) -> str:
    """One edge's op on tensor x (not `none`); the ops are named `name/...`."""
    if op == "skip_connect":
        return b.op(K.IDENTITY, x, name=name)
    if op == "avg_pool_3x3":
        return b.op(K.AVG_POOL, x, name=name, window=3, strides=1, padding="SAME")
    if op in ("nor_conv_1x1", "nor_conv_3x3"):
        k = 1 if op == "nor_conv_1x1" else 3
        y = b.op(K.RELU, x, name=f"{name}/relu")
        y = b.op(K.CONV, y, name=f"{name}/conv", features=rel(), kernel=k, use_bias=False)
        return b.op(K.BATCH_NORM, y, name=f"{name}/bn")
    raise AttrError(f"edge op {op!r} has no IR form (expected one of {', '.join(NB201_OPS[1:])})")


def cell_body(b: GraphBuilder, x: str, ops: Sequence[str]) -> str:
    """The cell's ops on input x; returns node 3 through an identity named `out` (so every cell
    has the same output name). Edge e's ops are named `e{e}_{op}`."""
    nodes = [x]
    for j in (1, 2, 3):
        terms = [edge_op(b, ops[e], nodes[s], f"e{e}_{ops[e]}")
                 for e, (s, t) in enumerate(EDGES) if t == j and ops[e] != "none"]
        if not terms:
            nodes.append(b.op(K.SCALAR_MUL, x, name=f"node{j}_zero", value=0.0))
            continue
        acc = terms[0]
        for k, t in enumerate(terms[1:], 1):
            acc = b.op(K.ADD, acc, t, name=f"node{j}" if k == len(terms) - 1 else f"node{j}_{k}")
        nodes.append(acc)
    return b.op(K.IDENTITY, nodes[3], name="out")


def cell_template(cell: str | Sequence[str] | Sequence[int]) -> BlockTemplate:
    """The cell as a shape-preserving block template named `nb201_cell_<key>`."""
    ops = parse_cell(cell)
    return template(f"nb201_cell_{cell_key(ops)}", lambda b, x: cell_body(b, x, ops))


def _relu_conv_bn(b: GraphBuilder, x: str, name: str, features, kernel: int, strides: int) -> str:
    y = b.op(K.RELU, x, name=f"{name}/relu")
    y = b.op(K.CONV, y, name=f"{name}/conv", features=features, kernel=kernel, strides=strides,
             use_bias=False)
    return b.op(K.BATCH_NORM, y, name=f"{name}/bn")


def _reduction() -> BlockTemplate:
    def body(b: GraphBuilder, x: str) -> str:
        y = _relu_conv_bn(b, x, "conv_a", rel(2), 3, 2)
        y = _relu_conv_bn(b, y, "conv_b", rel(), 3, 1)
        s = b.op(K.AVG_POOL, x, name="shortcut/pool", window=2, strides=2)
        s = b.op(K.CONV, s, name="shortcut/conv", features=rel(2), kernel=1, use_bias=False)
        return b.op(K.ADD, y, s, name="add")

    return template("nb201_reduction", body)


def nb201(cell: str | Sequence[str] | Sequence[int] = "333132", num_classes: int = 10,
          channels: int = 16, cells_per_stage: int = 5, image_size: int = 32, batch: int = 1,
          in_channels: int = 3) -> Graph:
    """The NAS-Bench-201 network of `cell` (default: the best CIFAR-10 validation cell)."""
    ops = parse_cell(cell)
    if not (isinstance(cells_per_stage, int) and cells_per_stage >= 1):
        raise AttrError(f"cells_per_stage must be a positive int, got {cells_per_stage!r}")
    b = GraphBuilder(f"nb201_{cell_key(ops)}")
    x = b.input("input", (batch, image_size, image_size, in_channels))
    x = b.op(K.CONV, x, name="stem/conv", features=channels, kernel=3, use_bias=False)
    x = b.op(K.BATCH_NORM, x, name="stem/bn")
    cell_t, red = cell_template(ops), _reduction()
    for stage in range(3):
        if stage:
            (x,) = b.block(red, [x], prefix=f"reduction{stage}")
        for i in range(cells_per_stage):
            (x,) = b.block(cell_t, [x], prefix=f"stage{stage + 1}/cell{i}")
    x = b.op(K.BATCH_NORM, x, name="head/bn")
    x = b.op(K.RELU, x, name="head/relu")
    x = b.op(K.MEAN, x, name="head/pool", axes=(1, 2))
    x = b.op(K.DENSE, x, name="head/logits", features=num_classes)
    return b.build(x)


register(ZooEntry("nb201", nb201, "NAS-Bench-201 network (cell=6-digit key, default its best "
                  "CIFAR-10 cell), 10 classes", reference_params=1_073_466,
                  small={"image_size": 8}))

"""The ONNX graph after a scan became a native LSTM / GRU / RNN (``lowering/rnn.py``): ``tidy``
removes what the native op made unused and the reshapes around it, and joins the two
directions of a bidirectional layer into one op, as ``torch.onnx.export`` writes it.

Runs only on graphs where a scan was written as a native op (``ctx.rnn_fused``).
"""
from __future__ import annotations

import onnx
from onnx import helper

_NATIVE = ("LSTM", "GRU", "RNN")


def tidy(nodes: list, outputs: list[str], initializers: list | None = None) -> list:
    """``nodes`` without those nothing in ``outputs`` needs (a fused layer's input projection);
    ``initializers`` (a list of TensorProtos, edited in place) loses those no node reads.
    First a Squeeze undone by an Unsqueeze of the same one axis (or the other way round)
    becomes an Identity of the first one's input, which onnxruntime removes: the native op's
    ``Y`` is (T, 1, B, H), the scan's (T, B, H), and the importer and PyTorch's file put the
    direction axis back and take it out again around it. Then a forward and a reverse native
    op over the same input become one bidirectional op (``_join_directions``)."""
    nodes = _cancel_squeezes(nodes, initializers or [])
    nodes = _join_directions(nodes)
    nodes = _unsplit(nodes)
    needed = set(outputs)
    kept = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output if o):
            kept.append(n)
            needed.update(i for i in n.input if i)
            needed.update(_subgraph_reads(n))
    kept.reverse()
    if initializers is not None:
        initializers[:] = [t for t in initializers if t.name in needed]
    return kept


def _cancel_squeezes(nodes: list, initializers: list) -> list:
    consts = {t.name: t for t in initializers}
    made = {o: n for n in nodes for o in n.output}

    def axis(n) -> int | None:
        if len(n.input) != 2 or n.input[1] not in consts:
            return None
        a = onnx.numpy_helper.to_array(consts[n.input[1]])
        return int(a.reshape(-1)[0]) if a.size == 1 else None

    inverse = {"Squeeze": "Unsqueeze", "Unsqueeze": "Squeeze"}
    out = []
    for n in nodes:
        first = made.get(n.input[0]) if n.op_type in inverse and n.input else None
        if first is not None and first.op_type == inverse[n.op_type] and axis(n) is not None and axis(n) == axis(first):
            n = helper.make_node("Identity", [first.input[0]], list(n.output), name=n.name)
        out.append(n)
    return out


def _subgraph_reads(node) -> set[str]:
    """Every name read inside ``node``'s subgraphs (some may be the outer scope's)."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            for n in g.node:
                names.update(i for i in n.input if i)
                names |= _subgraph_reads(n)
            names.update(o.name for o in g.output)
    return names


# -- two directions -> one bidirectional op -----------------------------------------------------
def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _partners(nodes: list) -> list[tuple[int, int]]:
    """(forward, reverse) index pairs: same op, same X and sequence_lens, the same attributes
    but the direction, the same optional inputs given, neither reading the other."""
    made = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    memo: dict[int, set[int]] = {}

    def ancestors(i: int) -> set[int]:
        if i not in memo:
            memo[i] = set()
            found: set[int] = set()
            for name in list(nodes[i].input) + sorted(_subgraph_reads(nodes[i])):
                j = made.get(name)
                if j is not None:
                    found |= {j} | ancestors(j)
            memo[i] = found
        return memo[i]

    def key(n):
        a = _attrs(n)
        d = a.pop("direction", b"forward")
        return d, (n.op_type, n.input[0], n.input[4] if len(n.input) > 4 else "",
                   tuple(bool(x) for x in n.input), len(n.output), repr(sorted(a.items())))

    native = [(i, key(n)) for i, n in enumerate(nodes) if n.op_type in _NATIVE and n.domain in ("", "ai.onnx")]
    pairs, used = [], set()
    for i, (di, ki) in native:
        if di != b"forward" or i in used:
            continue
        for j, (dj, kj) in native:
            if dj == b"reverse" and j not in used and kj == ki and i not in ancestors(j) and j not in ancestors(i):
                pairs.append((i, j))
                used |= {i, j}
                break
    return pairs


def _join_directions(nodes: list) -> list:
    pairs = _partners(nodes)
    if not pairs:
        return nodes
    taken = {x for n in nodes for x in (*n.input, *n.output)}

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    replace: dict[int, list] = {}
    drop = set()
    for i, j in pairs:
        f, r = nodes[i], nodes[j]
        base = f.name or f.output[0]
        new = []
        ins = []
        for k, (a, b) in enumerate(zip(f.input, r.input)):
            if k in (0, 4) or not a:  # X, sequence_lens: shared; "" in both (checked by _partners)
                ins.append(a)
            else:  # W, R, B, initial_h, initial_c, P: stacked along the direction axis
                ins.append(fresh(f"{base}/bidirectional/in_{k}"))
                new.append(helper.make_node("Concat", [a, b], [ins[-1]], axis=0, name=fresh(f"{base}/bidirectional/Concat_{k}")))
        outs = [fresh(f"{base}/bidirectional/out_{k}") for k in range(len(f.output))]
        a = _attrs(f)
        a["direction"] = "bidirectional"
        for k in ("activations", "activation_alpha", "activation_beta"):
            if k in a:  # one list per direction, forward's first (the same: _partners)
                a[k] = list(a[k]) * 2
        new.append(helper.make_node(f.op_type, ins, outs, name=fresh(f"{base}/bidirectional"), **a))
        for k, (yf, yr) in enumerate(zip(f.output, r.output)):
            if yf or yr:  # Y (T, 2, B, H) splits on axis 1, the final states (2, B, H) on axis 0
                new.append(helper.make_node("Split", [outs[k]], [yf or fresh(f"{outs[k]}_f"), yr or fresh(f"{outs[k]}_r")],
                                            axis=1 if k == 0 else 0, num_outputs=2, name=fresh(f"{base}/bidirectional/Split_{k}")))
        replace[max(i, j)] = new  # where both inputs exist; _sorted moves readers after it
        drop.add(min(i, j))
    out = []
    for i, n in enumerate(nodes):
        if i in replace:
            out.extend(replace[i])
        elif i not in drop:
            out.append(n)
    return _sorted(out)


def _sorted(nodes: list) -> list:
    """``nodes`` in an order where each comes after what it reads, the given order kept
    where it already is one (Kahn's algorithm, taking the earliest ready node)."""
    import heapq

    made = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    readers: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    waiting = [0] * len(nodes)
    for i, n in enumerate(nodes):
        for j in {made[x] for x in (*n.input, *_subgraph_reads(n)) if x in made and made[x] != i}:
            readers[j].append(i)
            waiting[i] += 1
    ready = [i for i in range(len(nodes)) if not waiting[i]]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for k in readers[i]:
            waiting[k] -= 1
            if not waiting[k]:
                heapq.heappush(ready, k)
    return order if len(order) == len(nodes) else nodes


def _unsplit(nodes: list) -> list:
    """A Concat of all the outputs of one Split, in order and on the same axis (through
    Identity nodes), is the Split's input: an Identity of it (the importer concatenates the
    two directions' outputs that the joined op's Y was split into)."""
    made = {o: n for n in nodes for o in n.output if o}

    def through(name: str) -> str:
        while name in made and made[name].op_type == "Identity":
            name = made[name].input[0]
        return name

    out = []
    for n in nodes:
        if n.op_type == "Concat" and n.input:
            src = [through(x) for x in n.input]
            split = made.get(src[0])
            if (split is not None and split.op_type == "Split" and len(split.input) == 1 and src == list(split.output)
                    and _attrs(split).get("axis", 0) == _attrs(n).get("axis")):
                n = helper.make_node("Identity", [split.input[0]], list(n.output), name=n.name)
        out.append(n)
    return out

"""Hostile ONNX models for the importer, shared by the quick property tests
(tests/frontends/test_onnx_import_fuzz.py) and the long run (scripts/fuzz_onnx_import.py).

- ``single_op_model(op, opset, rng)``: a one-node model built from the op's ONNX schema:
  random ranks (0 included) and small dims, dtypes from the schema's type constraints, every
  required attribute and some optional ones with values from the schema's type (odd values
  included), inputs either graph inputs or constants holding odd values (NaN, inf, negative,
  zero, large). Most such models are wrong for the op in some way; the importer must then
  raise an ``IrflowError`` naming the node, never anything else.
- ``mutate(model_bytes, rng)``: a valid model changed at the byte level (flips, truncation,
  splices) or at the proto level (op types, attributes, dims, dtypes, names, initializers).

Everything is driven by a ``numpy.random.Generator``, so a seed reproduces a case.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# ONNX type strings irflow has; others (uint16, float8, string, ...) are mostly avoided, but
# sometimes drawn on purpose (the importer must refuse them cleanly).
IRFLOW_TYPES = {
    "tensor(float)": TensorProto.FLOAT, "tensor(double)": TensorProto.DOUBLE, "tensor(float16)": TensorProto.FLOAT16,
    "tensor(bfloat16)": TensorProto.BFLOAT16, "tensor(int8)": TensorProto.INT8, "tensor(int16)": TensorProto.INT16,
    "tensor(int32)": TensorProto.INT32, "tensor(int64)": TensorProto.INT64, "tensor(uint8)": TensorProto.UINT8,
    "tensor(bool)": TensorProto.BOOL,
}
OTHER_TYPES = {"tensor(uint16)": TensorProto.UINT16, "tensor(uint32)": TensorProto.UINT32,
               "tensor(uint64)": TensorProto.UINT64, "tensor(string)": TensorProto.STRING}
# String attributes: plausible values first (so the importer gets past the first check).
STRINGS = {
    "mode": ["constant", "reflect", "edge", "wrap", "nearest", "linear", "cubic", "DCR", "CRD", "bogus"],
    "auto_pad": ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "bogus"],
    "direction": ["LEFT", "RIGHT", "forward", "reverse", "bidirectional"],
    "coordinate_transformation_mode": ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                       "tf_crop_and_resize", "half_pixel_symmetric", "bogus"],
    "nearest_mode": ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "bogus"],
    "approximate": ["none", "tanh", "bogus"],
    "equation": ["ij,jk->ik", "i,i", "...ii->...i", "bij,bjk->bik", "ii", "i->", "x", ""],
    "reduction": ["none", "add", "mul", "max", "min", "bogus"],
    "keep_aspect_ratio_policy": ["stretch", "not_larger", "not_smaller"],
}
ODD_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 3.0, 1e-30, 1e30, -7.25, np.nan, np.inf, -np.inf]
ODD_INTS = [0, 1, -1, 2, 3, -2, 4, 5, -7, 100, 2**31 - 1, -(2**31), 2**40]
SMALL_INTS = [0, 1, -1, 2, 3, -2, 4, -3]


def _choice(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _shape(rng: np.random.Generator) -> list[int]:
    rank = int(rng.choice([0, 1, 2, 3, 4], p=[0.15, 0.25, 0.25, 0.2, 0.15]))
    return [int(rng.choice([0, 1, 2, 3, 4], p=[0.05, 0.25, 0.3, 0.25, 0.15])) for _ in range(rank)]


def _values(rng: np.random.Generator, elem: int, shape: list[int]) -> np.ndarray:
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    size = int(np.prod(shape)) if shape else 1
    if dtype.kind == "b":
        flat = rng.integers(0, 2, size).astype(bool)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        pool = [v for v in ODD_INTS if info.min <= v <= info.max]
        flat = np.asarray([_choice(rng, pool) if rng.random() < 0.5 else int(rng.integers(-3, 5)) for _ in range(size)])
        flat = np.clip(flat, info.min, info.max).astype(dtype)
    else:
        flat = np.asarray([_choice(rng, ODD_FLOATS) if rng.random() < 0.4 else float(rng.standard_normal()) for _ in range(size)])
        with np.errstate(over="ignore"):
            flat = flat.astype(dtype)
    return flat.reshape(shape)


def _attr_value(rng: np.random.Generator, op: str, attr, elem_for: dict) -> object | None:
    t = attr.type
    A = onnx.AttributeProto
    default = helper.get_attribute_value(attr.default_value) if attr.default_value.type else None
    if t == A.INT:
        if default is not None and rng.random() < 0.3:
            return int(default)
        return int(_choice(rng, ODD_INTS if rng.random() < 0.3 else SMALL_INTS))
    if t == A.FLOAT:
        if default is not None and rng.random() < 0.3:
            return float(default)
        return float(_choice(rng, ODD_FLOATS))
    if t == A.INTS:
        return [int(_choice(rng, SMALL_INTS if rng.random() < 0.8 else ODD_INTS)) for _ in range(int(rng.integers(0, 5)))]
    if t == A.FLOATS:
        return [float(_choice(rng, ODD_FLOATS)) for _ in range(int(rng.integers(0, 5)))]
    if t == A.STRING:
        pool = list(STRINGS.get(attr.name, []))
        if default is not None:
            pool.append(default.decode() if isinstance(default, bytes) else default)
        return _choice(rng, pool) if pool and rng.random() < 0.9 else "bogus"
    if t == A.STRINGS:
        return ["a", "b"][: int(rng.integers(0, 3))]
    if t == A.TENSOR:
        elem = _choice(rng, list(IRFLOW_TYPES.values()))
        shape = [int(rng.integers(1, 3))] if rng.random() < 0.8 else []
        return numpy_helper.from_array(_values(rng, elem, shape), attr.name)
    return None  # graphs, sparse tensors, type protos: not drawn


def single_op_model(op: str, opset: int, rng: np.random.Generator) -> onnx.ModelProto | None:
    """A one-node model of ``op`` drawn from its schema at ``opset`` (None if ``op`` has no
    schema there or needs a graph attribute)."""
    try:
        schema = onnx.defs.get_schema(op, opset, "")
    except Exception:
        return None
    allowed = {c.type_param_str: list(c.allowed_type_strs) for c in schema.type_constraints}
    bound: dict[str, int] = {}

    def elem_of(type_str: str) -> int:
        if type_str in allowed:
            if type_str not in bound:
                ours = [s for s in allowed[type_str] if s in IRFLOW_TYPES]
                others = [s for s in allowed[type_str] if s in OTHER_TYPES]
                if ours and (rng.random() < 0.95 or not others):
                    bound[type_str] = IRFLOW_TYPES[_choice(rng, ours)]
                elif others:
                    bound[type_str] = OTHER_TYPES[_choice(rng, others)]
                else:
                    bound[type_str] = TensorProto.FLOAT
            return bound[type_str]
        return IRFLOW_TYPES.get(type_str, OTHER_TYPES.get(type_str, TensorProto.FLOAT))

    nodes, inputs, inits, names = [], [], [], []
    F = onnx.defs.OpSchema.FormalParameterOption
    for k, formal in enumerate(schema.inputs):
        count = 1
        if formal.option == F.Optional and rng.random() < 0.35:
            names.append("")
            continue
        if formal.option == F.Variadic:
            count = int(rng.integers(1, 4))
        for j in range(count):
            name = f"in{k}_{j}"
            elem = elem_of(formal.type_str)
            shape = _shape(rng)
            where = rng.random()
            if where < 0.45 or elem == TensorProto.STRING:
                dims = [d if rng.random() < 0.85 else f"d{i}" for i, d in enumerate(shape)]
                inputs.append(helper.make_tensor_value_info(name, elem, dims))
            elif where < 0.9:
                nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(_values(rng, elem, shape), name + "_c")))
            else:
                inits.append(numpy_helper.from_array(_values(rng, elem, shape), name))
            names.append(name)
    while names and names[-1] == "":
        names.pop()
    attrs = {}
    for attr in schema.attributes.values():
        if attr.required or rng.random() < 0.5:
            v = _attr_value(rng, op, attr, bound)
            if v is None:
                if attr.required:
                    return None
                continue
            attrs[attr.name] = v
    if op == "GatherND" and attrs.get("batch_dims", 0) < 0:
        attrs["batch_dims"] = 0  # onnx's own shape inference (used below) segfaults on a negative one
    outs, out_infos = [], []
    for k, formal in enumerate(schema.outputs):
        if formal.option == F.Optional and rng.random() < 0.5:
            continue
        count = int(rng.integers(1, 3)) if formal.option == F.Variadic else 1
        for j in range(count):
            name = f"out{k}_{j}"
            outs.append(name)
            out_infos.append(helper.make_tensor_value_info(name, elem_of(formal.type_str), None))
    if not outs:
        return None
    try:
        nodes.append(helper.make_node(op, names, outs, name=f"{op.lower()}_node", **attrs))
        g = helper.make_graph(nodes, "fuzz", inputs, out_infos, initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    except Exception:
        return None
    m.ir_version = 10
    try:  # declared output types as ONNX infers them (a graph output needs a shape to pass the checker)
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        types = {v.name: v.type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    except Exception:
        types = {}
    for vo in m.graph.output:
        t = types.get(vo.name)
        if t is not None and t.tensor_type.HasField("shape"):
            vo.type.CopyFrom(t)
        else:
            vo.type.tensor_type.shape.SetInParent()  # rank 0 declared: often wrong, as in hostile files
    return m


# -- mutations of valid models -----------------------------------------------------------------------

def seed_models() -> list[onnx.ModelProto]:
    """Small valid models covering the importer's main paths (weights, shape chains, folding,
    nn ops, control flow)."""
    F, I = TensorProto.FLOAT, TensorProto.INT64
    rng = np.random.default_rng(0)

    def model(nodes, inputs, outputs, inits=(), opset=17):
        m = helper.make_model(helper.make_graph(nodes, "seed", inputs, outputs, initializer=list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 10
        onnx.checker.check_model(m)
        return m

    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    mlp = model([helper.make_node("Gemm", ["x", "w", "b"], ["h"], alpha=0.5),
                 helper.make_node("Relu", ["h"], ["r"]),
                 helper.make_node("Softmax", ["r"], ["y"], axis=-1)],
                [helper.make_tensor_value_info("x", F, ["batch", 4])], [helper.make_tensor_value_info("y", F, ["batch", 3])], [w, b])
    shape_chain = model([
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64), "z")),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.array([0], np.int64), "a")),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Constant", [], ["m1"], value=numpy_helper.from_array(np.array([-1], np.int64), "m")),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
        helper.make_node("ReduceSum", ["y", "ax"], ["z"], keepdims=1),
    ], [helper.make_tensor_value_info("x", F, ["batch", 2, 3])], [helper.make_tensor_value_info("z", F, [1, 6])], opset=18)
    conv_w = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "cw")
    conv = model([helper.make_node("Conv", ["x", "cw"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
                  helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                  helper.make_node("Flatten", ["p"], ["f"], axis=1),
                  helper.make_node("ConstantOfShape", ["fs"], ["zeros"], value=numpy_helper.from_array(np.array([0.5], np.float32), "v")),
                  helper.make_node("Add", ["f", "zeros"], ["y"])],
                 [helper.make_tensor_value_info("x", F, [1, 1, 4, 4])], [helper.make_tensor_value_info("y", F, [1, 8])],
                 [conv_w, numpy_helper.from_array(np.array([1, 8], np.int64), "fs")])
    body = helper.make_graph(
        [helper.make_node("Add", ["x_in", "one"], ["x_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
        [helper.make_tensor_value_info("i", I, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", F, [2])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("x_out", F, [2])],
        initializer=[numpy_helper.from_array(np.float32(1.0), "one")])
    loop = model([helper.make_node("Constant", [], ["M"], value=numpy_helper.from_array(np.array(3, np.int64), "mv")),
                  helper.make_node("Constant", [], ["c0"], value=numpy_helper.from_array(np.array(True), "cv")),
                  helper.make_node("Loop", ["M", "c0", "x"], ["y"], body=body)],
                 [helper.make_tensor_value_info("x", F, [2])], [helper.make_tensor_value_info("y", F, [2])])
    slicing = model([helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"]),
                     helper.make_node("Transpose", ["s"], ["t"], perm=[1, 0]),
                     helper.make_node("LayerNormalization", ["t", "g"], ["y"], axis=-1)],
                    [helper.make_tensor_value_info("x", F, [4, 6])], [helper.make_tensor_value_info("y", F, [6, 2])],
                    [numpy_helper.from_array(np.array([1], np.int64), "st"), numpy_helper.from_array(np.array([3], np.int64), "en"),
                     numpy_helper.from_array(np.array([0], np.int64), "ax"), numpy_helper.from_array(np.ones(2, np.float32), "g")])
    return [mlp, shape_chain, conv, loop, slicing]


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = int(rng.integers(4))
    if kind == 0 and buf:  # flip a few bytes
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(len(buf)))
            buf[i] = int(rng.integers(256))
    elif kind == 1:  # truncate
        buf = buf[: int(rng.integers(len(buf) + 1))]
    elif kind == 2 and len(buf) > 4:  # duplicate a slice somewhere else
        i, j = sorted(int(v) for v in rng.integers(len(buf), size=2))
        k = int(rng.integers(len(buf)))
        buf[k:k] = buf[i:j]
    else:  # insert random bytes
        k = int(rng.integers(len(buf) + 1))
        buf[k:k] = bytes(int(v) for v in rng.integers(256, size=int(rng.integers(1, 9))))
    return bytes(buf)


def _mutate_proto(m: onnx.ModelProto, rng: np.random.Generator) -> None:
    g = m.graph
    kind = int(rng.integers(9))
    nodes = list(g.node)
    node = nodes[int(rng.integers(len(nodes)))] if nodes else None
    if kind == 0 and node is not None:  # another op type, same inputs and attributes
        node.op_type = _choice(rng, ["Relu", "Add", "Reshape", "Slice", "Gather", "Softmax", "Concat", "Conv", "MaxPool",
                                     "ReduceSum", "Transpose", "Expand", "Tile", "Pad", "Split", "Range", "ConstantOfShape",
                                     "Squeeze", "Unsqueeze", "TopK", "OneHot", "Trilu", "CumSum", "Resize", "Loop", "If"])
    elif kind == 1 and node is not None and node.attribute:  # an attribute gets an odd value
        a = node.attribute[int(rng.integers(len(node.attribute)))]
        if a.type == onnx.AttributeProto.INT:
            a.i = int(_choice(rng, ODD_INTS))
        elif a.type == onnx.AttributeProto.INTS:
            del a.ints[:]
            a.ints.extend(int(_choice(rng, ODD_INTS)) for _ in range(int(rng.integers(0, 5))))
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = float(_choice(rng, ODD_FLOATS))
        elif a.type == onnx.AttributeProto.STRING:
            a.s = _choice(rng, [b"", b"bogus", b"\xff\xfe"])
        elif a.type == onnx.AttributeProto.TENSOR:
            a.t.dims.append(int(_choice(rng, [0, 3, 1000])))
    elif kind == 2 and node is not None:  # inputs dropped, duplicated or renamed
        names = list(node.input)
        choice = int(rng.integers(3))
        if choice == 0 and names:
            names.pop(int(rng.integers(len(names))))
        elif choice == 1:
            names.append(_choice(rng, names) if names else "x")
        elif names:
            names[int(rng.integers(len(names)))] = _choice(rng, ["", "undefined_value", names[0]])
        del node.input[:]
        node.input.extend(names)
    elif kind == 3 and g.initializer:  # an initializer's dims or dtype change
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        if rng.random() < 0.5 and t.dims:
            t.dims[int(rng.integers(len(t.dims)))] = int(_choice(rng, [0, 1, 7, 2**20]))
        else:
            t.data_type = int(_choice(rng, [TensorProto.INT64, TensorProto.UINT16, TensorProto.STRING, TensorProto.FLOAT16, 0, 99]))
    elif kind == 4 and g.input:  # a graph input's dims or elem type change
        vi = g.input[int(rng.integers(len(g.input)))]
        tt = vi.type.tensor_type
        if rng.random() < 0.6 and tt.shape.dim:
            d = tt.shape.dim[int(rng.integers(len(tt.shape.dim)))]
            d.dim_value = int(_choice(rng, [0, 1, 5, 50000, 2**40]))
        elif rng.random() < 0.5:
            tt.elem_type = int(_choice(rng, [TensorProto.INT64, TensorProto.BOOL, TensorProto.UINT64, TensorProto.STRING]))
        else:
            tt.ClearField("shape")
    elif kind == 5 and g.output:  # a graph output's declared type changes
        vo = g.output[int(rng.integers(len(g.output)))]
        vo.type.tensor_type.elem_type = int(_choice(rng, [TensorProto.INT64, TensorProto.DOUBLE, TensorProto.BOOL]))
    elif kind == 6 and node is not None:  # a node's name or output name becomes empty or clashes
        if rng.random() < 0.5:
            node.name = ""
        else:
            node.output[0] = _choice(rng, ["", node.input[0] if node.input else "z", "y"])
    elif kind == 7:  # the opset changes
        m.opset_import[0].version = int(_choice(rng, [1, 7, 11, 12, 13, 25, 99]))
    elif node is not None:  # a node is removed or duplicated
        if rng.random() < 0.5:
            g.node.remove(node)
        else:
            g.node.append(node)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """A mutated copy of a serialized model: byte-level (40%) or proto-level edits."""
    if rng.random() < 0.4:
        return _mutate_bytes(data, rng)
    m = onnx.ModelProto()
    m.ParseFromString(data)
    for _ in range(int(rng.integers(1, 4))):
        _mutate_proto(m, rng)
    out = m.SerializeToString()
    if rng.random() < 0.2:  # invalid UTF-8 in a name: protobuf keeps it, Python sees bytes
        out = out.replace(b"seed", b"\xff\xfe\xfd\xfc", 1)
    return out


def fuzz_ops(opset: int = 21) -> list[str]:
    """Every standard-domain op irflow imports (table or schema function body), excluding the
    control-flow ops whose graph attributes the generator does not draw."""
    from irflow.frontends.onnx_import import IMPORTERS, has_function_body

    names = set(IMPORTERS)
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain == "" and s.since_version <= opset and has_function_body(s.name, opset):
            names.add(s.name)
    return sorted(names - {"If", "Loop", "Scan"})

"""AutoGraph-lite: ``irf.function(autograph=True)`` turns Python ``if``/``while``/``for ... in
range(...)`` into ``irf.cond`` / ``irf.while_loop`` / ``irf.scan`` when their condition or
bounds are traced tensors.

The function's source is parsed, each supported statement is rewritten (innermost first) into
a call of a runtime helper of this module, and the result is compiled once, on first call.
At run time each helper checks the condition: a Python value (``if training:``, ``for i in
range(3)``) runs plain Python, as before; a traced tensor builds the control-flow op.

What is rewritten:

- ``if test: ... [else: ...]``: the variables assigned in either branch become the outputs of
  one ``cond`` (operands: their values before the ``if``). A variable assigned in only one
  branch must exist before the ``if``.
- ``while test: ...``: the variables assigned in the body that exist before the loop are the
  loop carries of a ``while_loop``; ones first assigned inside the body are temporaries of
  the body (not visible after a traced loop).
- ``for i in range(...)`` / ``for i in irf.range(...)`` (1 to 3 arguments, a Python int
  step): with Python int bounds, ``range`` runs as Python (unrolled in a trace) while
  ``irf.range`` becomes ONE ``scan`` of known length (so it differentiates); a traced bound
  gives a ``while_loop``. ``i`` is a Python int for an unrolled ``range`` and an int64 tensor
  otherwise; after a converted loop ``i`` keeps its value from before the loop.
- ``for x in xs`` over anything else: Python iteration, or, when ``xs`` is a traced tensor,
  a ``scan`` over its rows (the assigned variables that exist before the loop are the carry).

Left as Python (and so an error if the test is a traced tensor): statements whose body holds
``return``, ``break``, ``continue`` or ``yield``, ``for`` with a tuple target,
loops with an ``else:``, ``global``/``nonlocal`` names. Values captured from an enclosing function
are read when the function is first called (closure cells are snapshot then). Variables
carried by a traced statement must be tensors or numbers.

>>> @irf.function(autograph=True)
... def f(x, n):
...     if irf.reduce_sum(x) > 0:
...         y = x * 2.0
...     else:
...         y = -x
...     for i in irf.range(n):
...         y = y + 1.0
...     return y
"""
from __future__ import annotations

import ast
import builtins
import functools
import inspect
import itertools
import textwrap
from typing import Any, Callable

import numpy as np

from irflow.errors import IrflowError
from irflow.ops.builder import SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK


class _Undefined:
    """The value of a variable not yet assigned where a converted statement starts."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<undefined variable {self.name!r} (autograph: assigned only inside a traced branch or loop)>"


def undefined_or(getter: Callable[[], Any], name: str) -> Any:
    """The variable's value, or an ``_Undefined`` marker when it has none yet."""
    try:
        return getter()
    except NameError:  # also UnboundLocalError and unassigned closure cells
        return _Undefined(name)


def _is_traced(x: Any) -> bool:
    return isinstance(x, SymbolicTensor)


def _defined(vals, names) -> list[int]:
    return [i for i, v in enumerate(vals) if not isinstance(v, _Undefined)]


# -- runtime helpers called by the converted code -----------------------------------------------
def if_stmt(pred: Any, true_fn: Callable, false_fn: Callable, init: tuple, names: tuple) -> tuple:
    """A rewritten ``if``: the chosen branch in Python, or ``irf.cond`` on a traced ``pred``.
    Branches take and return the values of ``names`` (``init``: their values before)."""
    if not _is_traced(pred):
        return tuple(true_fn(*init) if pred else false_fn(*init))
    from irflow.frontends.control_flow import cond

    keep = _defined(init, names)

    def wrap(fn, which):
        def branch(*ops):
            vals = list(init)
            for i, o in zip(keep, ops):
                vals[i] = o
            out = tuple(fn(*vals))
            for nm, v in zip(names, out):
                if isinstance(v, _Undefined):
                    raise IrflowError(
                        f"autograph: variable {nm!r} is assigned in only one branch of an `if` on a traced tensor "
                        f"(not in the {which} branch) and has no value before it; assign it before the `if`"
                    )
            return out

        return branch

    return tuple(cond(pred, wrap(true_fn, "true"), wrap(false_fn, "false"), *[init[i] for i in keep]))


def while_stmt(cond_fn: Callable, body_fn: Callable, init: tuple, names: tuple) -> tuple:
    """A rewritten ``while``: Python steps until the condition is a traced tensor, then
    ``irf.while_loop`` from the current values."""
    vals = tuple(init)
    while True:
        c = cond_fn(*vals)
        if _is_traced(c):
            return _traced_while(cond_fn, body_fn, vals, names)
        if not c:
            return vals
        vals = tuple(body_fn(*vals))


def _carried(vals: tuple, names: tuple, fn: Callable, lead: int = 0):
    """(indices of defined vars, fn over those only); the undefined ones are body temporaries."""
    keep = _defined(vals, names)

    def call(*args):
        full = list(vals)
        for i, o in zip(keep, args[lead:]):
            full[i] = o
        return fn(*args[:lead], *full)

    return keep, call


def _traced_while(cond_fn, body_fn, vals, names):
    from irflow.frontends.control_flow import while_loop

    keep, c = _carried(vals, names, cond_fn)
    _, b = _carried(vals, names, body_fn)
    out = while_loop(lambda v: c(*v), lambda v: tuple(tuple(b(*v))[i] for i in keep), tuple(vals[i] for i in keep))
    res = list(vals)
    for i, o in zip(keep, out):
        res[i] = o
    return tuple(res)


def for_range(range_fn: Any, args: tuple, body_fn: Callable, init: tuple, names: tuple) -> tuple:
    """A rewritten ``for i in range(...)`` / ``irf.range(...)``: Python, a ``scan`` of known
    length, or a ``while_loop`` on traced bounds (see the module docstring)."""
    traced = any(_is_traced(a) for a in args)
    from irflow.ops.shape_create import range as irf_range

    if range_fn is builtins.range and not traced:
        vals = tuple(init)
        for i in range(*args):
            vals = tuple(body_fn(i, *vals))
        return vals
    if range_fn is not builtins.range and range_fn is not irf_range:
        raise IrflowError(f"autograph: cannot convert a for loop over {range_fn!r}")
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (tuple(args) + (1,))[:3]
    if not isinstance(step, (int, np.integer)) or step == 0:
        raise IrflowError(f"autograph: the step of a converted range loop must be a non-zero Python int, got {step!r}")
    if not BUILDER_STACK:  # eager irf.range: Python loop, i an int64 tensor as in traces
        from irflow.frontends.eager import tensor

        vals = tuple(init)
        for i in range(int(np.asarray(_numpy(start))), int(np.asarray(_numpy(stop))), int(step)):
            vals = tuple(body_fn(tensor(np.int64(i)), *vals))
        return vals
    keep, body = _carried(init, names, body_fn, lead=1)
    carry0 = tuple(init[i] for i in keep)
    from irflow.frontends.control_flow import scan, while_loop
    from irflow.ops.dispatch import bind

    if not _is_traced(start) and not _is_traced(stop):
        n = len(range(int(start), int(stop), int(step)))

        def step_fn(carry, _):
            i, vals = carry[0], carry[1:]
            out = tuple(body(i, *vals))
            return (i + int(step), *[out[j] for j in keep]), ()

        (_, *out), _ = scan(step_fn, (np.asarray(int(start), np.int64), *carry0), None, length=n)
    else:
        lo = bind("cast", start, dtype="int64") if _is_traced(start) else np.asarray(int(start), np.int64)
        hi = bind("cast", stop, dtype="int64") if _is_traced(stop) else np.asarray(int(stop), np.int64)

        def c(v):
            return v[0] < v[1] if step > 0 else v[0] > v[1]

        def b(v):
            out = tuple(body(v[0], *v[2:]))
            return (v[0] + int(step), v[1], *[out[j] for j in keep])

        _, _, *out = while_loop(c, b, (lo, hi, *carry0))
    res = list(init)
    for i, o in zip(keep, out):
        res[i] = o
    return tuple(res)


def for_iter(iterable: Any, body_fn: Callable, init: tuple, names: tuple) -> tuple:
    """``for x in iterable``: a Python loop, or a ``scan`` over the rows of a traced tensor."""
    if not _is_traced(iterable):
        vals = tuple(init)
        for x in iterable:
            vals = tuple(body_fn(x, *vals))
        return vals
    from irflow.frontends.control_flow import scan

    keep, body = _carried(init, names, body_fn, lead=1)

    def step(carry, x):
        out = tuple(body(x, *carry))
        return tuple(out[j] for j in keep), ()

    out, _ = scan(step, tuple(init[i] for i in keep), iterable)
    res = list(init)
    for i, o in zip(keep, out):
        res[i] = o
    return tuple(res)


def _numpy(x):
    return x.numpy() if hasattr(x, "numpy") else x


# -- the AST rewrite ----------------------------------------------------------------------------
_PREFIX = "__ag_"


def _assigned(stmts: list[ast.stmt]) -> list[str]:
    """Names stored by ``stmts`` (not inside nested functions, lambdas or comprehensions), in order."""
    found: dict[str, None] = {}

    class V(ast.NodeVisitor):
        def visit_Name(self, node):
            if isinstance(node.ctx, ast.Store) and not node.id.startswith(_PREFIX):
                found.setdefault(node.id)

        def visit_FunctionDef(self, node):  # helper defs of inner rewrites, user defs: own scope
            if not node.name.startswith(_PREFIX):
                found.setdefault(node.name)

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Lambda(self, node):
            pass

        def visit_ListComp(self, node):
            pass

        visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    for s in stmts:
        V().visit(s)
    return list(found)


def _has_escape(stmts: list[ast.stmt]) -> bool:
    """Does control leave these statements other than by falling through?"""
    escapes = (ast.Return, ast.Break, ast.Continue, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)
    stack: list[ast.AST] = list(stmts)
    while stack:
        node = stack.pop()
        if isinstance(node, escapes):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested scope (the helpers of inner rewrites, too): its returns are its own
        stack.extend(ast.iter_child_nodes(node))
    return False


class _Rewriter(ast.NodeTransformer):
    def __init__(self):
        self.counter = itertools.count()

    def _fn(self, name: str, params: list[str], body: list[ast.stmt], ret: list[str]) -> ast.FunctionDef:
        body = list(body) + [ast.Return(value=_tuple(ret))]
        return ast.FunctionDef(name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params], kwonlyargs=[],
                                                             kw_defaults=[], defaults=[]), body=body, decorator_list=[], returns=None,
                               type_params=[])

    def _init(self, names: list[str]) -> ast.Tuple:
        return ast.Tuple(elts=[_call("undefined_or", ast.Lambda(args=_noargs(), body=ast.Name(id=n, ctx=ast.Load())),
                                     ast.Constant(value=n)) for n in names], ctx=ast.Load())

    def _assign(self, names: list[str], value: ast.expr) -> ast.stmt:
        if not names:
            return ast.Expr(value=value)
        return ast.Assign(targets=[ast.Tuple(elts=[ast.Name(id=n, ctx=ast.Store()) for n in names], ctx=ast.Store())], value=value)

    def visit_If(self, node: ast.If):
        self.generic_visit(node)
        if _has_escape(node.body) or _has_escape(node.orelse):
            return node
        k = next(self.counter)
        names = _assigned(node.body + node.orelse)
        t, f = f"{_PREFIX}if_true_{k}", f"{_PREFIX}if_false_{k}"
        orelse = node.orelse or [ast.Pass()]
        call = _call("if_stmt", node.test, ast.Name(id=t, ctx=ast.Load()), ast.Name(id=f, ctx=ast.Load()),
                     self._init(names), _consts(names))
        return [self._fn(t, names, node.body, names), self._fn(f, names, orelse, names), self._assign(names, call)]

    def visit_While(self, node: ast.While):
        self.generic_visit(node)
        if node.orelse or _has_escape(node.body):
            return node
        k = next(self.counter)
        names = _assigned(node.body)
        c, b = f"{_PREFIX}while_cond_{k}", f"{_PREFIX}while_body_{k}"
        cond_fn = ast.FunctionDef(name=c, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in names], kwonlyargs=[],
                                                            kw_defaults=[], defaults=[]),
                                  body=[ast.Return(value=node.test)], decorator_list=[], returns=None, type_params=[])
        call = _call("while_stmt", ast.Name(id=c, ctx=ast.Load()), ast.Name(id=b, ctx=ast.Load()), self._init(names), _consts(names))
        return [cond_fn, self._fn(b, names, node.body, names), self._assign(names, call)]

    def visit_For(self, node: ast.For):
        self.generic_visit(node)
        it = node.iter
        is_range = isinstance(it, ast.Call) and not it.keywords and 1 <= len(it.args) <= 3 and (
            (isinstance(it.func, ast.Name) and it.func.id == "range") or (isinstance(it.func, ast.Attribute) and it.func.attr == "range"))
        if node.orelse or not isinstance(node.target, ast.Name) or _has_escape(node.body) \
                or (is_range and any(isinstance(a, ast.Starred) for a in it.args)):
            return node
        k = next(self.counter)
        names = [n for n in _assigned(node.body) if n != node.target.id]
        b = f"{_PREFIX}for_body_{k}"
        if is_range:
            call = _call("for_range", it.func, ast.Tuple(elts=list(it.args), ctx=ast.Load()), ast.Name(id=b, ctx=ast.Load()),
                         self._init(names), _consts(names))
        else:  # any other iterable: Python, or a scan over a traced tensor's rows
            call = _call("for_iter", it, ast.Name(id=b, ctx=ast.Load()), self._init(names), _consts(names))
        return [self._fn(b, [node.target.id] + names, node.body, names), self._assign(names, call)]


def _noargs() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])


def _tuple(names: list[str]) -> ast.Tuple:
    return ast.Tuple(elts=[ast.Name(id=n, ctx=ast.Load()) for n in names], ctx=ast.Load())


def _consts(names: list[str]) -> ast.Tuple:
    return ast.Tuple(elts=[ast.Constant(value=n) for n in names], ctx=ast.Load())


def _call(helper: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=ast.Name(id=f"{_PREFIX}rt", ctx=ast.Load()), attr=helper, ctx=ast.Load()),
                    args=list(args), keywords=[])


def convert(fn: Callable) -> Callable:
    """The autograph version of ``fn`` (a new function; ``fn`` is unchanged).

    >>> g = convert(f)     # doctest: +SKIP
    """
    import sys

    try:
        source = textwrap.dedent(inspect.getsource(fn))
        filename = inspect.getsourcefile(fn) or "<autograph>"
        _, first_line = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise IrflowError(f"autograph: the source of {getattr(fn, '__name__', fn)!r} is not available "
                          "(a lambda, or defined in a REPL); use irf.cond / irf.while_loop / irf.scan directly") from None
    tree = ast.parse(source)
    fdef = tree.body[0]
    if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise IrflowError(f"autograph: {fn!r} is not defined by a def statement")
    fdef.decorator_list = []
    fdef.body = [s for stmt in fdef.body for s in _as_list(_Rewriter().visit(stmt))]
    freevars = fn.__code__.co_freevars
    factory = ast.FunctionDef(
        name=f"{_PREFIX}factory",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=f"{_PREFIX}rt")] + [ast.arg(arg=v) for v in freevars],
                           kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=[fdef, ast.Return(value=ast.Name(id=fdef.name, ctx=ast.Load()))], decorator_list=[], returns=None, type_params=[])
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, first_line - 1)
    code = compile(module, filename, "exec")
    ns: dict[str, Any] = {}
    exec(code, fn.__globals__, ns)  # noqa: S102  (the user's own function, rewritten)
    cells = []
    for name, cell in zip(freevars, fn.__closure__ or ()):
        try:
            cells.append(cell.cell_contents)
        except ValueError:
            raise IrflowError(f"autograph: {fn.__name__!r} uses {name!r} from an enclosing function before it is assigned") from None
    new = ns[f"{_PREFIX}factory"](sys.modules[__name__], *cells)
    new.__defaults__, new.__kwdefaults__ = fn.__defaults__, fn.__kwdefaults__
    return functools.wraps(fn)(new)


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def autograph_wrapper(fn: Callable) -> Callable:
    """``fn``, converted on its first call (so closures assigned after decoration are seen)."""
    converted: list[Callable] = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not converted:
            converted.append(convert(fn))
        return converted[0](*args, **kwargs)

    return wrapper


__all__ = ["convert"]

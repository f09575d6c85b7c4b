"""Function transforms built on the tape: grad, value_and_grad, vjp, jvp, jacobian, hessian.

Each works on Python functions of tensors, eagerly (a GradientTape records the call) and
inside traces (the tape's gradient becomes nodes of the traced graph). Higher order comes for
free: the gradient is computed with ordinary ops through ``bind``, so an outer transform's tape
records it.

jvp uses the linearity trick rather than a JVP rule per op: ``u -> vjp_fn(u) = J^T u`` is
linear, so ``J t = d/du <J^T u, t>``: one more reverse pass through the (recorded) gradient.
It costs about two backward passes, needs no second rule per op, and works for every op that
has a VJP rule whose own ops have VJP rules.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from irflow.autodiff.structure import flatten, is_symbolic, unflatten
from irflow.autodiff.symbolic import symbolic_gradients, symbolic_jacobian
from irflow.autodiff.tape import GradientTape, Tensor  # the tape is autodiff's one link to the eager frontend
from irflow.errors import IrflowError
from irflow.ops.dispatch import bind


def _as_tensor(x: Any) -> Any:
    """Leaves of differentiated arguments become Tensors (arrays keep their dtype)."""
    if isinstance(x, Tensor) or is_symbolic(x) or hasattr(x, "_eager_value"):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return Tensor(np.asarray(x))  # NumPy values keep their dtype (np.float64(1.0) stays float64)
    return Tensor(x)


def _argnums(argnums: int | Sequence[int], nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -nargs <= i < nargs:
            raise IrflowError(f"argnums {argnums} out of range for a function called with {nargs} argument(s)")
    return tuple(i % nargs for i in nums)


def _check_scalar(value: Any, where: str) -> None:
    shape = tuple(value.shape) if hasattr(value, "shape") else ()
    if shape != () and any(d != 1 for d in shape):
        raise IrflowError(f"{where}: the function must return a scalar to differentiate, got shape {shape}; "
                          "use irf.vjp or irf.jacobian for non-scalar outputs")


def value_and_grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """A function returning ``(fn(*args), gradient)``; with ``has_aux`` fn returns (value, aux)
    and the result is ``((value, aux), gradient)``, as ``jax.value_and_grad``.

    The gradient mirrors the argument (a tensor, list or dict); a tuple when ``argnums`` is.

    >>> v, g = irf.value_and_grad(lambda x: irf.reduce_sum(x * x))(np.ones(3))   # doctest: +SKIP
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        args = list(args)
        nums = _argnums(argnums, len(args))
        for i in nums:
            leaves, tree = flatten(args[i])
            args[i] = unflatten(tree, [_as_tensor(x) for x in leaves])
        symbolic = any(is_symbolic(x) for i in nums for x in flatten(args[i])[0])
        with GradientTape(watch_accessed_variables=False) as tape:
            for i in nums:
                tape.watch(args[i])
            out = fn(*args, **kwargs)
        value, aux = (out if has_aux else (out, None))
        if has_aux and not (isinstance(out, tuple) and len(out) == 2):
            raise IrflowError("has_aux=True: the function must return a (value, aux) pair")
        _check_scalar(value, getattr(fn, "__name__", "grad"))
        sources = [args[i] for i in nums]
        if symbolic or is_symbolic(value):
            leaves, tree = flatten(sources)
            grads = unflatten(tree, symbolic_gradients([value], leaves))
        else:
            grads = tape.gradient(value, sources)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux) if has_aux else value), g

    wrapped.__name__ = f"value_and_grad_{getattr(fn, '__name__', 'fn')}"
    return wrapped


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The gradient function of a scalar function, as ``jax.grad``.

    >>> dsin = irf.grad(irf.sin); irf.grad(dsin)(np.float64(1.0))   # -sin(1)   # doctest: +SKIP
    """
    vg = value_and_grad(fn, argnums, has_aux)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        (value_aux, g) = vg(*args, **kwargs)
        return (g, value_aux[1]) if has_aux else g

    wrapped.__name__ = f"grad_{getattr(fn, '__name__', 'fn')}"
    return wrapped


def vjp(fn: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(fn(*primals), vjp_fn)`` where ``vjp_fn(cotangent)`` returns one gradient per primal.

    The cotangent mirrors the output (a tensor or a tuple/list of them), as ``jax.vjp``.

    >>> y, f_vjp = irf.vjp(irf.exp, x); (gx,) = f_vjp(irf.ones_like(y))   # doctest: +SKIP
    """
    primals = [unflatten(flatten(p)[1], [_as_tensor(x) for x in flatten(p)[0]]) for p in primals]
    with GradientTape(persistent=True, watch_accessed_variables=False) as tape:
        for p in primals:
            tape.watch(p)
        out = fn(*primals)
    out, aux = (out if has_aux else (out, None))
    outs, _ = flatten(out)
    symbolic = any(is_symbolic(o) for o in outs)

    def vjp_fn(cotangent: Any) -> tuple:
        cts, _ = flatten(cotangent)
        if len(cts) != len(outs):
            raise IrflowError(f"vjp_fn: {len(cts)} cotangent(s) for {len(outs)} output(s)")
        if symbolic:
            leaves, tree = flatten(list(primals))
            return tuple(unflatten(tree, symbolic_gradients(outs, leaves, cts)))
        return tuple(tape.gradient(outs, list(primals), output_gradients=cts))

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jvp(fn: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple:
    """``(fn(*primals), J @ tangents)``: forward mode, by the linearity trick (see the module doc).

    >>> y, dy = irf.jvp(irf.sin, (x,), (t,))      # dy = cos(x) * t   # doctest: +SKIP
    """
    primals = [_as_tensor(p) for p in primals]
    tangents = [_as_tensor(t) for t in tangents]
    if len(primals) != len(tangents):
        raise IrflowError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for p, t in zip(primals, tangents):
        if tuple(p.shape) != tuple(t.shape):
            raise IrflowError(f"jvp: tangent of shape {tuple(t.shape)} for a primal of shape {tuple(p.shape)}")
    if any(is_symbolic(p) for p in primals):
        out = fn(*primals)
        outs, tree = flatten(out)
        us = [bind("zeros_like", o) for o in outs]
        gx = symbolic_gradients(outs, primals, us)
        s = _dot(gx, tangents)
        return out, unflatten(tree, symbolic_gradients([s], us))
    with GradientTape(persistent=True, watch_accessed_variables=False) as outer:
        with GradientTape(watch_accessed_variables=False) as inner:
            for p in primals:
                inner.watch(p)
            out = fn(*primals)
        outs, tree = flatten(out)
        us = [Tensor(np.zeros(np.shape(o.numpy()), o.numpy().dtype)) for o in outs]
        for u in us:
            outer.watch(u)
        gx = inner.gradient(outs, primals, output_gradients=us)
        s = _dot(gx, tangents)
    return out, unflatten(tree, outer.gradient(s, us))


def _dot(xs: Sequence[Any], ys: Sequence[Any]) -> Any:
    total = None
    for x, y in zip(xs, ys):
        term = bind("reduce_sum", bind("mul", x, y), axes=None, keepdims=False)
        total = term if total is None else total + term
    return total


def jacobian(fn: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian function: ``jacobian(f)(x)`` has shape ``f(x).shape + x.shape``.

    Uses ``GradientTape.jacobian`` (vectorized over the one-hot cotangents where it can).

    >>> irf.jacobian(lambda x: irf.exp(x @ x))(x).shape    # (10, 10, 10, 10) for a 10x10 x   # doctest: +SKIP
    """

    def wrapped(*args: Any) -> Any:
        args = [(_as_tensor(a) if not isinstance(a, (list, tuple, dict)) else a) for a in args]
        nums = _argnums(argnums, len(args))
        if any(is_symbolic(args[i]) for i in nums):
            out = fn(*args)
            jac = symbolic_jacobian(out, [args[i] for i in nums])
            return jac[0] if isinstance(argnums, int) else tuple(jac)
        with GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            for i in nums:
                tape.watch(args[i])
            out = fn(*args)
        jac = tape.jacobian(out, [args[i] for i in nums])
        return jac[0] if isinstance(argnums, int) else tuple(jac)

    wrapped.__name__ = f"jacobian_{getattr(fn, '__name__', 'fn')}"
    return wrapped


def hessian(fn: Callable, argnums: int = 0) -> Callable:
    """The Hessian of a scalar function: ``jacobian(grad(fn))``, shape ``x.shape + x.shape``.

    >>> irf.hessian(lambda x: irf.reduce_sum(x ** 3))(x)    # diag(6x)   # doctest: +SKIP
    """
    return jacobian(grad(fn, argnums), argnums)


def stop_gradient(x: Any) -> Any:
    """``x`` with no gradient flowing through it (an op of the IR: ``stop_gradient``).

    >>> irf.grad(lambda x: irf.reduce_sum(irf.stop_gradient(x) * x))(x)   # == x   # doctest: +SKIP
    """
    return bind("stop_gradient", x)

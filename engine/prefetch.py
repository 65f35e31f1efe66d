"""A cache hint for the compiled loops: fetch an array element's line ahead of its use.

A loop that looks up one key after another in a table far bigger than the cache waits for
each lookup's line before it knows where the next branch goes, and a mispredicted branch
throws away the loads the processor had started for the items after it: the lookups go
one at a time. Asking, at item i, for the lines item i + D will read lets D of them be on
their way at once. The hint changes no result (a prefetch is never a fault and writes
nothing), only when the data arrives.

`prefetch(array, index)` is written in the loops as a plain call. Run as Python (never on
a hot path: the loops run only compiled, engine/kernels.py) it does nothing; when a
Kernel compiles a loop that names it, it is replaced by `compiled()`, numba's form of
LLVM's llvm.prefetch (a read, kept in every cache level), which becomes one instruction.
"""

from __future__ import annotations

from typing import Any


def prefetch(array: Any, index: Any) -> None:  # noqa: ARG001 - the compiled form reads them
    """Hint that array[index] is read soon (no effect when run as Python)."""


_COMPILED: Any = None


def compiled() -> Any:
    """The numba intrinsic for prefetch (built once, numba imported only here)."""
    global _COMPILED
    if _COMPILED is None:
        import importlib

        # Typed as Any: numba and llvmlite have no type hints (and are optional).
        ir: Any = importlib.import_module("llvmlite.ir")
        types: Any = importlib.import_module("numba.types")
        cgutils: Any = importlib.import_module("numba.core.cgutils")
        intrinsic: Any = importlib.import_module("numba.extending").intrinsic

        def prefetch_hint(typingctx: Any, array: Any, index: Any) -> Any:
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                array_type = signature.args[0]
                view = context.make_array(array_type)(context, builder, args[0])
                where = cgutils.get_item_pointer(context, builder, array_type, view,
                                                 [args[1]], wraparound=False)
                byte_ptr = ir.IntType(8).as_pointer()
                i32 = ir.IntType(32)
                hint = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
                    "llvm.prefetch.p0i8")
                # (address, 0 = read, 3 = keep in all levels, 1 = data cache)
                builder.call(hint, [builder.bitcast(where, byte_ptr), i32(0), i32(3), i32(1)])
                return context.get_dummy_value()

            return types.void(array, index), codegen

        _COMPILED = intrinsic(prefetch_hint)
    return _COMPILED

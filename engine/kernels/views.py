"""Array views without a C call: numba's ``reshape`` asks a C helper for the
new strides (~100 ns per call), as long as the arithmetic of a small layer,
and the kernels take a few dozen views per training step.  These intrinsics
build the view directly (same memory, same owner, reference counted like any
view).  Both require C-contiguous input; the caller guarantees the sizes."""
from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


@intrinsic
def view_2d(typingctx, flat, rows, cols):
    """The first rows * cols items of a 1-D C-contiguous array as a (rows, cols)
    C-contiguous view.  Requires rows * cols <= flat.size."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"
            and isinstance(rows, types.Integer) and isinstance(cols, types.Integer)):
        return None
    result = flat.copy(ndim=2, layout="C")

    def codegen(context, builder, signature, args):
        src = make_array(signature.args[0])(context, builder, args[0])
        dst = make_array(signature.return_type)(context, builder)
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        c = context.cast(builder, args[2], signature.args[2], types.intp)
        populate_array(dst, data=src.data, shape=[r, c], strides=[builder.mul(c, src.itemsize), src.itemsize],
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, signature.return_type, dst._getvalue())
    return result(flat, rows, cols), codegen


@intrinsic
def view_1d(typingctx, array):
    """A 2-D C-contiguous array as a 1-D view of all its items (row after row)."""
    if not (isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"):
        return None
    result = array.copy(ndim=1, layout="C")

    def codegen(context, builder, signature, args):
        src = make_array(signature.args[0])(context, builder, args[0])
        dst = make_array(signature.return_type)(context, builder)
        rows, cols = (builder.extract_value(src.shape, k) for k in range(2))
        populate_array(dst, data=src.data, shape=[builder.mul(rows, cols)], strides=[src.itemsize],
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, signature.return_type, dst._getvalue())
    return result(array), codegen

"""Flush-to-zero / denormals-are-zero for compiled kernels.

Float32 values below ~1.2e-38 are "denormal".  Dead ReLUs leave momentum and
Adam buffers decaying geometrically towards zero, so they spend hundreds of
steps in that range, and on many x86 CPUs every arithmetic operation on a
denormal operand or result costs a microcode assist (tens to hundreds of
cycles): training slows down by an order of magnitude for no numerical gain.

On x86-64 the MXCSR register controls two bits per thread:

* FTZ (bit 15): denormal *results* are flushed to zero;
* DAZ (bit 6): denormal *inputs* are read as zero.

MXCSR is per thread, so setting it once in Python would not help the
window's worker thread.  Instead every compiled entry point
(``train_steps``, ``evaluate``, ``predict``, ``probe``) calls :func:`enter` first
and :func:`leave` on the way out: whatever thread runs the kernel computes
with FTZ|DAZ, and the caller's floating-point environment is unchanged
afterwards (NumPy code in the same thread still sees IEEE denormals).  Only
values below 1.2e-38 (float32) or 2.2e-308 (float64) are affected, far below
anything that changes a weight: results differ from strict IEEE arithmetic
only where a denormal would have appeared.

Both are Numba intrinsics (``stmxcsr`` / ``ldmxcsr`` as inline assembly),
compiled into the caller and cached with it.  On
other architectures they compile to nothing (``enter`` returns 0), so the
kernels stay portable; ARM's FPCR.FZ is not touched.
"""
import platform

import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

FTZ = 0x8000   # MXCSR bit 15: flush denormal results to zero
DAZ = 0x0040   # MXCSR bit 6: treat denormal inputs as zero
FTZ_DAZ = FTZ | DAZ

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
if X86:
    llvm.initialize_native_asmparser()   # Numba's JIT does not set up inline-assembly parsing itself


def _mxcsr_asm(builder, instruction, slot):
    """``stmxcsr``/``ldmxcsr`` on the 4 bytes at ``slot``, as inline assembly with a
    memory clobber: a compiler barrier, so LLVM cannot move the kernel's array
    loads and stores (where all the arithmetic starts and ends) across it.
    (The ``llvm.x86.sse.*mxcsr`` intrinsics only touch their own argument, and
    LLVM moved floating-point work across them.)"""
    ptr = builder.bitcast(slot, ir.PointerType(ir.IntType(8)))
    fnty = ir.FunctionType(ir.VoidType(), [ptr.type])
    builder.asm(fnty, instruction + " ($0)", "r,~{memory}", [ptr], True)


def _read(builder):
    slot = cgutils.alloca_once(builder, ir.IntType(32))
    _mxcsr_asm(builder, "stmxcsr", slot)
    return builder.load(slot)


def _write(builder, value):
    slot = cgutils.alloca_once(builder, ir.IntType(32))
    builder.store(value, slot)
    _mxcsr_asm(builder, "ldmxcsr", slot)


@intrinsic
def _get_control(typingctx):
    """The calling thread's MXCSR (0 on non-x86)."""
    def codegen(context, builder, signature, args):
        if not X86:
            return ir.Constant(ir.IntType(32), 0)
        return _read(builder)
    return types.uint32(), codegen


@intrinsic
def _set_control(typingctx, value):
    """Load ``value`` into the calling thread's MXCSR (no-op on non-x86)."""
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if X86:
            v = context.cast(builder, args[0], signature.args[0], types.uint32)
            _write(builder, v)
        return context.get_dummy_value()
    return types.void(value), codegen


@njit(cache=True, nogil=True)
def control_word():
    """The calling thread's MXCSR (0 on non-x86 machines)."""
    return _get_control()


@njit(cache=True, nogil=True)
def enter():
    """Turn on FTZ and DAZ for the calling thread; returns the previous
    control word for :func:`leave`."""
    previous = _get_control()
    if X86:
        _set_control(previous | FTZ_DAZ)
    return previous


@njit(cache=True, nogil=True)
def leave(previous):
    """Restore the control word :func:`enter` returned."""
    if X86:
        _set_control(previous)


@njit(cache=True, nogil=True)
def flushing():
    """True when the calling thread currently flushes denormals (FTZ and DAZ both on)."""
    return X86 and (_get_control() & FTZ_DAZ) == FTZ_DAZ

"""Per-agent random streams: numpy Generators drawn from inside compiled code.

Each agent owns a ``numpy.random.Generator(PCG64(child))`` spawned from the run's SeedSequence.
Compiled kernels draw from it through the bit generator's own C ``next_double`` (the address
numpy publishes in ``bit_generator.ctypes``), so the Python-visible Generator advances exactly as
if numpy had drawn; addresses are passed as arguments, which keeps the kernels cacheable.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _next_double(typingctx, fn_addr, state_addr):
    sig = types.float64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.DoubleType(), [ptr])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(fn, [builder.inttoptr(args[1], ptr)])

    return sig, codegen


def spawn_generators(seeds: list[np.random.SeedSequence]) -> list[np.random.Generator]:
    """One PCG64 Generator per SeedSequence child (the only bit generator the kernels accept)."""
    return [np.random.Generator(np.random.PCG64(s)) for s in seeds]


def stream_addresses(gens: list[np.random.Generator]) -> tuple[int, np.ndarray]:
    """(address of PCG64 next_double, state address per generator) for the kernels.

    The caller must keep ``gens`` alive while kernels use the addresses.
    """
    for g in gens:
        if not isinstance(g.bit_generator, np.random.PCG64):
            raise TypeError("agent generators must use the PCG64 bit generator")
    if not gens:
        return 0, np.zeros(0, dtype=np.uint64)
    fn = ctypes.cast(gens[0].bit_generator.ctypes.next_double, ctypes.c_void_p).value
    states = np.array([g.bit_generator.ctypes.state_address for g in gens], dtype=np.uint64)
    return int(fn), states


@njit(cache=True, inline="always")
def uniform(fn, state):
    """U[0, 1) from the stream."""
    return _next_double(np.uint64(fn), state)


@njit(cache=True)
def normal(fn, state):
    """Standard normal by Box-Muller (two uniforms, fixed consumption)."""
    u1 = 1.0 - uniform(fn, state)
    u2 = uniform(fn, state)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def exponential(fn, state, mean):
    return -mean * math.log(1.0 - uniform(fn, state))


@njit(cache=True)
def poisson(fn, state, lam, cap):
    """Poisson(lam) by inversion from one uniform, capped at cap."""
    u = uniform(fn, state)
    p = math.exp(-lam)
    cdf = p
    k = 0
    while u > cdf and k < cap:
        k += 1
        p *= lam / k
        cdf += p
    return k

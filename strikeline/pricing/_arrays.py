"""Broadcasting and cache-sized chunking shared by the vectorised pricing kernels.

The hot kernels (Black prices, implied volatility) evaluate a dozen or more numpy expressions
per element. On arrays much larger than the CPU cache every one of those expressions streams
its operands from main memory, so the kernels are applied to blocks of ``CHUNK`` elements,
which keeps all temporaries of one block in the L2 cache.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

CHUNK = 8192
"""Default elements per block handed to a kernel (64 KiB per float64 temporary)."""

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def broadcast_flat(*values: ArrayLike) -> tuple[tuple[int, ...], list[FloatArray]]:
    """Broadcast ``values`` together and flatten them for chunked evaluation.

    Returns the common broadcast shape and one float64 array per input: 0-d arrays stay 0-d
    (numpy broadcasts them against every block for free), arrays that already have the full
    shape are flattened without a copy when contiguous, and the rest are materialised.
    """
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flat: list[FloatArray] = []
    for a in arrays:
        if a.ndim == 0:
            flat.append(a)
        elif a.shape == shape:
            flat.append(np.ascontiguousarray(a).reshape(-1))
        else:
            flat.append(np.broadcast_to(a, shape).reshape(-1))
    return shape, flat


def call_sign(is_call: ArrayLike) -> FloatArray:
    """Map a (broadcastable) call flag to the option sign: +1.0 for calls, -1.0 for puts."""
    return np.where(np.asarray(is_call, dtype=bool), 1.0, -1.0)


def apply_chunked(
    kernel: Callable[..., FloatArray],
    shape: tuple[int, ...],
    flat: list[FloatArray],
    chunk: int = CHUNK,
) -> FloatArray | np.float64:
    """Evaluate ``kernel`` block by block over flattened inputs and restore ``shape``.

    ``kernel`` receives one argument per entry of ``flat`` (a block slice, or the 0-d array
    itself) and must return a float64 array of the block's length (or a 0-d result that
    broadcasts to it). Floating-point warnings are silenced: kernels evaluate both sides of
    ``np.where`` selections and map invalid inputs to NaN themselves. A 0-d ``shape`` returns
    a numpy scalar.
    """
    size = int(np.prod(shape, dtype=np.int64))
    out = np.empty(size, dtype=np.float64)
    with np.errstate(all="ignore"):
        for start in range(0, size, chunk):
            stop = min(start + chunk, size)
            args = [a if a.ndim == 0 else a[start:stop] for a in flat]
            out[start:stop] = kernel(*args)
    result = out.reshape(shape)
    return result[()] if shape == () else result

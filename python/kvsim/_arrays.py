"""NumPy in, pointers out: dtype/shape checks with clear messages, no copy when
the array is already C-contiguous of the right dtype."""
import ctypes
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike


def as_c(name: str, a: ArrayLike, dtype: "type[np.generic]", ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise ValueError("%s: expected %d dimensions, got shape %s" % (name, ndim, arr.shape))
    if arr.dtype != dtype and not np.can_cast(arr.dtype, dtype, casting="same_kind"):
        raise TypeError("%s: dtype %s cannot be used as %s" % (name, arr.dtype, np.dtype(dtype)))
    return np.ascontiguousarray(arr, dtype=dtype)


def want(name: str, arr: np.ndarray, axis: int, n: int, what: str) -> None:
    if arr.shape[axis] != n:
        raise ValueError("%s: axis %d is %d, expected %d (%s)" % (name, axis, arr.shape[axis], n, what))


def ptr(arr: np.ndarray, ctype: Any) -> Any:
    return arr.ctypes.data_as(ctypes.POINTER(ctype))


def shape_str(s: Sequence[int]) -> str:
    return "(" + ", ".join(str(x) for x in s) + ")"

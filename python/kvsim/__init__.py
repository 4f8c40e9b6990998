"""kvsim from Python: the exact RocketKV reference (kvsim.ref), golden files
(kvsim.golden) and the simulator (params, predict, plan, sweep), over the C
library libkvsim.so through ctypes.

    >>> import kvsim
    >>> kvsim.params("llama3.1-8b", "rocketkv", 1024, 32768)["params"]["topk"]
"""
from . import golden, ref
from ._lib import KvsimError, version
from .sim import params, plan, predict, read_csv, sweep

__version__ = version()
__all__ = ["golden", "ref", "params", "predict", "plan", "sweep", "read_csv", "KvsimError", "__version__"]

"""Loads libkvsim.so and declares the C API (capi/kva.h) for ctypes."""
import ctypes
import os
from typing import Any, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))

ERR_LEN = 768  # KVA_ERR_LEN


class KvsimError(RuntimeError):
    """An error reported by the C library; the message is its one line."""


def _find(name: str, env: str) -> str:
    cands = [os.environ.get(env), os.path.join(_HERE, "_native", name), os.path.join(_REPO, "build", name)]
    for c in cands:
        if c and os.path.exists(c):
            return c
    raise KvsimError("%s not found (looked at $%s, %s and %s); build it with `make build/%s`"
                     % (name, env, cands[1], cands[2], name))


def data_dir() -> Optional[str]:
    """The bundled model/GPU/engine YAML files (installed package) or None (repository checkout)."""
    d = os.path.join(_HERE, "_data")
    return d if os.path.isdir(d) else None


_data = data_dir()
if _data and not os.environ.get("KVSIM_DATA"):
    os.environ["KVSIM_DATA"] = _data

lib = ctypes.CDLL(_find("libkvsim.so", "KVSIM_LIB"))

_c = ctypes
_i64, _f, _d, _i32, _s = _c.c_int64, _c.POINTER(_c.c_float), _c.POINTER(_c.c_double), _c.POINTER(_c.c_int32), \
    _c.c_char_p
_json = _c.POINTER(_c.c_void_p)


class GldStage(_c.Structure):
    _fields_ = [("name", _c.c_char * 24), ("tensors", _i64), ("checked", _i64), ("failed", _i64),
                ("missing", _i64), ("worst_ratio", _c.c_double), ("detail", _c.c_char * 512)]


class GldResult(_c.Structure):
    _fields_ = [("nstages", _c.c_int), ("st", GldStage * 16), ("checked", _i64), ("passed", _c.c_int)]


def _decl(name: str, *args: Any) -> Any:
    fn = getattr(lib, name)
    fn.argtypes = list(args)
    fn.restype = _c.c_int
    return fn


lib.kva_version.restype = _c.c_char_p
lib.kva_version.argtypes = []
lib.kva_free.argtypes = [_c.c_void_p]
lib.kva_free.restype = None
_decl("kva_params", _s, _s, _i64, _i64, _i64, _json, _s)
_decl("kva_predict", _s, _s, _s, _i64, _i64, _i64, _i64, _c.c_int, _s, _json, _s)
_decl("kva_plan", _s, _s, _s, _i64, _i64, _i64, _c.c_int, _s, _c.c_double, _c.c_double, _json, _s)
_decl("kva_sweep", _s, _s, _c.c_int, _s)
_decl("kva_stage1_select", _f, _i64, _c.c_int, _c.c_int, _f, _i64, _i64, _i64, _c.c_int, _c.c_int, _d, _d, _i32,
      _c.POINTER(_i64), _s)
_decl("kva_hsa_select", _f, _c.c_int, _c.c_int, _f, _i64, _i64, _i64, _i64, _c.c_int, _i64, _i32,
      _c.POINTER(_i64), _i32, _c.POINTER(_c.c_int), _d, _d, _s)
_decl("kva_attend", _f, _c.c_int, _c.c_int, _f, _f, _i64, _i32, _i64, _f, _s)
_decl("kva_decode", _s, _i64, _i64, _f, _f, _i64, _i64, _c.c_int, _c.c_int, _f, _i64, _f, _f, _i32, _c.POINTER(_i64), _s)
_decl("kva_golden_write", _s, _s, _i64, _i64, _i64, _c.c_int, _c.c_int, _i64, _c.c_uint64, _s, _s)
_decl("kva_golden_compare", _s, _s, _c.c_int, _c.c_double, _c.POINTER(GldResult), _s)


def err_buf() -> "ctypes.Array[ctypes.c_char]":
    return _c.create_string_buffer(ERR_LEN)


def check(rc: int, err: "ctypes.Array[ctypes.c_char]") -> None:
    if rc != 0:
        raise KvsimError(err.value.decode(errors="replace"))


def call_json(fn: Any, *args: Any) -> str:
    """Calls a kva_* function that returns JSON text; returns the text."""
    out = _c.c_void_p()
    err = err_buf()
    check(fn(*args, _c.byref(out), err), err)
    if not out.value:
        raise KvsimError("%s returned no text" % getattr(fn, "__name__", "the library"))
    try:
        return _c.string_at(out.value).decode()
    finally:
        lib.kva_free(out)


def enc(s: str) -> bytes:
    return s.encode()


def version() -> str:
    """The C library's version (KV_VERSION), which is the package's."""
    v: bytes = lib.kva_version()
    return v.decode()


def binary() -> str:
    """Path of the kvsim CLI: the bundled one, $KVSIM_BIN or the repository's build/kvsim."""
    return _find("kvsim", "KVSIM_BIN")

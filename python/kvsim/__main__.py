"""python -m kvsim ARGS: runs the kvsim CLI (bundled with the package) with ARGS."""
import os
import sys

from . import _lib


def main() -> None:
    exe = _lib.binary()
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()

"""Build hook: the version is the C library's (KV_VERSION in common/kv_common.h);
libkvsim.so and the kvsim binary are built with make in the repository and
copied into the package with the model/GPU/engine YAML files they read."""
import os
import re
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def c_version():
    with open(os.path.join(ROOT, "common", "kv_common.h")) as f:
        m = re.search(r'#define KV_VERSION "([^"]+)"', f.read())
    if not m:
        raise RuntimeError("KV_VERSION not found in common/kv_common.h")
    return m.group(1)


class BuildNative(build_py):
    """Builds the library and the CLI, then copies them (and the YAML data)
    into the build tree, never into the source tree."""

    def run(self):
        super().run()
        build = os.environ.get("KVSIM_BUILD", os.path.join(ROOT, "build"))
        subprocess.check_call(["make", "-C", ROOT, "-j2", "BUILD=" + build,
                               os.path.join(build, "libkvsim.so"), os.path.join(build, "kvsim")])
        pkg = os.path.join(self.build_lib, "kvsim")
        native = os.path.join(pkg, "_native")
        os.makedirs(native, exist_ok=True)
        for f in ("libkvsim.so", "kvsim"):
            shutil.copy2(os.path.join(build, f), os.path.join(native, f))
        for sub in ("models", "hwmodels", "engines"):
            dst = os.path.join(pkg, "_data", sub)
            os.makedirs(dst, exist_ok=True)
            for f in os.listdir(os.path.join(ROOT, sub)):
                if f.endswith(".yaml"):
                    shutil.copy2(os.path.join(ROOT, sub, f), os.path.join(dst, f))


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(version=c_version(), cmdclass={"build_py": BuildNative}, distclass=BinaryDistribution)

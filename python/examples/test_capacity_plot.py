"""The capacity-plot example runs as a script, writes its PNG and draws what
kvsim.plan says."""
import json
import os
import struct
import subprocess
import sys

import kvsim

HERE = os.path.dirname(os.path.abspath(__file__))


def test_capacity_plot_writes_its_png(tmp_path):
    out = tmp_path / "cap.png"
    text = subprocess.run([sys.executable, os.path.join(HERE, "capacity_plot.py"), str(out)], check=True,
                          capture_output=True, text=True).stdout
    with open(out, "rb") as f:
        png = f.read()
    # PNG signature, then the IHDR chunk: width and height (figsize 6 x 4 inches at 100 dpi)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (600, 400)
    assert os.path.getsize(out) > 10000  # three lines, axes, labels: not an empty canvas
    # the script prints each method's batches; they are kvsim.plan's
    lines = dict(ln.split(" ", 1) for ln in text.strip().splitlines())
    assert set(lines) == {"full", "snapkv-gqa", "rocketkv"}
    for method, batches in lines.items():
        want = [kvsim.plan("llama3.1-8b", "h100-sxm", method, 1024, c)["max_batch"] for c in
                (4096, 8192, 16384, 32768, 65536, 131072 - 64)]
        assert batches == str(want), method
    full, rocket = json.loads(lines["full"]), json.loads(lines["rocketkv"])
    assert all(a <= b for a, b in zip(full, rocket)) and rocket[-1] > full[-1]

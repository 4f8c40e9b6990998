"""The capacity-plot example runs and draws what kvsim.plan says."""
import os
import runpy

import kvsim


def test_capacity_plot(tmp_path):
    mod = runpy.run_path(os.path.join(os.path.dirname(__file__), "capacity_plot.py"))
    out = str(tmp_path / "cap.png")
    rows = mod["main"](out)
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert rows["rocketkv"][-1] > rows["full"][-1]
    assert rows["full"][0] == kvsim.plan("llama3.1-8b", "h100-sxm", "full", 1024, 4096)["max_batch"]

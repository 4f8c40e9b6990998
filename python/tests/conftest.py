"""Shared fixtures, and the suite's count enforced like Criterion's: fewer
passing tests than MIN_PASSED, or any skipped test, fails the session."""
import pytest

import kvsim

MIN_PASSED = 57


def pytest_configure(config):
    """Under scripts/ci_python.sh the installed wheel is what is tested, not the source tree."""
    import os
    if os.environ.get("KVSIM_EXPECT_INSTALLED") and "site-packages" not in kvsim.__file__:
        raise pytest.UsageError("kvsim imported from %s, not from the installed wheel" % kvsim.__file__)


def pytest_sessionfinish(session, exitstatus):
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or session.config.option.collectonly or session.config.getoption("-k", default=None):
        return
    passed = len(tr.stats.get("passed", []))
    skipped = len(tr.stats.get("skipped", []))
    if passed < MIN_PASSED or skipped:
        tr.write_line("kvsim: %d passed (at least %d required), %d skipped (none allowed)"
                      % (passed, MIN_PASSED, skipped), red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def goldens(tmp_path_factory):
    """Golden directories of several methods (2 steps, KV heads 0 and all)."""
    out = {}
    for method, budget, context, kvh in (("rocketkv", 96, 900, -1), ("hsa", 128, 700, 1), ("snapkv", 128, 600, 0),
                                         ("snapkv-gqa", 128, 600, 0), ("full", 64, 300, 0),
                                         ("streaming", 64, 400, 0)):
        d = tmp_path_factory.mktemp(method)
        out[method] = kvsim.golden.write(str(d), "smollm2-135m", method, budget, context, layer=1, kv_head=kvh,
                                         steps=2, seed=5)
    return out

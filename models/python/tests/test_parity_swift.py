"""Runs check_parity.sh (Swift trainer vs scikit-learn, end to end) when a built `nudge` is at hand:
NUDGE_BIN, or the repository's .build/release/nudge or .build/debug/nudge. Skipped otherwise, unless NUDGE_PARITY_REQUIRED is set (models/python/test.sh sets it)."""

import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def nudge_binary():
    candidates = [os.environ.get("NUDGE_BIN", "")] + [os.path.join(ROOT, ".build", c, "nudge") for c in ("release", "debug")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def test_swift_and_sklearn_agree(tmp_path):
    if nudge_binary() is None:
        if os.environ.get("NUDGE_PARITY_REQUIRED"):
            pytest.fail("no built nudge: run `swift build` first or set NUDGE_BIN")
        pytest.skip("no built nudge (set NUDGE_BIN or run swift build)")
    env = dict(os.environ, NUDGE_BIN=nudge_binary(), WORK=str(tmp_path))
    result = subprocess.run(["bash", os.path.join(HERE, "..", "check_parity.sh")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count('"ok": true') == 2

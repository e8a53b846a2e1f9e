"""The pure parts of benchmarks/rlif_trigger_probe.py: triggers and the window before a fall."""

import importlib.util
import os
import sys

import numpy as np
import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "rlif_trigger_probe.py")


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("rlif_trigger_probe", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_trigger_hits_relative_and_absolute(probe):
    # At Q ~ 20 the relative test needs a gap above 0.6; the absolute one 0.1.
    q_exp = np.array([20.0, 20.0, 1.0])
    q_pi = np.array([19.8, 19.0, 0.95])
    hits = probe.trigger_hits(q_pi, q_exp, alphas=[0.97], deltas=[0.1])
    np.testing.assert_array_equal(hits["alpha=0.97"], [False, True, True])
    np.testing.assert_array_equal(hits["delta=0.1"], [True, True, False])


def test_fall_window_keeps_decision_steps_before_a_learner_fall(probe):
    f, t = False, True
    flags = np.array([f, f, t, t, t, t, f, f])
    starts = np.array([f, f, t, f, f, f, f, f])
    # Window of 7: steps 1..7; takeover steps 3-5 were never the learner's.
    np.testing.assert_array_equal(probe.fall_window(flags, starts, True, 7), [1, 2, 6, 7])
    assert probe.fall_window(flags, starts, False, 7).size == 0  # time limit, no fall
    assert probe.fall_window(flags[:5], starts[:5], True, 7).size == 0  # expert acted last

"""Shared test set-up: headless MuJoCo, quiet TensorFlow, small helpers."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

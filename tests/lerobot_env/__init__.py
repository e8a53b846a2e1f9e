"""A virtual environment with the real `lerobot` package, for the LeRobot round-trip test."""

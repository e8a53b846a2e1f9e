"""Readers that turn external datasets (D4RL, ...) into rlif-data RLDS episodes."""

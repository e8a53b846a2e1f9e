"""Environments: Gymnasium MuJoCo tasks seen through dm_env (what envlogger wraps)."""

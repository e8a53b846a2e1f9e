"""JAX/Flax trainers: RLPD and imitation baselines, the round driver."""

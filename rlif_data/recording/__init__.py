"""Recording: envlogger rollouts into crash-safe TFDS/RLDS episode stores."""

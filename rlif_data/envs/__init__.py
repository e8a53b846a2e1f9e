"""Environments: Gymnasium MuJoCo tasks seen through dm_env (what envlogger wraps).

Importing this package registers the project's own Gymnasium ids (see
`register_envs`), so ``make_dm_env("InvertedPendulumPushed-v5")`` and
``rlif-data record --env InvertedPendulumPushed-v5`` work without further
imports. Registration only names an entry point: MuJoCo loads on ``make``.
"""

PUSHED_PENDULUM_ID = "InvertedPendulumPushed-v5"
"""InvertedPendulum-v5 with a random pole push every 50 steps (rlif_data.envs.pushed_pendulum)."""


def register_envs() -> None:
    """Register the project's Gymnasium environments; a second call does nothing."""
    import gymnasium as gym

    if PUSHED_PENDULUM_ID not in gym.registry:
        gym.register(
            id=PUSHED_PENDULUM_ID,
            entry_point="rlif_data.envs.pushed_pendulum:PushedInvertedPendulumEnv",
            max_episode_steps=1000,
        )


register_envs()

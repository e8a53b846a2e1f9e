"""Record one RLIF round: the round's policy acts, the simulated expert intervenes.

The same parts as `rlif-data record` (rlif_data.recording), assembled for the
round driver: the learner is a policy directory, each episode's
`policy_version` is the policy's registry ref (so `rlif-data lineage` walks
data -> policy -> data), and the intervention model is value-based with a
Q^ref critic or random.
"""

from __future__ import annotations

from typing import Optional

from rlif_data import intervention as iv
from rlif_data import schema as sc


def make_intervention(kind: str, *, rate: float, alpha: float, beta: float,
                      qref: Optional[str], seed: int) -> iv.InterventionModel:
    """The intervention model a rounds config names.

    Args:
      kind: "value" (decide every step), "value-official" (decide outside
        takeovers; 4-step takeovers), "random" (paper §3.2) or "random-official".
      rate: target rate of the random models.
      alpha: relative margin of the value-based models.
      beta: intervention probability past the margin.
      qref: a run directory, policy directory or registry ref carrying a critic.
      seed: the model's seed.

    Raises:
      ValueError: unknown kind, or a value-based kind without `qref`.
    """
    if kind in ("random", "random-official"):
        variant = "official" if kind == "random-official" else "paper"
        return iv.make_random_model(rate, variant=variant, seed=seed)
    if kind not in ("value", "value-official"):
        raise ValueError(f"unknown intervention {kind!r}")
    if not qref:
        raise ValueError("value-based intervention needs a Q^ref critic (--qref)")
    from rlif_data.policies.critic import load_q_function

    q_ref = load_q_function(qref)
    if kind == "value":
        return iv.ValueBased(q_ref, alpha=alpha, beta=beta, seed=seed)
    return iv.ValueBased(q_ref, alpha=alpha, beta=beta, seed=seed,
                         takeover_steps=iv.OFFICIAL_TAKEOVER_STEPS)


def record_round(*, env_id: str, out: str, policy_dir: str, policy_ref: str, expert: str,
                 intervention: str, rate: float, alpha: float, beta: float,
                 qref: Optional[str], root: Optional[str], episodes: int, round: int, seed: int,
                 max_episode_steps: Optional[int], progress: bool = True):
    """Record `episodes` episodes of a round into `out`.

    Returns:
      The recorder's `SessionSummary`.
    """
    del root  # refs in `qref` resolve through the default registry resolvers
    from rlif_data.envs.gym_dm_env import make_dm_env
    from rlif_data.policies import from_spec, load_mlp_policy
    from rlif_data.recording.recorder import SessionInfo, record_session

    env = make_dm_env(env_id, seed=seed, max_episode_steps=max_episode_steps)
    space = env.gym_env.action_space
    obs_dim = env.gym_env.observation_space.shape[0]
    schema = sc.vector_schema(obs_dim, space.shape[0])
    learner = load_mlp_policy(policy_dir)
    expert_policy = from_spec(expert, space, env_id=env_id, seed=seed)
    model = make_intervention(intervention, rate=rate, alpha=alpha, beta=beta, qref=qref,
                              seed=seed)
    session = SessionInfo(env_id=env_id, operator=f"simulated:{expert}", round=round,
                          policy_version=policy_ref, seed=seed)
    return record_session(env, out, schema, learner, expert_policy, model, session, episodes,
                          progress=progress)

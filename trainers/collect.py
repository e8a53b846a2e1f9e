"""Record one RLIF round: the round's policy acts, the simulated expert intervenes.

The same parts as `rlif-data record` (`rlif_data.recording.sim`), with the
learner given as a published policy: each episode's `policy_version` is the
policy's registry ref, so `rlif-data lineage` walks data -> policy -> data.
"""

from __future__ import annotations

from typing import Optional


def record_round(*, env_id: str, out: str, policy_dir: str, policy_ref: str, expert: str,
                 intervention: str,
                 rate: float, alpha: float, beta: float, qref: Optional[str], episodes: int,
                 round: int, seed: int, max_episode_steps: Optional[int],
                 progress: bool = True, delta: Optional[float] = None):
    """Record `episodes` episodes of a round into `out`.

    Args:
      env_id: the environment.
      out: the recording directory.
      policy_dir: the learner's policy directory (a published version's path).
      policy_ref: its registry ref (``name:version``), stored with each episode.
      expert: the simulated expert's spec.
      intervention: a `rlif_data.recording.sim.INTERVENTIONS` name.
      rate, alpha, beta, qref: the intervention model's parameters.
      episodes: episodes to record.
      round: the round number stored with each episode.
      seed: base seed; episode i uses seed + i.
      max_episode_steps: the time limit.
      progress: show a progress bar.
      delta: absolute trigger of the value-based models (replaces `alpha` when set).

    Returns:
      The recorder's `SessionSummary`.
    """
    from rlif_data.recording.sim import RecordConfig, record_from_config

    config = RecordConfig(
        env_id=env_id, out=out, episodes=episodes, intervention=intervention, rate=rate,
        learner=policy_dir, policy_version=policy_ref, expert=expert, seed=seed,
        max_episode_steps=max_episode_steps,
        round=round, operator=f"simulated:{expert}", qref=qref, alpha=alpha, beta=beta,
        delta=delta)
    return record_from_config(config, progress=progress)

"""The algorithms `rlif-data train` knows, each as data + learner + export, by name.

* ``rlpd`` -- RLIF's learner: RLPD (SAC, LayerNorm critic ensemble, U critic
  steps per update) on the main data (RLIF rewards by default), each batch
  mixed with an offline prior at `RLPDConfig.offline_ratio` when one is given.
* ``bc`` -- behaviour cloning of every included transition.
* ``hg-dagger`` -- behaviour cloning of the expert-controlled steps
  (`intervention`), aggregated over every round the data holds.
* ``dagger`` -- behaviour cloning of every visited state labelled with the
  expert's action: the data must be a `dagger` view (``rlif-data relabel
  --view dagger``), where `action` already holds that label.

All learners work in actions scaled to [-1, 1] with the evaluation
environment's bounds and export a `TanhMLP` that rescales back, so the
exported policy runs in the environment's own units.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import numpy as np

from rlif_data import lineage
from trainers.run_dir import TrainingError

VECTOR_ONLY = ("this trainer takes vector observations; camera datasets need an image encoder, "
               "which rlif-data does not have yet")


@dataclasses.dataclass
class TrainData:
    """What a run trains on.

    Attributes:
      sampler: ``sample(rng) -> batch`` with actions scaled to [-1, 1].
      obs_dim: observation size.
      action_dim: action size.
      action_low: the environment's lower action bounds.
      action_high: the environment's upper action bounds.
      env_id: the environment the data came from.
      sources: one JSON record per dataset (ref, resolved version, hash, view, counts, role).
    """

    sampler: Callable[[np.random.Generator], dict[str, Any]]
    obs_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    env_id: str
    sources: list[dict[str, Any]]


def _env_of(path: str) -> str:
    from rlif_data import schema as sc
    from rlif_data.recording.reader import EpisodeReader

    with EpisodeReader(path, repair=False) as reader:
        if not len(reader):
            raise TrainingError(f"{path} holds no episodes; record or ingest some first")
        return str(reader.summary(0)[sc.ENV_ID])


def _action_bounds(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    from rlif_data.envs.gym_dm_env import make_gym_env

    env = make_gym_env(env_id)
    try:
        space = env.action_space
        return np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    finally:
        env.close()


def _load(refs, reward: str, config, role: str):
    from trainers.data import load_transitions

    transitions, loaded = load_transitions(list(refs), reward=reward, root=config.root,
                                           progress=False,
                                           invalid_episodes=config.invalid_episodes)
    if isinstance(transitions.observations, dict):
        raise TrainingError(f"{', '.join(refs)}: {VECTOR_ONLY}")
    return transitions, [{**s.to_json(), "role": role, "reward": reward} for s in loaded]


def _scaled(batch: dict[str, Any], low: np.ndarray, high: np.ndarray) -> dict[str, Any]:
    from trainers.data import normalize_actions

    out = {k: v for k, v in batch.items() if k != "intervention"}
    out["actions"] = normalize_actions(batch["actions"], low, high)
    return out


def _base(config, transitions, sources) -> dict[str, Any]:
    env_id = config.env_id or _env_of(sources[0]["path"])
    low, high = _action_bounds(env_id)
    if len(low) != transitions.action_dim:
        raise TrainingError(
            f"{sources[0]['ref']} has {transitions.action_dim}-dim actions but {env_id} takes "
            f"{len(low)}; give the matching --env")
    return {"obs_dim": int(transitions.observations.shape[-1]),
            "action_dim": int(transitions.action_dim), "action_low": low,
            "action_high": high, "env_id": env_id}


class RLPD:
    """RLPD on RLIF data (see module doc)."""

    name = "rlpd"

    def agent_config(self, config):
        """The `RLPDConfig` of a run."""
        from trainers.configs import RLPDConfig

        return RLPDConfig.from_json_dict(config.agent) if config.agent else RLPDConfig()

    def load(self, config) -> TrainData:
        """The main data (online source) and the offline prior, mixed as RLPD samples them."""
        from trainers.data import MixedSampler

        agent = self.agent_config(config)
        online, sources = _load(config.dataset, config.reward, config, "online")
        offline = None
        if config.offline:
            offline, more = _load(config.offline, config.offline_reward, config, "offline")
            sources += more
        ratio = agent.offline_ratio if offline is not None else 0.0
        sampler = MixedSampler(offline, online, offline_ratio=ratio,
                               offline_name=", ".join(config.offline) or "offline",
                               online_name=", ".join(config.dataset))
        base = _base(config, online, sources)
        low, high = base["action_low"], base["action_high"]

        def sample(rng):
            return _scaled(sampler.sample(rng, agent.batch_size, agent.utd_ratio), low, high)

        return TrainData(sampler=sample, sources=sources, **base)

    def create(self, config, data: TrainData):
        """A fresh `RLPDLearner`."""
        from trainers.agents.rlpd import RLPDLearner

        return RLPDLearner.create(config.seed, data.obs_dim, data.action_dim,
                                  self.agent_config(config))

    def update(self, learner, batch):
        """One RLPD update (U critic steps + actor + temperature)."""
        return learner.update(batch)

    def act_fn(self, learner, data: TrainData):
        """Deterministic actions in the environment's units."""
        from trainers.data import denormalize_actions

        return lambda obs: denormalize_actions(learner.eval_actions(obs), data.action_low,
                                               data.action_high)

    def export(self, learner, data: TrainData, out: str, config) -> str:
        """The actor as a policy, and the critic beside it (Q^ref for value-based intervention)."""
        from rlif_data.policies import save_mlp_policy
        from rlif_data.policies.critic import CRITIC_DIRNAME
        from trainers.agents.rlpd.export import export_policy, save_critic

        policy_config, variables = export_policy(learner, data.action_low, data.action_high)
        save_mlp_policy(out, policy_config, variables, overwrite=True)
        # A resumed run re-exports its final state over the earlier export.
        save_critic(os.path.join(out, CRITIC_DIRNAME), learner, data.action_low,
                    data.action_high, overwrite=True)
        return out


class BehaviourCloning:
    """BC and its interactive variants (see module doc).

    Args:
      name: "bc", "hg-dagger" or "dagger".
    """

    def __init__(self, name: str):
        self.name = name

    def agent_config(self, config):
        """The `BCConfig` of a run."""
        from trainers.configs import BCConfig

        return BCConfig.from_json_dict(config.agent) if config.agent else BCConfig()

    def _select(self, transitions, sources) -> np.ndarray:
        if self.name == "dagger":
            for source in sources:
                if source.get("view") != "dagger":
                    raise TrainingError(
                        f"{source['ref']} is a {lineage.describe_view(source.get('view'))} "
                        "dataset; DAgger needs the expert's labels: relabel the recordings with "
                        "`rlif-data relabel --view dagger` and train on that")
            return np.arange(len(transitions))
        if self.name == "hg-dagger":
            rows = np.flatnonzero(np.asarray(transitions.intervention, bool))
            if not len(rows):
                raise TrainingError(
                    f"{', '.join(s['ref'] for s in sources)}: no expert-controlled transitions "
                    "to learn from (HG-DAgger trains on the steps where the expert intervened)")
            return rows
        return np.arange(len(transitions))

    def load(self, config) -> TrainData:
        """The transitions this variant imitates."""
        agent = self.agent_config(config)
        transitions, sources = _load(config.dataset, "zero", config, "demonstrations")
        rows = self._select(transitions, sources)
        base = _base(config, transitions, sources)
        low, high = base["action_low"], base["action_high"]

        def sample(rng):
            pick = rows[rng.integers(0, len(rows), size=agent.batch_size)]
            return _scaled(transitions.take(pick), low, high)

        for source in sources:
            source["imitated_rows"] = int(len(rows))
        return TrainData(sampler=sample, sources=sources, **base)

    def create(self, config, data: TrainData):
        """A fresh `BCLearner`."""
        from trainers.agents.bc import BCLearner

        return BCLearner.create(config.seed, data.obs_dim, data.action_dim,
                                self.agent_config(config))

    def update(self, learner, batch):
        """One Adam step on the action error."""
        return learner.update({"observations": batch["observations"],
                               "actions": batch["actions"]})

    def act_fn(self, learner, data: TrainData):
        """Deterministic actions in the environment's units."""
        from trainers.data import denormalize_actions

        return lambda obs: denormalize_actions(learner.eval_actions(obs), data.action_low,
                                               data.action_high)

    def export(self, learner, data: TrainData, out: str, config) -> str:
        """The policy in rlif-data's format."""
        from rlif_data.policies import save_mlp_policy

        policy_config, variables = learner.export_policy(data.action_low, data.action_high)
        save_mlp_policy(out, policy_config, variables, overwrite=True)
        return out


ALGORITHMS: dict[str, Any] = {
    "rlpd": RLPD(),
    "bc": BehaviourCloning("bc"),
    "hg-dagger": BehaviourCloning("hg-dagger"),
    "dagger": BehaviourCloning("dagger"),
}


def get(name: str) -> Any:
    """The algorithm called `name`.

    Raises:
      ValueError: unknown name; the message lists the known ones.
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}") from None


def policy_lineage(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lineage inputs of a trained policy: the registry refs and hashes it learnt from."""
    out = []
    for s in sources:
        how = {"extra": {"role": s.get("role"), "reward": s.get("reward")}}
        if s.get("content_sha256") and ":" in str(s.get("resolved", "")):
            item = lineage.registry_input(s["resolved"], s["content_sha256"], **how)
        else:
            item = lineage.InputRef(path=s.get("path"), **how)
        out.append(item.to_json())
    return out


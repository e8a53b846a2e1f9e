"""The main job on embedded defaults: a staged pipeline that later issues extend.

1. record: simulated Hopper rollouts in which a scripted expert takes over
   from a random learner, into a local recording directory;
2. publish the raw recording in a local registry as ``quickstart-raw``;
3. relabel: a Beam job (DirectRunner, in-process at this size) turns that version
   into a TFDS dataset with RLIF rewards (paper rule);
4. publish it as ``quickstart`` (1.0.0 on the first run), tagged ``latest``,
   with lineage back to the raw logs;
5. train: RLPD (a small config) from ``quickstart@latest``, published as the
   policy ``quickstart-policy`` with the dataset versions it learnt from;
6. one more round: the trained policy acts while the scripted expert takes
   over at random, the round is published raw, relabelled, merged with
   ``quickstart@latest`` and published as the next ``quickstart`` version;
   the rounds table compares the random learner with the trained policy.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from rlif_data.lineage import registry_input
from rlif_data.recording.sim import RecordConfig, record_from_config


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
    """Defaults sized for a couple of minutes on 2 cores.

    Attributes:
      workdir: everything is written under this directory.
      record: the recording stage's config; its `out` is relative to `workdir`.
    """

    workdir: str = "quickstart_data"
    relabel_view: str = "paper"
    registry_root: str = ""  # default: <workdir>/registry
    record: RecordConfig = RecordConfig(
        env_id="Hopper-v5", out="recordings/round-0", episodes=20, intervention="random",
        rate=0.5, learner="random", expert="scripted", seed=0, max_episode_steps=200,
    )
    # A few minutes on 2 cores: far from RLPD's paper scale (see docs/experiments.md).
    train_steps: int = 2000
    train_agent: tuple[tuple[str, Any], ...] = (
        ("hidden_dims", (128, 128)), ("num_qs", 4), ("utd_ratio", 4), ("batch_size", 128))
    round_episodes: int = 10
    eval_episodes: int = 3


def _stage_record(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    out = os.path.join(config.workdir, config.record.out)
    summary = record_from_config(dataclasses.replace(config.record, out=out), progress=progress)
    return {"recording": summary}


def _version_input(info: Any) -> dict[str, Any]:
    """A registry version as a lineage input: its ``name:version`` and content hash."""
    return registry_input(info.ref, info.manifest["content_sha256"]).to_json()


def registry_root(config: QuickstartConfig) -> str:
    """The registry the quickstart publishes into."""
    return config.registry_root or os.path.join(config.workdir, "registry")


def _stage_publish_raw(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    from rlif_data.registry.store import Registry

    recording = os.path.join(config.workdir, config.record.out)
    info = Registry(registry_root(config)).publish(recording, "quickstart-raw")
    return {"raw_version": info.ref}


def _stage_relabel(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    import tempfile

    from pipelines import relabel
    from rlif_data.registry.store import Registry

    registry = Registry(registry_root(config))
    raw = registry.path("quickstart-raw@latest", verify="full")
    # The relabelled dataset only lives until it is published.
    with tempfile.TemporaryDirectory(dir=config.workdir) as tmp:
        out = relabel.run(raw, os.path.join(tmp, "relabelled"), config.relabel_view)
        info = registry.publish(out, "quickstart", tags=("latest",))
    return {"dataset": info.ref, "dataset_path": info.path}


def _stage_train(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    from rlif_data.registry.store import Registry
    from trainers.artifacts import publish_policy
    from trainers.configs import RLPDConfig
    from trainers.train import TrainConfig, train

    root = registry_root(config)
    dataset = Registry(root).info("quickstart@latest")
    agent = dataclasses.replace(RLPDConfig(), **dict(config.train_agent)).to_json_dict()
    # One run directory per dataset version: a re-run trains on the new data,
    # and a killed run resumes from its checkpoint.
    out = os.path.join(config.workdir, "runs", f"rlpd-quickstart-{dataset.version}")
    result = train(TrainConfig(
        algo="rlpd", dataset=(dataset.ref,), out=out, steps=config.train_steps,
        env_id=config.record.env_id, max_episode_steps=config.record.max_episode_steps,
        eval_episodes=config.eval_episodes, eval_every=max(config.train_steps // 4, 1),
        checkpoint_every=max(config.train_steps // 2, 1),
        log_every=max(config.train_steps // 10, 1), seed=config.record.seed, root=root,
        agent=agent), progress=progress)
    info = publish_policy(result, "quickstart-policy", root=root)
    return {"policy": info.ref, "policy_path": info.path, "policy_eval": result.final_eval,
            "train_out": result.out}


def _stage_round(config: QuickstartConfig, progress: bool, results: dict[str, Any]
                 ) -> dict[str, Any]:
    import tempfile

    from pipelines import merge, relabel
    from rlif_data.registry.store import Registry

    registry = Registry(registry_root(config))
    policy = registry.info(results["policy"])
    out = os.path.join(config.workdir, "recordings", f"round-1-{policy.version}")
    if os.path.exists(out):
        import shutil

        shutil.rmtree(out)  # left by a killed run, never published: record it again
    summary = record_from_config(dataclasses.replace(
        config.record, out=out, episodes=config.round_episodes, learner=policy.path,
        policy_version=policy.ref, round=1, seed=config.record.seed + 1000), progress=progress)
    inputs = [_version_input(policy)]
    raw = registry.publish(out, "quickstart-raw", tags=("latest", "round-1"),
                           lineage={"inputs": inputs})
    previous = registry.info("quickstart@latest")
    with tempfile.TemporaryDirectory(dir=config.workdir) as tmp:
        relabelled = relabel.run(raw.path, os.path.join(tmp, "relabelled"), config.relabel_view)
        merged = merge.run([previous.path, relabelled], os.path.join(tmp, "merged"))
        info = registry.publish(merged, "quickstart", tags=("latest",), lineage={"inputs": [
            _version_input(previous),
            _version_input(raw)]})
    return {"round_recording": summary, "round_raw": raw.ref, "final_dataset": info.ref}


def rounds_table(config: QuickstartConfig, results: dict[str, Any]) -> list[Any]:
    """Round 0 (random learner) against round 1 (the trained policy), as rounds-table rows."""
    from rlif_data.policies import RandomPolicy
    from rlif_data.envs.gym_dm_env import make_gym_env
    from trainers.evaluation import evaluate
    from trainers.rounds import RoundRow

    env = make_gym_env(config.record.env_id)
    space = env.action_space
    env.close()
    random_eval = evaluate(RandomPolicy.from_space(space, seed=0), config.record.env_id,
                           config.eval_episodes, seed=10_000 + config.record.seed,
                           max_episode_steps=config.record.max_episode_steps).to_json_dict()
    rows = []
    for k, (policy, evaluation, rec, dataset) in enumerate((
            ("random", random_eval, results["recording"], results["dataset"]),
            (results["policy"], results["policy_eval"], results["round_recording"],
             results["final_dataset"]))):
        rows.append(RoundRow(
            round=k, policy=policy, eval_return=evaluation["mean_return"],
            eval_std=evaluation["std_return"], survival=evaluation["survival"],
            intervention_rate=rec.intervention_rate, episodes=len(rec.episodes),
            transitions=rec.transitions, dataset=dataset))
    return rows


Stage = Callable[[QuickstartConfig, bool], dict[str, Any]]
STAGES: list[tuple[str, Stage]] = [
    ("record", _stage_record),
    ("publish-raw", _stage_publish_raw),
    ("relabel+publish", _stage_relabel),
    ("train", _stage_train),
]


def run_quickstart(config: QuickstartConfig = QuickstartConfig(),
                   progress: bool = True) -> dict[str, Any]:
    """Run every stage in order; returns what each stage produced, by name."""
    results: dict[str, Any] = {}
    for _, stage in STAGES:
        results.update(stage(config, progress))
    results.update(_stage_round(config, progress, results))
    results["rounds"] = rounds_table(config, results)
    return results

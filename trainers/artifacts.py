"""Trained policies as registry versions, with the lineage that made them.

A published policy is the exported `policy/` directory of a run (actor in
rlif-data's MLP format, plus the critic for Q^ref when RLPD trained it). Its
manifest's lineage names the dataset versions (refs and content hashes) and
the config that trained it, so `rlif-data lineage` walks
data -> policy -> data across rounds, and `record --learner NAME@TAG` loads it.
"""

from __future__ import annotations

from typing import Any, Optional

from trainers import algorithms


def publish_policy(result, name: str, *, root: Optional[str] = None,
                   tags: tuple[str, ...] = ("latest",),
                   extra: Optional[dict[str, Any]] = None):
    """Publish a finished run's policy as a new version of `name`.

    Args:
      result: the `TrainResult` of `trainers.train.train`.
      name: registry name of the policy (e.g. "hopper-policy").
      root: registry root.
      tags: tags to point at the new version.
      extra: more lineage keys (e.g. the rounds run marker).

    Returns:
      The new version's `VersionInfo`.
    """
    import json
    import os

    from rlif_data.registry.store import Registry

    with open(os.path.join(result.out, "train_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    lineage = {"job": "train", "params": config,
               "inputs": algorithms.policy_lineage(result.sources),
               "evaluation": result.final_eval, **(extra or {})}
    return Registry(root).publish(result.policy_dir, name, tags=tags, lineage=lineage)

"""The main job on embedded defaults: a staged pipeline that later issues extend.

Stage 1 (this release): record simulated Hopper rollouts in which a scripted
expert takes over from a random learner, into a local directory. Later stages
(relabel -> publish a dataset version -> train RLPD) append to `STAGES`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from rlif_data.recording.sim import RecordConfig, record_from_config


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
    """Defaults sized for a couple of minutes on 2 cores.

    Attributes:
      workdir: everything is written under this directory.
      record: the recording stage's config; its `out` is relative to `workdir`.
    """

    workdir: str = "quickstart_data"
    record: RecordConfig = RecordConfig(
        env_id="Hopper-v5", out="recordings/round-0", episodes=20, intervention="random",
        rate=0.5, learner="random", expert="scripted", seed=0, max_episode_steps=200,
    )


def _stage_record(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    out = os.path.join(config.workdir, config.record.out)
    summary = record_from_config(dataclasses.replace(config.record, out=out), progress=progress)
    return {"recording": summary}


Stage = Callable[[QuickstartConfig, bool], dict[str, Any]]
STAGES: list[tuple[str, Stage]] = [("record", _stage_record)]


def run_quickstart(config: QuickstartConfig = QuickstartConfig(),
                   progress: bool = True) -> dict[str, Any]:
    """Run every stage in order; returns what each stage produced, by name."""
    results: dict[str, Any] = {}
    for _, stage in STAGES:
        results.update(stage(config, progress))
    return results

"""The main job on embedded defaults: a staged pipeline that later issues extend.

1. record: simulated Hopper rollouts in which a scripted expert takes over
   from a random learner, into a local recording directory;
2. relabel: a Beam job (DirectRunner, 2 worker processes) turns the recording
   into a TFDS dataset with RLIF rewards (paper rule).
Later stages (publish a dataset version -> train RLPD) append to `STAGES`.
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
    relabel_view: str = "paper"
    record: RecordConfig = RecordConfig(
        env_id="Hopper-v5", out="recordings/round-0", episodes=20, intervention="random",
        rate=0.5, learner="random", expert="scripted", seed=0, max_episode_steps=200,
    )


def _stage_record(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    out = os.path.join(config.workdir, config.record.out)
    summary = record_from_config(dataclasses.replace(config.record, out=out), progress=progress)
    return {"recording": summary}


def _stage_relabel(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    from pipelines import relabel
    from rlif_data.recording.reader import EpisodeReader

    recording = os.path.join(config.workdir, config.record.out)
    with EpisodeReader(recording) as reader:
        count = len(reader)
    # Named by content (view + episode count): a re-run over the same
    # recording reuses it, a longer recording gets a new dataset.
    out = os.path.join(config.workdir, "datasets", f"round-0-{config.relabel_view}-{count}ep")
    if not os.path.exists(out):
        relabel.run(recording, out, config.relabel_view)
    return {"dataset": out}


Stage = Callable[[QuickstartConfig, bool], dict[str, Any]]
STAGES: list[tuple[str, Stage]] = [("record", _stage_record), ("relabel", _stage_relabel)]


def run_quickstart(config: QuickstartConfig = QuickstartConfig(),
                   progress: bool = True) -> dict[str, Any]:
    """Run every stage in order; returns what each stage produced, by name."""
    results: dict[str, Any] = {}
    for _, stage in STAGES:
        results.update(stage(config, progress))
    return results

"""The main job on embedded defaults: a staged pipeline that later issues extend.

1. record: simulated Hopper rollouts in which a scripted expert takes over
   from a random learner, into a local recording directory;
2. publish the raw recording in a local registry as ``quickstart-raw``;
3. relabel: a Beam job (DirectRunner, 2 worker processes) turns that version
   into a TFDS dataset with RLIF rewards (paper rule);
4. publish it as ``quickstart`` (1.0.0 on the first run), tagged ``latest``,
   with lineage back to the raw logs.
Later stages (train RLPD from ``quickstart@latest``) append to `STAGES`.
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
    registry_root: str = ""  # default: <workdir>/registry
    record: RecordConfig = RecordConfig(
        env_id="Hopper-v5", out="recordings/round-0", episodes=20, intervention="random",
        rate=0.5, learner="random", expert="scripted", seed=0, max_episode_steps=200,
    )


def _stage_record(config: QuickstartConfig, progress: bool) -> dict[str, Any]:
    out = os.path.join(config.workdir, config.record.out)
    summary = record_from_config(dataclasses.replace(config.record, out=out), progress=progress)
    return {"recording": summary}


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


Stage = Callable[[QuickstartConfig, bool], dict[str, Any]]
STAGES: list[tuple[str, Stage]] = [
    ("record", _stage_record),
    ("publish-raw", _stage_publish_raw),
    ("relabel+publish", _stage_relabel),
]


def run_quickstart(config: QuickstartConfig = QuickstartConfig(),
                   progress: bool = True) -> dict[str, Any]:
    """Run every stage in order; returns what each stage produced, by name."""
    results: dict[str, Any] = {}
    for _, stage in STAGES:
        results.update(stage(config, progress))
    return results

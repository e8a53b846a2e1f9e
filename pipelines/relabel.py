"""Relabel job: raw session logs -> RLIF rewards (or a baseline's view), as a TFDS dataset.

    python -m pipelines.relabel --input RECORDING --out DATASET --view paper \
        [--direct_num_workers=2 --direct_running_mode=multi_processing | --runner=DataflowRunner ...]

Views: paper, paper-policy-only, official (RLIF rewards, see rlif_data.relabel),
hg-dagger, dagger (imitation baselines). The environment reward is kept in
`env_reward`. Episodes marked invalid are dropped or kept by
``--invalid_episodes`` (required when the input holds marks; `rlif_data.invalid`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from typing import Optional, Sequence

from pipelines import common, output
from rlif_data import invalid
from rlif_data import relabel as rl
from rlif_data.recording.reader import EpisodeReader
from rlif_data.registry.store import resolve_dataset_ref


def run(input_dir: str, out_dir: str, view: str = "paper",
        beam_args: Optional[Sequence[str]] = None, name: Optional[str] = None,
        strict: bool = False, invalid_episodes: Optional[str] = None) -> str:
    """Relabel every episode of `input_dir` into a new dataset at `out_dir`.

    Args:
      strict: fail the job when the check of what it wrote finds warnings too
        (errors always fail it; `rlif_data.checks`).
      invalid_episodes: "drop" or "keep" the episodes marked invalid
        (required when the input holds marks; "keep" copies their marks).

    Raises:
      ValueError: unknown view, or every episode dropped.
      InvalidOptionRequiredError: marked episodes and no `invalid_episodes`.
      OutputExistsError: `out_dir` exists.
      CorruptRecordingError / FormatVersionError / SchemaError: bad input.
      CheckFailedError: what the job wrote fails its check; nothing is published.
    """
    if view not in rl.VIEWS:
        raise ValueError(f"unknown relabel view {view!r}; choose one of {list(rl.VIEWS)}")
    resolved = resolve_dataset_ref(input_dir)
    input_dir = resolved.path
    with EpisodeReader(input_dir, repair=False) as reader:
        schema = reader.schema
        count = len(reader)
    if schema.derived:
        raise ValueError(f"{input_dir} is already a relabelled dataset; relabel raw session logs")
    if count == 0:
        raise ValueError(f"{input_dir} holds no episodes; nothing to relabel")
    # Decided here, in the driver: the graph and the sink's shard plan see kept episodes only.
    selection = invalid.select_episodes(input_dir, invalid_episodes)
    if not selection.kept:
        raise ValueError(f"{input_dir}: all {count} episodes are marked invalid; nothing to "
                         "relabel")
    out_schema = dataclasses.replace(schema, derived=True, name=name or schema.name)
    relabel = functools.partial(rl.relabel_episode, view=view)
    kept = list(selection.kept)

    # Read by key: the sink reads, relabels and writes each shard's episodes in one worker.
    source = common.EpisodesByKey(input_dir, kept, relabel, label="Relabel")

    job = output.JobInfo("relabel", {"view": view}, [common.dataset_input(resolved)],
                         extra=common.invalid_episodes_lineage([selection], invalid_episodes))
    estimated = (job.inputs[0].bytes or 0) * len(kept) // count
    return output.write_dataset(source, out_dir, out_schema, job, beam_args,
                                description=f"RLIF episodes relabelled with the {view!r} view.",
                                keys=kept, estimated_bytes=estimated, strict=strict,
                                side_files=common.kept_marks_files([selection]))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry: job flags plus any Beam pipeline options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True,
                        help="recording or dataset directory, or a registry reference (name@tag)")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    parser.add_argument("--view", default="paper", choices=rl.VIEWS)
    common.add_invalid_episodes_flag(parser)
    args, beam_args = common.parse_job_args(parser, argv)
    path = run(args.input, args.out, args.view, beam_args or output.default_beam_args(),
               strict=args.strict, invalid_episodes=args.invalid_episodes)
    print(f"relabelled {args.input} ({args.view}) -> {path}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Ingest job: a local Minari dataset (HDF5 backend) -> RLDS episodes, as a TFDS dataset.

    python -m pipelines.ingest_minari --path ~/.minari/datasets/mujoco/hopper/medium-v0 \
        --out datasets/hopper-medium-minari [Beam pipeline options]

Reads the files directly (no download, no `minari` import needed). Camera
entries (image Boxes) are decoded from Minari's encoded frames: bit-exact for
rlif-data's own PNG export, Minari's pixels for its lossy JPEGs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Optional, Sequence

import apache_beam as beam

from pipelines import common, output
from pipelines.ingest_d4rl import tfds_name
from rlif_data import episodes
from rlif_data import schema as sc
from rlif_data.convert import minari_fields
from rlif_data.lineage import path_input
from rlif_data.sources import minari_reader


def run(path: str, out_dir: str, dataset_id: Optional[str] = None,
        beam_args: Optional[Sequence[str]] = None, strict: bool = False) -> str:
    """Ingest the Minari dataset at `path` into a new dataset at `out_dir`.

    Args:
      strict: fail the job when the check of what it wrote finds warnings too
        (errors always fail it; `rlif_data.checks`).

    Raises:
      MinariNotFoundError / MinariFormatError: bad input (checked before the pipeline).
      OutputExistsError: `out_dir` exists.
      CheckFailedError: what the job wrote fails its check; nothing is published.
    """
    path = os.path.abspath(path)
    first = next(minari_reader.read_minari_episodes(path, dataset_id=dataset_id), None)
    if first is None:
        raise ValueError(f"{path}: holds no episodes")
    metadata = minari_reader.read_minari_metadata(minari_reader.find_minari_data_dir(path, dataset_id))
    name = tfds_name(str(metadata.get("dataset_id") or os.path.basename(path)))
    # A relabelled view exported by rlif-data keeps its env_reward/include fields,
    # and any export its extra step fields (steps/infos).
    schema = dataclasses.replace(
        episodes.infer_schema(first, name=name, derived=sc.INCLUDE in first[sc.STEPS]),
        infos=minari_fields.info_specs(first[sc.STEPS]))

    def source():
        return (
            "Dataset" >> beam.Create([path])
            | "Episodes" >> beam.FlatMap(
                lambda p: common.indexed_episodes(p, minari_reader.read_minari_episodes, p,
                                                  dataset_id=dataset_id))
            # No Reshuffle (Dask drops it, graph_rules refuses it): the sink's
            # GroupByKey spreads the shards over the workers.
        )

    job = output.JobInfo("ingest_minari", {"dataset_id": dataset_id},
                         [path_input(path, minari_dataset_id=metadata.get("dataset_id"),
                                     episodes=metadata.get("total_episodes"))])
    return output.write_dataset(source, out_dir, schema, job, beam_args,
                                description=f"Minari {name} as RLDS episodes (source = dataset).",
                                keys=range(_episode_count(path, dataset_id, metadata)),
                                estimated_bytes=common.input_bytes(path), strict=strict)


def _episode_count(path: str, dataset_id: Optional[str], metadata: dict) -> int:
    """Episodes of the dataset: its metadata's count (the reader checked it), else counted."""
    total = metadata.get("total_episodes")
    if isinstance(total, int):
        return total
    return sum(1 for _ in minari_reader.read_minari_episodes(path, dataset_id=dataset_id))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry: job flags plus any Beam pipeline options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="local Minari dataset directory")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    parser.add_argument("--dataset-id", default=None)
    args, beam_args = common.parse_job_args(parser, argv)
    out = run(args.path, args.out, args.dataset_id, beam_args or output.default_beam_args(),
              strict=args.strict)
    print(f"ingested {args.path} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])

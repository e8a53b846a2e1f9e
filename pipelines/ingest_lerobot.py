"""Ingest job: a local LeRobotDataset (v3.0) directory -> RLDS episodes, as a TFDS dataset.

    python -m pipelines.ingest_lerobot --path DIR --out datasets/from-lerobot [Beam options]

Reads the files with pyarrow (no `lerobot`, `torch` or download): our own
exports (`rlif-data convert --to lerobot`) come back exactly, other LeRobot
datasets by their feature names (`rlif_data.convert.lerobot_layout`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import apache_beam as beam

from pipelines import common, output
from pipelines.ingest_d4rl import tfds_name
from rlif_data.convert import lerobot
from rlif_data.lineage import path_input


def run(path: str, out_dir: str, beam_args: Optional[Sequence[str]] = None) -> str:
    """Ingest the LeRobot dataset at `path` into a new dataset at `out_dir`.

    Raises:
      FileNotFoundError / LeRobotFormatError: bad input (checked before the pipeline).
      OutputExistsError: `out_dir` exists.
    """
    path = os.path.abspath(path)
    info = lerobot.read_info(path)
    total = lerobot.count_episodes(path)
    if total == 0:
        raise ValueError(f"{path}: holds no episodes")
    schema = lerobot.lerobot_schema(path, name=tfds_name(os.path.basename(path)))
    # The first episode is read before the pipeline: bad data fails here, in one line.
    next(lerobot.read_lerobot_episodes(path))

    def source():
        return (
            "Dataset" >> beam.Create([path])
            | "Episodes" >> beam.FlatMap(
                lambda p: common.indexed_episodes(p, lerobot.read_lerobot_episodes, p))
            # No Reshuffle (Dask drops it, graph_rules refuses it): the sink's
            # GroupByKey spreads the shards over the workers.
        )

    job = output.JobInfo("ingest_lerobot", {},
                         [path_input(path, lerobot_codebase_version=info.get("codebase_version"),
                                     episodes=total, frames=info.get("total_frames"))])
    return output.write_dataset(source, out_dir, schema, job, beam_args,
                                description=f"LeRobot dataset {os.path.basename(path)} as RLDS "
                                "episodes.",
                                keys=range(total), estimated_bytes=lerobot.dataset_size(path))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry: job flags plus any Beam pipeline options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="local LeRobotDataset directory")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    args, beam_args = common.parse_job_args(parser, argv)
    out = run(args.path, args.out, beam_args or output.default_beam_args())
    print(f"ingested {args.path} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])

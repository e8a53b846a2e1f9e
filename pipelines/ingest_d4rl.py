"""Ingest job: D4RL HDF5 files -> RLDS episodes (source = dataset), as a TFDS dataset.

    python -m pipelines.ingest_d4rl --path hopper_medium-v2.hdf5 --env-id Hopper-v5 \
        --out datasets/hopper-medium [Beam pipeline options]

Reads local files only; `rlif_data.sources.d4rl_catalog` lists the paper's
datasets with their download addresses for when you are online. The file's
``infos/*`` columns are kept as step fields ``steps/infos/<name>`` unless
``--drop-infos`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from typing import Optional, Sequence

import apache_beam as beam

from pipelines import common, output
from rlif_data import schema as sc
from rlif_data.lineage import path_input
from rlif_data.sources import d4rl_hdf5


def tfds_name(text: str) -> str:
    """A TFDS-valid dataset name from a file or dataset name ("hopper-medium-v2" -> "hopper_medium_v2")."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"d4rl_{name}"
    return name


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file (lineage: which exact bytes were ingested)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def env_action_shape(env_id: str) -> tuple:
    """The action space shape of a registered Gymnasium env (made once, then closed).

    Raises:
      UnknownEnvironmentError: the id is not registered (the message lists close matches).
    """
    from rlif_data.envs.gym_dm_env import make_gym_env

    env = make_gym_env(env_id)
    try:
        return tuple(env.action_space.shape)
    finally:
        env.close()


def run(path: str, out_dir: str, env_id: str = "", max_episode_steps: Optional[int] = None,
        beam_args: Optional[Sequence[str]] = None, name: Optional[str] = None,
        strict: bool = False, drop_infos: bool = False) -> str:
    """Ingest one D4RL HDF5 file into a new dataset at `out_dir`.

    The file's structure is checked before the pipeline starts; NaN/inf
    values fail the job with the file, key, row and episode in the message.
    The file's ``infos/*`` columns (qpos, qvel, ...) become extra step fields
    ``steps/infos/<name>`` (`rlif_data.schema.INFOS`, format 1.1), bit-exact.

    Args:
      strict: fail the job when the check of what it wrote finds warnings too
        (errors always fail it; `rlif_data.checks`).
      drop_infos: leave the ``infos/*`` columns out (the 1.0 layout, which
        rlif-data releases before format 1.1 read).

    Raises:
      FileNotFoundError, D4RLFormatError: bad input file, or actions of
        another width than `env_id`'s.
      UnknownEnvironmentError: `env_id` is not a registered environment.
      OutputExistsError: `out_dir` exists.
      CheckFailedError: what the job wrote fails its check; nothing is published.
    """
    summary = d4rl_hdf5.inspect_d4rl(path, max_episode_steps=max_episode_steps)
    if summary["episodes"] == 0:
        raise ValueError(f"{path}: holds no episodes")
    if env_id:  # a stored env id must name an env these actions can drive
        d4rl_hdf5.check_action_width(path, summary["action_dim"], env_id,
                                     env_action_shape(env_id))
    dataset = os.path.splitext(os.path.basename(path))[0]
    schema = sc.EpisodeSchema(sc.ArraySpec((summary["obs_dim"],)), summary["action_dim"],
                              name=name or tfds_name(dataset),
                              infos={} if drop_infos else d4rl_hdf5.info_specs(summary))

    def source():
        return (
            "Files" >> beam.Create([os.path.abspath(path)])
            | "Episodes" >> beam.FlatMap(
                lambda p: common.indexed_episodes(p, d4rl_hdf5.read_d4rl_episodes, p,
                                                  env_id=env_id,
                                                  max_episode_steps=max_episode_steps,
                                                  infos=not drop_infos))
            # No Reshuffle (Dask drops it, graph_rules refuses it): the sink's
            # GroupByKey spreads the shards over the workers.
        )

    job = output.JobInfo(
        "ingest_d4rl",
        {"env_id": env_id, "max_episode_steps": max_episode_steps,
         "infos": sorted(schema.infos), "drop_infos": drop_infos},
        [path_input(path, sha256=file_sha256(path), rows=summary["rows"],
                    episodes=summary["episodes"])],
    )
    return output.write_dataset(source, out_dir, schema, job, beam_args,
                                description=f"D4RL {dataset} as RLDS episodes (source = dataset).",
                                keys=range(summary["episodes"]),
                                estimated_bytes=os.path.getsize(path), strict=strict)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry: job flags plus any Beam pipeline options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="local D4RL .hdf5 file")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist)")
    parser.add_argument("--env-id", default="", help="Gymnasium env id stored with episodes")
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="time limit, to split files without `timeouts`")
    parser.add_argument("--drop-infos", action="store_true",
                        help="leave out the file's infos/* columns (qpos, qvel, ...), which are "
                             "otherwise kept bit-exact as step fields steps/infos/<name>; "
                             "gives the layout rlif-data before format 1.1 reads")
    args, beam_args = common.parse_job_args(parser, argv)
    out = run(args.path, args.out, args.env_id, args.max_episode_steps,
              beam_args or output.default_beam_args(), strict=args.strict,
              drop_infos=args.drop_infos)
    print(f"ingested {args.path} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
